//! Any text as a share link: decoding never panics, and what it decodes encodes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m1studio_shared::link;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (draft, _) = link::decode(text);
        let _ = m1studio_shared::configure(&draft);
        let (again, diagnostics) = link::decode(&link::encode(&draft));
        assert!(diagnostics.is_empty());
        assert_eq!(again.normalized(), draft.normalized());
    }
});
