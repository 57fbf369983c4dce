//! Opening a ledger database: the SQLite schema, its `meta` marker, connection settings, and
//! clear errors for a path that is not a usable ledger.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::Durability;
use crate::error::{Error, Result};

/// The `meta.format` value that marks a statemeter ledger.
pub const FORMAT: &str = "statemeter-ledger";
/// The `meta.version` of the ledgers this code creates: version 3 (docs/ledger-format.md).
/// A version-1 or version-2 ledger is read, verified and appended to in its own version.
pub const VERSION: &str = "3";
/// Every `meta.version` this code reads.
pub const VERSIONS: [&str; 3] = ["1", "2", "3"];
/// Version 3: every row whose seq is a multiple of this keeps the whole chain hash (as does
/// the last row of every append); the other rows keep its first [`CHECK_LEN`] bytes.
pub const HASH_STRIDE: u64 = 64;
/// Version 3: the bytes of the chain hash a row between whole hashes keeps.
pub const CHECK_LEN: usize = 4;
/// The `meta` key that says how the `ids` table keys ids: `8` in ledgers created since it
/// exists (8 bytes per id, 16 only for an id whose 8 are another's); absent in earlier
/// version-2 ledgers, which key every id by 16 bytes and keep doing so
/// (docs/ledger-format.md, "The `ids` table").
pub const ID_KEYS_KEY: &str = "id_keys";
/// The `meta` key of the ledger's identity: a UUID (version 7) given at creation, or at the
/// first writable open of a ledger made before ledgers had one. Never changed afterwards.
pub const LEDGER_ID_KEY: &str = "ledger_id";
/// How long a writer waits for another process's transaction before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The Merkle tree's tables (`super::tree`): part of a new ledger's schema, and added to a
/// ledger written before them on its first writable open.
macro_rules! tree_tables {
    () => {
        "
CREATE TABLE IF NOT EXISTS merkle_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL UNIQUE
);
"
    };
}

/// [`tree_tables!`] as a constant.
pub(crate) const TREE_TABLES: &str = tree_tables!();

/// The tables of a version-2 and a version-3 ledger, with `$version` in `meta`: the chain's
/// columns, the ids index that idempotency needs as a table of its own keyed by 8 bytes per id
/// (`WITHOUT ROWID`: the key is the table), not a copy of the id text in every row plus a text
/// index over it, and the Merkle tree's tables. The two versions differ only in what a row's
/// `hash` keeps (docs/ledger-format.md).
macro_rules! schema_v2_tables {
    ($version:literal) => {
        concat!(
            "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    record TEXT NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ids (key BLOB PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rulesets (digest TEXT PRIMARY KEY, name TEXT NOT NULL, catalogue TEXT NOT NULL);
",
            tree_tables!(),
            "
INSERT OR IGNORE INTO meta (key, value) VALUES ('format', 'statemeter-ledger'), ('version', '",
            $version,
            "'),
    ('id_keys', '8');
"
        )
    };
}

/// The schema of a new ledger (docs/ledger-format.md, version 3): version 2's, with the
/// chain hash kept whole on some rows only ([`HASH_STRIDE`]) and cut to its first
/// [`CHECK_LEN`] bytes on the others (`hash BLOB NOT NULL` either way).
const SCHEMA: &str = schema_v2_tables!("3");

/// The schema of a version-2 ledger (docs/ledger-format.md, version 2): every row keeps its
/// whole chain hash.
pub(crate) const SCHEMA_V2: &str = schema_v2_tables!("2");

/// The schema of a version-1 ledger: the id text in every row with a `UNIQUE` index over it.
pub(crate) const SCHEMA_V1: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rulesets (digest TEXT PRIMARY KEY, name TEXT NOT NULL, catalogue TEXT NOT NULL);
",
    tree_tables!(),
    "
INSERT OR IGNORE INTO meta (key, value) VALUES ('format', 'statemeter-ledger'), ('version', '1');
"
);

/// The `meta.version` of an open ledger as a number (1, 2 or 3; a ledger without one, which
/// opening refuses, reads as version 2, whose schema such a ledger was checked against before
/// version 3).
pub(crate) fn read_version(conn: &Connection) -> rusqlite::Result<u32> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'version'", [], |r| {
            r.get(0)
        })
        .optional()
        .or_else(|e| match e {
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                Ok(None)
            }
            e => Err(e),
        })?;
    Ok(match v.as_deref() {
        Some("1") => 1,
        Some("3") => 3,
        _ => 2,
    })
}

/// Whether the `ids` table of a version-2 ledger keys ids by 8 bytes (`meta.id_keys` is `8`)
/// rather than 16 (no `id_keys`: a ledger created before 8-byte keys). Any other value is a
/// scheme this code does not know: an error, since appending under the wrong scheme would
/// record an id twice.
pub(crate) fn read_short_id_keys(conn: &Connection) -> crate::error::Result<bool> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [ID_KEYS_KEY],
            |r| r.get(0),
        )
        .optional()
        .or_else(|e| match e {
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                Ok(None)
            }
            e => Err(e),
        })?;
    match v.as_deref() {
        None => Ok(false),
        Some("8") => Ok(true),
        Some(other) => Err(Error::Ledger(format!(
            "the ledger's ids table keys ids in a way this version does not know \
             (meta {ID_KEYS_KEY} = {other:?}); upgrade statemeter"
        ))),
    }
}

/// Why a ledger could not be opened: whether SQLite was refused writing (reading the file may
/// still work) or the file is unusable however it is opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// SQLite could not open or write the file, or its directory for the `-wal` and `-shm`
    /// files (permissions, read-only media, a directory at the path).
    NotWritable(Error),
    /// Anything else: a missing directory, not a ledger, corrupt, another format version.
    Unusable(Error),
}

impl From<Error> for OpenError {
    fn from(e: Error) -> Self {
        OpenError::Unusable(e)
    }
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::NotWritable(e) | OpenError::Unusable(e) => e,
        }
    }
}

type Opened<T> = std::result::Result<T, OpenError>;

/// Opens the ledger database at `path` (created if missing; in memory for `None`) and checks
/// it is a statemeter ledger. `label` names it in errors.
///
/// Settings: waits up to [`BUSY_TIMEOUT`] for a lock (interruptibly, see `wait`); WAL journal
/// for files; `synchronous=FULL` for [`Durability::Sync`], `NORMAL` for [`Durability::Batch`].
pub(crate) fn open_connection(
    path: Option<&Path>,
    label: &str,
    durability: Durability,
) -> Opened<Connection> {
    let err = |e| open_err(label, e);
    let mut conn = match path {
        None => Connection::open_in_memory().map_err(err)?,
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    return Err(Error::Ledger(format!(
                        "cannot open ledger {label}: directory {} does not exist",
                        dir.display()
                    ))
                    .into());
                }
            }
            if p.is_dir() {
                return Err(Error::Ledger(format!(
                    "cannot open ledger {label}: it is a directory, not a ledger file"
                ))
                .into());
            }
            let conn = Connection::open(p).map_err(err)?;
            super::wait::install(&conn).map_err(err)?;
            // Refuse a database that is not a ledger before changing anything in it: switching
            // to WAL rewrites the file header of someone else's database.
            if table_count(&conn).map_err(err)? > 0 {
                check_marker(&conn, label)?;
            }
            // 16 KiB pages: fewer WAL frames per record (~700 bytes); only takes effect on a
            // new file, before WAL is set.
            conn.pragma_update(None, "page_size", 16384).map_err(err)?;
            set_wal(&conn).map_err(err)?;
            conn
        }
    };
    let sync = match durability {
        Durability::Sync => "FULL",
        Durability::Batch => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync).map_err(err)?;
    init_or_check(&mut conn, label)?;
    refuse_foreign_schema(&conn, label)?;
    ensure_ledger_id(&mut conn, label)?;
    Ok(conn)
}

/// Opens an existing ledger for reading only: a file this process may not write (permissions)
/// or one on read-only media. There SQLite cannot create the WAL index (`-shm`) a WAL database
/// needs, so on a read-only file system the file is opened `immutable` (nobody can change it
/// there) — unless a `-wal` file with content lies beside it, whose events an immutable
/// reader would not see: that is an error, never a silently shorter ledger.
pub(crate) fn open_read_only(path: &Path, label: &str) -> Result<Connection> {
    if path.is_dir() {
        return Err(Error::Ledger(format!(
            "cannot open ledger {label}: it is a directory, not a ledger file"
        )));
    }
    let err = |e| Error::from(open_err(label, e));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let plain = Connection::open_with_flags(path, flags).and_then(|c| {
        super::wait::install(&c)?;
        table_count(&c)?;
        Ok(c)
    });
    let conn = match plain {
        Ok(c) => c,
        Err(_) if on_read_only_file_system(path) => {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            let wal = Path::new(&wal);
            if std::fs::metadata(wal).is_ok_and(|m| m.len() > 0) {
                return Err(Error::Ledger(format!(
                    "cannot read ledger {label} on a read-only file system: its write-ahead log \
                     {} holds events not yet checkpointed; copy the ledger with its -wal file \
                     to writable storage to read it",
                    wal.display()
                )));
            }
            Connection::open_with_flags(format!("file:{}?immutable=1", uri_path(path)), flags)
                .map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    check_marker(&conn, label)?;
    Ok(conn)
}

/// Whether `path` is on a read-only file system (opening it for writing fails with EROFS).
fn on_read_only_file_system(path: &Path) -> bool {
    const EROFS: i32 = 30; // Linux, macOS and the BSDs
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .is_err_and(|e| e.raw_os_error() == Some(EROFS))
}

/// `path` for an SQLite `file:` URI (the characters a URI gives meaning to, escaped).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Sets WAL mode, retrying while another connection switches it at the same moment.
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut attempts = 0;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) && attempts < 3000 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn table_count(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )
}

/// Creates the schema in an empty database, or checks that an existing one is a ledger.
fn init_or_check(conn: &mut Connection, label: &str) -> Opened<()> {
    let err = |e| open_err(label, e);
    if table_count(conn).map_err(err)? == 0 {
        // Another process may be creating it too: re-check under the write lock.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        if table_count(&tx).map_err(err)? == 0 {
            tx.execute_batch(SCHEMA).map_err(err)?;
            insert_ledger_id(&tx).map_err(err)?;
        }
        tx.commit().map_err(err)?;
    }
    check_marker(conn, label)
}

/// Checks a ledger id given by a caller (`field` names it in the error): a UUID, returned in
/// the lowercase hyphenated form ledgers store.
pub fn parse_ledger_id(field: &str, text: &str) -> Result<String> {
    uuid::Uuid::try_parse(text.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| Error::validation(field, format!("{text:?} is not a UUID")))
}

/// Stores a new ledger id unless the ledger has one.
fn insert_ledger_id(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
        [LEDGER_ID_KEY, &crate::event::new_uuid_v7()],
    )
}

/// Gives a ledger made before ledgers had an identity its `ledger_id` (one write transaction,
/// only when it has none; two processes opening it at once agree: the first insert wins).
fn ensure_ledger_id(conn: &mut Connection, label: &str) -> Opened<()> {
    let err = |e| open_err(label, e);
    if read_ledger_id(conn).map_err(err)?.is_some() {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    insert_ledger_id(&tx).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(())
}

/// The `meta.ledger_id` text as stored, or `None` when the ledger has none (a ledger made
/// before ledgers had an identity, opened read-only since).
pub(crate) fn read_ledger_id(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        [LEDGER_ID_KEY],
        |r| r.get::<_, Option<String>>(0),
    )
    .optional()
    .map(Option::flatten)
}

/// Checks the `meta` marker (format and version) of a database that has tables.
fn check_marker(conn: &Connection, label: &str) -> Opened<()> {
    let err = |e| open_err(label, e);
    let meta = |key: &str| -> rusqlite::Result<Option<String>> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
    };
    let not_ledger = || Error::Ledger(format!("{label} is not a statemeter ledger")).into();
    match meta("format") {
        Ok(Some(f)) if f == FORMAT => {}
        Ok(_) => return Err(not_ledger()),
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("no such table") => {
            return Err(not_ledger())
        }
        Err(e) => return Err(err(e)),
    }
    match meta("version").map_err(err)? {
        Some(v) if VERSIONS.contains(&v.as_str()) => Ok(()),
        v => Err(Error::Ledger(format!(
            "{label} is a statemeter ledger of version {}; this version reads versions {}",
            v.as_deref().unwrap_or("(none)"),
            VERSIONS.join(", ")
        ))
        .into()),
    }
}

/// SQLite's statistics tables (`ANALYZE`, `PRAGMA optimize`): they steer query plans only and
/// change nothing stored, so a ledger may have them.
const STATISTICS: [&str; 2] = ["sqlite_stat1", "sqlite_stat4"];

/// The schema objects of a ledger of `version`, as `(type, name, table, definition)`: the
/// tables of its schema (definitions normalized by [`normalize_sql`]) and the indexes SQLite
/// creates for their `PRIMARY KEY` and `UNIQUE` text columns (no definition; none for an
/// `INTEGER PRIMARY KEY`, which is the row id, or a `WITHOUT ROWID` table, keyed by its
/// primary key itself). `rulesets` (with its index) is optional: a ledger written before
/// catalogues were stored has none.
fn expected_objects(version: u32) -> Vec<(&'static str, String, String, Option<String>)> {
    let schema = match version {
        1 => SCHEMA_V1,
        2 => SCHEMA_V2,
        _ => SCHEMA,
    };
    let mut out = Vec::new();
    for stmt in schema.split(';') {
        let Some(def) = stmt.trim().strip_prefix("CREATE TABLE IF NOT EXISTS ") else {
            continue;
        };
        let name = def
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let sql = normalize_sql(&format!("CREATE TABLE {def}"));
        let autoindex = !sql.ends_with("without rowid")
            && (sql.contains(" unique") || !sql.contains("integer primary key"));
        if autoindex {
            out.push((
                "index",
                format!("sqlite_autoindex_{name}_1"),
                name.clone(),
                None,
            ));
        }
        out.push(("table", name.clone(), name, Some(sql)));
    }
    out
}

/// A `CREATE` statement as compared with the expected one: ASCII lowercase, whitespace runs as
/// one space, none inside parentheses' edges or before commas (SQLite keeps the text as
/// written; keywords, identifiers and types are case-insensitive; the schema has no literals).
fn normalize_sql(sql: &str) -> String {
    let collapsed = sql
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    collapsed
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
}

/// What in the ledger's schema statemeter did not create, one description per object (empty
/// when the schema is exactly the expected one): triggers, views, extra tables or indexes, a
/// table whose definition differs (a rebuilt `events` without its `PRIMARY KEY` lets rows
/// repeat a seq), a missing `meta` or `events` table. A trigger fires inside the writer's own
/// transaction, so one planted in the file can drop or change rows as they are appended
/// without touching a stored row; a reader and a writer must not trust such a file.
pub(crate) fn schema_problems(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type DESC, name")?;
    let found = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let version = read_version(conn)?;
    let expected = expected_objects(version);
    let mut problems = Vec::new();
    for (kind, name, table, sql) in &found {
        if kind == "table" && STATISTICS.contains(&name.as_str()) {
            continue;
        }
        let known = expected.iter().find(|(k, n, _, _)| k == kind && n == name);
        match known {
            Some((_, _, t, def)) if t == table && *def == sql.as_deref().map(normalize_sql) => {}
            Some(_) => problems.push(format!("{kind} {name:?} was altered")),
            None if kind == "table" => problems.push(format!("table {name:?} was added")),
            None => problems.push(format!("{kind} {name:?} on table {table:?} was added")),
        }
    }
    let required: &[&str] = if version == 1 {
        &["meta", "events"]
    } else {
        &["meta", "events", "ids"]
    };
    for required in required {
        if !found
            .iter()
            .any(|(k, n, _, _)| k == "table" && n == *required)
        {
            problems.push(format!("table {required:?} is missing"));
        }
    }
    for (kind, name, table, _) in &expected {
        let has_table = found.iter().any(|(k, n, _, _)| k == "table" && n == table);
        if *kind == "index" && has_table && !found.iter().any(|(k, n, _, _)| k == kind && n == name)
        {
            problems.push(format!("index {name:?} of table {table:?} is missing"));
        }
    }
    Ok(problems)
}

/// Refuses to write to a ledger whose schema statemeter did not create ([`schema_problems`]).
fn refuse_foreign_schema(conn: &Connection, label: &str) -> Opened<()> {
    let problems = schema_problems(conn).map_err(|e| open_err(label, e))?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Ledger(format!(
        "ledger {label} has a schema statemeter did not create ({}): refusing to write to it \
         (an added trigger can drop or change events as they are written); \
         Ledger.open(path).verify() reports it",
        problems.join("; ")
    ))
    .into())
}

fn open_err(label: &str, e: rusqlite::Error) -> OpenError {
    let unusable = |m| OpenError::Unusable(Error::Ledger(m));
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => unusable(format!(
            "{label} is not a statemeter ledger (not an SQLite database)"
        )),
        Some(ErrorCode::DatabaseCorrupt) => unusable(format!("ledger {label} is corrupt: {e}")),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly) => {
            OpenError::NotWritable(Error::Ledger(format!(
                "cannot open ledger {label}: {e} (a ledger needs write access to its file and \
                 to its directory, for the -wal and -shm files beside it: is the path a \
                 directory, or read-only?)"
            )))
        }
        _ => unusable(format!("cannot open ledger {label}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: &Path) -> Result<Connection> {
        Ok(open_connection(
            Some(p),
            &p.display().to_string(),
            Durability::Sync,
        )?)
    }

    fn ledger_err(p: &Path) -> String {
        match open(p) {
            Err(Error::Ledger(m)) => m,
            other => panic!("expected a ledger error, got {other:?}"),
        }
    }

    #[test]
    fn new_file_gets_schema_meta_and_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let conn = open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let meta: Vec<(String, String)> = conn
            .prepare("SELECT key, value FROM meta ORDER BY key")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(meta.len(), 4, "{meta:?}");
        assert_eq!(meta[0], ("format".into(), FORMAT.into()));
        assert_eq!(meta[1], (ID_KEYS_KEY.into(), "8".into()));
        assert!(read_short_id_keys(&conn).unwrap());
        assert_eq!(meta[2].0, LEDGER_ID_KEY);
        let id = uuid::Uuid::try_parse(&meta[2].1).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(meta[3], ("version".into(), VERSION.into()));
        drop(conn);
        // Reopening an existing ledger works and does not duplicate anything.
        let conn = open_connection(Some(&path), "l", Durability::Batch).unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
        assert_eq!(read_ledger_id(&conn).unwrap().as_deref(), Some(&*meta[2].1));
        // An ids key scheme this version does not know is refused, not guessed.
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'id_keys'", [])
            .unwrap();
        let e = read_short_id_keys(&conn).unwrap_err().to_string();
        assert!(e.contains("does not know"), "{e}");
        conn.execute("DELETE FROM meta WHERE key = 'id_keys'", [])
            .unwrap();
        assert!(!read_short_id_keys(&conn).unwrap());
    }

    #[test]
    fn an_older_ledger_gets_its_id_at_the_first_writable_open_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        drop(open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("DELETE FROM meta WHERE key = 'ledger_id'")
            .unwrap();
        // Read-only: nothing is written, the ledger has no id.
        let ro = open_read_only(&path, "old").unwrap();
        assert_eq!(read_ledger_id(&ro).unwrap(), None);
        drop(ro);
        let first = read_ledger_id(&open(&path).unwrap()).unwrap().unwrap();
        let again = read_ledger_id(&open(&path).unwrap()).unwrap().unwrap();
        assert_eq!(first, again, "the id is stable across opens");
        let ro = open_read_only(&path, "old").unwrap();
        assert_eq!(read_ledger_id(&ro).unwrap(), Some(first));
    }

    #[test]
    fn missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope/l.db");
        let m = ledger_err(&missing);
        assert!(
            m.contains("does not exist") && m.contains(&missing.display().to_string()),
            "{m}"
        );
        assert!(ledger_err(dir.path()).contains("cannot open ledger"));
    }

    #[test]
    fn a_refused_write_is_told_apart_from_an_unusable_file() {
        let dir = tempfile::tempdir().unwrap();
        let at = |p: &Path| open_connection(Some(p), "l", Durability::Sync);
        // A directory is no ledger file, whatever the permissions.
        match at(dir.path()) {
            Err(OpenError::Unusable(e)) => assert!(e.to_string().contains("is a directory"), "{e}"),
            other => panic!("a directory opened as a ledger: {:?}", other.err()),
        }
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
        assert!(matches!(at(&garbage), Err(OpenError::Unusable(_))));
        let missing = dir.path().join("nope/l.db");
        assert!(matches!(at(&missing), Err(OpenError::Unusable(_))));
    }

    #[test]
    fn not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
        let m = ledger_err(&garbage);
        assert!(m.contains("garbage.db is not a statemeter ledger"), "{m}");
    }

    #[test]
    fn database_that_is_not_a_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let before = std::fs::read(&other).unwrap();
        assert!(ledger_err(&other).contains("other.db is not a statemeter ledger"));
        // Refused before anything changed: still a rollback-journal database, byte for byte.
        assert_eq!(std::fs::read(&other).unwrap(), before);

        let wrong = dir.path().join("wrong.db");
        Connection::open(&wrong)
            .unwrap()
            .execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
                 INSERT INTO meta VALUES ('format', 'something-else');",
            )
            .unwrap();
        assert!(ledger_err(&wrong).contains("wrong.db is not a statemeter ledger"));
    }

    #[test]
    fn other_version() {
        let dir = tempfile::tempdir().unwrap();
        let future = dir.path().join("future.db");
        drop(open(&future).unwrap());
        Connection::open(&future)
            .unwrap()
            .execute_batch("UPDATE meta SET value = '4' WHERE key = 'version'")
            .unwrap();
        let m = ledger_err(&future);
        assert!(
            m.contains("version 4") && m.contains("future.db") && m.contains("1, 2, 3"),
            "{m}"
        );
    }
}
