//! What the commands share: the store, the cluster directory and its config.yml, and how
//! diagnostics are printed.

use anyhow::{Context as _, Result, bail};
use m1studio_shared::{Diagnostic, Severity, config};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Opens the store at `db`, or at the default place.
pub(crate) fn open_store(db: Option<&Path>) -> Result<crate::store::Store> {
    crate::store::Store::open(&store_path(db)?)
}

fn store_path(db: Option<&Path>) -> Result<PathBuf> {
    match db {
        Some(path) => Ok(path.to_path_buf()),
        None => crate::store::default_path(),
    }
}

/// The directory of the store, where what belongs with it (hosts' keys) is kept.
pub(crate) fn store_dir(db: Option<&Path>) -> PathBuf {
    store_path(db)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn print_diagnostics(diagnostics: &[Diagnostic]) {
    let mut stderr = std::io::stderr().lock();
    for d in diagnostics {
        let _ = writeln!(stderr, "{d}");
    }
}

pub(crate) fn summary(diagnostics: &[Diagnostic]) -> String {
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning")
    )
}

/// Why configure may not write into `dir`, if it may not.
pub(crate) fn dir_problem(dir: &Path, force: bool) -> Option<String> {
    if dir.exists() && !dir.is_dir() {
        return Some(format!(
            "{} exists and is not a directory: choose another path",
            dir.display()
        ));
    }
    let not_empty = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    (not_empty && !force).then(|| {
        format!(
            "{} exists and is not empty: choose a new directory, or add --force to overwrite its config.yml",
            dir.display()
        )
    })
}

/// Writes config.yml whole or not at all: into a temporary file beside it, then renamed.
pub(crate) fn write_config(dir: &Path, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let target = dir.join("config.yml");
    let partial = dir.join(".config.yml.partial");
    // A leftover (a crash's, or a link planted there) is removed, never written through: the
    // new file is made exclusively (O_EXCL), which no link in its place survives.
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", partial.display())),
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    std::io::Write::write_all(&mut out, text.as_bytes())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    drop(out);
    std::fs::rename(&partial, &target)
        .with_context(|| format!("cannot write {}", target.display()))?;
    Ok(())
}

/// The config.yml that `path` names: a cluster directory's, or the file itself.
pub(crate) fn config_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("config.yml")
    } else {
        path.to_path_buf()
    }
}

/// Reads the config.yml of a cluster directory (or the file itself).
pub(crate) fn read_config(
    path: &Path,
) -> Result<(PathBuf, Option<m1studio_shared::Draft>, Vec<Diagnostic>)> {
    let file = config_file(path);
    if !file.exists() {
        bail!(
            "{} does not exist: give a cluster directory that holds a config.yml",
            file.display()
        );
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let (draft, diagnostics) = config::read(&text);
    Ok((file, draft, diagnostics))
}
