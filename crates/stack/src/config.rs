//! The worker configuration that points at the simulators.

use crate::StackOptions;
use crate::options::LinearAuth;
use cyrus_sandbox::codegen::CodegenSim;
use cyrus_sandbox::linear::LinearSim;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Configuration pointing a worker listening on `listen` at the two
/// simulators and the store at `store_url`, with `opts`' limits and its
/// `config_patch` merged in.
pub fn config_for(
    codegen: &CodegenSim,
    linear: &LinearSim,
    store_url: &str,
    listen: SocketAddr,
    opts: &StackOptions,
) -> Value {
    let org = linear.organization_id();
    let mut config = json!({
        "repositories": [
            {
                "id": "web", "name": "web", "linearWorkspaceId": org, "codegenRepoId": 7,
                "teamKeys": ["ENG"],
                "labelPrompts": {"debugger": ["Bug"], "builder": ["Feature"], "scoper": ["PRD"]},
                "allowedTools": ["Read(**)", "Edit(**)", "Bash(git:*)"], "mcpServers": ["linear", "github"]
            },
            {
                "id": "api", "name": "api", "linearWorkspaceId": org, "codegenRepoId": 8,
                "routingLabels": ["backend"]
            }
        ],
        "codegen": {
            "enabled": true, "orgId": codegen.org_id(), "apiToken": codegen.token(),
            "baseUrl": codegen.url(),
            "maxCostPerTask": opts.max_cost_per_task, "maxCostPerDay": opts.max_cost_per_day,
            "maxConcurrentRuns": opts.max_concurrent_runs,
            "defaultModel": "claude-3-5-sonnet",
            "modelByTaskType": {"debugger": "claude-3-5-sonnet", "builder": "claude-3-5-sonnet"},
            "pricing": {"claude-3-5-sonnet": {"inputPerMTok": 3.0, "outputPerMTok": 15.0}, "perRun": 0.05},
            "pollIntervalSecs": 1
        },
        "linear": {
            "apiUrl": linear.url(),
            "uploadsUrl": linear.base_url(),
            "webhookSecret": linear.webhook_secret(),
            "agentUserId": linear.agent_user_id(),
            "workspaces": [{
                "organizationId": org, "token": linear.api_key(),
                "webhookSecret": linear.webhook_secret(), "agentUserId": linear.agent_user_id()
            }]
        },
        "server": {"listen": listen.to_string()},
        "store": {"url": store_url}
    });
    if opts.linear_auth == LinearAuth::OAuth {
        // Nothing about the workspace is configured: the install teaches
        // the worker its token, workspace id and agent user.
        config["linear"] = json!({
            "apiUrl": linear.url(),
            "uploadsUrl": linear.base_url(),
            "webhookSecret": linear.webhook_secret(),
            "oauth": {
                "clientId": linear.oauth_client_id(),
                "clientSecret": linear.oauth_client_secret(),
                "redirectUrl": format!("http://{listen}/oauth/callback"),
                "endpointBase": linear.base_url(),
            }
        });
        for repo in config["repositories"].as_array_mut().into_iter().flatten() {
            repo.as_object_mut().map(|r| r.remove("linearWorkspaceId"));
        }
    }
    if let Some(patch) = &opts.config_patch {
        merge(&mut config, patch);
    }
    config
}

/// Deep-merges `patch` into `base` (objects merge, everything else replaces).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}
