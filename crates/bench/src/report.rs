//! Figures, their goals, and the table / JSON the binary prints.

use serde::Serialize;

/// Which way a goal points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtMost(g) => value <= g,
            Goal::AtLeast(g) => value >= g,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::AtMost(g) => format!("≤ {g}"),
            Goal::AtLeast(g) => format!("≥ {g}"),
        }
    }
}

/// One measured number. `value` is `None` when the scenario could not
/// measure it (then `note` says why) — never a made-up number.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub scenario: String,
    pub name: String,
    pub value: Option<f64>,
    pub unit: String,
    pub goal: Option<Goal>,
    /// `None` without a goal or a value.
    pub met: Option<bool>,
    pub note: String,
}

impl Figure {
    pub fn new(scenario: &str, name: &str, value: Option<f64>, unit: &str) -> Figure {
        Figure {
            scenario: scenario.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            goal: None,
            met: None,
            note: String::new(),
        }
    }

    pub fn goal(mut self, goal: Goal) -> Figure {
        self.goal = Some(goal);
        self.met = self.value.map(|v| goal.met(v));
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.note = note.into();
        self
    }
}

/// The whole run: where and when, then every figure.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: String,
    pub command: String,
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = format!(
            "cyrus-bench  {}  {}\n$ {}\n\n",
            self.date, self.machine, self.command
        );
        let header = ["scenario", "figure", "value", "goal", "met", "note"];
        let rows: Vec<[String; 6]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.scenario.clone(),
                    f.name.clone(),
                    f.value
                        .map_or("n/a".into(), |v| format!("{} {}", round(v), f.unit)),
                    f.goal.map_or(String::new(), |g| g.text()),
                    match f.met {
                        Some(true) => "yes".into(),
                        Some(false) => "NO".into(),
                        None => String::new(),
                    },
                    f.note.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    s.push_str(&format!("{cell:<w$}  "));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        out.push_str(&line(&header.map(String::from)));
        for row in &rows {
            out.push_str(&line(row));
        }
        out
    }
}

fn round(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// `nproc` and the CPU model, as BENCHMARKS.md records them.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}, {}", std::env::consts::ARCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_are_judged_and_missing_values_are_not() {
        let f = Figure::new("s", "p99", Some(30.0), "ms").goal(Goal::AtMost(25.0));
        assert_eq!(f.met, Some(false));
        let f = Figure::new("s", "rate", Some(9.6), "/min").goal(Goal::AtLeast(9.5));
        assert_eq!(f.met, Some(true));
        let f = Figure::new("s", "x", None, "ms").goal(Goal::AtMost(1.0));
        assert_eq!(f.met, None);
        let report = Report {
            date: "d".into(),
            machine: "m".into(),
            command: "c".into(),
            figures: vec![f],
        };
        let table = report.table();
        assert!(table.contains("n/a"), "{table}");
    }
}
