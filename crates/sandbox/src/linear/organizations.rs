//! The simulator's organizations (Linear workspaces). Each is a whole
//! [`World`] with its own app user, which is the `viewer` of that
//! organization's tokens and the `appUserId` of its webhooks. The first one
//! is built from `LinearSimOptions`; tests add more through the control API.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::status::SessionTiming;
use super::world::{Identity, World};

/// One organization: its workspace, and the static API key (a personal
/// `lin_api_…` key) that reaches it, if any.
pub struct Org {
    pub world: Mutex<World>,
    pub api_key: Option<String>,
    /// Files people pasted (`uploads`).
    pub uploads: Mutex<super::uploads::Uploads>,
}

/// What the control API takes to add an organization; ids are generated
/// when omitted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewOrganization {
    pub id: Option<String>,
    pub name: String,
    /// Defaults to the name, lower-cased, without spaces.
    pub url_key: Option<String>,
    pub app_user_id: Option<String>,
    /// The app user's display name; defaults to the default app's name.
    pub app_user_name: Option<String>,
    /// A static API key for this organization (besides OAuth tokens).
    pub api_key: Option<String>,
}

/// An organization as tests see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub url_key: String,
    /// The app user: `viewer.id` for this organization's app tokens.
    pub app_user_id: String,
    pub app_user_name: String,
    /// The id of the human who acts when a control call names nobody.
    pub default_user_id: String,
    /// `false` after the app was revoked here (no webhooks until it is
    /// installed again).
    pub app_installed: bool,
}

impl Org {
    pub fn new(identity: Identity, api_key: Option<String>, timing: SessionTiming) -> Org {
        Org {
            world: Mutex::new(World::new(identity, timing)),
            api_key,
            uploads: Mutex::default(),
        }
    }

    /// Builds an organization from a control request.
    pub fn from_input(
        input: NewOrganization,
        app_name: &str,
        oauth_client_id: &str,
        timing: SessionTiming,
    ) -> Org {
        let url_key = input
            .url_key
            .unwrap_or_else(|| input.name.to_lowercase().replace(' ', ""));
        let identity = Identity {
            organization_id: input.id.unwrap_or_else(|| Uuid::new_v4().to_string()),
            organization_name: input.name,
            url_key,
            agent_user_id: input
                .app_user_id
                .unwrap_or_else(|| Uuid::new_v4().to_string()),
            agent_name: input.app_user_name.unwrap_or_else(|| app_name.to_string()),
            default_user_id: Uuid::new_v4().to_string(),
            oauth_client_id: oauth_client_id.to_string(),
            webhook_id: Uuid::new_v4().to_string(),
        };
        Org::new(identity, input.api_key, timing)
    }

    pub fn id(&self) -> String {
        self.world
            .lock()
            .expect("world lock")
            .identity
            .organization_id
            .clone()
    }

    pub fn view(&self) -> Organization {
        let w = self.world.lock().expect("world lock");
        let id = &w.identity;
        Organization {
            id: id.organization_id.clone(),
            name: id.organization_name.clone(),
            url_key: id.url_key.clone(),
            app_user_id: id.agent_user_id.clone(),
            app_user_name: id.agent_name.clone(),
            default_user_id: id.default_user_id.clone(),
            app_installed: w.app_installed,
        }
    }
}
