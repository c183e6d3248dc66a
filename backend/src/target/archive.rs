//! Files into a container: a tar archive of a plan's files, owned by the numeric ids of their
//! owners in the container's own `/etc/passwd`.

use anyhow::{Context as _, Result};
use m1studio_shared::plan::File;
use std::collections::HashMap;

/// Each user's `(uid, gid)`, from lines of `/etc/passwd`.
pub(super) fn passwd_ids(passwd: &str) -> HashMap<String, (u64, u64)> {
    passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields[..] {
                [name, _, uid, gid, ..] => {
                    Some((name.to_string(), (uid.parse().ok()?, gid.parse().ok()?)))
                }
                _ => None,
            }
        })
        .collect()
}

/// A tar archive of `files`, with their owners' numeric ids as `ids` gives them.
pub(super) fn archive(files: &[File], ids: &HashMap<String, (u64, u64)>) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for file in files {
        let (uid, gid) = ids.get(&file.owner).copied().unwrap_or((0, 0));
        let mut header = tar::Header::new_gnu();
        header.set_size(file.content.len() as u64);
        header.set_mode(file.mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                file.path.trim_start_matches('/'),
                file.content.as_bytes(),
            )
            .with_context(|| format!("packing {}", file.path))?;
    }
    builder.into_inner().context("finishing the archive")
}
