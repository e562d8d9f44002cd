//! The Linear workspaces this worker serves, one client each: static tokens
//! from the configuration (simulators, scripts) and OAuth installations from
//! the store (what `cyrus linear connect` creates). Webhooks and tasks find
//! their workspace's client by organization id; outbound calls use that
//! workspace's token and agent user.
//!
//! Installations made while the worker runs (by `cyrus linear connect` or
//! the worker's own `/oauth/callback`) are picked up by [`LinearHub::sync`],
//! which the worker calls periodically and after a callback.

use crate::installation_tokens::StoreTokens;
use cyrus_core::config::Config;
use cyrus_linear::oauth::{OAuthClient, OAuthEndpoints};
use cyrus_linear::{Credentials, LinearClient, LinearClientConfig};
use cyrus_store::{InstallationInfo, Store};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use url::Url;

#[derive(Clone)]
struct Workspace {
    client: LinearClient,
    /// The agent's user in this workspace (`appUserId` in its webhooks).
    app_user_id: Option<String>,
    /// Set for OAuth installations: the app the installation belongs to.
    oauth_client_id: Option<String>,
}

/// What building an installation's client needs from the configuration.
#[derive(Clone)]
struct Builder {
    endpoint: Url,
    oauth_endpoints: OAuthEndpoints,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    /// Lease owner for token refreshes.
    owner: String,
}

/// Cheap to clone; clones share the workspaces.
#[derive(Clone)]
pub struct LinearHub {
    workspaces: Arc<RwLock<HashMap<String, Workspace>>>,
    builder: Arc<Builder>,
}

impl LinearHub {
    /// A hub of the configured static-token workspaces.
    pub(crate) fn from_config(config: &Config, owner: &str) -> anyhow::Result<LinearHub> {
        let endpoint = Url::parse(&config.linear.api_url).map_err(|e| {
            anyhow::anyhow!(
                "linear.apiUrl `{}` is not a URL: {e}",
                config.linear.api_url
            )
        })?;
        let mut workspaces = HashMap::new();
        for ws in &config.linear.workspaces {
            let cfg =
                LinearClientConfig::new(endpoint.clone(), Credentials::ApiKey(ws.token.clone()));
            let client =
                LinearClient::new(cfg).map_err(|e| anyhow::anyhow!("Linear client: {e}"))?;
            workspaces.insert(
                ws.organization_id.clone(),
                Workspace {
                    client,
                    app_user_id: ws
                        .agent_user_id
                        .clone()
                        .or_else(|| config.linear.agent_user_id.clone()),
                    oauth_client_id: None,
                },
            );
        }
        let oauth = &config.linear.oauth;
        let oauth_endpoints = match oauth.as_ref().and_then(|o| o.endpoint_base.as_deref()) {
            Some(base) => Url::parse(base)
                .ok()
                .and_then(|u| OAuthEndpoints::from_base(&u).ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("linear.oauth.endpointBase `{base}` is not a URL")
                })?,
            None => OAuthEndpoints::default(),
        };
        let builder = Builder {
            endpoint,
            oauth_endpoints,
            client_id: oauth.as_ref().map(|o| o.client_id.clone()),
            client_secret: oauth.as_ref().map(|o| o.client_secret.clone()),
            owner: format!("{owner}-tokens"),
        };
        Ok(LinearHub {
            workspaces: Arc::new(RwLock::new(workspaces)),
            builder: Arc::new(builder),
        })
    }

    /// Adds a client for every installation in the store this hub does not
    /// have yet, and answers the installations it read (for callers that
    /// also look at their status). Installations are never removed: a
    /// revoked one keeps its client, whose calls answer "needs reconnect"
    /// (its tasks wait).
    pub(crate) async fn sync(
        &self,
        store: &Store,
    ) -> Result<Vec<InstallationInfo>, cyrus_store::StoreError> {
        let infos = store.list_installation_infos().await?;
        for info in &infos {
            let known = self
                .workspaces
                .read()
                .expect("hub lock")
                .get(&info.workspace_id)
                .is_some_and(|w| w.oauth_client_id.is_some());
            if known {
                continue;
            }
            match self.builder.installation_client(store, info) {
                Ok(client) => {
                    tracing::info!(workspace = %info.workspace_name, status = %info.status, "Linear installation loaded");
                    self.workspaces.write().expect("hub lock").insert(
                        info.workspace_id.clone(),
                        Workspace {
                            client,
                            app_user_id: Some(info.app_user_id.clone()),
                            oauth_client_id: Some(info.oauth_client_id.clone()),
                        },
                    );
                }
                Err(err) => {
                    tracing::error!(workspace = %info.workspace_name, "cannot use the installation: {err}")
                }
            }
        }
        Ok(infos)
    }

    /// The workspace for `organization_id`; when it is unknown, exactly one
    /// workspace is served and no OAuth app is configured, that one (a
    /// single-workspace deployment of static tokens whose configuration never
    /// named the organization). With OAuth, an unknown organization may be
    /// an installation made elsewhere a moment ago: never another's token.
    fn find(&self, organization_id: &str) -> Option<Workspace> {
        let workspaces = self.workspaces.read().expect("hub lock");
        let static_only = self.builder.client_id.is_none();
        workspaces
            .get(organization_id)
            .or_else(|| {
                (static_only && workspaces.len() == 1)
                    .then(|| workspaces.values().next())
                    .flatten()
            })
            .cloned()
    }

    /// [`LinearHub::client`], reading the store's installations once more
    /// when the organization is unknown (installed by another process or
    /// replica since the last sync).
    pub(crate) async fn client_or_sync(
        &self,
        store: &Store,
        organization_id: &str,
    ) -> Option<LinearClient> {
        if let Some(client) = self.client(organization_id) {
            return Some(client);
        }
        if let Err(err) = self.sync(store).await {
            tracing::warn!(error = %err, "reading Linear installations failed");
        }
        self.client(organization_id)
    }

    /// The client for `organization_id` (see [`LinearHub::find`]).
    pub fn client(&self, organization_id: &str) -> Option<LinearClient> {
        self.find(organization_id).map(|w| w.client)
    }

    /// The agent's user id in `organization_id`, if known.
    pub fn app_user_id(&self, organization_id: &str) -> Option<String> {
        self.find(organization_id).and_then(|w| w.app_user_id)
    }

    /// Whether a webhook from `organization_id` signed for `oauth_client_id`
    /// belongs to an installation of another OAuth app (then it is not ours
    /// to act on).
    pub fn foreign_app(&self, organization_id: &str, oauth_client_id: Option<&str>) -> bool {
        let workspaces = self.workspaces.read().expect("hub lock");
        match (workspaces.get(organization_id), oauth_client_id) {
            (
                Some(Workspace {
                    oauth_client_id: Some(ours),
                    ..
                }),
                Some(theirs),
            ) => ours != theirs,
            _ => false,
        }
    }

    /// Every workspace's client, for periodic checks (rate limits).
    pub fn all(&self) -> Vec<(String, LinearClient)> {
        self.workspaces
            .read()
            .expect("hub lock")
            .iter()
            .map(|(org, w)| (org.clone(), w.client.clone()))
            .collect()
    }
}

impl Builder {
    fn installation_client(
        &self,
        store: &Store,
        info: &InstallationInfo,
    ) -> anyhow::Result<LinearClient> {
        let secret = match (&self.client_id, &self.client_secret) {
            (Some(id), Some(secret)) if *id == info.oauth_client_id => secret.clone(),
            (Some(id), _) => anyhow::bail!(
                "it was installed with OAuth app {} but linear.oauth.clientId is {id}; refreshing its tokens needs that app's secret",
                info.oauth_client_id
            ),
            _ => {
                tracing::warn!(workspace = %info.workspace_name, "linear.oauth is not configured: the installation's tokens cannot be refreshed when they expire");
                SecretString::from(String::new())
            }
        };
        let oauth = OAuthClient::new(
            info.oauth_client_id.clone(),
            secret,
            self.oauth_endpoints.clone(),
        )
        .map_err(|e| anyhow::anyhow!("OAuth client: {e}"))?;
        let tokens = StoreTokens::new(
            store.clone(),
            info.workspace_id.clone(),
            info.workspace_name.clone(),
            oauth,
            self.owner.clone(),
        );
        let cfg = LinearClientConfig::new(
            self.endpoint.clone(),
            Credentials::Managed(Arc::new(tokens)),
        );
        LinearClient::new(cfg).map_err(|e| anyhow::anyhow!("Linear client: {e}"))
    }
}
