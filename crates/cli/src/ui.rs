//! Terminal presentation shared by the operator commands: exit codes,
//! colour (only on a TTY and never with `NO_COLOR`, see <https://no-color.org>),
//! check marks, JSON output and the network spinner.

use serde::Serialize;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for a failed check or operation.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage error or a configuration that cannot be used.
pub const EXIT_USAGE: u8 = 2;

pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// Whether stdout may carry ANSI colour.
pub fn colour_enabled() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// Whether the user can answer questions (stdin and stderr are terminals).
pub fn interactive_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

#[derive(Clone, Copy)]
pub struct Style {
    colour: bool,
}

impl Style {
    pub fn detect() -> Style {
        Style {
            colour: colour_enabled(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn ok(&self) -> String {
        self.paint("32", "✓")
    }
    pub fn fail(&self) -> String {
        self.paint("31", "✗")
    }
    pub fn warn(&self) -> String {
        self.paint("33", "!")
    }
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Prints `value` as pretty JSON on stdout; a value that cannot be encoded
/// is a bug, reported as a failure rather than a panic.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), ExitCode> {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            Ok(())
        }
        Err(e) => {
            eprintln!("error: cannot encode the report: {e}");
            Err(exit(EXIT_FAILURE))
        }
    }
}

/// A spinner on stderr while waiting for the network; hidden when stderr is
/// not a terminal so logs and tests stay clean.
pub fn spinner(message: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A single-threaded runtime: the CLI makes a handful of sequential calls.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Dollars with cents from micro-dollars, for humans.
pub fn dollars(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let cents = (micros.unsigned_abs() + 5_000) / 10_000;
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

/// `1h 5m`, `3m 2s`, `45s` — the two largest units.
pub fn human_duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else if ms < 1000 {
        format!("{}ms", ms.max(0))
    } else {
        format!("{}.{}s", sec, (ms % 1000) / 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_round_to_cents() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(1_234_567), "$1.23");
        assert_eq!(dollars(1_235_000), "$1.24");
        assert_eq!(dollars(-500_000), "-$0.50");
        assert_eq!(dollars(100_000_000), "$100.00");
    }

    #[test]
    fn durations_use_two_units() {
        assert_eq!(human_duration_ms(250), "250ms");
        assert_eq!(human_duration_ms(1_500), "1.5s");
        assert_eq!(human_duration_ms(62_000), "1m 2s");
        assert_eq!(human_duration_ms(3_720_000), "1h 2m");
        assert_eq!(human_duration_ms(90_000_000), "1d 1h");
    }
}
