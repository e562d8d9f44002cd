//! The spend-per-day bar chart: inline SVG rendered on the server, so it
//! works offline, without JavaScript, and scales with the page (`viewBox`).

use super::snapshot::DaySpend;
use cyrus_core::MicroDollars;
use maud::{Markup, html};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
/// Room for the axis labels under the bars.
const AXIS: f64 = 20.0;

/// Bars for `days` against the daily limit `limit` (a dashed line; bars over
/// it are drawn in the warning colour).
pub fn spend_chart(days: &[DaySpend], limit: MicroDollars) -> Markup {
    let top = days
        .iter()
        .map(|d| d.micro)
        .max()
        .unwrap_or(0)
        .max(limit.0)
        .max(1) as f64;
    let plot = HEIGHT - AXIS;
    let slot = WIDTH / days.len().max(1) as f64;
    let y_of = |micro: i64| plot - (micro as f64 / top) * plot;
    let limit_y = y_of(limit.0);
    html! {
        svg class="chart" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
            aria-label=(format!("Estimated spend per day for the last {} days against maxCostPerDay {limit}", days.len()))
            preserveAspectRatio="none" {
            @for (i, d) in days.iter().enumerate() {
                @let h = plot - y_of(d.micro);
                @let over = limit.0 > 0 && d.micro > limit.0;
                rect class=(if over { "bar over" } else { "bar" })
                    x=(fmt(i as f64 * slot + slot * 0.15)) y=(fmt(plot - h))
                    width=(fmt(slot * 0.7)) height=(fmt(h)) {
                    title { (d.day) ": " (MicroDollars(d.micro)) " (estimate)" }
                }
            }
            @if limit.0 > 0 {
                line class="limit" x1="0" x2=(fmt(WIDTH)) y1=(fmt(limit_y)) y2=(fmt(limit_y)) {}
                text class="limit-label" x=(fmt(WIDTH - 4.0)) y=(fmt((limit_y - 4.0).max(10.0))) text-anchor="end" {
                    "limit " (limit)
                }
            }
            @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                text class="axis" x="0" y=(fmt(HEIGHT - 4.0)) { (first.day.format("%b %d")) }
                text class="axis" x=(fmt(WIDTH)) y=(fmt(HEIGHT - 4.0)) text-anchor="end" { (last.day.format("%b %d")) }
            }
        }
    }
}

/// SVG coordinates with one decimal: exact enough, and stable text.
fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(d: u32, micro: i64) -> DaySpend {
        DaySpend {
            day: NaiveDate::from_ymd_opt(2026, 3, d).unwrap(),
            micro,
        }
    }

    #[test]
    fn one_bar_per_day_and_overspend_is_marked() {
        let svg = spend_chart(
            &[day(1, 0), day(2, 500_000), day(3, 2_000_000)],
            MicroDollars(1_000_000),
        )
        .into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert_eq!(svg.matches("class=\"bar over\"").count(), 1, "{svg}");
        assert!(svg.contains("class=\"limit\""), "{svg}");
        assert!(svg.contains("2026-03-02: $0.5000 (estimate)"), "{svg}");
    }

    #[test]
    fn the_tallest_of_spend_and_limit_fills_the_plot() {
        // Spend under the limit: the limit line is at the top of the plot.
        let svg = spend_chart(&[day(1, 250_000)], MicroDollars(1_000_000)).into_string();
        assert!(svg.contains("y1=\"0.0\""), "{svg}");
        // A quarter of the limit is a quarter of the plot's height (160).
        assert!(svg.contains("height=\"40.0\""), "{svg}");
    }

    #[test]
    fn no_limit_draws_no_line() {
        let svg = spend_chart(&[day(1, 10)], MicroDollars(0)).into_string();
        assert!(!svg.contains("class=\"limit\""), "{svg}");
        assert!(svg.contains("height=\"160.0\""), "{svg}");
    }
}
