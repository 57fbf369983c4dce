//! The ledger's Merkle tree (RFC 9162, see [`super::merkle`]) over its records in seq order,
//! stored beside the chain in the table `merkle_nodes` and extended by the writer inside each
//! append's transaction (a crash leaves tree and chain at the same size).
//!
//! Leaf `i` (0-based) is the record at seq `i + 1`; its data are the record's UTF-8 bytes as
//! stored. The table holds the hash of every complete subtree of 2^[`BASE_LEVEL`] leaves or
//! more: row `(level, idx)` covers leaves `idx·2^level .. (idx+1)·2^level`. Leaf hashes and the
//! smaller subtrees are recomputed from the records when needed (at most 15 records for any
//! root or proof), which keeps the table to about one row per eight events.
//!
//! A ledger written before the tree existed gets it on its first writable open ([`prepare`]);
//! a ledger opened read-only without the table computes every hash from the records.

use rusqlite::{params, Connection, OptionalExtension};

use super::chain::Head;
use super::merkle::{empty_root, leaf_hash, node_hash, root_of, split, Hash, Subtrees};
use crate::error::{Error, Result};

/// The lowest level stored: subtrees of 16 leaves.
pub const BASE_LEVEL: u32 = 4;
pub(crate) const CHUNK: u64 = 1 << BASE_LEVEL;

const INSERT: &str = "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?1, ?2, ?3)";
const SELECT: &str = "SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2";

/// What the writer knows about the tree's right edge: valid while the ledger's head is `head`.
#[derive(Clone, Debug)]
pub(crate) struct Edge {
    head: Head,
    /// Leaf hashes after the last complete 16-leaf subtree (fewer than 16).
    open: Vec<Hash>,
    /// The stored subtrees still waiting for their right sibling, highest level first: one per
    /// set bit of the number of stored 16-leaf subtrees. A node the table lacks is `None` (an
    /// error once it is needed), so that extending the tree reads no node back.
    waiting: Vec<Waiting>,
}

/// A stored subtree waiting for its right sibling: its level, index and hash.
type Waiting = (u32, u64, Option<Hash>);

/// Whether the ledger has the tree table.
pub(crate) fn has_table(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'merkle_nodes'",
        [],
        |r| r.get(0),
    )?)
}

/// On a writable open: creates the table if missing and builds the tree over the records it
/// does not cover yet, in one transaction (several processes may open at once).
pub(crate) fn prepare(
    conn: &mut Connection,
    head: impl Fn(&Connection) -> Result<Head>,
) -> Result<()> {
    if has_table(conn)? && covered(conn)? + CHUNK > head(conn)?.seq {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(super::schema::TREE_TABLES)?;
    let h = head(&tx)?;
    sync(&tx, &h)?;
    tx.commit()?;
    Ok(())
}

/// The number of leaves the stored 16-leaf subtrees cover (they are contiguous from 0).
fn covered(conn: &Connection) -> Result<u64> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT max(idx) FROM merkle_nodes WHERE level = ?1")?
        .query_row([BASE_LEVEL], |r| r.get(0))?;
    Ok(max.map_or(0, |m| (m as u64 + 1) * CHUNK))
}

/// The stored subtrees waiting for their right sibling once `chunks` 16-leaf subtrees are
/// stored (see [`Edge::waiting`]), read from the table.
fn waiting_after(conn: &Connection, chunks: u64) -> Result<Vec<Waiting>> {
    let mut select = conn.prepare_cached(SELECT)?;
    let mut out = Vec::new();
    for bit in (0..u64::BITS - chunks.leading_zeros()).rev() {
        if chunks >> bit & 1 == 1 {
            let (level, idx) = (BASE_LEVEL + bit, (chunks >> bit) - 1);
            let found: Option<Vec<u8>> = select
                .query_row(params![level, idx as i64], |r| r.get(0))
                .optional()?;
            out.push((level, idx, found.and_then(|h| h.try_into().ok())));
        }
    }
    Ok(out)
}

/// Stores the subtree `(BASE_LEVEL, idx)` and every complete ancestor it closes, whose left
/// halves are the last of `waiting`; leaves the highest one it stores waiting.
fn store_chunk(
    insert: &mut rusqlite::Statement<'_>,
    waiting: &mut Vec<Waiting>,
    idx: u64,
    hash: Hash,
) -> Result<()> {
    let (mut level, mut idx, mut hash) = (BASE_LEVEL, idx, hash);
    loop {
        insert.raw_bind_parameter(1, level)?;
        insert.raw_bind_parameter(2, idx as i64)?;
        insert.raw_bind_parameter(3, &hash[..])?;
        insert.raw_execute()?;
        if idx % 2 == 0 {
            waiting.push((level, idx, Some(hash)));
            return Ok(());
        }
        let left = match waiting.pop() {
            Some((l, i, Some(left))) if (l, i) == (level, idx - 1) => left,
            _ => return Err(missing(level, idx - 1)),
        };
        hash = node_hash(&left, &hash);
        level += 1;
        idx /= 2;
    }
}

fn missing(level: u32, idx: u64) -> Error {
    Error::Integrity(format!(
        "the ledger's Merkle tree lacks node (level {level}, index {idx}) or it is not 32 bytes"
    ))
}

/// Brings the stored tree up to `head` (building what an older writer left out) and returns
/// the right edge. Runs inside the caller's transaction.
fn sync(conn: &Connection, head: &Head) -> Result<Edge> {
    let mut done = covered(conn)?;
    if done > head.seq {
        return Err(Error::Integrity(format!(
            "the ledger's Merkle tree covers {done} records but the ledger holds {}",
            head.seq
        )));
    }
    let mut open = Vec::with_capacity(CHUNK as usize);
    let mut waiting = waiting_after(conn, done / CHUNK)?;
    let mut insert = conn.prepare_cached(INSERT)?;
    for_each_leaf(conn, done, head.seq, |leaf| {
        open.push(leaf);
        if open.len() as u64 == CHUNK {
            store_chunk(&mut insert, &mut waiting, done / CHUNK, root_of(&open))?;
            done += CHUNK;
            open.clear();
        }
        Ok(())
    })?;
    Ok(Edge {
        head: *head,
        open,
        waiting,
    })
}

/// The leaf hashes after the last complete 16-leaf subtree of the ledger whose head is `head`
/// (fewer than 16): from `edge` when it is at that head, else from the records.
pub(crate) fn open_leaves(
    conn: &Connection,
    edge: Option<&Edge>,
    head: &Head,
) -> Result<Vec<Hash>> {
    if let Some(e) = edge.filter(|e| e.head == *head) {
        return Ok(e.open.clone());
    }
    let mut open = Vec::with_capacity(CHUNK as usize);
    for_each_leaf(conn, head.seq - head.seq % CHUNK, head.seq, |leaf| {
        open.push(leaf);
        Ok(())
    })?;
    Ok(open)
}

/// Extends the tree by the leaves just appended (`leaves`, the records after `before`, ending
/// at `after`), inside the append's transaction. `edge` is the writer's knowledge of the right
/// edge; it is re-read when another writer moved the head. `roots`: 16-leaf subtrees already
/// computed, as `(index, root)` in index order, for rows written ahead whose chain hash showed
/// every record before them as the writer assumed (the others are computed here). Returns the
/// new edge, for the caller to keep once the transaction commits.
pub(crate) fn extend(
    conn: &Connection,
    edge: Option<Edge>,
    before: &Head,
    leaves: &[Hash],
    roots: &[(u64, Hash)],
    after: &Head,
) -> Result<Edge> {
    let mut edge = match edge {
        Some(e) if e.head == *before => e,
        _ => sync(conn, before)?,
    };
    let mut size = before.seq;
    let mut insert = conn.prepare_cached(INSERT)?;
    let mut roots = roots.iter().peekable();
    for leaf in leaves {
        edge.open.push(*leaf);
        size += 1;
        if edge.open.len() as u64 == CHUNK {
            let idx = size / CHUNK - 1;
            while roots.next_if(|(at, _)| *at < idx).is_some() {}
            let root = match roots.next_if(|(at, _)| *at == idx) {
                Some(&(_, root)) => root,
                None => root_of(&edge.open),
            };
            store_chunk(&mut insert, &mut edge.waiting, idx, root)?;
            edge.open.clear();
        }
    }
    debug_assert_eq!(size, after.seq);
    edge.head = *after;
    Ok(edge)
}

/// Calls `f` with the leaf hash of every record after seq `from` up to seq `to`, in order,
/// checking the seqs are contiguous.
fn for_each_leaf(
    conn: &Connection,
    from: u64,
    to: u64,
    mut f: impl FnMut(Hash) -> Result<()>,
) -> Result<()> {
    if to <= from {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT seq, record FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![from as i64, to as i64])?;
    let mut expect = from + 1;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        if seq as u64 != expect {
            return Err(gap(expect));
        }
        f(leaf_hash(row.get_ref(1)?.as_bytes().unwrap_or(b"")))?;
        expect += 1;
    }
    if expect != to + 1 {
        return Err(gap(expect));
    }
    Ok(())
}

fn gap(seq: u64) -> Error {
    Error::Integrity(format!(
        "the ledger has no record at seq {seq}: its Merkle tree cannot be computed (verify() \
         tells what happened)"
    ))
}

/// Reads subtree hashes of a ledger: stored nodes where the table has them, else from the
/// records.
pub struct Reader<'a> {
    conn: &'a Connection,
    stored: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(conn: &'a Connection) -> Result<Self> {
        Ok(Reader {
            conn,
            stored: has_table(conn)?,
        })
    }

    /// The root of the tree of the first `size` records.
    pub fn root(&mut self, size: u64) -> Result<Hash> {
        if size == 0 {
            return Ok(empty_root());
        }
        self.range_hash(0, size)
    }

    fn leaves(&self, start: u64, end: u64) -> Result<Hash> {
        let mut folder = Folder::default();
        for_each_leaf(self.conn, start, end, |leaf| {
            folder.push(leaf);
            Ok(())
        })?;
        Ok(folder.root())
    }

    fn node(&self, level: u32, idx: u64) -> Result<Option<Hash>> {
        let found: Option<Vec<u8>> = self
            .conn
            .prepare_cached(SELECT)?
            .query_row(params![level, idx as i64], |r| r.get(0))
            .optional()?;
        found
            .map(|h| h.try_into().map_err(|_| missing(level, idx)))
            .transpose()
    }
}

impl Subtrees for Reader<'_> {
    fn range_hash(&mut self, start: u64, end: u64) -> Result<Hash> {
        let n = end - start;
        if n <= CHUNK || !self.stored {
            return self.leaves(start, end);
        }
        if n.is_power_of_two() && start % n == 0 {
            let level = n.trailing_zeros();
            if let Some(h) = self.node(level, start / n)? {
                return Ok(h);
            }
        }
        let k = split(n);
        let left = self.range_hash(start, start + k)?;
        let right = self.range_hash(start + k, end)?;
        Ok(node_hash(&left, &right))
    }
}

/// The root of a stream of leaves, folded as complete subtrees close (O(log n) memory).
#[derive(Default)]
pub struct Folder {
    stack: Vec<(u32, Hash)>,
}

impl Folder {
    pub fn push(&mut self, leaf: Hash) {
        let mut cur = (0u32, leaf);
        while let Some(&(level, left)) = self.stack.last() {
            if level != cur.0 {
                break;
            }
            self.stack.pop();
            cur = (level + 1, node_hash(&left, &cur.1));
        }
        self.stack.push(cur);
    }

    pub fn root(mut self) -> Hash {
        let Some((_, mut acc)) = self.stack.pop() else {
            return empty_root();
        };
        while let Some((_, left)) = self.stack.pop() {
            acc = node_hash(&left, &acc);
        }
        acc
    }
}

/// What in the stored tree disagrees with the records (one description, the first found), or
/// `None`: every complete subtree of 16 leaves or more is stored with the hash its records
/// give, and nothing else is stored.
pub(crate) fn problem(conn: &Connection, head: &Head) -> Result<Option<String>> {
    let mut cursor = conn.prepare(NODES_IN_ORDER)?;
    let Some(mut checker) = Checker::new(conn, &mut cursor)? else {
        return Ok(None);
    };
    for_each_leaf(conn, 0, head.seq, |leaf| checker.push(leaf))?;
    checker.finish()
}

/// The stored nodes in the order the writer adds them (each 16-leaf subtree, then the
/// ancestors it completes): the order in which [`Checker`] re-derives them.
pub(crate) const NODES_IN_ORDER: &str = "SELECT level, idx, hash FROM merkle_nodes ORDER BY rowid";

/// The complete subtrees of 2^[`BASE_LEVEL`] leaves or more, as `(level, idx, hash)` in the
/// order they complete (the order the writer stores them), from leaf hashes pushed in seq
/// order. Needs no ledger: a verification runs it beside the chain, on another thread.
#[derive(Default)]
pub(crate) struct Completed {
    stack: Vec<(u32, Hash)>,
    leaves: u64,
}

impl Completed {
    /// Adds the next leaf, appending the subtrees it completes to `out`.
    pub(crate) fn push(&mut self, leaf: Hash, out: &mut Vec<(u32, u64, Hash)>) {
        self.leaves += 1;
        let mut cur = (0u32, leaf);
        while let Some(&(level, left)) = self.stack.last() {
            if level != cur.0 {
                break;
            }
            self.stack.pop();
            cur = (level + 1, node_hash(&left, &cur.1));
            if cur.0 >= BASE_LEVEL {
                out.push((cur.0, (self.leaves >> cur.0) - 1, cur.1));
            }
        }
        self.stack.push(cur);
    }
}

/// Compares the stored tree with the subtrees re-derived from the records ([`Completed`]), in
/// the order they complete: every complete subtree of 16 leaves or more must be stored with
/// the hash its records give. The stored rows are read in one pass (a node stored out of the
/// writer's order is looked up by its key instead). The first problem found is kept.
pub(crate) struct Checker<'c, 's> {
    conn: &'c Connection,
    rows: rusqlite::Rows<'s>,
    /// The next stored row not yet matched, `None` once they run out.
    next: Option<(i64, i64, Vec<u8>)>,
    subtrees: Completed,
    done: Vec<(u32, u64, Hash)>,
    problem: Option<String>,
}

impl<'c, 's> Checker<'c, 's> {
    /// `None` for a ledger without the tree's table (written before it, opened read-only):
    /// nothing stored to check. `cursor` is `conn.prepare(NODES_IN_ORDER)`.
    pub(crate) fn new(
        conn: &'c Connection,
        cursor: &'s mut rusqlite::Statement<'_>,
    ) -> Result<Option<Self>>
    where
        'c: 's,
    {
        if !has_table(conn)? {
            return Ok(None);
        }
        let mut rows = cursor.query([])?;
        let next = stored_row(&mut rows)?;
        Ok(Some(Checker {
            conn,
            rows,
            next,
            subtrees: Completed::default(),
            done: Vec::new(),
            problem: None,
        }))
    }

    /// Adds the next leaf (the record at the next seq) and checks the nodes it completes.
    pub(crate) fn push(&mut self, leaf: Hash) -> Result<()> {
        let mut done = std::mem::take(&mut self.done);
        self.subtrees.push(leaf, &mut done);
        for (level, idx, hash) in done.drain(..) {
            self.check(level, idx, &hash)?;
        }
        self.done = done;
        Ok(())
    }

    /// Checks one re-derived subtree against the stored node (in completion order).
    pub(crate) fn check(&mut self, level: u32, idx: u64, hash: &Hash) -> Result<()> {
        if self.problem.is_none() {
            self.problem = self.compare(level, idx, hash)?;
        }
        Ok(())
    }

    fn compare(&mut self, level: u32, idx: u64, hash: &Hash) -> Result<Option<String>> {
        let key = (i64::from(level), idx as i64);
        let stored = match self.next.take() {
            Some((l, i, h)) if (l, i) == key => {
                self.next = stored_row(&mut self.rows)?;
                Some(h)
            }
            other => {
                self.next = other;
                self.conn
                    .prepare_cached(SELECT)?
                    .query_row(params![level, idx as i64], |r| r.get::<_, Vec<u8>>(0))
                    .optional()?
            }
        };
        let (first, last) = ((idx << level) + 1, (idx + 1) << level);
        Ok(match stored {
            Some(h) if h[..] == hash[..] => None,
            Some(_) => Some(format!(
                "edited: the Merkle tree node (level {level}, index {idx}) is not the hash of \
                 records {first} to {last}: the stored tree was changed (roots and proofs read \
                 from it would not verify)"
            )),
            None => Some(format!(
                "deleted: the Merkle tree node (level {level}, index {idx}) over records \
                 {first} to {last} is missing"
            )),
        })
    }

    /// The first problem found, after checking that nothing else is stored: no node at a
    /// level below 16 leaves, and none over records the ledger does not hold (read in one
    /// statement with the ledger's size, so a writer appending meanwhile is not a problem).
    pub(crate) fn finish(self) -> Result<Option<String>> {
        if self.problem.is_some() {
            return Ok(self.problem);
        }
        let extra: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT level, idx FROM merkle_nodes WHERE NOT (level BETWEEN ?1 AND 62 \
                 AND idx >= 0 AND ((idx + 1) << level) <= \
                 (SELECT coalesce(max(seq), 0) FROM events)) LIMIT 1",
                [BASE_LEVEL],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(extra.map(|(level, idx)| {
            format!(
                "inserted: the Merkle tree holds a node (level {level}, index {idx}) over no \
                 complete range of the ledger's records"
            )
        }))
    }
}

fn stored_row(rows: &mut rusqlite::Rows<'_>) -> Result<Option<(i64, i64, Vec<u8>)>> {
    Ok(match rows.next()? {
        Some(r) => Some((
            r.get(0)?,
            r.get(1)?,
            r.get_ref(2)?.as_bytes().unwrap_or(b"").to_vec(),
        )),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::merkle::{self, verify_consistency, verify_inclusion, Leaves};
    use super::super::{Durability, Pending, Store};
    use super::*;

    fn pending(i: u64) -> Pending {
        Pending {
            id: format!("e{i}"),
            event_json: format!(r#"{{"id":"e{i}","kind":"tool_call","ts":{i}}}"#),
            classification_json: r#"{"tag":"stateless"}"#.to_string(),
            ts_explicit: false,
        }
    }

    /// The leaves over the records as stored (a version-2 record as it is, not expanded).
    fn leaves_of(store: &Store) -> Vec<Hash> {
        let mut out = Vec::new();
        store
            .for_each_row(|_, r, _| {
                out.push(leaf_hash(r));
                Ok(true)
            })
            .unwrap();
        out
    }

    #[test]
    fn the_writer_keeps_the_tree_of_every_size() {
        let mut store = Store::open(None, Durability::Batch).unwrap();
        let mut i = 0;
        // Batches of varied lengths cross chunk boundaries in every way.
        for len in [1usize, 2, 15, 16, 17, 1, 31, 33, 64, 5, 100, 3] {
            let batch: Vec<Pending> = (0..len)
                .map(|_| {
                    i += 1;
                    pending(i)
                })
                .collect();
            store.append(&batch).unwrap();
            let leaves = leaves_of(&store);
            let n = leaves.len() as u64;
            for size in (0..=n).step_by(7).chain([n]) {
                assert_eq!(
                    store.tree_root(size).unwrap(),
                    merkle::root_of(&leaves[..size as usize]),
                    "size {size}"
                );
            }
            assert_eq!(store.tree_problem().unwrap(), None);
        }
        let leaves = leaves_of(&store);
        let n = leaves.len() as u64;
        let root = store.tree_root(n).unwrap();
        for m in [0, 1, 15, 16, 17, 100, n - 1] {
            let path = store.inclusion_path(m, n).unwrap();
            assert_eq!(
                path,
                merkle::inclusion_path(&mut Leaves(&leaves), m, n).unwrap()
            );
            assert!(verify_inclusion(m, n, &leaves[m as usize], &path, &root));
            let old = store.tree_root(m).unwrap();
            let cons = store.consistency_path(m, n).unwrap();
            assert!(verify_consistency(m, n, &old, &root, &cons));
        }
        assert!(matches!(
            store.tree_root(n + 1),
            Err(Error::Validation { .. })
        ));
    }

    #[test]
    fn an_older_ledger_gets_its_tree_on_a_writable_open_and_a_reader_computes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut store = Store::open(Some(&path), Durability::Batch).unwrap();
        store
            .append(&(1..=100).map(pending).collect::<Vec<_>>())
            .unwrap();
        let root = store.tree_root(100).unwrap();
        store
            .connection()
            .execute_batch("DROP TABLE merkle_nodes; DROP TABLE checkpoints;")
            .unwrap();
        drop(store);
        let read = Store::open_read_only(&path).unwrap();
        assert!(!has_table(read.connection()).unwrap());
        assert_eq!(read.tree_root(100).unwrap(), root);
        assert_eq!(read.tree_root(37).unwrap(), {
            let l = leaves_of(&read);
            merkle::root_of(&l[..37])
        });
        drop(read);
        let mut store = Store::open_existing(&path, Durability::Batch).unwrap();
        let nodes: i64 = store
            .connection()
            .query_row("SELECT count(*) FROM merkle_nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(nodes, 6 + 3 + 1, "levels 4, 5 and 6 of 100 leaves");
        assert_eq!(store.tree_root(100).unwrap(), root);
        store.append(&[pending(101)]).unwrap();
        assert_eq!(store.tree_problem().unwrap(), None);
        assert!(store.schema_problems().unwrap().is_empty());
    }

    #[test]
    fn an_edited_node_or_a_stale_tree_is_reported() {
        let mut store = Store::open(None, Durability::Batch).unwrap();
        store
            .append(&(1..=40).map(pending).collect::<Vec<_>>())
            .unwrap();
        store
            .connection()
            .execute_batch("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 5")
            .unwrap();
        let p = store.tree_problem().unwrap().unwrap();
        assert!(
            p.contains("level 5, index 0") && p.contains("records 1 to 32"),
            "{p}"
        );
        store
            .connection()
            .execute_batch("DELETE FROM merkle_nodes WHERE level = 5")
            .unwrap();
        assert!(store.tree_problem().unwrap().unwrap().contains("missing"));
    }

    #[test]
    fn a_writer_needing_a_node_the_table_lacks_fails_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut store = Store::open(Some(&path), Durability::Batch).unwrap();
        store
            .append(&(1..=40).map(pending).collect::<Vec<_>>())
            .unwrap();
        drop(store);
        let mut store = Store::open_existing(&path, Durability::Batch).unwrap();
        store
            .connection()
            .execute_batch("DELETE FROM merkle_nodes WHERE level = 5 AND idx = 0")
            .unwrap();
        // 16 more complete the second 32-leaf subtree, whose left sibling is gone.
        let e = store
            .append(&(41..=64).map(pending).collect::<Vec<_>>())
            .unwrap_err();
        assert!(
            e.to_string().contains("lacks node (level 5, index 0)"),
            "{e}"
        );
        assert_eq!(store.head().unwrap().seq, 40);
        // Nodes that are not needed yet may be missing: a smaller append goes in.
        store.append(&[pending(41)]).unwrap();
    }

    #[test]
    fn writers_on_one_file_keep_one_tree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        drop(Store::open(Some(&path), Durability::Batch).unwrap());
        let handles: Vec<_> = (0..3u64)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut store = Store::open(Some(&path), Durability::Batch).unwrap();
                    for b in 0..20u64 {
                        let batch: Vec<_> = (0..(w + b) % 7 + 1)
                            .map(|i| pending(w * 10_000 + b * 100 + i))
                            .collect();
                        store.append(&batch).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let store = Store::open(Some(&path), Durability::Batch).unwrap();
        assert_eq!(store.tree_problem().unwrap(), None);
        let leaves = leaves_of(&store);
        assert_eq!(
            store.tree_root(leaves.len() as u64).unwrap(),
            merkle::root_of(&leaves)
        );
    }
}
