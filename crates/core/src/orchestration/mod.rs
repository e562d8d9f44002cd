//! Orchestration's scheduling rules: an epic's sub-issues as a dependency
//! graph, which of them may start now, and what a failure holds back.
//!
//! Pure: the worker reads the sub-issues and their `blocks` relations from
//! Linear, keeps each child's [`ChildStatus`] in the parent task's stored
//! data, and asks these functions what to do next. A child starts only when
//! every sibling blocking it has settled in a way that lets work go on
//! (`ChildStatus::unblocks`) and no blocker outside the set is open; at most
//! the parallel cap are in flight; a failed or stopped child holds its
//! dependents until a person decides ([`Decision`]).

pub mod plan;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where one sub-issue of an orchestration is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildStatus {
    /// Not started: waits for its blockers or for a free place.
    Waiting,
    /// Handed to the agent (delegated, or an adopted task let go); its own
    /// task runs through the normal lifecycle.
    Started,
    /// Its task completed.
    Succeeded,
    /// Its task failed; its dependents wait for a decision.
    Failed,
    /// Its task was stopped; its dependents wait for a decision.
    Stopped,
    /// Completed in Linear before the orchestration reached it.
    AlreadyDone,
    /// Canceled in Linear before the orchestration reached it.
    Canceled,
    /// A person chose to skip it after it failed; its dependents go on.
    Skipped,
    /// The orchestration was stopped before it started.
    NotStarted,
}

impl ChildStatus {
    /// Its dependents may start (as Linear treats a closed blocker).
    pub fn unblocks(self) -> bool {
        matches!(
            self,
            ChildStatus::Succeeded
                | ChildStatus::AlreadyDone
                | ChildStatus::Canceled
                | ChildStatus::Skipped
        )
    }

    /// It holds one of the parallel places.
    pub fn in_flight(self) -> bool {
        self == ChildStatus::Started
    }

    /// It ended badly and a person must say what happens next.
    pub fn needs_decision(self) -> bool {
        matches!(self, ChildStatus::Failed | ChildStatus::Stopped)
    }

    /// Nothing more will happen to it in this orchestration.
    pub fn is_settled(self) -> bool {
        self.unblocks() || self == ChildStatus::NotStarted
    }

    /// Linear's agent-plan status for it.
    pub fn plan_status(self) -> PlanStatus {
        match self {
            ChildStatus::Waiting => PlanStatus::Pending,
            ChildStatus::Started => PlanStatus::InProgress,
            ChildStatus::Succeeded | ChildStatus::AlreadyDone => PlanStatus::Completed,
            ChildStatus::Failed
            | ChildStatus::Stopped
            | ChildStatus::Canceled
            | ChildStatus::Skipped
            | ChildStatus::NotStarted => PlanStatus::Canceled,
        }
    }

    /// How the summary names the outcome.
    pub fn describe(self) -> &'static str {
        match self {
            ChildStatus::Waiting => "not started",
            ChildStatus::Started => "in progress",
            ChildStatus::Succeeded => "completed",
            ChildStatus::Failed => "failed",
            ChildStatus::Stopped => "stopped",
            ChildStatus::AlreadyDone => "already done",
            ChildStatus::Canceled => "canceled in Linear",
            ChildStatus::Skipped => "skipped",
            ChildStatus::NotStarted => "not started (orchestration stopped)",
        }
    }
}

/// The four statuses of a step in Linear's agent plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlanStatus {
    Pending,
    InProgress,
    Completed,
    Canceled,
}

impl PlanStatus {
    /// The wire name (`AgentSessionUpdateInput.plan[].status`).
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Pending => "pending",
            PlanStatus::InProgress => "inProgress",
            PlanStatus::Completed => "completed",
            PlanStatus::Canceled => "canceled",
        }
    }
}

/// One sub-issue: what Linear says about it, and its status here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Child {
    /// Linear's issue id.
    pub id: String,
    /// `ENG-12`.
    pub identifier: String,
    pub title: String,
    /// Linear priority: 1 urgent … 4 low, 0 none (ordered last).
    pub priority: u8,
    /// Linear's sort order (lower first) among equal priorities.
    pub sort_order: f64,
    /// Ids of sibling sub-issues that block this one.
    pub blocked_by: Vec<String>,
    /// Identifiers of open issues outside the set that block this one.
    pub external_blockers: Vec<String>,
    pub status: ChildStatus,
}

impl Child {
    fn rank(&self) -> u8 {
        if self.priority == 0 { 5 } else { self.priority }
    }
}

/// A cycle among the sub-issues' `blocks` relations: the identifiers in
/// order, the first repeated at the end (`ENG-2 → ENG-3 → ENG-2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" → "))
    }
}

/// The first cycle found among `children`'s sibling blockers, if any.
/// Blockers naming no child are ignored (they are not part of the graph).
pub fn find_cycle(children: &[Child]) -> Option<Cycle> {
    let index: BTreeMap<&str, usize> = children
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    // 0 unvisited, 1 on the current path, 2 done.
    let mut mark = vec![0u8; children.len()];
    let mut path: Vec<usize> = Vec::new();
    fn visit(
        at: usize,
        children: &[Child],
        index: &BTreeMap<&str, usize>,
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[at] = 1;
        path.push(at);
        for blocker in &children[at].blocked_by {
            let Some(&next) = index.get(blocker.as_str()) else {
                continue;
            };
            match mark[next] {
                1 => {
                    let from = path.iter().position(|&p| p == next).expect("on the path");
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, children, index, mark, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        mark[at] = 2;
        None
    }
    for start in 0..children.len() {
        if mark[start] == 0
            && let Some(mut cycle) = visit(start, children, &index, &mut mark, &mut path)
        {
            // The walk follows "is blocked by"; people read "blocks", so the
            // cycle is named in the direction work would flow.
            cycle.reverse();
            return Some(Cycle(
                cycle
                    .into_iter()
                    .map(|i| children[i].identifier.clone())
                    .collect(),
            ));
        }
    }
    None
}

fn status_of<'a>(children: &'a [Child]) -> impl Fn(&str) -> Option<ChildStatus> + 'a {
    move |id| children.iter().find(|c| c.id == id).map(|c| c.status)
}

/// Whether every blocker of `child` lets it start.
pub fn blockers_cleared(children: &[Child], child: &Child) -> bool {
    let status = status_of(children);
    child.external_blockers.is_empty()
        && child
            .blocked_by
            .iter()
            .all(|b| status(b).is_none_or(ChildStatus::unblocks))
}

/// The children to start now, in order: waiting, every blocker cleared,
/// ordered by priority then sort order then their place in the list, and
/// no more than `max_parallel` in flight with those already started.
pub fn ready(children: &[Child], max_parallel: usize) -> Vec<usize> {
    let in_flight = children.iter().filter(|c| c.status.in_flight()).count();
    let room = max_parallel.saturating_sub(in_flight);
    let mut candidates: Vec<usize> = (0..children.len())
        .filter(|&i| {
            children[i].status == ChildStatus::Waiting && blockers_cleared(children, &children[i])
        })
        .collect();
    candidates.sort_by(|&a, &b| {
        let (x, y) = (&children[a], &children[b]);
        x.rank()
            .cmp(&y.rank())
            .then(x.sort_order.total_cmp(&y.sort_order))
            .then(a.cmp(&b))
    });
    candidates.truncate(room);
    candidates
}

/// How many more children may start without the orchestration's spend
/// passing `limit`: what settled children spent plus a hold of
/// `hold_per_child` (the per-task cap) for each running one and each new one.
pub fn affordable(
    settled_spend: crate::MicroDollars,
    in_flight: usize,
    hold_per_child: crate::MicroDollars,
    limit: crate::MicroDollars,
) -> usize {
    let hold = hold_per_child.0.max(1);
    let committed = settled_spend.0 + hold.saturating_mul(in_flight as i64);
    let left = limit.0 - committed;
    if left < hold {
        0
    } else {
        (left / hold) as usize
    }
}

/// The first child (in list order) that failed or was stopped: the one the
/// parent asks about.
pub fn awaiting_decision(children: &[Child]) -> Option<usize> {
    children.iter().position(|c| c.status.needs_decision())
}

/// Every child settled: the orchestration is over.
pub fn finished(children: &[Child]) -> bool {
    children.iter().all(|c| c.status.is_settled())
}

/// The orchestration is over: every child settled, or — once a person
/// stopped it — nothing is in flight any more.
pub fn over(children: &[Child], stopped: bool) -> bool {
    if stopped {
        children.iter().all(|c| !c.status.in_flight())
    } else {
        finished(children)
    }
}

/// Waiting children held back, directly or through other children, by one
/// that failed, was stopped or will not start.
pub fn held_back(children: &[Child]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = children
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut held = vec![false; children.len()];
    // A fixed point over the (acyclic) graph: at most `len` rounds.
    for _ in 0..children.len() {
        let mut changed = false;
        for (i, c) in children.iter().enumerate() {
            if held[i] || c.status != ChildStatus::Waiting {
                continue;
            }
            let blocked = c
                .blocked_by
                .iter()
                .filter_map(|b| index.get(b.as_str()))
                .any(|&b| {
                    held[b]
                        || children[b].status.needs_decision()
                        || children[b].status == ChildStatus::NotStarted
                });
            if blocked {
                held[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    (0..children.len()).filter(|&i| held[i]).collect()
}

/// What a person answers to a failed child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Run the child again.
    Retry,
    /// Leave it; its dependents start.
    Skip,
    /// Start nothing more; stop what runs.
    Stop,
}

impl Decision {
    /// The `select` options offered, in order; [`parse_decision`] reads
    /// each of them back.
    pub fn options(identifier: &str) -> Vec<String> {
        vec![
            format!("Retry {identifier}"),
            format!("Skip {identifier}"),
            "Stop the orchestration".to_string(),
        ]
    }
}

/// A reply read as a decision: one of the options, or a message starting
/// with `retry` / `skip` / `stop` (any case, leading punctuation ignored).
/// Anything else is not a decision.
pub fn parse_decision(reply: &str) -> Option<Decision> {
    let word = reply
        .trim()
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .split(|c: char| !c.is_alphanumeric())
        .next()?
        .to_ascii_lowercase();
    match word.as_str() {
        "retry" | "rerun" | "again" => Some(Decision::Retry),
        "skip" => Some(Decision::Skip),
        "stop" | "cancel" | "abort" => Some(Decision::Stop),
        _ => None,
    }
}

/// A reply to "the orchestration's spend reached its limit": `Some(true)`
/// continues (one more limit's worth), `Some(false)` stops, `None` is not
/// an answer.
pub fn parse_continue(reply: &str) -> Option<bool> {
    if parse_decision(reply) == Some(Decision::Stop) {
        return Some(false);
    }
    let word = reply
        .trim()
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .split(|c: char| !c.is_alphanumeric())
        .next()?
        .to_ascii_lowercase();
    matches!(
        word.as_str(),
        "continue" | "yes" | "ok" | "okay" | "go" | "proceed"
    )
    .then_some(true)
}

/// Applies `decision` to the child at `at` (which must need a decision):
/// retry makes it wait again (it starts when a place is free), skip lets
/// its dependents go on, stop ends the orchestration: nothing waiting will
/// start. Returns the children still in flight after a stop, which the
/// caller stops.
pub fn decide(children: &mut [Child], at: usize, decision: Decision) -> Vec<usize> {
    match decision {
        Decision::Retry => {
            children[at].status = ChildStatus::Waiting;
            Vec::new()
        }
        Decision::Skip => {
            children[at].status = ChildStatus::Skipped;
            Vec::new()
        }
        Decision::Stop => stop_all(children),
    }
}

/// Ends the orchestration: every child not yet started will not be,
/// failed or stopped ones count as not started; returns those in flight.
pub fn stop_all(children: &mut [Child]) -> Vec<usize> {
    let mut running = Vec::new();
    for (i, c) in children.iter_mut().enumerate() {
        match c.status {
            ChildStatus::Waiting | ChildStatus::Failed | ChildStatus::Stopped => {
                c.status = ChildStatus::NotStarted
            }
            ChildStatus::Started => running.push(i),
            _ => {}
        }
    }
    running
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn child(id: &str, priority: u8, blocked_by: &[&str]) -> Child {
        Child {
            id: id.into(),
            identifier: format!("ENG-{id}"),
            title: format!("child {id}"),
            priority,
            sort_order: 0.0,
            blocked_by: blocked_by.iter().map(|s| s.to_string()).collect(),
            external_blockers: vec![],
            status: ChildStatus::Waiting,
        }
    }

    #[test]
    fn independent_children_start_together_and_dependents_after() {
        let mut c = vec![
            child("a", 0, &[]),
            child("b", 0, &["a"]),
            child("c", 0, &[]),
        ];
        assert_eq!(ready(&c, 3), vec![0, 2]);
        c[0].status = ChildStatus::Started;
        c[2].status = ChildStatus::Started;
        assert!(ready(&c, 3).is_empty());
        c[0].status = ChildStatus::Succeeded;
        assert_eq!(ready(&c, 3), vec![1]);
        c[1].status = ChildStatus::Succeeded;
        c[2].status = ChildStatus::Succeeded;
        assert!(finished(&c));
    }

    #[test]
    fn ready_orders_by_priority_then_sort_order_and_respects_the_cap() {
        let mut c = vec![
            child("none", 0, &[]),
            child("low", 4, &[]),
            child("urgent", 1, &[]),
            child("high2", 2, &[]),
            child("high1", 2, &[]),
        ];
        c[3].sort_order = 2.0;
        c[4].sort_order = 1.0;
        assert_eq!(ready(&c, 10), vec![2, 4, 3, 1, 0]);
        assert_eq!(ready(&c, 2), vec![2, 4]);
        c[2].status = ChildStatus::Started;
        assert_eq!(ready(&c, 2), vec![4]);
    }

    #[test]
    fn external_blockers_hold_a_child() {
        let mut c = vec![child("a", 0, &[])];
        c[0].external_blockers = vec!["OPS-1".into()];
        assert!(ready(&c, 3).is_empty());
    }

    #[test]
    fn a_cycle_is_named() {
        let c = vec![
            child("a", 0, &[]),
            child("b", 0, &["a", "c"]),
            child("c", 0, &["b"]),
        ];
        let cycle = find_cycle(&c).expect("a cycle");
        assert_eq!(cycle.to_string(), "ENG-b → ENG-c → ENG-b");
        assert_eq!(find_cycle(&c[..1]), None);
        let self_loop = vec![child("s", 0, &["s"])];
        assert_eq!(find_cycle(&self_loop).unwrap().0, vec!["ENG-s", "ENG-s"]);
    }

    #[test]
    fn a_failure_holds_its_dependents_until_decided() {
        let mut c = vec![
            child("a", 0, &[]),
            child("b", 0, &["a"]),
            child("d", 0, &["b"]),
        ];
        c[0].status = ChildStatus::Failed;
        assert!(ready(&c, 3).is_empty());
        assert_eq!(held_back(&c), vec![1, 2]);
        assert_eq!(awaiting_decision(&c), Some(0));
        assert!(!finished(&c));
        let mut skip = c.clone();
        decide(&mut skip, 0, Decision::Skip);
        assert_eq!(ready(&skip, 3), vec![1]);
        let mut retry = c.clone();
        decide(&mut retry, 0, Decision::Retry);
        assert_eq!(ready(&retry, 3), vec![0]);
        let mut stop = c.clone();
        assert!(decide(&mut stop, 0, Decision::Stop).is_empty());
        assert!(finished(&stop));
        let mut running = c.clone();
        running[0].status = ChildStatus::Succeeded;
        running[1].status = ChildStatus::Started;
        assert_eq!(stop_all(&mut running), vec![1]);
        assert!(!over(&running, true), "a child still runs");
        running[1].status = ChildStatus::Stopped;
        assert!(over(&running, true));
        assert!(!over(&running, false));
    }

    #[test]
    fn spend_and_holds_limit_what_starts() {
        use crate::MicroDollars as M;
        let hold = M(2_000_000);
        assert_eq!(affordable(M(0), 0, hold, M(10_000_000)), 5);
        assert_eq!(affordable(M(0), 3, hold, M(10_000_000)), 2);
        assert_eq!(affordable(M(3_000_000), 2, hold, M(10_000_000)), 1);
        assert_eq!(affordable(M(9_000_000), 0, hold, M(10_000_000)), 0);
        assert_eq!(affordable(M(12_000_000), 0, hold, M(10_000_000)), 0);
    }

    #[test]
    fn replies_read_as_decisions() {
        for (text, d) in [
            ("Retry ENG-2", Some(Decision::Retry)),
            ("  skip it please", Some(Decision::Skip)),
            ("Stop the orchestration", Some(Decision::Stop)),
            ("STOP", Some(Decision::Stop)),
            ("> retry", Some(Decision::Retry)),
            ("why did it fail?", None),
            ("", None),
        ] {
            assert_eq!(parse_decision(text), d, "{text:?}");
        }
        for (o, d) in
            Decision::options("ENG-2")
                .iter()
                .zip([Decision::Retry, Decision::Skip, Decision::Stop])
        {
            assert_eq!(parse_decision(o), Some(d));
        }
    }

    /// A random acyclic graph: child `i` may be blocked only by earlier ones.
    fn dag() -> impl Strategy<Value = Vec<Child>> {
        (1usize..9).prop_flat_map(|n| {
            let edges = proptest::collection::vec(proptest::collection::vec(any::<bool>(), n), n);
            let prios = proptest::collection::vec(0u8..5, n);
            (edges, prios).prop_map(move |(edges, prios)| {
                (0..n)
                    .map(|i| {
                        let blockers: Vec<String> = (0..i)
                            .filter(|&j| edges[i][j])
                            .map(|j| j.to_string())
                            .collect();
                        let refs: Vec<&str> = blockers.iter().map(String::as_str).collect();
                        child(&i.to_string(), prios[i], &refs)
                    })
                    .collect()
            })
        })
    }

    proptest! {
        /// Driving an orchestration with random outcomes and decisions: no
        /// child starts before its blockers cleared, the cap is never
        /// exceeded, and every child settles.
        #[test]
        fn scheduling_keeps_its_promises(
            mut children in dag(),
            cap in 1usize..4,
            outcomes in proptest::collection::vec(0u8..10, 64),
        ) {
            prop_assert!(find_cycle(&children).is_none());
            let mut roll = outcomes.into_iter().cycle();
            let mut retries = vec![0u8; children.len()];
            for _round in 0..200 {
                if finished(&children) {
                    break;
                }
                if let Some(at) = awaiting_decision(&children) {
                    let pick = roll.next().unwrap();
                    let decision = if retries[at] < 2 && pick < 4 {
                        Decision::Retry
                    } else if pick < 9 {
                        Decision::Skip
                    } else {
                        Decision::Stop
                    };
                    if decision == Decision::Retry {
                        retries[at] += 1;
                    }
                    let running = decide(&mut children, at, decision);
                    for i in running {
                        children[i].status = ChildStatus::Stopped;
                        // Stopped by the orchestration: settled as not started.
                        children[i].status = ChildStatus::NotStarted;
                    }
                    continue;
                }
                for i in ready(&children, cap) {
                    prop_assert!(blockers_cleared(&children, &children[i]));
                    children[i].status = ChildStatus::Started;
                }
                let in_flight = children.iter().filter(|c| c.status.in_flight()).count();
                prop_assert!(in_flight <= cap, "{in_flight} in flight with cap {cap}");
                // One in-flight child ends.
                if let Some(i) = children.iter().position(|c| c.status.in_flight()) {
                    children[i].status = match roll.next().unwrap() {
                        0 => ChildStatus::Failed,
                        1 => ChildStatus::Stopped,
                        _ => ChildStatus::Succeeded,
                    };
                }
            }
            prop_assert!(finished(&children), "not settled: {children:?}");
            for c in &children {
                if c.status == ChildStatus::Succeeded {
                    for b in &c.blocked_by {
                        let s = children.iter().find(|x| &x.id == b).unwrap().status;
                        prop_assert!(s.unblocks(), "{} succeeded though blocker {b} is {s:?}", c.id);
                    }
                }
            }
        }

        /// Adding an edge that closes a loop is always found, and the named
        /// cycle follows real edges.
        #[test]
        fn cycles_are_found_and_follow_edges(mut children in dag(), pick in any::<proptest::sample::Index>()) {
            let n = children.len();
            let last = n - 1;
            let first = pick.index(n);
            // `first` blocked by `last` closes a loop whenever `last` depends on `first`
            // (or they are the same child).
            children[first].blocked_by.push(last.to_string());
            match find_cycle(&children) {
                Some(Cycle(names)) => {
                    prop_assert!(names.len() >= 2);
                    prop_assert_eq!(names.first(), names.last());
                    for pair in names.windows(2) {
                        let (a, b) = (&pair[0], &pair[1]);
                        let blocked = children.iter().find(|c| &c.identifier == b).unwrap();
                        let blocker = children.iter().find(|c| &c.identifier == a).unwrap();
                        prop_assert!(blocked.blocked_by.contains(&blocker.id), "{a} does not block {b}");
                    }
                }
                None => {
                    // No loop: `last` does not (transitively) wait for `first`.
                    prop_assert!(first != last);
                    let mut seen = vec![false; n];
                    let mut stack = vec![last];
                    while let Some(i) = stack.pop() {
                        prop_assert!(i != first, "missed the loop through {first} and {last}");
                        for b in &children[i].blocked_by {
                            let j: usize = b.parse().unwrap();
                            if !seen[j] {
                                seen[j] = true;
                                stack.push(j);
                            }
                        }
                    }
                }
            }
        }
    }
}
