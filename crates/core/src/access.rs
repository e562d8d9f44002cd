//! Who may start or prompt the agent: the access policy's decision, from
//! what Linear says about a person. Pure; the worker looks the person up.

use crate::config::{AccessRule, Config};

/// What the decision needs to know about a person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub email: Option<String>,
    /// A workspace guest (Linear's `User.guest`).
    pub guest: bool,
    /// The account is active (a deactivated one is never admitted).
    pub active: bool,
    /// Keys of the teams the person is a member of.
    pub team_keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessDecision {
    /// With the rule that allowed it, for the audit log.
    Allowed(String),
    /// With the reason, for the audit log and the refusal.
    Refused(String),
}

impl AccessDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, AccessDecision::Allowed(_))
    }

    pub fn reason(&self) -> &str {
        match self {
            AccessDecision::Allowed(r) | AccessDecision::Refused(r) => r,
        }
    }
}

/// Decides for `person` in workspace `organization_id`, for a task routed
/// to `repository_id` (`None` before routing: the top-level rule).
pub fn decide(
    config: &Config,
    person: &Person,
    organization_id: &str,
    repository_id: Option<&str>,
) -> AccessDecision {
    let rule: &AccessRule = config.policy.rule_for(repository_id);
    if !person.active {
        return AccessDecision::Refused("the Linear account is deactivated".into());
    }
    if person.guest && !rule.guests {
        return AccessDecision::Refused("workspace guests may not use the agent".into());
    }
    let Some(allow) = &rule.allow else {
        return default_rule(config, person, organization_id);
    };
    let email = person.email.as_deref().map(str::to_ascii_lowercase);
    if allow
        .users
        .iter()
        .any(|u| u == &person.id || email.as_deref().is_some_and(|e| u.eq_ignore_ascii_case(e)))
    {
        return AccessDecision::Allowed("listed in the policy's users".into());
    }
    if let Some(domain) = email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d)
        && allow.email_domains.iter().any(|d| d == domain)
    {
        return AccessDecision::Allowed(format!("email domain {domain} is allowed"));
    }
    if let Some(team) = person
        .team_keys
        .iter()
        .find(|k| allow.teams.iter().any(|t| t.eq_ignore_ascii_case(k)))
    {
        return AccessDecision::Allowed(format!("member of team {team}"));
    }
    AccessDecision::Refused("not among the people the access policy allows".into())
}

/// The default: a member of a team that a repository of the workspace
/// routes. A repository routed without team keys serves every team, so then
/// membership of any team suffices.
fn default_rule(config: &Config, person: &Person, organization_id: &str) -> AccessDecision {
    let repos: Vec<_> = config
        .repositories
        .iter()
        .filter(|r| r.serves_workspace(organization_id))
        .collect();
    if repos.iter().any(|r| r.team_keys.is_empty()) {
        return if person.team_keys.is_empty() {
            AccessDecision::Refused("not a member of any team".into())
        } else {
            AccessDecision::Allowed("a team member (a repository serves every team)".into())
        };
    }
    match person.team_keys.iter().find(|k| {
        repos
            .iter()
            .any(|r| r.team_keys.iter().any(|t| t.eq_ignore_ascii_case(k)))
    }) {
        Some(team) => {
            AccessDecision::Allowed(format!("member of team {team}, which a repository serves"))
        }
        None => AccessDecision::Refused(
            "not a member of a team that any configured repository serves".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::collections::BTreeMap;

    fn config(policy: &str) -> Config {
        let text = format!(
            r#"{{
              "codegen": {{"orgId": 1, "apiToken": "t"}},
              "linear": {{"webhookSecret": "s"}},
              "repositories": [
                {{"id": "web", "name": "web", "linearWorkspaceId": "org", "linearToken": "k", "teamKeys": ["WEB"]}},
                {{"id": "api", "name": "api", "linearWorkspaceId": "org", "linearToken": "k", "teamKeys": ["API"]}}
              ]
              {policy}
            }}"#
        );
        parse(&text, &BTreeMap::new())
            .expect("config parses")
            .config
    }

    fn person(email: &str, guest: bool, teams: &[&str]) -> Person {
        Person {
            id: format!("id-{email}"),
            email: Some(email.into()),
            guest,
            active: true,
            team_keys: teams.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn default_allows_members_of_routed_teams_only() {
        let c = config("");
        assert!(decide(&c, &person("a@x.dev", false, &["WEB"]), "org", None).is_allowed());
        assert!(decide(&c, &person("a@x.dev", false, &["api"]), "org", None).is_allowed());
        let outsider = decide(&c, &person("b@x.dev", false, &["OPS"]), "org", None);
        assert!(!outsider.is_allowed(), "{outsider:?}");
        let guest = decide(&c, &person("g@x.dev", true, &["WEB"]), "org", None);
        assert_eq!(
            guest,
            AccessDecision::Refused("workspace guests may not use the agent".into())
        );
    }

    #[test]
    fn lists_match_ids_emails_domains_and_teams() {
        let c = config(
            r#", "policy": {"allow": {"users": ["Dana@Acme.dev", "u-7"], "emailDomains": ["@corp.io"], "teams": ["ops"]}}"#,
        );
        assert!(decide(&c, &person("dana@acme.dev", false, &[]), "org", None).is_allowed());
        let by_id = Person {
            id: "u-7".into(),
            active: true,
            ..Person::default()
        };
        let gone = Person {
            active: false,
            ..by_id.clone()
        };
        assert!(!decide(&c, &gone, "org", None).is_allowed());
        assert!(decide(&c, &by_id, "org", None).is_allowed());
        assert!(decide(&c, &person("x@corp.io", false, &[]), "org", None).is_allowed());
        assert!(!decide(&c, &person("x@sub.corp.io", false, &[]), "org", None).is_allowed());
        assert!(decide(&c, &person("x@else.dev", false, &["OPS"]), "org", None).is_allowed());
        // A listed team member of a routed team is no longer enough: the
        // list replaces the default.
        assert!(!decide(&c, &person("x@else.dev", false, &["WEB"]), "org", None).is_allowed());
    }

    #[test]
    fn a_repository_rule_replaces_the_top_level_one() {
        let c = config(
            r#", "policy": {"allow": {"teams": ["WEB"]},
                  "repositories": {"api": {"allow": {"users": ["lead@x.dev"]}, "guests": true}}}"#,
        );
        let web_member = person("a@x.dev", false, &["WEB"]);
        assert!(decide(&c, &web_member, "org", Some("web")).is_allowed());
        assert!(!decide(&c, &web_member, "org", Some("api")).is_allowed());
        let lead_guest = person("lead@x.dev", true, &[]);
        assert!(decide(&c, &lead_guest, "org", Some("api")).is_allowed());
        assert!(!decide(&c, &lead_guest, "org", Some("web")).is_allowed());
    }

    #[test]
    fn a_catch_all_repository_admits_any_team_member() {
        let text = r#"{
          "codegen": {"orgId": 1, "apiToken": "t"},
          "linear": {"webhookSecret": "s"},
          "repositories": [{"id": "mono", "name": "mono", "linearWorkspaceId": "org", "linearToken": "k"}]
        }"#;
        let c = parse(text, &BTreeMap::new()).unwrap().config;
        assert!(decide(&c, &person("a@x.dev", false, &["ANY"]), "org", None).is_allowed());
        assert!(!decide(&c, &person("a@x.dev", false, &[]), "org", None).is_allowed());
    }
}
