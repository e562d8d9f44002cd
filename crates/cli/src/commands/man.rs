//! `cyrus man`: the man page, generated from the same clap definitions as
//! `--help`, so it cannot drift from the binary.

use crate::ui::{EXIT_FAILURE, exit};
use clap::CommandFactory;
use std::process::ExitCode;

pub fn run<C: CommandFactory>() -> ExitCode {
    let man = clap_mangen::Man::new(C::command());
    let mut out = Vec::new();
    if let Err(e) = man.render(&mut out) {
        eprintln!("error: cannot render the man page: {e}");
        return exit(EXIT_FAILURE);
    }
    use std::io::Write;
    match std::io::stdout().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the man page: {e}");
            exit(EXIT_FAILURE)
        }
    }
}
