//! The dashboard's HTML (maud). The page is a shell around the *live* part,
//! which `/dashboard/live` also serves alone for the auto-refresh.

use super::chart::spend_chart;
use super::snapshot::{Bucket, Snapshot, TaskRow};
use cyrus_core::MicroDollars;
use maud::{DOCTYPE, Markup, PreEscaped, html};

pub(super) const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("refresh.js");

/// The whole page.
pub fn page(s: &Snapshot) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Cyrus" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Cyrus" }
                    span class="muted" { "Linear → Codegen edge worker · all costs are estimates" }
                    span id="stale" class="muted" hidden { }
                    a href="/audit" { "audit log" }
                    " · "
                    a href="/experiments" { "experiments" }
                }
                div id="live" { (live(s)) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// The part that refreshes.
pub fn live(s: &Snapshot) -> Markup {
    html! {
        @if !s.errors.is_empty() {
            p class="errors" {
                "Some sections could not be read: "
                @for (i, e) in s.errors.iter().enumerate() {
                    @if i > 0 { "; " }
                    (e)
                }
            }
        }
        main {
            section class="wide" id="alerts" {
                h2 { "Alerts (" (s.alerts.len()) ")" }
                @if s.alerts.is_empty() {
                    p class="muted" { "No active alerts." }
                } @else {
                    ul class="alerts" {
                        @for a in &s.alerts {
                            li { strong { (a.key) } " — " (a.message) " " span class="muted" { "since " (when(a.raised_at_ms)) } }
                        }
                    }
                }
            }
            @if !s.workspaces.is_empty() {
                section class="wide" id="workspaces" {
                    h2 { "Linear workspaces (" (s.workspaces.len()) ")" }
                    ul class="alerts" {
                        @for w in &s.workspaces {
                            li {
                                strong { (w.workspace) } " (" (w.url_key) "), agent " (w.agent) " — "
                                @if w.status == "active" {
                                    span { "active" }
                                } @else {
                                    strong class="state state-failed" { (w.status) }
                                    " — run " code { "cyrus linear connect" }
                                    @if let Some(reason) = &w.status_reason { " (" (reason) ")" }
                                }
                                @if let Some(c) = &w.last_permission_change {
                                    " " span class="muted" {
                                        "team access changed " (when(c.changed_at_ms))
                                        @if !c.added_team_ids.is_empty() { ", added " (c.added_team_ids.join(", ")) }
                                        @if !c.removed_team_ids.is_empty() { ", removed " (c.removed_team_ids.join(", ")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section class="wide" id="queue" {
                h2 { "Queue" }
                ul class="chips" {
                    @for q in &s.queue {
                        li class=(if q.count == 0 { "zero" } else { "" }) {
                            span class=(format!("state state-{}", q.state)) { (q.state) } ": " (q.count)
                        }
                    }
                }
            }
            section class="wide" id="active" {
                h2 { "Active runs (" (s.active.len()) ")" }
                @if s.active.is_empty() {
                    p class="muted" { "Nothing is running." }
                } @else {
                    (task_table(&s.active, false))
                }
            }
            section id="spend" {
                h2 { "Spend (estimate)" }
                p {
                    "Estimated spend today: " strong { (MicroDollars(s.spend.today_micro)) }
                    " of maxCostPerDay " (MicroDollars(s.spend.max_per_day_micro)) " (estimate)"
                }
                (spend_chart(&s.spend.days, MicroDollars(s.spend.max_per_day_micro)))
                p class="muted" { "Last " (s.spend.days.len()) " days, UTC; estimated from run logs and the pricing table." }
            }
            section id="breakdown" {
                h2 { "Breakdown, last 30 days (estimate)" }
                (buckets("Repository", &s.spend.by_repository))
                (buckets("Model", &s.spend.by_model))
            }
            section id="rate-limits" {
                h2 { "Rate-limit headroom" }
                div class="scroll" {
                    table {
                        thead { tr { th { "Upstream" } th { "Budget" } th class="num" { "Left" } th { "" } } }
                        tbody {
                            @for c in &s.rate_limits.codegen {
                                tr {
                                    td { "Codegen" }
                                    td { (c.class) " (" (c.max) " / " (c.window_secs) " s)" }
                                    td class="num" { (c.remaining) }
                                    td { meter min="0" max=(c.max) value=(c.remaining) {} }
                                }
                            }
                            @for l in &s.rate_limits.linear {
                                tr {
                                    td { "Linear" }
                                    td { (l.organization) }
                                    td class="num" {
                                        (format!("{:.0} %", l.headroom * 100.0))
                                        @if let (Some(r), Some(m)) = (l.requests_remaining, l.requests_limit) {
                                            " (" (r) "/" (m) ")"
                                        }
                                        @if let Some(until) = l.paused_until_ms { " paused until " (when(until)) }
                                    }
                                    td { meter min="0" max="1" low="0.1" optimum="1" value=(format!("{:.3}", l.headroom)) {} }
                                }
                            }
                        }
                    }
                }
            }
            section class="wide" id="history" {
                h2 { "Recent history" }
                @if s.history.is_empty() {
                    p class="muted" { "No finished tasks yet." }
                } @else {
                    (task_table(&s.history, true))
                }
            }
        }
        p class="muted" style="padding:0 1rem" { "Generated " (when(s.generated_at_ms)) }
    }
}

fn task_table(rows: &[TaskRow], finished: bool) -> Markup {
    html! {
        div class="scroll" {
            table {
                thead {
                    tr {
                        th { "Issue" } th { "Type" } th { "State" }
                        th class="num" { @if finished { "Took" } @else { "Age" } }
                        th { "Repository" } th { "Model" } th class="num" { "Est. cost" }
                        th { "Codegen" } th { "PRs" } th { "Detail" }
                    }
                }
                tbody {
                    @for r in rows {
                        tr data-task=(r.task_id) {
                            td {
                                @if let Some(url) = &r.issue_url {
                                    a href=(url) target="_blank" rel="noopener" { (r.issue_identifier) }
                                } @else {
                                    (r.issue_identifier)
                                }
                            }
                            td { (r.task_type.unwrap_or("—")) }
                            td { span class=(format!("state state-{}", r.state)) { (r.state) } }
                            td class="num" { (age(r.age_secs)) }
                            td { (r.repository.as_deref().unwrap_or("—")) }
                            td { (r.model.as_deref().unwrap_or("default")) }
                            td class="num" { (MicroDollars(r.estimated_cost_micro)) " est." }
                            td {
                                @if let Some(url) = &r.codegen_url {
                                    a href=(url) target="_blank" rel="noopener" { "run" }
                                } @else { "—" }
                            }
                            td {
                                @for (i, pr) in r.pr_urls.iter().enumerate() {
                                    @if i > 0 { " " }
                                    a href=(pr) target="_blank" rel="noopener" { "PR " (i + 1) }
                                }
                                @if r.pr_urls.is_empty() { "—" }
                            }
                            td class="wrap" {
                                (r.last_error.as_deref().or(r.detail.as_deref()).unwrap_or(""))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn buckets(label: &str, rows: &[Bucket]) -> Markup {
    html! {
        div class="scroll" {
            table {
                thead { tr { th { (label) } th class="num" { "Est. cost" } th class="num" { "Entries" } } }
                tbody {
                    @if rows.is_empty() {
                        tr { td class="muted" colspan="3" { "No spend recorded." } }
                    }
                    @for b in rows {
                        tr { td { (b.key) } td class="num" { (MicroDollars(b.micro)) " est." } td class="num" { (b.entries) } }
                    }
                }
            }
        }
    }
}

/// `42s`, `3m 05s`, `2h 10m`, `3d 4h`.
pub fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub(super) fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(-3), "0s");
        assert_eq!(age(42), "42s");
        assert_eq!(age(185), "3m 05s");
        assert_eq!(age(7_800), "2h 10m");
        assert_eq!(age(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
