//! Any text as a configure command line: parsing and validating never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m1studio_shared::cmdline::parse_command_line;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut files = |_: &str| Ok("alpha\nbravo\n".to_string());
        let (invocation, _) = parse_command_line(text, &mut files);
        let _ = m1studio_shared::configure(&invocation.draft);
    }
});
