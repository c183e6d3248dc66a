//! The store: deployments, their events and their passwords, in one SQLite file (by default in
//! the user's data directory, readable by the user alone). Every write is one short transaction,
//! so the server, the CLI and a crash never leave a deployment half-recorded.

use anyhow::{Context as _, Result};
use m1studio_shared::Draft;
use m1studio_shared::api::{
    DeploymentEvent, DeploymentState, DrillReport, EventKind, Failure, Signal,
};
use m1studio_shared::plan::Profile;
use rusqlite::{Connection, OptionalExtension as _, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The schema, one migration per entry; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE deployments (
        id TEXT PRIMARY KEY,
        cluster TEXT NOT NULL,
        state TEXT NOT NULL,
        profile TEXT NOT NULL,
        draft TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        error TEXT
    );
    -- One live deployment per cluster name: the Docker objects are named after it.
    CREATE UNIQUE INDEX one_live_cluster ON deployments (cluster) WHERE state <> 'destroyed';
    CREATE TABLE events (
        deployment TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        node TEXT,
        title TEXT NOT NULL,
        detail TEXT,
        PRIMARY KEY (deployment, seq)
    );
    CREATE TABLE secrets (
        deployment TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (deployment, name)
    );
",
    "
    CREATE TABLE drills (
        deployment TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        report TEXT NOT NULL,
        PRIMARY KEY (deployment, number)
    );
",
    "
    ALTER TABLE events ADD COLUMN signal TEXT;
",
    "
    -- Who a deployment belongs to ('' for the server's own user and the trainer), and the
    -- network it really got when its design left the network at the default.
    ALTER TABLE deployments ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    ALTER TABLE deployments ADD COLUMN network TEXT;
    DROP INDEX one_live_cluster;
    CREATE UNIQUE INDEX one_live_cluster ON deployments (owner, cluster) WHERE state <> 'destroyed';
    -- The attendees of workshops: their tokens only as hashes.
    CREATE TABLE attendees (
        id TEXT PRIMARY KEY,
        workshop TEXT NOT NULL,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        joined_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX attendee_names ON attendees (workshop, lower(name));
",
    "
    -- What kind of failure a failed deployment had.
    ALTER TABLE deployments ADD COLUMN failure TEXT;
    -- The process that runs a deployment's work while it is under way.
    ALTER TABLE deployments ADD COLUMN process TEXT;
    -- The m1studio processes that use the store, each with its last sign of life: work under
    -- way is taken over only from a process that has stopped giving one.
    CREATE TABLE processes (
        id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL
    );
",
    "
    -- Every deployment so far numbered Barman after the cascaded replicas; nodes are numbered
    -- as TPA does from now on. The clusters already made keep their numbers, names and
    -- addresses.
    UPDATE deployments SET draft = json_set(draft, '$.numbering', 'barman-last');
",
];

/// How often a process that uses the store says it lives.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long without a sign of life before a process is taken for dead, and its work under
/// way is taken over.
pub const PRESUMED_DEAD: std::time::Duration = std::time::Duration::from_secs(30);

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its identifier.
    pub id: String,
    /// The cluster's name.
    pub cluster: String,
    /// Where it is.
    pub state: DeploymentState,
    /// Its failover timing.
    pub profile: Profile,
    /// Its design.
    pub draft: Draft,
    /// When it was asked for, in milliseconds since 1970.
    pub created_ms: u64,
    /// When its state last changed.
    pub updated_ms: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// What kind of failure it was.
    pub failure: Option<Failure>,
    /// The process that runs its work, while it is under way.
    pub process: Option<String>,
    /// Who it belongs to: an attendee's id, or empty for the server's own user.
    pub owner: String,
    /// The network it really got, when its design left the network at the default.
    pub network: Option<String>,
}

impl Record {
    /// A queued deployment `id` of `draft`'s cluster `cluster`, for the server's own user,
    /// asked for now, with the fast profile: what the fields not given are.
    pub fn new(id: &str, cluster: &str, draft: Draft) -> Record {
        let now = now_ms();
        Record {
            id: id.to_string(),
            cluster: cluster.to_string(),
            state: DeploymentState::Queued,
            profile: Profile::Fast,
            draft,
            created_ms: now,
            updated_ms: now,
            error: None,
            failure: None,
            process: None,
            owner: String::new(),
            network: None,
        }
    }

    /// The name of the target's objects: the cluster's, with its owner's id after it for an
    /// attendee, so that two attendees' clusters of one name never meet.
    pub fn engine_name(&self) -> String {
        engine_name(&self.owner, &self.cluster)
    }
}

/// The name of the target's objects of `owner`'s cluster `cluster`: the cluster's, with the
/// owner's id after it for an attendee, so that two attendees' clusters of one name never meet.
pub fn engine_name(owner: &str, cluster: &str) -> String {
    if owner.is_empty() {
        cluster.to_string()
    } else {
        format!("{cluster}-{owner}")
    }
}

/// An attendee of a workshop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// Its identifier: short, and part of its clusters' engine names.
    pub id: String,
    /// The workshop.
    pub workshop: String,
    /// The name it gave.
    pub name: String,
    /// When it joined.
    pub joined_ms: u64,
}

/// Why a deployment could not be recorded.
#[derive(Debug)]
pub enum InsertError {
    /// A live deployment of the same owner already has this cluster name.
    Conflict(Box<Record>),
    /// The name is taken.
    Taken,
    /// Anything else.
    Other(anyhow::Error),
}

/// Milliseconds since 1970.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The store file used when none is given: `m1studio/m1studio.db` in the user's data directory.
pub fn default_path() -> Result<PathBuf> {
    let data = dirs::data_dir().context(
        "cannot tell the user's data directory (HOME is not set): give the store with --db or M1STUDIO_DB",
    )?;
    Ok(data.join("m1studio").join("m1studio.db"))
}

/// The open store.
pub struct Store {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

fn profile_name(profile: Profile) -> &'static str {
    profile.as_str()
}

/// The name an enum of the API is stored under: its JSON text (`observed`, `writes_refused`).
fn stored_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Store {
    /// Opens (creating it and its directory if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Made for its owner only, whatever the umask: it holds passwords.
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o700,
            )
            .create(dir)
            .with_context(|| format!("cannot create the store's directory {}", dir.display()))?;
        }
        Store::prepare_file(path)?;
        let connection = Connection::open(path)
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        restrict(path)?;
        Store::init(connection).with_context(|| format!("cannot use the store {}", path.display()))
    }

    /// Makes sure `path` is a store, or nothing yet, before anything is changed: a new file is
    /// made for its owner alone; a link, a directory or a file of anything but SQLite is
    /// refused, and left as it is (its mode untouched).
    fn prepare_file(path: &Path) -> Result<()> {
        use std::io::Read as _;
        let shown = path.display();
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => anyhow::bail!(
                "the store {shown} is a symbolic link: give the store's own file (--db or M1STUDIO_DB)"
            ),
            Ok(meta) if !meta.is_file() => anyhow::bail!(
                "the store {shown} is not a file: give a file's path (--db or M1STUDIO_DB)"
            ),
            Ok(meta) if meta.len() > 0 => {
                let mut header = [0u8; 16];
                let read = std::fs::File::open(path)
                    .and_then(|mut f| f.read_exact(&mut header))
                    .is_ok();
                if !read || &header != b"SQLite format 3\0" {
                    anyhow::bail!(
                        "{shown} is not an m1studio store (not an SQLite database), and is left as it is: give another path with --db or M1STUDIO_DB"
                    );
                }
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_private(path, "").with_context(|| format!("cannot create the store {shown}"))
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read the store {shown}"))),
        }
    }

    /// A store that lives in memory, for tests.
    pub fn in_memory() -> Result<Store> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(mut connection: Connection) -> Result<Store> {
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "foreign_keys", true)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // In WAL mode this keeps the store consistent through a crash; a power cut may lose
        // the last events. Without it, every event waited for a flush of the disk that the
        // clusters being deployed keep busy.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        let applied: usize = connection.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if applied > MIGRATIONS.len() {
            anyhow::bail!(
                "it was written by a newer m1studio (schema {applied}, this one knows {}): upgrade m1studio or use another --db",
                MIGRATIONS.len()
            );
        }
        for (number, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", number + 1)?;
            tx.commit()?;
        }
        Ok(Store {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: keep going.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a new deployment with its passwords, or says which live one has its cluster name.
    pub fn insert(
        &self,
        record: &Record,
        secrets: &[(&str, &str)],
    ) -> std::result::Result<(), InsertError> {
        let mut connection = self.lock();
        let draft =
            serde_json::to_string(&record.draft).map_err(|e| InsertError::Other(e.into()))?;
        let result = (|| {
            let tx =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO deployments (id, cluster, state, profile, draft, created_ms, updated_ms, error, owner, network, failure, process)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    record.id,
                    record.cluster,
                    record.state.as_str(),
                    profile_name(record.profile),
                    draft,
                    record.created_ms,
                    record.updated_ms,
                    record.error,
                    record.owner,
                    record.network,
                    record.failure.map(Failure::as_str),
                    record.process
                ],
            )?;
            for (name, value) in secrets {
                tx.execute(
                    "INSERT INTO secrets (deployment, name, value) VALUES (?1, ?2, ?3)",
                    params![record.id, name, value],
                )?;
            }
            tx.commit()
        })();
        drop(connection);
        match result {
            Ok(()) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                match self.live_by_cluster(&record.owner, &record.cluster) {
                    Ok(Some(existing)) => Err(InsertError::Conflict(Box::new(existing))),
                    Ok(None) => Err(InsertError::Other(anyhow::anyhow!(
                        "deployment {} is already recorded",
                        record.id
                    ))),
                    Err(e) => Err(InsertError::Other(e)),
                }
            }
            Err(e) => Err(InsertError::Other(e.into())),
        }
    }

    fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
        let state: String = row.get(2)?;
        let profile: String = row.get(3)?;
        let draft: String = row.get(4)?;
        Ok(Record {
            id: row.get(0)?,
            cluster: row.get(1)?,
            state: DeploymentState::parse(&state).unwrap_or(DeploymentState::Failed),
            profile: Profile::parse(&profile).unwrap_or_default(),
            draft: serde_json::from_str(&draft).unwrap_or_default(),
            created_ms: row.get(5)?,
            updated_ms: row.get(6)?,
            error: row.get(7)?,
            owner: row.get(8)?,
            network: row.get(9)?,
            failure: row
                .get::<_, Option<String>>(10)?
                .as_deref()
                .and_then(Failure::parse),
            process: row.get(11)?,
        })
    }

    const COLUMNS: &str = "id, cluster, state, profile, draft, created_ms, updated_ms, error, owner, network, failure, process";

    /// The deployment `id`.
    pub fn get(&self, id: &str) -> Result<Option<Record>> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                &format!("SELECT {} FROM deployments WHERE id = ?1", Store::COLUMNS),
                [id],
                Store::row,
            )
            .optional()?)
    }

    /// `owner`'s live (not destroyed) deployment of cluster `cluster`.
    pub fn live_by_cluster(&self, owner: &str, cluster: &str) -> Result<Option<Record>> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                &format!(
                    "SELECT {} FROM deployments WHERE owner = ?1 AND cluster = ?2 AND state <> 'destroyed'",
                    Store::COLUMNS
                ),
                [owner, cluster],
                Store::row,
            )
            .optional()?)
    }

    /// Records an attendee of `workshop` named `name` whose token hashes to `token_hash`, or
    /// says that the name is taken there.
    pub fn add_attendee(
        &self,
        attendee: &Attendee,
        token_hash: &str,
    ) -> std::result::Result<(), InsertError> {
        let result = self.lock().execute(
            "INSERT INTO attendees (id, workshop, name, token_hash, joined_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![attendee.id, attendee.workshop, attendee.name, token_hash, attendee.joined_ms],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(InsertError::Taken)
            }
            Err(e) => Err(InsertError::Other(e.into())),
        }
    }

    /// The attendee whose token hashes to `token_hash`.
    pub fn attendee_by_token(&self, token_hash: &str) -> Result<Option<Attendee>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT id, workshop, name, joined_ms FROM attendees WHERE token_hash = ?1",
                [token_hash],
                Store::attendee,
            )
            .optional()?)
    }

    /// Forgets every attendee of `workshop`: their tokens stop working.
    pub fn remove_attendees(&self, workshop: &str) -> Result<usize> {
        Ok(self
            .lock()
            .execute("DELETE FROM attendees WHERE workshop = ?1", [workshop])?)
    }

    /// The attendees of `workshop`, in the order they joined.
    pub fn attendees(&self, workshop: &str) -> Result<Vec<Attendee>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, workshop, name, joined_ms FROM attendees WHERE workshop = ?1 ORDER BY joined_ms, rowid",
        )?;
        let rows = statement.query_map([workshop], Store::attendee)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn attendee(row: &rusqlite::Row<'_>) -> rusqlite::Result<Attendee> {
        Ok(Attendee {
            id: row.get(0)?,
            workshop: row.get(1)?,
            name: row.get(2)?,
            joined_ms: row.get(3)?,
        })
    }

    /// Records that process `process` (the operating system's `pid`) lives, now.
    pub fn heartbeat(&self, process: &str, pid: u32) -> Result<()> {
        let connection = self.lock();
        connection.execute(
            "INSERT INTO processes (id, pid, heartbeat_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
            params![process, pid, now_ms()],
        )?;
        Ok(())
    }

    /// Forgets process `process`, which stops.
    pub fn forget_process(&self, process: &str) -> Result<()> {
        self.lock()
            .execute("DELETE FROM processes WHERE id = ?1", [process])?;
        Ok(())
    }

    /// The live process (its pid) that runs deployment `record`'s work, if one does: one that
    /// gave a sign of life within [`PRESUMED_DEAD`] of `now_ms`.
    pub fn live_owner(&self, record: &Record, now_ms: u64) -> Result<Option<u32>> {
        let Some(process) = &record.process else {
            return Ok(None);
        };
        let connection = self.lock();
        let since = now_ms.saturating_sub(PRESUMED_DEAD.as_millis() as u64);
        Ok(connection
            .query_row(
                "SELECT pid FROM processes WHERE id = ?1 AND heartbeat_ms >= ?2",
                params![process, since],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Every deployment, newest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!(
            "SELECT {} FROM deployments ORDER BY created_ms DESC, id",
            Store::COLUMNS
        ))?;
        let rows = statement.query_map([], Store::row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Moves deployment `id` to `state`, with the failure and its reason when it failed.
    /// Passwords go when it is destroyed; the process that ran it lets go of it when it is no
    /// longer under way.
    pub fn set_state(
        &self,
        id: &str,
        state: DeploymentState,
        failed: Option<(Failure, &str)>,
    ) -> Result<()> {
        self.set_state_by(id, state, failed, None)
    }

    /// `set_state`, by process `process`, which takes the deployment's work over when `state`
    /// is under way.
    pub fn set_state_by(
        &self,
        id: &str,
        state: DeploymentState,
        failed: Option<(Failure, &str)>,
        process: Option<&str>,
    ) -> Result<()> {
        let mut connection = self.lock();
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE deployments SET state = ?2, failure = ?3, error = ?4, updated_ms = ?5,
                 process = CASE WHEN ?6 THEN coalesce(?7, process) END
             WHERE id = ?1",
            params![
                id,
                state.as_str(),
                failed.map(|(f, _)| f.as_str()),
                failed.map(|(_, reason)| reason),
                now_ms(),
                state.in_progress(),
                process
            ],
        )?;
        if state == DeploymentState::Destroyed {
            tx.execute("DELETE FROM secrets WHERE deployment = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Appends an event to deployment `id` and returns it with its number.
    pub fn append(
        &self,
        id: &str,
        kind: EventKind,
        node: Option<&str>,
        title: &str,
        detail: Option<&str>,
        signal: Option<Signal>,
    ) -> Result<DeploymentEvent> {
        let mut connection = self.lock();
        // Immediate: the read of the last number and the insert are one writer's, so that a
        // writer in another process never meets a lock it cannot wait for.
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let seq: u64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE deployment = ?1",
            [id],
            |r| r.get(0),
        )?;
        let at_ms = now_ms();
        tx.execute(
            "INSERT INTO events (deployment, seq, at_ms, kind, node, title, detail, signal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, seq, at_ms, stored_name(kind), node, title, detail, signal.map(stored_name)],
        )?;
        tx.commit()?;
        Ok(DeploymentEvent {
            seq,
            at_ms,
            kind,
            node: node.map(str::to_string),
            title: title.to_string(),
            detail: detail.map(str::to_string),
            signal,
        })
    }

    /// The events of deployment `id` after number `after`, in order.
    pub fn events(&self, id: &str, after: u64) -> Result<Vec<DeploymentEvent>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT seq, at_ms, kind, node, title, detail, signal FROM events WHERE deployment = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = statement.query_map(params![id, after], |row| {
            let kind: String = row.get(2)?;
            Ok(DeploymentEvent {
                seq: row.get(0)?,
                at_ms: row.get(1)?,
                kind: serde_json::from_value(serde_json::Value::String(kind))
                    .unwrap_or(EventKind::Progress),
                node: row.get(3)?,
                title: row.get(4)?,
                detail: row.get(5)?,
                signal: row
                    .get::<_, Option<String>>(6)?
                    .and_then(|s| serde_json::from_value(serde_json::Value::String(s)).ok()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records (or updates) a drill's report.
    pub fn save_report(&self, id: &str, report: &DrillReport) -> Result<()> {
        let text = serde_json::to_string(report)?;
        self.lock().execute(
            "INSERT INTO drills (deployment, number, report) VALUES (?1, ?2, ?3)
             ON CONFLICT (deployment, number) DO UPDATE SET report = excluded.report",
            params![id, report.number, text],
        )?;
        Ok(())
    }

    /// The drill reports of deployment `id`, in order.
    pub fn reports(&self, id: &str) -> Result<Vec<DrillReport>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT report FROM drills WHERE deployment = ?1 ORDER BY number")?;
        let rows = statement.query_map([id], |row| row.get::<_, String>(0))?;
        let mut reports = Vec::new();
        for text in rows {
            reports.push(serde_json::from_str(&text?)?);
        }
        Ok(reports)
    }

    /// The passwords of deployment `id`, by name.
    pub fn secrets(&self, id: &str) -> Result<Vec<(String, String)>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT name, value FROM secrets WHERE deployment = ?1 ORDER BY name")?;
        let rows = statement.query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Makes the store file readable by its owner alone: it holds passwords.
#[cfg(unix)]
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> Result<()> {
    Ok(())
}

/// Refuses a file that anyone but its owner may read or write, as ssh refuses such a key: it
/// holds secrets.
pub fn check_private(file: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::symlink_metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    if metadata.file_type().is_symlink() {
        anyhow::bail!(
            "{} is a symbolic link, and a file of secrets is read only where it is: replace it by the file itself",
            file.display()
        );
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{} holds secrets and others can read or change it (mode {mode:o}): run chmod 600 {}, or remove it to get new ones",
            file.display(),
            file.display()
        );
    }
    Ok(())
}

/// Writes `text` into the new file `file`, readable by its owner only: never over an existing
/// file, and never through a symbolic link (`create_new` is `O_EXCL`, which refuses a link in
/// the file's place, even a dangling one).
pub fn write_private(file: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    out.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))
}

#[cfg(test)]
mod tests;
