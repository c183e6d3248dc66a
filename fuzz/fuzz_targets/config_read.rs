//! Any text as a config.yml: reading never panics, and a valid one renders to a file that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m1studio_shared::{config, configure};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let (Some(draft), _) = config::read(text) {
            if let (Some(first), _) = configure(&draft) {
                let (back, _) = config::read(&first.config_yml);
                let again = configure(&back.expect("our own output reads back")).0.expect("and is valid");
                assert_eq!(first.config_yml, again.config_yml);
            }
        }
    }
});
