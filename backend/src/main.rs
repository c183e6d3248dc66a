//! The `m1studio` binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    m1studio::cli::run(std::env::args_os().skip(1).collect())
}
