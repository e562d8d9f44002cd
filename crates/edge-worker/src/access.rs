//! The access policy applied: who asked (from the webhook), what Linear says
//! about them (guest or member, which teams — read once and cached for a
//! few minutes), the decision (`cyrus_core::access`), and the words of a
//! refusal.

use crate::context::Ctx;
use cyrus_core::access::{AccessDecision, Person};
use cyrus_linear::{LinearClient, LinearError};
use std::time::{Duration, Instant};

/// How long a person's guest flag and teams are trusted without asking
/// Linear again: short enough that removing someone from a team takes
/// effect within minutes.
const PERSON_TTL: Duration = Duration::from_secs(5 * 60);

/// Who asked for the agent, as the webhook named them.
#[derive(Clone, Debug)]
pub(crate) struct Requester<'a> {
    pub id: &'a str,
    pub email: Option<&'a str>,
}

/// Decides whether `requester` may use the agent on a task of workspace
/// `organization_id` routed to `repository_id` (`None`: not routed yet).
pub(crate) async fn decide(
    ctx: &Ctx,
    linear: &LinearClient,
    organization_id: &str,
    requester: &Requester<'_>,
    repository_id: Option<&str>,
) -> Result<AccessDecision, LinearError> {
    let person = person(ctx, linear, organization_id, requester).await?;
    Ok(cyrus_core::access::decide(
        &ctx.config,
        &person,
        organization_id,
        repository_id,
    ))
}

async fn person(
    ctx: &Ctx,
    linear: &LinearClient,
    organization_id: &str,
    requester: &Requester<'_>,
) -> Result<Person, LinearError> {
    let key = (organization_id.to_string(), requester.id.to_string());
    if let Some((at, person)) = ctx.cache.people.lock().expect("people lock").get(&key)
        && at.elapsed() < PERSON_TTL
    {
        return Ok(person.clone());
    }
    let user = linear.user_access(requester.id).await?;
    let person = Person {
        id: user.id,
        email: user.email.or_else(|| requester.email.map(str::to_string)),
        // What Linear leaves out is read the safe way: a guest, inactive.
        guest: user.guest.unwrap_or(true),
        active: user.active.unwrap_or(false),
        team_keys: user.teams.nodes.into_iter().filter_map(|t| t.key).collect(),
    };
    ctx.cache
        .people
        .lock()
        .expect("people lock")
        .insert(key, (Instant::now(), person.clone()));
    Ok(person)
}

/// The one reply a refused person gets: what happened and who to ask.
pub(crate) fn refusal(ctx: &Ctx, reason: &str) -> String {
    let ask =
        ctx.config.policy.contact.clone().unwrap_or_else(|| {
            "a workspace admin (they can add you to Cyrus's access policy)".into()
        });
    format!(
        "Sorry — I can't take this on for you: this workspace's access policy doesn't include you ({reason}). Nothing was started and no budget was used. To get access, ask {ask}."
    )
}
