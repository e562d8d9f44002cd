//! `policy`: who may start or prompt the agent. The decision itself is
//! `crate::access`; this module reads and validates the section.

use super::diagnostics::Diagnostics;
use super::walk::{Obj, show};
use std::collections::BTreeMap;

/// The access policy. Without a `policy` section every rule is the default:
/// members (not guests) of a team some repository routes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyConfig {
    /// The rule for every repository without its own.
    pub rule: AccessRule,
    /// Per repository id, a rule that replaces `rule` for tasks routed there.
    pub repositories: BTreeMap<String, AccessRule>,
    /// Who to ask for access, quoted in the refusal ("Ask @dana in
    /// #eng-tools"); `None`: "a workspace admin".
    pub contact: Option<String>,
}

impl PolicyConfig {
    /// The rule for a task routed to `repository_id` (`None`: not routed yet).
    pub fn rule_for(&self, repository_id: Option<&str>) -> &AccessRule {
        repository_id
            .and_then(|id| self.repositories.get(id))
            .unwrap_or(&self.rule)
    }
}

/// One rule: who is allowed, and whether workspace guests may be.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRule {
    /// `None`: the default (a member of a team some repository routes).
    pub allow: Option<Allowed>,
    /// Workspace guests are refused unless this is true.
    pub guests: bool,
}

/// People allowed by a rule: anyone matching one of the lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Allowed {
    /// Linear user ids, or emails (compared without case).
    pub users: Vec<String>,
    /// `acme.dev` allows `dana@acme.dev` (not `dana@sub.acme.dev`).
    pub email_domains: Vec<String>,
    /// Team keys (`ENG`): members of these teams.
    pub teams: Vec<String>,
}

pub(super) fn read_policy(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<PolicyConfig> {
    let Some(mut o) = o else {
        return Some(PolicyConfig::default());
    };
    let rule = read_rule(&mut o, d);
    let contact = o.string("contact", d).filter(|c| !c.trim().is_empty());
    let mut repositories = BTreeMap::new();
    let mut ok = true;
    if let Some(section) = o.obj("repositories", d) {
        let base = section.path().to_owned();
        for (id, value) in section.into_rest() {
            let path = super::walk::join(&base, id);
            match Obj::new(path, value, d) {
                Some(mut r) => match read_rule(&mut r, d) {
                    Some(rule) => {
                        r.finish(d);
                        repositories.insert(id.clone(), rule);
                    }
                    None => ok = false,
                },
                None => ok = false,
            }
        }
    }
    o.finish(d);
    let rule = rule?;
    ok.then_some(PolicyConfig {
        rule,
        repositories,
        contact,
    })
}

/// `allow` and `guests` of a rule object (the caller finishes the object).
fn read_rule(o: &mut Obj<'_>, d: &mut Diagnostics) -> Option<AccessRule> {
    let guests = o.bool("guests", d).unwrap_or(false);
    let allow = match o.obj("allow", d) {
        None => None,
        Some(mut a) => {
            let users: Vec<String> = a
                .strings("users", d)
                .into_iter()
                .map(|u| u.trim().to_string())
                .collect();
            let email_domains: Vec<String> = a
                .strings("emailDomains", d)
                .into_iter()
                .map(|e| e.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect();
            let teams: Vec<String> = a
                .strings("teams", d)
                .into_iter()
                .map(|t| t.trim().to_ascii_uppercase())
                .collect();
            for (i, domain) in email_domains.iter().enumerate() {
                if domain.is_empty() || !domain.contains('.') || domain.contains('@') {
                    d.problem(
                        format!("{}.emailDomains[{i}]", a.path()),
                        format!(
                            "must be a domain such as \"acme.dev\" (got {})",
                            show(&serde_json::Value::String(domain.clone()))
                        ),
                    );
                }
            }
            let empty = users.is_empty() && email_domains.is_empty() && teams.is_empty();
            if empty {
                d.warning(
                    a.path(),
                    "allows nobody: list users, emailDomains or teams, or remove \"allow\" for the default (members of a team a repository routes)",
                );
            }
            a.finish(d);
            Some(Allowed {
                users,
                email_domains,
                teams,
            })
        }
    };
    Some(AccessRule { allow, guests })
}
