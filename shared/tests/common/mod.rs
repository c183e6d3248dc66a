//! Helpers shared by the integration tests: a command line in, the model's answers out.

#![allow(dead_code, unreachable_pub)]

use m1studio_shared::cmdline::{Invocation, parse_args};
use m1studio_shared::{Diagnostic, Severity, validate};

/// A `--hostnames-from` file system held in memory.
pub fn files(path: &str) -> Result<String, String> {
    match path {
        "four.txt" => Ok("alpha\nbravo\ncharlie\ndelta\n".into()),
        "eight.txt" => Ok(
            "# spare names\nalpha 10.0.0.1\nbravo\ncharlie\ndelta\necho\nfoxtrot\ngolf\nhotel\n"
                .into(),
        ),
        "bad.txt" => Ok("alpha\nBravo_1\nalpha\ndelta\n".into()),
        "hosts.txt" => Ok(
            "# name and address of each existing host\nalpha 192.0.2.10\nbravo 192.0.2.11\ncharlie 2001:db8::12\ndelta 192.0.2.13\n"
                .into(),
        ),
        "badhosts.txt" => Ok("alpha 192.0.2.10\nbravo 192.0.2.300\ncharlie 192.0.2.10\ndelta\n".into()),
        _ => Err("No such file or directory (os error 2)".into()),
    }
}

/// Parses `line` (the arguments after `configure`) with the in-memory files.
pub fn parse(line: &str) -> (Invocation, Vec<Diagnostic>) {
    let args = shlex::split(line).expect("test lines are well quoted");
    parse_args(&args, &mut files)
}

/// Everything the parser and the validator say about `line`.
pub fn diagnostics(line: &str) -> Vec<Diagnostic> {
    let (invocation, mut diagnostics) = parse(line);
    diagnostics.extend(validate(&invocation.draft).1);
    diagnostics
}

/// `severity code path` for each diagnostic of the given severities, sorted.
pub fn summary(diagnostics: &[Diagnostic], severities: &[Severity]) -> Vec<String> {
    let mut lines: Vec<String> = diagnostics
        .iter()
        .filter(|d| severities.contains(&d.severity))
        .map(|d| format!("{} {} {}", d.severity.as_str(), d.code, d.path))
        .collect();
    lines.sort();
    lines
}
