//! Test control of organizations, the OAuth server and the clock: add
//! organizations, register apps, decide consents, revoke installations,
//! kill refresh tokens, count token calls, move simulated time. In-process
//! on [`LinearControl`]; over HTTP by [`router`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::control::{ApiError, Ctl, LinearControl, ok};
use super::oauth::{
    Consent, Installation, NewOAuthApp, OAuthApp, PendingAuthorization, Redirect, TokenStats,
};
use super::organizations::{NewOrganization, Org, Organization};
use super::world::SimError;

impl LinearControl {
    // ---- organizations ------------------------------------------------------

    /// A handle acting in another organization (by id or url key).
    pub fn organization(&self, id_or_key: &str) -> Option<LinearControl> {
        let orgs = self.inner.orgs.read().expect("orgs lock");
        let org = orgs.iter().find(|o| {
            let v = o.view();
            v.id == id_or_key || v.url_key.eq_ignore_ascii_case(id_or_key)
        })?;
        Some(LinearControl {
            inner: self.inner.clone(),
            org: org.clone(),
        })
    }

    /// Adds an organization with its own app user. The default app can then
    /// be installed there (see [`LinearControl::install_into`]).
    pub fn add_organization(&self, input: NewOrganization) -> Result<Organization, SimError> {
        if input.name.trim().is_empty() {
            return Err(SimError::Invalid("an organization needs a name".into()));
        }
        let (app_name, client_id, key) = {
            let first = self.inner.first_org();
            let w = first.world.lock().expect("world lock");
            (
                w.identity.agent_name.clone(),
                w.identity.oauth_client_id.clone(),
                first.api_key.clone(),
            )
        };
        if input.api_key.is_some() && input.api_key == key {
            return Err(SimError::Invalid(
                "that API key belongs to another organization".into(),
            ));
        }
        let org = Org::from_input(input, &app_name, &client_id, self.inner.timing);
        let view = org.view();
        let mut orgs = self.inner.orgs.write().expect("orgs lock");
        for o in orgs.iter() {
            let v = o.view();
            if v.id == view.id || v.url_key.eq_ignore_ascii_case(&view.url_key) {
                return Err(SimError::Invalid(format!(
                    "an organization with id {} or url key {} exists",
                    view.id, view.url_key
                )));
            }
            if org.api_key.is_some() && o.api_key == org.api_key {
                return Err(SimError::Invalid(
                    "that API key belongs to another organization".into(),
                ));
            }
        }
        orgs.push(Arc::new(org));
        Ok(view)
    }

    /// Every organization, the default one first.
    pub fn organizations(&self) -> Vec<Organization> {
        let orgs: Vec<Arc<Org>> = self.inner.orgs.read().expect("orgs lock").clone();
        orgs.iter().map(|o| o.view()).collect()
    }

    /// The organization this handle acts in.
    pub fn current_organization(&self) -> Organization {
        self.org.view()
    }

    /// An admin changes which teams the app user may access: sends
    /// `PermissionChange` `teamAccessChanged` for this handle's
    /// organization.
    pub fn change_team_access(
        &self,
        added_team_ids: &[String],
        removed_team_ids: &[String],
        can_access_all_public_teams: bool,
    ) -> Result<(), SimError> {
        let event = {
            let w = self.org.world.lock().expect("world lock");
            for id in added_team_ids.iter().chain(removed_team_ids) {
                w.team(id).ok_or_else(|| SimError::not_found("Team", id))?;
            }
            if !w.app_installed {
                return Err(SimError::Invalid(
                    "the app is not installed in this organization".into(),
                ));
            }
            w.team_access_changed(
                added_team_ids,
                removed_team_ids,
                can_access_all_public_teams,
            )
        };
        self.inner.webhooks.send_all(vec![event]);
        Ok(())
    }

    // ---- OAuth apps and consent -----------------------------------------------

    pub fn register_oauth_app(&self, input: NewOAuthApp) -> Result<OAuthApp, SimError> {
        self.inner
            .oauth
            .lock()
            .expect("oauth lock")
            .register_app(input)
    }

    /// Every registered app, the default one first.
    pub fn oauth_apps(&self) -> Vec<OAuthApp> {
        self.inner.oauth.lock().expect("oauth lock").apps()
    }

    pub fn add_redirect_uri(&self, client_id: &str, uri: &str) -> Result<(), SimError> {
        self.inner
            .oauth
            .lock()
            .expect("oauth lock")
            .add_redirect_uri(client_id, uri)
    }

    /// Whether `/oauth/authorize` approves, denies or waits (default:
    /// approves).
    pub fn set_consent(&self, consent: Consent) {
        self.inner.oauth.lock().expect("oauth lock").consent = consent;
    }

    /// Where the next installs go (by id or url key); `None`: the first
    /// organization.
    pub fn install_into(&self, organization: Option<&str>) -> Result<(), SimError> {
        let target = match organization {
            Some(o) => Some(
                self.organization(o)
                    .ok_or_else(|| SimError::not_found("Organization", o))?
                    .org
                    .id(),
            ),
            None => None,
        };
        self.inner.oauth.lock().expect("oauth lock").install_target = target;
        Ok(())
    }

    /// Consents held by [`Consent::Hold`], oldest first.
    pub fn pending_authorizations(&self) -> Vec<PendingAuthorization> {
        self.inner.oauth.lock().expect("oauth lock").pending()
    }

    /// Approves a held consent; the waiting browser is redirected with a
    /// code. Returns that redirect URL.
    pub fn approve_authorization(&self, pending_id: &str) -> Result<String, SimError> {
        self.decide(pending_id, true)
    }

    /// Denies a held consent (`error=access_denied`); returns the redirect.
    pub fn deny_authorization(&self, pending_id: &str) -> Result<String, SimError> {
        self.decide(pending_id, false)
    }

    fn decide(&self, pending_id: &str, approve: bool) -> Result<String, SimError> {
        let now = self.inner.clock.now();
        let redirect = self
            .inner
            .oauth
            .lock()
            .expect("oauth lock")
            .decide(pending_id, approve, now)?;
        self.inner.mark_installed(&redirect);
        Ok(redirect.location)
    }

    // ---- installations and tokens ---------------------------------------------

    pub fn installations(&self) -> Vec<Installation> {
        let now = self.inner.clock.now();
        self.inner
            .oauth
            .lock()
            .expect("oauth lock")
            .installations(now)
    }

    /// An admin uninstalls the app (`client_id`, default: the default app)
    /// from the organization: its tokens stop working at once, the
    /// `OAuthApp` `revoked` webhook is sent, and that organization sends no
    /// further webhooks until the app is installed again. Works for the
    /// install implied by a static API key too.
    pub fn revoke_installation(
        &self,
        organization: &str,
        client_id: Option<&str>,
    ) -> Result<(), SimError> {
        let org = self
            .organization(organization)
            .ok_or_else(|| SimError::not_found("Organization", organization))?
            .org;
        let org_id = org.id();
        let client_id = match client_id {
            Some(c) => c.to_string(),
            None => self.inner.default_client_id(),
        };
        let now = self.inner.clock.now();
        let revoked = self
            .inner
            .oauth
            .lock()
            .expect("oauth lock")
            .revoke_installation(&org_id, &client_id, now);
        let event = {
            let mut w = org.world.lock().expect("world lock");
            let implied = w.identity.oauth_client_id == client_id && w.app_installed;
            if revoked.is_err() && !implied {
                return revoked;
            }
            if w.identity.oauth_client_id == client_id {
                w.app_installed = false;
            }
            w.oauth_app_revoked(&client_id)
        };
        self.inner.webhooks.send_all(vec![event]);
        Ok(())
    }

    /// Makes a refresh token dead (Linear answers `invalid_grant` to it);
    /// `false` when it was not live.
    pub fn kill_refresh_token(&self, token: &str) -> bool {
        self.inner
            .oauth
            .lock()
            .expect("oauth lock")
            .kill_refresh_token(token)
    }

    /// Kills every live refresh token of an organization's installations
    /// (by id or url key); returns how many.
    pub fn kill_refresh_tokens(&self, organization: &str) -> Result<usize, SimError> {
        let org = self
            .organization(organization)
            .ok_or_else(|| SimError::not_found("Organization", organization))?
            .org
            .id();
        Ok(self
            .inner
            .oauth
            .lock()
            .expect("oauth lock")
            .kill_refresh_tokens(&org))
    }

    /// Calls to `/oauth/token` by grant type, and to `/oauth/revoke`.
    pub fn token_stats(&self) -> TokenStats {
        self.inner.oauth.lock().expect("oauth lock").stats.clone()
    }

    pub fn reset_token_stats(&self) {
        self.inner.oauth.lock().expect("oauth lock").stats = TokenStats::default();
    }

    // ---- clock ----------------------------------------------------------------

    /// Moves the simulator's clock (token and code lifetimes) forward.
    pub fn advance(&self, by: Duration) {
        self.inner.clock.advance(by);
    }

    /// The simulator's current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// How fast the clock runs from now on (0 = frozen, 1 = real time).
    pub fn set_time_scale(&self, time_scale: f64) {
        self.inner.clock.set_scale(time_scale);
    }

    pub fn time_scale(&self) -> f64 {
        self.inner.clock.scale()
    }
}

impl super::server::Inner {
    /// After an approved consent or a new app token: the app's webhooks
    /// flow again in that organization.
    pub(crate) fn mark_installed(&self, redirect: &Redirect) {
        if let Some((org_id, client_id)) = &redirect.installed {
            self.mark_installed_in(org_id, client_id);
        }
    }

    pub(crate) fn mark_installed_in(&self, org_id: &str, client_id: &str) {
        if let Some(org) = self.org(org_id) {
            let mut w = org.world.lock().expect("world lock");
            if w.identity.oauth_client_id == client_id {
                w.app_installed = true;
            }
        }
    }

    pub(crate) fn default_client_id(&self) -> String {
        self.first_org()
            .world
            .lock()
            .expect("world lock")
            .identity
            .oauth_client_id
            .clone()
    }
}

// ---- HTTP mirror ---------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsentBody {
    mode: Consent,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstallTarget {
    organization_id: Option<String>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedirectUri {
    uri: String,
}
#[derive(Serialize)]
struct Location {
    location: String,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevokeBody {
    organization_id: String,
    client_id: Option<String>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KillBody {
    token: Option<String>,
    organization_id: Option<String>,
}
#[derive(Serialize)]
struct Killed {
    killed: usize,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TeamAccess {
    #[serde(default)]
    added_team_ids: Vec<String>,
    #[serde(default)]
    removed_team_ids: Vec<String>,
    #[serde(default)]
    can_access_all_public_teams: bool,
}
#[derive(Deserialize)]
struct Advance {
    seconds: Option<u64>,
    ms: Option<u64>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scale {
    time_scale: f64,
}
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClockView {
    now: DateTime<Utc>,
    time_scale: f64,
}

fn clock_view(c: &LinearControl) -> Json<ClockView> {
    Json(ClockView {
        now: c.now(),
        time_scale: c.time_scale(),
    })
}

pub fn router(control: LinearControl) -> Router {
    Router::new()
        .route(
            "/_control/organizations",
            get(|Ctl(c): Ctl| async move { Json(c.organizations()) })
                .post(|Ctl(c): Ctl, Json(b): Json<NewOrganization>| async move { ok(c.add_organization(b)) }),
        )
        .route("/_control/team-access", post(|Ctl(c): Ctl, Json(b): Json<TeamAccess>| async move {
            c.change_team_access(&b.added_team_ids, &b.removed_team_ids, b.can_access_all_public_teams)
                .map(|_| StatusCode::NO_CONTENT)
                .map_err(ApiError)
        }))
        .route(
            "/_control/oauth/apps",
            get(|Ctl(c): Ctl| async move { Json(c.oauth_apps()) })
                .post(|Ctl(c): Ctl, Json(b): Json<NewOAuthApp>| async move { ok(c.register_oauth_app(b)) }),
        )
        .route("/_control/oauth/apps/{client_id}/redirect-uris", post(|Ctl(c): Ctl, Path(id): Path<String>, Json(b): Json<RedirectUri>| async move {
            c.add_redirect_uri(&id, &b.uri).map(|_| StatusCode::NO_CONTENT).map_err(ApiError)
        }))
        .route("/_control/oauth/consent", post(|Ctl(c): Ctl, Json(b): Json<ConsentBody>| async move {
            c.set_consent(b.mode);
            StatusCode::NO_CONTENT
        }))
        .route("/_control/oauth/install-target", post(|Ctl(c): Ctl, Json(b): Json<InstallTarget>| async move {
            c.install_into(b.organization_id.as_deref()).map(|_| StatusCode::NO_CONTENT).map_err(ApiError)
        }))
        .route("/_control/oauth/pending", get(|Ctl(c): Ctl| async move { Json(c.pending_authorizations()) }))
        .route("/_control/oauth/pending/{id}/approve", post(|Ctl(c): Ctl, Path(id): Path<String>| async move {
            ok(c.approve_authorization(&id).map(|location| Location { location }))
        }))
        .route("/_control/oauth/pending/{id}/deny", post(|Ctl(c): Ctl, Path(id): Path<String>| async move {
            ok(c.deny_authorization(&id).map(|location| Location { location }))
        }))
        .route("/_control/oauth/installations", get(|Ctl(c): Ctl| async move { Json(c.installations()) }))
        .route("/_control/oauth/revoke-installation", post(|Ctl(c): Ctl, Json(b): Json<RevokeBody>| async move {
            c.revoke_installation(&b.organization_id, b.client_id.as_deref())
                .map(|_| StatusCode::NO_CONTENT)
                .map_err(ApiError)
        }))
        .route("/_control/oauth/kill-refresh-tokens", post(|Ctl(c): Ctl, Json(b): Json<KillBody>| async move {
            let killed = match (b.token, b.organization_id) {
                (Some(t), None) => Ok(usize::from(c.kill_refresh_token(&t))),
                (None, Some(o)) => c.kill_refresh_tokens(&o),
                _ => Err(SimError::Invalid("send either token or organizationId".into())),
            };
            ok(killed.map(|killed| Killed { killed }))
        }))
        .route(
            "/_control/oauth/token-stats",
            get(|Ctl(c): Ctl| async move { Json(c.token_stats()) }).delete(|Ctl(c): Ctl| async move {
                c.reset_token_stats();
                StatusCode::NO_CONTENT
            }),
        )
        .route("/_control/clock", get(|Ctl(c): Ctl| async move { clock_view(&c) }))
        .route("/_control/clock/advance", post(|Ctl(c): Ctl, Json(b): Json<Advance>| async move {
            let by = Duration::from_secs(b.seconds.unwrap_or(0)) + Duration::from_millis(b.ms.unwrap_or(0));
            c.advance(by);
            clock_view(&c)
        }))
        .route("/_control/clock/scale", post(|Ctl(c): Ctl, Json(b): Json<Scale>| async move {
            c.set_time_scale(b.time_scale);
            clock_view(&c)
        }))
        .with_state(control)
}
