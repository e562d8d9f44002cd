//! Both simulators, started from a stack's options, with the team the
//! configuration routes (`ENG`).

use crate::{StackOptions, config_for};
use anyhow::Context as _;
use cyrus_sandbox::codegen::CodegenSim;
use cyrus_sandbox::linear::{LinearSim, NewIssue, NewLabel, NewTeam};
use serde_json::Value;
use std::net::SocketAddr;

/// The Codegen and Linear simulators a worker (in-process or a real
/// `cyrus start`) is pointed at.
pub struct Simulators {
    pub codegen: CodegenSim,
    pub linear: LinearSim,
    /// The `ENG` team every generated configuration routes to `web`.
    pub team_id: String,
}

impl Simulators {
    /// Starts both simulators with `opts`' options, applies its faults and
    /// creates the `ENG` team. Webhooks go nowhere until
    /// [`Simulators::send_webhooks_to`].
    pub async fn start(opts: &StackOptions) -> anyhow::Result<Simulators> {
        let codegen = CodegenSim::start(opts.codegen.clone())
            .await
            .context("starting the Codegen simulator")?;
        codegen
            .control()
            .set_faults(opts.codegen_faults.clone())
            .context("the stack's Codegen faults are invalid")?;
        let linear = LinearSim::start(opts.linear.clone())
            .await
            .context("starting the Linear simulator")?;
        for fault in &opts.linear_faults {
            linear.control().inject_fault(fault.clone());
        }
        let team = linear
            .control()
            .create_team(NewTeam {
                key: "ENG".into(),
                name: "Engineering".into(),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("creating the ENG team in the Linear simulator: {e:?}"))?;
        Ok(Simulators {
            codegen,
            linear,
            team_id: team.id,
        })
    }

    /// The worker configuration for these simulators (see [`config_for`]).
    pub fn config(&self, store_url: &str, listen: SocketAddr, opts: &StackOptions) -> Value {
        config_for(&self.codegen, &self.linear, store_url, listen, opts)
    }

    /// Points Linear's webhooks at `addr` (a worker, or a balancer in front
    /// of several).
    pub fn send_webhooks_to(&self, addr: SocketAddr) {
        send_webhooks_to(&self.linear, addr);
    }

    /// Creates an issue in the team and delegates it to the agent; returns
    /// the issue id and the agent session id.
    pub fn delegate_issue(
        &self,
        title: &str,
        description: &str,
        labels: &[&str],
    ) -> anyhow::Result<(String, String)> {
        delegate_issue(&self.linear, &self.team_id, title, description, labels)
    }

    pub async fn shutdown(self) {
        self.codegen.shutdown().await;
        self.linear.shutdown().await;
    }
}

pub(crate) fn send_webhooks_to(linear: &LinearSim, addr: SocketAddr) {
    linear
        .control()
        .set_webhook_url(Some(format!("http://{addr}/webhooks/linear")));
}

pub(crate) fn delegate_issue(
    linear: &LinearSim,
    team_id: &str,
    title: &str,
    description: &str,
    labels: &[&str],
) -> anyhow::Result<(String, String)> {
    let control = linear.control();
    let mut label_ids = Vec::new();
    for name in labels {
        let label = control
            .create_label(NewLabel {
                name: name.to_string(),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("creating label {name}: {e:?}"))?;
        label_ids.push(label.id);
    }
    let issue = control
        .create_issue(NewIssue {
            team_id: Some(team_id.to_string()),
            title: title.to_string(),
            description: Some(description.to_string()),
            label_ids,
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("creating issue: {e:?}"))?;
    let session = control
        .delegate(&issue.id, None)
        .map_err(|e| anyhow::anyhow!("delegating: {e:?}"))?;
    Ok((issue.id, session))
}
