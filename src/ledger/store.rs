//! The ledger's storage: one SQLite file (WAL) or an in-memory database, appended to in
//! hash-chained transactions.
//!
//! Each row holds `record` (see [`super::chain`]) and `hash = SHA-256(prev_hash || record)`:
//! whole in versions 1 and 2; in version 3 whole every [`HASH_STRIDE`]th row and on the last
//! row of every append, its first [`CHECK_LEN`] bytes elsewhere ([`Store::hash_at`] re-derives
//! any seq's). `seq`, `record` and `hash` are the chain; `id` is the record's event id, indexed
//! for idempotency (docs/ledger-format.md).
//!
//! Several processes may append to one file: [`Store::append`] runs in one `BEGIN IMMEDIATE`
//! transaction and reads the chain's tail inside it, so writers take turns (waiting up to
//! [`BUSY_TIMEOUT`](super::schema::BUSY_TIMEOUT)) and the chain stays a single sequence.
//!
//! Performance notes: statements are prepared once and cached, the record text is built in a
//! reused buffer, and the idempotency check costs nothing on the common path: the insert uses
//! `ON CONFLICT(id) DO NOTHING` and only a refused insert reads the stored record.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::ahead::Ahead;
use super::chain::{chain_hash, event_difference, write_record, Head};
use super::compact::{self, Context, Parts};
use super::merkle::{leaf_hash, Hash};
use super::schema::{
    open_connection, open_read_only, read_ledger_id, read_short_id_keys, read_version,
    schema_problems, OpenError, CHECK_LEN, HASH_STRIDE, LEDGER_ID_KEY,
};
use super::tree::{self, Edge};
use crate::error::{Error, Result};

const INSERT: &str = "INSERT INTO events (seq, id, record, hash) \
                      VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO NOTHING";
const INSERT_V2: &str = "INSERT INTO events (seq, record, hash) VALUES (?1, ?2, ?3)";
const INSERT_ID: &str = "INSERT INTO ids (key, seq) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING";
/// Most context definitions a writer remembers (their text and seq); past it, it forgets them
/// all and defines again what it meets (a few hundred bytes each time).
pub(crate) const MAX_CONTEXTS: usize = 65_536;

/// Context definitions by text, with the seq of the record holding each.
pub(crate) type Contexts = HashMap<String, u64, foldhash::fast::RandomState>;

/// When a commit reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a committed append survives power loss.
    Sync,
    /// `synchronous=NORMAL`: with WAL, a commit survives a process crash; the last commits may be
    /// lost on power loss. The chain stays valid either way.
    Batch,
}

/// One event to append: its id and its canonical `event` and `classification` objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub id: String,
    /// Canonical JSON object (the record's `event`).
    pub event_json: String,
    /// Canonical JSON object (the record's `classification`).
    pub classification_json: String,
    /// Whether the caller supplied `ts`; when not, a retry with another `ts` is the same event.
    pub ts_explicit: bool,
}

impl Pending {
    /// The bytes its texts hold room for.
    pub fn capacity(&self) -> usize {
        self.id.capacity() + self.event_json.capacity() + self.classification_json.capacity()
    }
}

/// What [`Store::append`] did with one [`Pending`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written at `seq`.
    Appended { seq: u64 },
    /// The same id with an identical event is already at `seq`: nothing written.
    Duplicate { seq: u64 },
    /// The same id with a different event is already at `seq`: rejected, nothing written.
    Conflict { seq: u64, message: String },
}

/// What rows written ahead start from ([`Store::ahead_state`]).
pub(crate) struct AheadState {
    pub(crate) head: Head,
    /// The store's contexts epoch.
    pub(crate) epoch: u64,
    /// The context definitions, when the caller's copy is not of this epoch.
    pub(crate) contexts: Option<Contexts>,
    /// The leaf hashes after the last complete 16-leaf subtree of the Merkle tree.
    pub(crate) open: Vec<Hash>,
}

/// A ledger database.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    /// The path for messages, or `<memory>`.
    label: String,
    /// Reused record buffer.
    record: String,
    /// The Merkle tree's right edge as this writer last left it.
    edge: Option<Edge>,
    /// The ledger's format version (1, 2 or 3).
    version: u32,
    /// Version 2: the `ids` table keys ids by 8 bytes (16 only for an id whose 8 are taken);
    /// false in a version-2 ledger created before 8-byte keys (16 bytes each).
    short_keys: bool,
    /// Version 2: the context definitions this store wrote and committed, by text, with the
    /// seq of the record holding each (later records refer to it).
    contexts: Contexts,
    /// Counts the changes to `contexts` that records written ahead (`super::ahead`) did not
    /// foresee: their writer's copy of the definitions holds while this is unchanged.
    contexts_epoch: u64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Refuses the two paths SQLite does not read as a file name: "" is a private temporary
/// database that vanishes at close, and ":memory:" an in-memory one, while the ledger's column
/// store would still be written beside it on disk. Events "recorded" there would be lost
/// without a word; a file really named `:memory:` is reached as `./:memory:`.
fn refuse_sqlite_special(path: &Path) -> Result<()> {
    let why = match path.as_os_str().to_str() {
        Some("") => "is empty: give a ledger file, or no path (None) for an in-memory ledger",
        Some(":memory:") => {
            "is SQLite's name for a database in memory, not a file: give no path (None) for an \
             in-memory ledger, or ./:memory: for a file of that name"
        }
        _ => return Ok(()),
    };
    Err(Error::validation("path", why))
}

impl Store {
    /// Opens (creating if missing) the ledger at `path`, or a new in-memory ledger for `None`.
    ///
    /// Fails with `Error::Ledger` naming the path when the directory does not exist, the file
    /// is not an SQLite database, is corrupt, or is an SQLite database that is not a ledger;
    /// with `Error::Validation` (field `path`) for an empty path.
    pub fn open(path: Option<&Path>, durability: Durability) -> Result<Store> {
        if let Some(p) = path {
            refuse_sqlite_special(p)?;
        }
        let label = path.map_or_else(|| "<memory>".to_string(), |p| p.display().to_string());
        let mut conn = open_connection(path, &label, durability).map_err(Error::from)?;
        build_tree(&mut conn);
        Store::with(conn, path.map(Path::to_path_buf), label)
    }

    fn with(conn: Connection, path: Option<PathBuf>, label: String) -> Result<Store> {
        // Kept absolute: the column store beside the file, a read-only connection for SQL and
        // a forked child's reopening find the same file after the process changes directory.
        let path = path.map(|p| std::path::absolute(&p).unwrap_or(p));
        let version = read_version(&conn)?;
        let short_keys = version >= 2 && read_short_id_keys(&conn)?;
        Ok(Store {
            conn,
            path,
            label,
            record: String::new(),
            edge: None,
            version,
            short_keys,
            contexts: Contexts::default(),
            contexts_epoch: 0,
        })
    }

    /// Opens an existing ledger file (never creates one): for writing when this process may
    /// write it, else for reading only ([`Store::open_read_only`]) — verifying and reporting
    /// need no writes.
    ///
    /// Fails with `Error::Ledger` when nothing is at `path`. When both attempts fail, the
    /// error is the read-only attempt's if writing was what failed (it says why the file
    /// cannot be read either), else the first attempt's (not a ledger, another version, ...).
    pub fn open_existing(path: &Path, durability: Durability) -> Result<Store> {
        refuse_sqlite_special(path)?;
        if !path.exists() {
            return Err(Error::Ledger(format!("no ledger at {}", path.display())));
        }
        let label = path.display().to_string();
        let first = match open_connection(Some(path), &label, durability) {
            Ok(mut conn) => {
                build_tree(&mut conn);
                return Store::with(conn, Some(path.to_path_buf()), label);
            }
            Err(e) => e,
        };
        match first {
            // Not a storage failure (e.g. an integrity error): reading would not help.
            OpenError::Unusable(e) if !matches!(e, Error::Ledger(_)) => Err(e),
            OpenError::NotWritable(_) => Store::open_read_only(path),
            OpenError::Unusable(e) => Store::open_read_only(path).map_err(|_| e),
        }
    }

    /// Opens an existing ledger file for reading only (a file this process may not write, or
    /// read-only media); appending to it fails with `Error::Ledger`. See
    /// `schema::open_read_only` for what happens on a read-only file system.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let label = path.display().to_string();
        let conn = open_read_only(path, &label)?;
        Store::with(conn, Some(path.to_path_buf()), label)
    }

    /// A new in-memory ledger of format version 1, as earlier versions wrote them (tests of
    /// reading, verifying and appending to version-1 ledgers).
    #[cfg(test)]
    pub(crate) fn open_v1_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(super::schema::SCHEMA_V1)?;
        Store::with(conn, None, "<memory>".into())
    }

    /// A new in-memory ledger of format version 2, as earlier versions wrote them (every row
    /// keeps its whole chain hash).
    #[cfg(test)]
    pub(crate) fn open_v2_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(super::schema::SCHEMA_V2)?;
        Store::with(conn, None, "<memory>".into())
    }

    /// The ledger's format version: 1, 2 or 3 (docs/ledger-format.md).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The file path, or `None` for an in-memory ledger.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The underlying connection, for read queries over the projection columns
    /// (`kind`, `ts`, `session_id`). Writing through it breaks the chain.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// In a forked child: closes the connection inherited from the parent (replacing it with
    /// an empty in-memory database), so that a new connection of this process to the file
    /// does not share the inherited one's lock bookkeeping (SQLite keeps it per process and
    /// file: the child would believe it holds the parent's locks). The parent's locks are its
    /// own and stay; with them held, the close neither checkpoints nor deletes anything.
    /// Only call it when no thread was using the connection at the fork.
    pub fn close_inherited(&mut self) -> Result<()> {
        let old = std::mem::replace(&mut self.conn, Connection::open_in_memory()?);
        old.close().map_err(|(_, e)| Error::from(e))?;
        self.contexts.clear();
        self.contexts_epoch += 1;
        self.path = None;
        self.label = "<closed after fork>".into();
        Ok(())
    }

    /// Whether another SQLite library in this process released this connection's locks
    /// (see [`super::locks`]); `None` when it cannot be told (in memory, not Linux).
    pub fn locks_lost(&self) -> Option<bool> {
        // A writable connection in WAL mode keeps a `-shm` file open; one in another journal
        // mode (a file left mid-creation by a crash may stay in rollback mode) has none.
        let wal = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .is_ok_and(|m| m.eq_ignore_ascii_case("wal"));
        if !wal {
            return None;
        }
        let writable = !self.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true);
        super::locks::locks_lost(self.path.as_deref()?, writable)
    }

    /// What in the file's schema statemeter did not create (triggers, views, extra or altered
    /// tables and indexes, a missing table), one description each; empty for a ledger as
    /// statemeter made it.
    pub fn schema_problems(&self) -> Result<Vec<String>> {
        Ok(schema_problems(&self.conn)?)
    }

    /// The ledger's identity (`meta.ledger_id`, a UUID as lowercase hyphenated text): given
    /// when the ledger is created, or at the first writable open of a ledger made before
    /// ledgers had one. `None` for such an older ledger opened only for reading since.
    ///
    /// Fails with `Error::Ledger` when the stored value is not a UUID (the `meta` table was
    /// edited): an id names files and checkpoints, so it is never passed on unchecked.
    pub fn ledger_id(&self) -> Result<Option<String>> {
        let Some(text) = read_ledger_id(&self.conn)? else {
            return Ok(None);
        };
        match uuid::Uuid::try_parse(&text) {
            Ok(id) if id.hyphenated().to_string() == text => Ok(Some(text)),
            _ => Err(Error::Ledger(format!(
                "ledger {}: meta {LEDGER_ID_KEY} {text:?} is not a UUID in lowercase \
                 hyphenated form (the meta table was edited)",
                self.label
            ))),
        }
    }

    /// Number of events.
    pub fn len(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Whether the ledger has no events.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Stores a ruleset's evidence catalogue under its digest (once; later calls are no-ops).
    /// Records name the catalogue by digest instead of repeating every explanation.
    pub fn register_catalogue(&mut self, digest: &str, name: &str, catalogue: &str) -> Result<()> {
        let label = self.label.clone();
        let fail = |e: rusqlite::Error| {
            Error::Ledger(format!(
                "cannot store the ruleset catalogue in ledger {label}: {e}"
            ))
        };
        self.conn
            .execute(
                "CREATE TABLE IF NOT EXISTS rulesets \
                 (digest TEXT PRIMARY KEY, name TEXT NOT NULL, catalogue TEXT NOT NULL)",
                [],
            )
            .map_err(fail)?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO rulesets (digest, name, catalogue) VALUES (?1, ?2, ?3)",
                params![digest, name, catalogue],
            )
            .map_err(fail)?;
        Ok(())
    }

    /// Every stored catalogue as `(digest, name, catalogue)`.
    pub fn catalogues(&self) -> Result<Vec<(String, String, String)>> {
        let exists: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'rulesets'",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT digest, name, catalogue FROM rulesets ORDER BY digest")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The root of the Merkle tree of the first `size` records (`super::tree`).
    pub fn tree_root(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        tree::Reader::new(&self.conn)?.root(size)
    }

    /// The audit path of leaf `index` (the record at seq `index + 1`) in the tree of the first
    /// `size` records, bottom up.
    pub fn inclusion_path(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        if index >= size {
            return Err(Error::validation(
                "event",
                format!("seq {} is not in a tree of {size} records", index + 1),
            ));
        }
        super::merkle::inclusion_path(&mut tree::Reader::new(&self.conn)?, index, size)
    }

    /// The consistency proof from the tree of the first `old` records to that of the first
    /// `new`.
    pub fn consistency_path(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        if old > new {
            return Err(Error::validation(
                "old",
                format!("a tree of {old} records cannot precede one of {new}"),
            ));
        }
        super::merkle::consistency_path(&mut tree::Reader::new(&self.conn)?, old, new)
    }

    fn check_size(&self, size: u64) -> Result<()> {
        let n = self.head()?.seq;
        if size > n {
            return Err(Error::validation(
                "size",
                format!("the ledger holds {n} records, fewer than a tree of {size}"),
            ));
        }
        Ok(())
    }

    /// The record bytes at `seq`, or `None`.
    pub fn record_at(&self, seq: u64) -> Result<Option<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM events WHERE seq = ?1")?;
        Ok(stmt
            .query_row([seq.min(i64::MAX as u64) as i64], |r| {
                Ok(r.get_ref(0)?.as_bytes().unwrap_or(b"").to_vec())
            })
            .optional()?)
    }

    /// The seq of the event with id `id`, or `None`.
    pub fn seq_of(&self, id: &str) -> Result<Option<u64>> {
        if self.version == 1 {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT seq FROM events WHERE id = ?1")?;
            return Ok(stmt
                .query_row([id], |r| r.get::<_, i64>(0))
                .optional()?
                .map(|s| s as u64));
        }
        // The key is 8 or 16 bytes of the id: the record says whose it is. An id whose
        // 8-byte key is another's is keyed by 16.
        let long = compact::id_key(id);
        let short = compact::short_id_key(id);
        let keys: &[&[u8]] = if self.short_keys {
            &[&short, &long]
        } else {
            &[&long]
        };
        for key in keys {
            let Some(seq) = key_seq(&self.conn, key)? else {
                continue;
            };
            if id_at(&self.conn, seq)?.as_deref() == Some(id) {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    /// What in the stored Merkle tree disagrees with the records, or `None` (also for a
    /// ledger without the tree's table).
    pub fn tree_problem(&self) -> Result<Option<String>> {
        tree::problem(&self.conn, &self.head()?)
    }

    /// Keeps a signed checkpoint note (once; later calls with the same note are no-ops).
    /// Returns false, keeping nothing, when the ledger is open for reading only.
    pub fn keep_checkpoint(&mut self, size: u64, root: &Hash, note: &str) -> Result<bool> {
        if self.conn.is_readonly(rusqlite::MAIN_DB)? || !tree::has_table(&self.conn)? {
            return Ok(false);
        }
        self.conn
            .prepare_cached(
                "INSERT INTO checkpoints (size, root_hash, note) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(note) DO NOTHING",
            )?
            .execute(params![size as i64, &root[..], note])
            .map_err(|e| {
                Error::Ledger(format!(
                    "cannot keep the checkpoint in ledger {}: {e}",
                    self.label
                ))
            })?;
        Ok(true)
    }

    /// The kept checkpoint notes, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<String>> {
        if !tree::has_table(&self.conn)? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT note FROM checkpoints ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The chain hash of the event at `seq` (the zero hash at seq 0); `None` when no row has
    /// that seq or the stored hashes do not give it. Versions 1 and 2 store it in every row
    /// (it must be 32 bytes); version 3 only in some ([`HASH_STRIDE`]): it is re-derived from
    /// the nearest whole hash stored at or below `seq` over the records after it (at most
    /// `HASH_STRIDE - 1` SHA-256s), each row's stored check agreeing on the way.
    pub fn hash_at(&self, seq: u64) -> Result<Option<[u8; 32]>> {
        if seq == 0 {
            return Ok(Some([0; 32]));
        }
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        if self.version < 3 {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT hash FROM events WHERE seq = ?1")?;
            let mut rows = stmt.query([seq])?;
            return Ok(match rows.next()? {
                Some(r) => r
                    .get_ref(0)?
                    .as_bytes()
                    .ok()
                    .and_then(|b| b.try_into().ok()),
                None => None,
            });
        }
        let base = self
            .conn
            .prepare_cached(
                "SELECT seq, hash FROM events WHERE seq <= ?1 AND length(hash) = 32 \
                 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([seq], |r| {
                let hash = r
                    .get_ref(1)?
                    .as_bytes()
                    .ok()
                    .and_then(|b| b.try_into().ok());
                Ok((r.get::<_, i64>(0)?, hash))
            })
            .optional()?;
        let (from, mut prev) = match base {
            Some((at, Some(hash))) => (at, hash),
            Some((_, None)) => return Ok(None),
            None => (0, [0; 32]),
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, record, hash FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query([from, seq])?;
        let mut at = from;
        while let Some(row) = rows.next()? {
            let here: i64 = row.get(0)?;
            let record = row.get_ref(1)?.as_bytes().unwrap_or(b"");
            let stored = row.get_ref(2)?.as_bytes().unwrap_or(b"");
            let hash = chain_hash(&prev, record);
            if here != at + 1 || !stored_matches(stored, &hash, 3) {
                return Ok(None);
            }
            at = here;
            prev = hash;
        }
        Ok((at == seq).then_some(prev))
    }

    /// The last seq and its stored hash; [`Head::EMPTY`] for an empty ledger.
    pub fn head(&self) -> Result<Head> {
        tail(&self.conn)
    }

    /// Appends `batch` in one transaction and reports what happened to each event, in order.
    ///
    /// A failure of the transaction (disk full, read-only file, another writer holding the
    /// lock past the busy timeout) returns `Error::Ledger` with nothing written; the store
    /// stays usable.
    pub fn append(&mut self, batch: &[Pending]) -> Result<Vec<Outcome>> {
        Ok(self.append_checked(batch, &[], false, None)?.0)
    }

    /// [`Store::append`] with each event's version-2 record parts made beforehand:
    /// `parts[i]` must be [`Parts::fill`] of `batch[i]`'s event and classification texts (the
    /// recorder's encoder makes them on its own thread). An event whose parts did not fill is
    /// split here, as [`Store::append`] does.
    ///
    /// With `ahead`, the parts also hold the rows written ahead on that assumption
    /// (`super::ahead`): they are appended as written while it holds. The flag returned says
    /// whether every event was (false: the writer's assumptions no longer hold).
    pub(crate) fn append_with_parts(
        &mut self,
        batch: &[Pending],
        parts: &[Parts],
        ahead: Option<&Ahead>,
    ) -> Result<(Vec<Outcome>, bool)> {
        debug_assert_eq!(batch.len(), parts.len());
        self.append_checked(batch, parts, false, ahead)
    }

    /// What rows written ahead start from (see [`AheadState`]), with the context definitions
    /// unless `known_epoch` is still the epoch. `None` for a version-1 ledger (its records
    /// are not written ahead).
    pub(crate) fn ahead_state(&self, known_epoch: Option<u64>) -> Result<Option<AheadState>> {
        if self.version < 2 {
            return Ok(None);
        }
        let contexts = (known_epoch != Some(self.contexts_epoch)).then(|| self.contexts.clone());
        let head = self.head()?;
        let open = tree::open_leaves(&self.conn, self.edge.as_ref(), &head)?;
        Ok(Some(AheadState {
            head,
            epoch: self.contexts_epoch,
            contexts,
            open,
        }))
    }

    /// [`Store::append`]; with `atomic`, a conflict rolls the whole batch back. `parts` and
    /// `ahead`: see [`Store::append_with_parts`] (empty: none).
    fn append_checked(
        &mut self,
        batch: &[Pending],
        parts: &[Parts],
        atomic: bool,
        ahead: Option<&Ahead>,
    ) -> Result<(Vec<Outcome>, bool)> {
        if batch.is_empty() {
            return Ok((Vec::new(), false));
        }
        for p in batch {
            for (field, json) in [
                ("event", &p.event_json),
                ("classification", &p.classification_json),
            ] {
                if !(json.starts_with('{') && json.ends_with('}')) {
                    return Err(Error::validation(field, "must be a canonical JSON object"));
                }
            }
        }
        if self.contexts.len() > MAX_CONTEXTS {
            self.contexts.clear();
            self.contexts_epoch += 1;
        }
        let mut defined = Vec::new();
        let result = self.append_tx(Batch { batch, parts }, atomic, ahead, &mut defined);
        if result.is_err() && !defined.is_empty() {
            // Rolled back: the definitions of this batch are not in the file.
            for text in defined {
                self.contexts.remove(&text);
            }
            self.contexts_epoch += 1;
        }
        result
    }

    fn append_tx(
        &mut self,
        batch: Batch<'_>,
        atomic: bool,
        ahead: Option<&Ahead>,
        defined: &mut Vec<String>,
    ) -> Result<(Vec<Outcome>, bool)> {
        let Store {
            conn,
            label,
            record,
            edge,
            version,
            short_keys,
            contexts,
            contexts_epoch,
            ..
        } = self;
        let known = edge.take();
        let fail = |e: Error| match e {
            Error::Ledger(m) => Error::Ledger(format!("cannot append to ledger {label}: {m}")),
            other => other,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| fail(e.into()))?;
        // On an error, dropping `tx` rolls back; so does a failed commit.
        let (outcomes, new_edge, held) = if *version == 1 {
            let (outcomes, edge) = append_in(&tx, batch.batch, record, known).map_err(fail)?;
            (outcomes, edge, false)
        } else {
            let short = *short_keys;
            let sparse = *version >= 3;
            let contexts = Definitions {
                known: contexts,
                epoch: contexts_epoch,
                defined,
            };
            append_in_v2(&tx, batch, ahead, record, known, contexts, short, sparse).map_err(fail)?
        };
        if atomic {
            if let Some(message) = outcomes.iter().find_map(|o| match o {
                Outcome::Conflict { message, .. } => Some(message),
                _ => None,
            }) {
                return Err(Error::validation(
                    "id",
                    format!("{message}; nothing of this batch was recorded"),
                ));
            }
        }
        tx.commit().map_err(|e| fail(e.into()))?;
        *edge = Some(new_edge);
        Ok((outcomes, held))
    }

    /// [`Store::append`], all or nothing: when an event conflicts (its id is already stored,
    /// or earlier in `batch`, with another payload) the transaction is rolled back and the
    /// conflict returned as `Error::Validation` (field `id`); nothing of `batch` is written.
    pub fn append_all_or_nothing(&mut self, batch: &[Pending]) -> Result<Vec<Outcome>> {
        Ok(self.append_checked(batch, &[], true, None)?.0)
    }

    /// Calls `f(seq, record)` for every event after `after_seq`, in seq order, streaming. A
    /// version-2 record is handed over expanded: `{"classification":C,"event":E,"seq":N,
    /// "v":2}` with the event's keys from the record and its context together.
    pub fn for_each_record(
        &self,
        after_seq: u64,
        f: impl FnMut(u64, &str) -> Result<()>,
    ) -> Result<()> {
        self.for_each_record_between(after_seq, u64::MAX, u64::MAX, f)
    }

    /// [`Store::for_each_record`] for the events after `after_seq` up to `upto`, at most
    /// `limit` of them.
    pub fn for_each_record_between(
        &self,
        after_seq: u64,
        upto: u64,
        limit: u64,
        mut f: impl FnMut(u64, &str) -> Result<()>,
    ) -> Result<()> {
        self.stored_between(after_seq, upto, limit, false, |seq, text, _, _| {
            f(seq, text)
        })
    }

    /// [`Store::for_each_record_between`], also handing over each record as stored (the bytes
    /// hashed: a version-2 record not expanded) and its chain hash: the stored one (versions
    /// 1 and 2), or re-derived from [`Store::hash_at`] `after_seq` (version 3, where most
    /// rows keep only a check of it), every row's stored hash or check agreeing (else
    /// `Error::Integrity`: the ledger does not verify there).
    pub fn for_each_stored_between(
        &self,
        after_seq: u64,
        upto: u64,
        limit: u64,
        f: impl FnMut(u64, &str, &str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.stored_between(after_seq, upto, limit, true, f)
    }

    /// [`Store::for_each_stored_between`]; without `hashes`, a version-3 ledger's hashes are
    /// not re-derived (the callback gets the stored bytes).
    fn stored_between(
        &self,
        after_seq: u64,
        upto: u64,
        limit: u64,
        hashes: bool,
        mut f: impl FnMut(u64, &str, &str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let sql = "SELECT seq, record, hash FROM events WHERE seq > ?1 AND seq <= ?2 \
                   ORDER BY seq LIMIT ?3";
        let clamp = |n: u64| n.min(i64::MAX as u64) as i64;
        let mut chain = match hashes && self.version >= 3 {
            true => Some(self.hash_at(after_seq)?.ok_or_else(|| {
                Error::Integrity(format!(
                    "the chain hash at seq {after_seq} cannot be re-derived from the stored \
                     hashes: the ledger is damaged (verify() says where)"
                ))
            })?),
            false => None,
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query((clamp(after_seq), clamp(upto), clamp(limit)))?;
        let mut expander = Expander::default();
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let record = utf8_record(seq, row.get_ref(1)?)?;
            let stored = row.get_ref(2)?.as_bytes().unwrap_or_default();
            let derived;
            let hash = match chain.as_mut() {
                Some(prev) => {
                    derived = chain_hash(prev, record.as_bytes());
                    if !stored_matches(stored, &derived, self.version) {
                        return Err(Error::Integrity(format!(
                            "the hash stored at seq {seq} does not re-derive: the ledger does \
                             not verify (verify() says how)"
                        )));
                    }
                    *prev = derived;
                    &derived[..]
                }
                None => stored,
            };
            if self.version == 1 {
                f(seq as u64, record, record, hash)?;
            } else {
                let text = expander.expand(&self.conn, seq as u64, record)?;
                f(seq as u64, &text, record, hash)?;
            }
        }
        Ok(())
    }

    /// The record at `seq` as [`Store::for_each_record`] hands it over; `None` when no row
    /// has that seq.
    pub fn expanded_record_at(&self, seq: u64) -> Result<Option<String>> {
        let Some(record) = raw_record(&self.conn, seq)? else {
            return Ok(None);
        };
        if self.version == 1 {
            return Ok(Some(record));
        }
        Ok(Some(Expander::default().expand(&self.conn, seq, &record)?))
    }

    /// Calls `f(seq, record bytes, hash bytes)` for every row in seq order until `f` returns
    /// false, whatever the columns hold: verification must see tampered rows too (a record or
    /// hash that is neither text nor blob reads as empty).
    pub(crate) fn for_each_row(
        &self,
        mut f: impl FnMut(i64, &[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let sql = "SELECT seq, record, hash FROM events ORDER BY seq";
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let record = row.get_ref(1)?.as_bytes().unwrap_or(b"");
            let hash = row.get_ref(2)?.as_bytes().unwrap_or(b"");
            if !f(seq, record, hash)? {
                break;
            }
        }
        Ok(())
    }
    /// Every row as stored (seq, record bytes, hash bytes), in seq order: for tests that
    /// compare two ledgers row by row.
    #[cfg(test)]
    pub(crate) fn stored_rows(&self) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        self.for_each_row(|seq, record, hash| {
            out.push((seq, record.to_vec(), hash.to_vec()));
            Ok(true)
        })
        .expect("rows read");
        out
    }
}

/// The last row's seq and hash (in every version the last row keeps the whole hash).
fn tail(conn: &Connection) -> Result<Head> {
    let mut stmt = conn.prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?;
    let row = stmt
        .query_row([], |r| {
            let hash = r
                .get_ref(1)?
                .as_bytes()
                .ok()
                .and_then(|h| <[u8; 32]>::try_from(h).ok());
            Ok((r.get::<_, i64>(0)?, hash))
        })
        .optional()?;
    match row {
        None => Ok(Head::EMPTY),
        Some((seq, Some(hash))) if seq > 0 => Ok(Head {
            seq: seq as u64,
            hash,
        }),
        Some((seq, _)) => Err(Error::Integrity(format!(
            "the last row (seq {seq}) has no valid seq or 32-byte hash: the ledger is damaged"
        ))),
    }
}

fn utf8_record(seq: i64, value: ValueRef<'_>) -> Result<&str> {
    match value {
        ValueRef::Text(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
    .ok_or_else(|| Error::Integrity(format!("the record at seq {seq} is not UTF-8 text")))
}

/// The stored record text at `seq`.
fn raw_record(conn: &Connection, seq: u64) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached("SELECT record FROM events WHERE seq = ?1")?;
    let mut rows = stmt.query([seq.min(i64::MAX as u64) as i64])?;
    match rows.next()? {
        None => Ok(None),
        Some(row) => Ok(Some(utf8_record(seq as i64, row.get_ref(0)?)?.to_string())),
    }
}

/// Expands version-2 records, remembering the definitions met on the way (a ledger holds a
/// few hundred; a reference to one not met yet is read from its row).
#[derive(Default)]
struct Expander {
    definitions: HashMap<u64, String>,
}

impl Expander {
    fn expand(&mut self, conn: &Connection, seq: u64, record: &str) -> Result<String> {
        let bad = |why: &str| {
            Error::Integrity(format!(
                "the record at seq {seq} is not a readable version-2 record ({why})"
            ))
        };
        let (context, own) = compact::parse_record_v2(record).ok_or_else(|| bad("its layout"))?;
        let expanded = match context {
            Context::Inline(def) => {
                self.definitions.insert(seq, def.to_string());
                compact::expand(def, own, seq)
            }
            Context::Ref(at) => {
                if at >= seq {
                    return Err(bad("its context names a later record"));
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = self.definitions.entry(at)
                {
                    let text = raw_record(conn, at)?
                        .ok_or_else(|| bad("its context names a missing record"))?;
                    let def = match compact::parse_record_v2(&text) {
                        Some((Context::Inline(def), _)) => def.to_string(),
                        _ => return Err(bad("its context names a record without one")),
                    };
                    slot.insert(def);
                }
                compact::expand(&self.definitions[&at], own, seq)
            }
        };
        expanded.ok_or_else(|| bad("its context is not a definition"))
    }
}

/// The seq the `ids` table holds under `key`.
fn key_seq(conn: &Connection, key: &[u8]) -> Result<Option<u64>> {
    let mut stmt = conn.prepare_cached("SELECT seq FROM ids WHERE key = ?1")?;
    Ok(stmt
        .query_row([key], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|s| s as u64))
}

/// The event id the version-2 record at `seq` names (in its `e`), or `None` (no such row, or
/// no readable id).
fn id_at(conn: &Connection, seq: u64) -> Result<Option<String>> {
    let Some(text) = raw_record(conn, seq)? else {
        return Ok(None);
    };
    Ok(compact::parse_record_v2(&text).and_then(|(_, own)| {
        serde_json::from_str::<serde_json::Value>(own)
            .ok()
            .and_then(|e| e["id"].as_str().map(str::to_string))
    }))
}

/// Claims the `ids` key of `p`, about to be appended at `next`: `Ok(None)` when its id is new
/// (a key now names `next`), else the event of that id already stored.
///
/// With 8-byte keys (`short`) the id claims its 8-byte key; when another id holds that, its
/// 16-byte key. An id therefore has a 16-byte key only when its 8-byte key is another id's,
/// and 8-byte keys are never removed: an id whose 8-byte key was free is new. Ledgers keyed by
/// 16 bytes claim the 16-byte key only.
fn claim_id(
    conn: &Connection,
    insert_id: &mut rusqlite::CachedStatement<'_>,
    p: &Pending,
    short_key: Option<[u8; 8]>,
    next: u64,
    short: bool,
) -> Result<Option<Outcome>> {
    if short {
        let key = short_key.unwrap_or_else(|| compact::short_id_key(&p.id));
        if insert_id.execute(params![&key[..], next as i64])? == 1 {
            return Ok(None);
        }
        let seq = key_seq(conn, &key)?.ok_or_else(|| {
            not_stored(format!(
                "the id of event {} is indexed but cannot be read back",
                p.id
            ))
        })?;
        if id_at(conn, seq)?.as_deref() == Some(p.id.as_str()) {
            return existing_v2(conn, p, &key).map(Some);
        }
    }
    let key = compact::id_key(&p.id);
    if insert_id.execute(params![&key[..], next as i64])? == 1 {
        return Ok(None);
    }
    existing_v2(conn, p, &key).map(Some)
}

/// A store's context definitions as an append uses them: `known` (by text, with the seq of
/// the record holding each), `epoch` (bumped when they change in a way rows written ahead did
/// not foresee) and `defined`, the definitions this append wrote (forgotten again if its
/// transaction does not commit).
struct Definitions<'a> {
    known: &'a mut Contexts,
    epoch: &'a mut u64,
    defined: &'a mut Vec<String>,
}

/// The body of [`Store::append`] for a version-2 ledger, inside its transaction: each event's
/// context is defined in its record the first time this store writes it, and referred to by
/// that record's seq afterwards. `short`: the `ids` table keys ids by 8 bytes.
/// `sparse` (version 3): a row keeps the whole hash when its seq is a multiple of
/// [`HASH_STRIDE`] or it is the append's last row (set once the batch is written), and its
/// first [`CHECK_LEN`] bytes otherwise.
///
/// With `ahead`, when the append starts from its head and contexts epoch, each event's row is
/// the one written ahead (record, chain hash, leaf hash) until an event is not appended at the
/// seq it was written for (its id was already stored); from there on the rows are written
/// here. The flag returned says whether every event's row was the one written ahead.
#[allow(clippy::too_many_arguments)]
fn append_in_v2(
    conn: &Connection,
    Batch { batch, parts }: Batch<'_>,
    ahead: Option<&Ahead>,
    record: &mut String,
    edge: Option<Edge>,
    contexts: Definitions<'_>,
    short: bool,
    sparse: bool,
) -> Result<(Vec<Outcome>, Edge, bool)> {
    let Definitions {
        known: contexts,
        epoch,
        defined,
    } = contexts;
    let before = tail(conn)?;
    let Head {
        mut seq,
        hash: mut prev,
    } = before;
    let first = seq;
    let mut leaves: Vec<Hash> = Vec::with_capacity(batch.len());
    // The 16-leaf subtrees the rows written ahead and taken as written bring (see `tree`).
    let mut roots: Vec<(u64, Hash)> = Vec::new();
    let mut insert = conn.prepare_cached(INSERT_V2)?;
    let mut insert_id = conn.prepare_cached(INSERT_ID)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut here = Parts::default();
    // Whether the rows written ahead are still the ones to append.
    let mut on_track =
        ahead.is_some_and(|a| a.start == before && a.epoch == *epoch && parts.len() == batch.len());
    // Events from `at` on are appended a block at a time while on track (see
    // [`append_block`]); those before `one_by_one` one at a time (a block that did not fit).
    let mut at = 0;
    let mut one_by_one = 0;
    while at < batch.len() {
        if on_track && short && at >= one_by_one {
            let rows = &parts[at..batch.len().min(at + BLOCK_ROWS)];
            if let Some(last) = append_block(conn, rows, seq, sparse)? {
                for (k, part) in rows.iter().enumerate() {
                    if part.ahead.defines {
                        let (_, definition) = part.get().expect("checked by append_block");
                        contexts.insert(definition.to_string(), seq + 1 + k as u64);
                        defined.push(definition.to_string());
                    }
                    leaves.push(part.ahead.leaf);
                    if let Some(root) = part.ahead.chunk {
                        roots.push((part.ahead.seq / tree::CHUNK - 1, root));
                    }
                    outcomes.push(Outcome::Appended {
                        seq: seq + 1 + k as u64,
                    });
                }
                seq += BLOCK_ROWS as u64;
                prev = last;
                at += BLOCK_ROWS;
                continue;
            }
            one_by_one = at + BLOCK_ROWS;
        }
        let i = at;
        let p = &batch[i];
        at += 1;
        let next = seq + 1;
        // A row written ahead holds the id's 8-byte key whether or not it is on track.
        let key = parts
            .get(i)
            .filter(|x| x.ahead.seq != 0)
            .map(|x| x.ahead.key);
        if let Some(found) = claim_id(conn, &mut insert_id, p, key, next, short)? {
            on_track = false;
            outcomes.push(found);
            continue;
        }
        if on_track {
            let written = &parts[i].ahead;
            if let (true, Some((_, definition))) = (written.seq == next, parts[i].get()) {
                let kept = match sparse && next % HASH_STRIDE != 0 {
                    true => &written.hash[..CHECK_LEN],
                    false => &written.hash[..],
                };
                insert.execute(params![next as i64, written.record.as_str(), kept])?;
                if written.defines {
                    contexts.insert(definition.to_string(), next);
                    defined.push(definition.to_string());
                }
                seq = next;
                prev = written.hash;
                leaves.push(written.leaf);
                if let Some(root) = written.chunk {
                    roots.push((next / tree::CHUNK - 1, root));
                }
                outcomes.push(Outcome::Appended { seq });
                continue;
            }
            on_track = false;
        }
        let made = parts.get(i).and_then(Parts::get);
        let (own, definition) = match made {
            Some(made) => made,
            None => {
                here.fill(&p.event_json, &p.classification_json);
                here.get().ok_or_else(|| {
                    Error::validation("event", "must be a canonical JSON object, each key once")
                })?
            }
        };
        let context = match contexts.get(definition) {
            Some(&at) => Context::Ref(at),
            None => Context::Inline(definition),
        };
        record.clear();
        compact::write_record_v2(record, context, own, next);
        let hash = chain_hash(&prev, record.as_bytes());
        let kept = match sparse && next % HASH_STRIDE != 0 {
            true => &hash[..CHECK_LEN],
            false => &hash[..],
        };
        insert.execute(params![next as i64, record.as_str(), kept])?;
        if matches!(context, Context::Inline(_)) {
            contexts.insert(definition.to_string(), next);
            defined.push(definition.to_string());
            *epoch += 1;
        }
        seq = next;
        prev = hash;
        leaves.push(leaf_hash(record.as_bytes()));
        outcomes.push(Outcome::Appended { seq });
    }
    let after = Head { seq, hash: prev };
    if sparse && seq > first && seq % HASH_STRIDE != 0 {
        // The last row keeps the whole hash: the head, and the next append's start.
        conn.prepare_cached("UPDATE events SET hash = ?2 WHERE seq = ?1")?
            .execute(params![seq as i64, &prev[..]])?;
    }
    confirm_appended(conn, first, &after)?;
    let edge = tree::extend(conn, edge, &before, &leaves, &roots, &after)?;
    if ahead.is_some() && !on_track {
        // The writer's copy of the definitions may name records that were not written as it
        // assumed: it must take them again.
        *epoch += 1;
    }
    Ok((outcomes, edge, on_track))
}

/// Rows [`append_block`] inserts with one statement per table.
const BLOCK_ROWS: usize = 64;

/// `INSERT OR IGNORE INTO {table} ({columns}) VALUES (?, ...), ...` for [`BLOCK_ROWS`] rows
/// of `width` values each. `OR IGNORE`, not `ON CONFLICT DO NOTHING` or a plain insert: SQLite
/// gives a statement of many rows that may abort half-way a statement journal (a copy of each
/// page it changes, to undo its own rows); one that ignores a refused row cannot abort, and
/// its caller counts the rows that went in instead.
fn block_insert(table: &str, columns: &str, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(","));
    let rows = vec![row.as_str(); BLOCK_ROWS].join(",");
    format!("INSERT OR IGNORE INTO {table} ({columns}) VALUES {rows}")
}

/// Appends [`BLOCK_ROWS`] rows written ahead (`rows`, each on track: written for the seq after
/// the one before, from `seq` on) with two statements, the ids' keys first: a statement per
/// table per row pays for running the statement (starting and resetting it, its cursor and
/// its transaction check) once per row. Returns the last row's chain hash,
/// or `None` when there are fewer rows, a row was not written ahead for its seq, or an id's
/// 8-byte key is already in `ids` (a duplicate, or another id's key): the keys this call
/// inserted are then deleted again and the rows are left to the row-by-row path, which tells
/// these cases apart. A ledger keying ids by 8 bytes (`meta.id_keys`) only.
fn append_block(conn: &Connection, rows: &[Parts], seq: u64, sparse: bool) -> Result<Option<Hash>> {
    static IDS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static EVENTS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let fits = rows.len() == BLOCK_ROWS
        && rows
            .iter()
            .zip(seq + 1..)
            .all(|(p, next)| p.ahead.seq == next && p.get().is_some());
    if !fits {
        return Ok(None);
    }
    let mut ids = conn.prepare_cached(IDS.get_or_init(|| block_insert("ids", "key, seq", 2)))?;
    for (k, p) in rows.iter().enumerate() {
        ids.raw_bind_parameter(2 * k + 1, &p.ahead.key[..])?;
        ids.raw_bind_parameter(2 * k + 2, p.ahead.seq as i64)?;
    }
    if ids.raw_execute()? != BLOCK_ROWS {
        let mut undo = conn.prepare_cached("DELETE FROM ids WHERE key = ?1 AND seq = ?2")?;
        for p in rows {
            undo.execute(params![&p.ahead.key[..], p.ahead.seq as i64])?;
        }
        return Ok(None);
    }
    let sql = EVENTS.get_or_init(|| block_insert("events", "seq, record, hash", 3));
    let mut events = conn.prepare_cached(sql)?;
    for (k, p) in rows.iter().enumerate() {
        let written = &p.ahead;
        let kept = match sparse && written.seq % HASH_STRIDE != 0 {
            true => &written.hash[..CHECK_LEN],
            false => &written.hash[..],
        };
        events.raw_bind_parameter(3 * k + 1, written.seq as i64)?;
        events.raw_bind_parameter(3 * k + 2, written.record.as_str())?;
        events.raw_bind_parameter(3 * k + 3, kept)?;
    }
    if events.raw_execute()? != BLOCK_ROWS {
        return Err(not_stored(format!(
            "rows after seq {seq} were refused by the events table"
        )));
    }
    Ok(Some(rows[BLOCK_ROWS - 1].ahead.hash))
}

/// Whether `stored`, a row's `hash` column, holds the chain hash `hash` in a ledger of
/// `version`: all 32 bytes, or in version 3 its first [`CHECK_LEN`] bytes (a row between
/// whole hashes).
pub(crate) fn stored_matches(stored: &[u8], hash: &[u8; 32], version: u32) -> bool {
    stored == &hash[..]
        || (version >= 3 && stored.len() == CHECK_LEN && stored == &hash[..CHECK_LEN])
}

/// The events of one append, with their record parts where the caller made them (empty:
/// none).
#[derive(Clone, Copy)]
struct Batch<'a> {
    batch: &'a [Pending],
    parts: &'a [Parts],
}

/// [`existing`] in a version-2 ledger: the event whose id has `key`.
fn existing_v2(conn: &Connection, p: &Pending, key: &[u8]) -> Result<Outcome> {
    let mut stmt = conn.prepare_cached("SELECT seq FROM ids WHERE key = ?1")?;
    let seq: i64 = stmt.query_row([key], |r| r.get(0)).map_err(|e| {
        not_stored(format!(
            "the id of event {} is indexed but cannot be read back ({e})",
            p.id
        ))
    })?;
    let seq = seq as u64;
    let stored = raw_record(conn, seq)?
        .ok_or_else(|| not_stored(format!("the id of event {} names no stored row", p.id)))?;
    let stored = Expander::default().expand(conn, seq, &stored)?;
    Ok(compare_stored(seq, &stored, p))
}

/// Builds the Merkle tree of a ledger opened for writing where it is missing or behind. A
/// failure (a damaged ledger) leaves it as it was: reads compute the tree from the records, and
/// the next append reports the damage.
fn build_tree(conn: &mut Connection) {
    let _ = tree::prepare(conn, tail);
}

/// The body of [`Store::append`], inside its transaction: the rows, then the Merkle tree's
/// extension by the appended records (returning its new right edge).
fn append_in(
    conn: &Connection,
    batch: &[Pending],
    record: &mut String,
    edge: Option<Edge>,
) -> Result<(Vec<Outcome>, Edge)> {
    let before = tail(conn)?;
    let Head {
        mut seq,
        hash: mut prev,
    } = before;
    let first = seq;
    let mut leaves: Vec<Hash> = Vec::with_capacity(batch.len());
    let mut insert = conn.prepare_cached(INSERT)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for p in batch {
        let next = seq + 1;
        record.clear();
        write_record(record, &p.classification_json, &p.event_json, next);
        let hash = chain_hash(&prev, record.as_bytes());
        let inserted = insert.execute(params![next as i64, p.id, record.as_str(), &hash[..]])?;
        if inserted == 1 {
            seq = next;
            prev = hash;
            leaves.push(leaf_hash(record.as_bytes()));
            outcomes.push(Outcome::Appended { seq });
        } else {
            let found = existing(conn, p)?.ok_or_else(|| {
                not_stored(format!(
                    "the insert of event {} was refused without an error and no event has its id",
                    p.id
                ))
            })?;
            outcomes.push(found);
        }
    }
    let after = Head { seq, hash: prev };
    confirm_appended(conn, first, &after)?;
    let edge = tree::extend(conn, edge, &before, &leaves, &[], &after)?;
    Ok((outcomes, edge))
}

/// An append that did not take effect as written: something in the file (a trigger, an
/// altered table) changed what was stored. The transaction is rolled back.
fn not_stored(what: String) -> Error {
    Error::Integrity(format!(
        "{what}: the ledger file intercepts writes (verify() names what it holds); nothing of \
         this batch was written"
    ))
}

/// Reads back, inside the append's transaction, that exactly the rows after seq `first` up to
/// `head` are stored and the last one holds the hash written: a trigger deleting or moving an
/// appended row would otherwise let the next append reuse its seq and hide the loss.
fn confirm_appended(conn: &Connection, first: u64, head: &Head) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*), max(seq), (SELECT hash FROM events WHERE seq = ?2) \
         FROM events WHERE seq > ?1",
    )?;
    let (count, last, hash): (i64, Option<i64>, Option<Vec<u8>>) = stmt
        .query_row(params![first as i64, head.seq as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2).ok()))
        })?;
    let expected = (head.seq - first) as i64;
    let last_ok = expected == 0 || last == Some(head.seq as i64);
    if count != expected || !last_ok {
        return Err(not_stored(format!(
            "{expected} events were appended after seq {first} but {count} rows are stored there"
        )));
    }
    if expected > 0 && hash.as_deref() != Some(&head.hash[..]) {
        return Err(not_stored(format!(
            "the row at seq {} does not hold the hash just written",
            head.seq
        )));
    }
    Ok(())
}

/// The outcome for `p` whose insert was refused: duplicate or conflict with the stored event
/// of the same id, or `None` when no event has that id (the insert was dropped).
fn existing(conn: &Connection, p: &Pending) -> Result<Option<Outcome>> {
    let mut stmt = conn.prepare_cached("SELECT seq, record FROM events WHERE id = ?1")?;
    let Some((seq, stored)): Option<(i64, String)> = stmt
        .query_row([&p.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
    else {
        return Ok(None);
    };
    Ok(Some(compare_stored(seq as u64, &stored, p)))
}

/// Duplicate or conflict: the stored record at `seq` against `p` of the same id (key).
fn compare_stored(seq: u64, stored: &str, p: &Pending) -> Outcome {
    let stored_id = serde_json::from_str::<serde_json::Value>(stored)
        .ok()
        .and_then(|v| v["event"]["id"].as_str().map(str::to_string));
    if stored_id.as_deref().is_some_and(|id| id != p.id) {
        return Outcome::Conflict {
            seq,
            message: format!(
                "event id {} has the same index key as event id {} recorded at seq {seq}",
                p.id,
                stored_id.unwrap_or_default()
            ),
        };
    }
    match event_difference(stored, &p.event_json, p.ts_explicit) {
        None => Outcome::Duplicate { seq },
        Some(diff) => Outcome::Conflict {
            seq,
            message: format!(
                "event id {} is already recorded at seq {seq} with a different payload ({diff})",
                p.id
            ),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn pending(id: &str, ts: i64, attrs: &str) -> Pending {
        Pending {
            id: id.to_string(),
            event_json: format!(r#"{{"attrs":{attrs},"id":"{id}","kind":"tool_call","ts":{ts}}}"#),
            classification_json: r#"{"tag":"stateless"}"#.to_string(),
            ts_explicit: false,
        }
    }

    #[test]
    fn open_existing_never_creates_and_keeps_the_telling_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let err = |p: &Path| match Store::open_existing(p, Durability::Batch) {
            Err(Error::Ledger(m)) => m,
            other => panic!("expected a ledger error, got {other:?}"),
        };
        assert!(err(&path).starts_with("no ledger at "));
        assert!(!path.exists());
        drop(Store::open(Some(&path), Durability::Sync).unwrap());
        let mut store = Store::open_existing(&path, Durability::Batch).unwrap();
        assert!(matches!(
            store.append(&[pending("a", 1, "{}")]).unwrap()[..],
            [Outcome::Appended { seq: 1 }]
        ));
        // Not a ledger: the read-only attempt fails too, and the first error is the one kept.
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
        assert!(err(&garbage).contains("is not a statemeter ledger"));
        // Writing refused (a directory): the read-only attempt's error is reported.
        assert!(err(dir.path()).starts_with("cannot open ledger "));
    }

    /// Re-derives the chain from the rows: (count, last hash), asserting contiguous seqs.
    fn rederive(store: &Store) -> (u64, [u8; 32]) {
        let (mut n, mut prev) = (0u64, [0u8; 32]);
        store
            .for_each_row(|seq, record, hash| {
                n += 1;
                assert_eq!(seq as u64, n, "seqs are contiguous");
                prev = chain_hash(&prev, record);
                assert!(
                    stored_matches(hash, &prev, store.version()),
                    "hash at seq {seq}"
                );
                assert_eq!(super::super::chain::embedded_seq(record), Some(seq as u64));
                Ok(true)
            })
            .unwrap();
        (n, prev)
    }

    #[test]
    fn an_append_a_trigger_undoes_is_refused_not_counted() {
        for trigger in [
            // Deletes the row as it is written: the next append would reuse its seq.
            "CREATE TRIGGER t AFTER INSERT ON events WHEN NEW.record LIKE '%\"id\":\"b\"%' \
             BEGIN DELETE FROM events WHERE seq = NEW.seq; END;",
            // Drops the insert without an error.
            "CREATE TRIGGER t BEFORE INSERT ON events WHEN NEW.record LIKE '%\"id\":\"b\"%' \
             BEGIN SELECT RAISE(IGNORE); END;",
            // Moves the row elsewhere.
            "CREATE TRIGGER t AFTER INSERT ON events WHEN NEW.record LIKE '%\"id\":\"b\"%' \
             BEGIN UPDATE events SET seq = seq + 100 WHERE seq = NEW.seq; END;",
        ] {
            let mut store = Store::open(None, Durability::Sync).unwrap();
            store.append(&[pending("a", 1, "{}")]).unwrap();
            store.connection().execute_batch(trigger).unwrap();
            match store.append(&[pending("b", 2, "{}"), pending("c", 3, "{}")]) {
                Err(Error::Integrity(m)) => assert!(m.contains("intercepts writes"), "{m}"),
                other => panic!("{trigger}: {other:?}"),
            }
            assert_eq!(
                store.len().unwrap(),
                1,
                "{trigger}: the batch was rolled back"
            );
            // Events the trigger leaves alone are still written.
            assert!(matches!(
                store.append(&[pending("c", 3, "{}")]).unwrap()[..],
                [Outcome::Appended { seq: 2 }]
            ));
        }
    }

    #[test]
    fn a_writer_refuses_a_file_with_a_planted_trigger_a_reader_opens_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut store = Store::open(Some(&path), Durability::Sync).unwrap();
        store.append(&[pending("a", 1, "{}")]).unwrap();
        store
            .connection()
            .execute_batch(
                "CREATE TRIGGER t AFTER INSERT ON events \
                 BEGIN DELETE FROM events WHERE seq = NEW.seq; END;",
            )
            .unwrap();
        drop(store);
        match Store::open(Some(&path), Durability::Sync) {
            Err(Error::Ledger(m)) => assert!(
                m.contains("trigger \"t\" on table \"events\" was added")
                    && m.contains("refusing to write"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        let read = Store::open_existing(&path, Durability::Batch).unwrap();
        assert_eq!(read.len().unwrap(), 1);
        assert_eq!(read.schema_problems().unwrap().len(), 1);
        assert!(read.connection().is_readonly(rusqlite::MAIN_DB).unwrap());
    }

    #[test]
    fn an_empty_path_is_refused() {
        let e = Store::open(Some(Path::new("")), Durability::Sync).unwrap_err();
        assert!(
            matches!(e, Error::Validation { ref field, .. } if field == "path"),
            "{e:?}"
        );
    }

    #[test]
    fn sqlites_memory_name_is_refused_and_a_file_of_that_name_is_reached_by_its_path() {
        let dir = tempfile::tempdir().unwrap();
        for e in [
            Store::open(Some(Path::new(":memory:")), Durability::Sync).unwrap_err(),
            Store::open_existing(Path::new(":memory:"), Durability::Sync).unwrap_err(),
        ] {
            assert!(
                matches!(e, Error::Validation { ref field, ref message } if field == "path" && message.contains("None")),
                "{e:?}"
            );
        }
        let named = dir.path().join(":memory:");
        let store = Store::open(Some(&named), Durability::Sync).unwrap();
        assert_eq!(store.path(), Some(named.as_path()));
        drop(store);
        assert!(named.is_file());
        let store = Store::open_existing(&named, Durability::Sync).unwrap();
        assert!(store.is_empty().unwrap());
    }

    #[test]
    fn empty_ledger_head_is_zero() {
        let store = Store::open(None, Durability::Sync).unwrap();
        assert_eq!(store.head().unwrap(), Head::EMPTY);
        assert!(store.is_empty().unwrap());
        assert_eq!(store.path(), None);
    }

    #[test]
    fn append_builds_records_and_chain() {
        let mut store = Store::open(None, Durability::Batch).unwrap();
        let out = store
            .append(&[pending("a", 5, "{}"), pending("b", 6, r#"{"x":1}"#)])
            .unwrap();
        assert_eq!(
            out,
            vec![Outcome::Appended { seq: 1 }, Outcome::Appended { seq: 2 }]
        );
        let mut records = Vec::new();
        store
            .for_each_record(0, |seq, r| {
                records.push((seq, r.to_string()));
                Ok(())
            })
            .unwrap();
        assert_eq!(
            records[0],
            (
                1,
                r#"{"classification":{"tag":"stateless"},"event":{"attrs":{},"id":"a","ts":5,"kind":"tool_call"},"seq":1,"v":2}"#
                    .to_string()
            )
        );
        let mut after = Vec::new();
        store
            .for_each_record(1, |seq, _| {
                after.push(seq);
                Ok(())
            })
            .unwrap();
        assert_eq!(after, vec![2]);
        // The second event has the first one's context: its record refers to seq 1.
        let mut raw = Vec::new();
        store
            .for_each_row(|_, record, _| {
                raw.push(String::from_utf8(record.to_vec()).unwrap());
                Ok(true)
            })
            .unwrap();
        assert_eq!(
            raw,
            [
                r#"{"c":{"classification":{"tag":"stateless"},"event":{"kind":"tool_call"}},"e":{"attrs":{},"id":"a","ts":5},"s":1,"v":2}"#,
                r#"{"c":1,"e":{"attrs":{"x":1},"id":"b","ts":6},"s":2,"v":2}"#
            ]
        );
        let h1 = chain_hash(&[0; 32], raw[0].as_bytes());
        let h2 = chain_hash(&h1, raw[1].as_bytes());
        assert_eq!(store.head().unwrap(), Head { seq: 2, hash: h2 });
        assert_eq!(rederive(&store), (2, h2));
        assert_eq!(store.len().unwrap(), 2);
        assert_eq!(
            store.expanded_record_at(2).unwrap().as_deref(),
            Some(records[1].1.as_str())
        );
        assert_eq!(store.expanded_record_at(3).unwrap(), None);
        assert_eq!(store.seq_of("b").unwrap(), Some(2));
        assert_eq!(store.seq_of("c").unwrap(), None);
    }

    #[test]
    fn parts_made_beforehand_give_the_rows_append_writes() {
        let batches: Vec<Vec<Pending>> = vec![
            vec![pending("a", 5, "{}"), pending("b", 6, r#"{"x":1}"#)],
            // A duplicate, a conflict, an event that cannot be split (its parts do not fill),
            // and a new context (another classification).
            vec![pending("a", 5, "{}"), pending("b", 7, r#"{"x":2}"#), {
                let mut p = pending("c", 8, "{}");
                p.classification_json = r#"{"tag":"stateful"}"#.into();
                p
            }],
        ];
        let mut plain = Store::open(None, Durability::Batch).unwrap();
        let mut made = Store::open(None, Durability::Batch).unwrap();
        for batch in &batches {
            let parts: Vec<Parts> = batch
                .iter()
                .map(|p| {
                    let mut parts = Parts::default();
                    assert!(parts.fill(&p.event_json, &p.classification_json));
                    parts
                })
                .collect();
            assert_eq!(
                plain.append(batch).unwrap(),
                made.append_with_parts(batch, &parts, None).unwrap().0
            );
        }
        let rows = Store::stored_rows;
        assert_eq!(rows(&plain).len(), 3);
        assert_eq!(rows(&plain), rows(&made));
        // Parts that did not fill: the store splits the event itself, and refuses it alike.
        let mut bad = pending("d", 9, "{}");
        bad.event_json = r#"{"id":"d","id":"e"}"#.into();
        let mut parts = Parts::default();
        assert!(!parts.fill(&bad.event_json, &bad.classification_json));
        let refused = made.append_with_parts(std::slice::from_ref(&bad), &[parts], None);
        assert!(
            matches!(refused, Err(Error::Validation { ref field, .. }) if field == "event"),
            "{refused:?}"
        );
        assert!(plain.append(&[bad]).is_err());
        assert_eq!(rows(&plain), rows(&made));
    }

    /// A block of rows written ahead goes in with one statement per table; a block with an
    /// id whose 8-byte key is taken leaves `ids` as it found it and nothing in `events`.
    #[test]
    fn a_block_of_rows_written_ahead_is_appended_whole_or_not_at_all() {
        let store = Store::open(None, Durability::Batch).unwrap();
        let batch: Vec<Pending> = (1..=BLOCK_ROWS as i64 + 1)
            .map(|i| pending(&format!("01938a1c-0000-7d00-8000-{i:012x}"), i, "{}"))
            .collect();
        let mut parts: Vec<Parts> = batch
            .iter()
            .map(|p| {
                let mut parts = Parts::default();
                parts.fill(&p.event_json, &p.classification_json);
                parts
            })
            .collect();
        let mut writer = super::super::ahead::AheadWriter::default();
        writer.sync(&store).unwrap();
        writer.write(&batch, &mut parts).unwrap();
        let count = |s: &Store, table: &str| -> i64 {
            let sql = format!("SELECT count(*) FROM {table}");
            s.conn.query_row(&sql, [], |r| r.get(0)).unwrap()
        };
        let sparse = store.version >= 3;
        // Too few rows, and rows written for other seqs: not a block.
        let short = &parts[..BLOCK_ROWS - 1];
        assert_eq!(append_block(&store.conn, short, 0, sparse).unwrap(), None);
        let block = &parts[1..];
        assert_eq!(append_block(&store.conn, block, 0, sparse).unwrap(), None);
        // The last key taken by another row: nothing of the block stays.
        let last = &parts[BLOCK_ROWS - 1].ahead;
        store
            .conn
            .execute("INSERT INTO ids VALUES (?1, 999)", [&last.key[..]])
            .unwrap();
        let block = &parts[..BLOCK_ROWS];
        assert_eq!(append_block(&store.conn, block, 0, sparse).unwrap(), None);
        assert_eq!((count(&store, "ids"), count(&store, "events")), (1, 0));
        store.conn.execute("DELETE FROM ids", []).unwrap();
        let hash = append_block(&store.conn, block, 0, sparse).unwrap();
        assert_eq!(hash, Some(last.hash));
        let n = BLOCK_ROWS as i64;
        assert_eq!((count(&store, "ids"), count(&store, "events")), (n, n));
    }

    #[test]
    fn duplicates_and_conflicts() {
        let mut store = Store::open(None, Durability::Sync).unwrap();
        store.append(&[pending("a", 5, r#"{"k":"v"}"#)]).unwrap();
        // A retry without an explicit ts is the same event even with another ts.
        assert_eq!(
            store.append(&[pending("a", 9, r#"{"k":"v"}"#)]).unwrap(),
            vec![Outcome::Duplicate { seq: 1 }]
        );
        let mut explicit = pending("a", 9, r#"{"k":"v"}"#);
        explicit.ts_explicit = true;
        match &store.append(&[explicit]).unwrap()[0] {
            Outcome::Conflict { seq: 1, message } => {
                assert!(message.contains("differs in ts"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        match &store.append(&[pending("a", 5, r#"{"k":"w"}"#)]).unwrap()[0] {
            Outcome::Conflict { seq: 1, message } => {
                assert!(
                    message.contains("event id a") && message.contains("attrs"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Inside one batch too.
        let out = store
            .append(&[
                pending("b", 1, "{}"),
                pending("b", 2, "{}"),
                pending("b", 1, "[]"),
                pending("c", 1, "{}"),
            ])
            .unwrap();
        assert_eq!(out[0], Outcome::Appended { seq: 2 });
        assert_eq!(out[1], Outcome::Duplicate { seq: 2 });
        assert!(matches!(out[2], Outcome::Conflict { seq: 2, .. }));
        assert_eq!(out[3], Outcome::Appended { seq: 3 });
        assert_eq!(rederive(&store).0, 3);
    }

    #[test]
    fn malformed_pending_is_rejected_before_writing() {
        let mut store = Store::open(None, Durability::Sync).unwrap();
        let mut p = pending("a", 1, "{}");
        p.event_json = "[]".into();
        let err = store.append(&[pending("ok", 1, "{}"), p]).unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "event"));
        assert_eq!(store.len().unwrap(), 0);
    }

    #[test]
    fn failed_transaction_writes_nothing_and_store_stays_usable() {
        let mut store = Store::open(None, Durability::Sync).unwrap();
        store.append(&[pending("a", 1, "{}")]).unwrap();
        store
            .connection()
            .execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.record LIKE '%\"id\":\"boom\"%' \
                 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
            )
            .unwrap();
        let err = store
            .append(&[pending("b", 2, "{}"), pending("boom", 3, "{}")])
            .unwrap_err();
        match err {
            Error::Ledger(m) => assert!(
                m.contains("cannot append to ledger <memory>") && m.contains("disk on fire"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            store.len().unwrap(),
            1,
            "the first event of the failed batch was rolled back"
        );
        assert!(store.connection().is_autocommit());
        store
            .connection()
            .execute_batch("PRAGMA query_only = ON")
            .unwrap();
        assert!(matches!(
            store.append(&[pending("c", 2, "{}")]),
            Err(Error::Ledger(_))
        ));
        store
            .connection()
            .execute_batch("PRAGMA query_only = OFF")
            .unwrap();
        // A full disk: the database may not grow past its current size.
        let pages: i64 = store
            .connection()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let limit = format!("PRAGMA max_page_count = {pages}");
        store.connection().execute_batch(&limit).unwrap();
        let big: Vec<Pending> = (0..200)
            .map(|i| {
                pending(
                    &format!("big{i}"),
                    i,
                    &format!(r#"{{"pad":"{}"}}"#, "x".repeat(2000)),
                )
            })
            .collect();
        match store.append(&big) {
            Err(Error::Ledger(m)) => assert!(m.contains("full"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.len().unwrap(), 1);
        let limit = format!("PRAGMA max_page_count = {}", pages * 1000);
        store.connection().execute_batch(&limit).unwrap();
        assert_eq!(
            store.append(&[pending("b", 2, "{}")]).unwrap(),
            vec![Outcome::Appended { seq: 2 }]
        );
        assert_eq!(rederive(&store).0, 2);
    }

    #[test]
    fn damaged_tail_hash_blocks_appends() {
        let mut store = Store::open(None, Durability::Sync).unwrap();
        store.append(&[pending("a", 1, "{}")]).unwrap();
        store
            .connection()
            .execute_batch("UPDATE events SET hash = x'00'")
            .unwrap();
        assert!(matches!(store.head(), Err(Error::Integrity(_))));
        assert!(matches!(
            store.append(&[pending("b", 1, "{}")]),
            Err(Error::Integrity(_))
        ));
        assert_eq!(store.len().unwrap(), 1);
    }

    #[test]
    fn concurrent_writers_keep_one_chain() {
        // Threads with their own connection behave like processes sharing the file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let (writers, batches, per_batch) = (4, 25, 8);
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut store = Store::open(Some(&path), Durability::Batch).unwrap();
                    for b in 0..batches {
                        let batch: Vec<_> = (0..per_batch)
                            .map(|i| pending(&format!("w{w}-{b}-{i}"), i, "{}"))
                            .collect();
                        for o in store.append(&batch).unwrap() {
                            assert!(matches!(o, Outcome::Appended { .. }));
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let store = Store::open(Some(&path), Durability::Batch).unwrap();
        let (n, last) = rederive(&store);
        assert_eq!(n, (writers * batches * per_batch) as u64);
        assert_eq!(store.head().unwrap(), Head { seq: n, hash: last });
    }
}
