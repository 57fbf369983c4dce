//! The column store: a ledger's [`EventColumns`] kept on disk beside it, so that the first
//! report, cost table or sessions summary of a fresh process reads compact columns instead of
//! parsing every record.
//!
//! Derived data, not part of the verified format (docs/ledger-format.md, "The column store"):
//! a directory `<ledger file>.columns/` of segment files, each holding the columns of
//! [`SEGMENT_EVENTS`] consecutive events (seqs `k * SEGMENT_EVENTS + 1 ..= (k + 1) *
//! SEGMENT_EVENTS`, file `<first seq, 20 digits>.seg`), written once the ledger holds all of
//! them, by the writer as it commits ([`ColumnWriter`]) or by a reader that had to read them
//! from the records. A closing writer also keeps the events after its last whole segment as a
//! part segment (fewer events, same name), used until the ledger holds events past that
//! segment's end (then the whole segment replaces it). A segment file is written to a
//! temporary name and renamed, so a reader
//! sees it whole or not at all, and two processes writing the same segment write the same
//! bytes.
//!
//! Trust ([`load`]): a segment is used only if its SHA-256 digest matches its payload (not
//! damaged), it decodes to exactly the events its header names, it follows the previous one,
//! and the chain hash recorded at its last event equals the ledger's stored hash at that seq
//! (written for this chain, not a stale or foreign ledger). The first segment that fails any
//! check ends the trusted prefix; everything after it is read from the records — a slower
//! answer, never a different one. `verify()` stays the authority over the records.
//!
//! Segment file layout (integers little-endian):
//!
//! ```text
//! magic        8 bytes  "SMCOLS\0\x02" (format 2; a segment of format 1 is not trusted, and
//!                       rewritten by the reader that reads its events from the records)
//! first_seq    u64
//! count        u32      events in the segment
//! chain_hash   32 bytes the ledger's stored hash at seq first_seq + count - 1
//! raw_len      u32      the sections' total length before compression
//! digest       32 bytes SHA-256 of the rest of the file (directory and frames)
//! directory    u8 section count, then per section: u8 name length, name, u32 length
//!              before compression, u32 length of its zstd frame
//! frames       one zstd frame per section, in [`SECTIONS`] order
//! ```
//!
//! The sections: `id` ([`put_ids`]: the 74 bits of a UUIDv7 that are not its time, plus a
//! byte for the time's difference from the event's `ts`), `context` (the kind, the verdict
//! and the string columns whose values repeat across an agent's events, as one tuple per
//! event: [`encode_context`]), `ts` (zigzag delta from the previous event's, the first from
//! 0, as byte planes: [`put_planes`]), `duration_ns` (zigzag + 1, 0 = absent, byte planes),
//! the string columns of [`OWN_STR`] (each a dictionary and code differences:
//! [`encode_own_str`]), the counts `input_tokens`, `output_tokens`, `cached_tokens`,
//! `bytes` (LEB128 each), then `request` and `attrs` (LEB128 length + canonical JSON each,
//! 0 = absent). Deltas, byte planes and LEB128 first, zstd after, one frame per section (each
//! gets its own entropy tables). `session_tag` is not stored: it depends on later events and
//! is derived after loading.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::event::{EventKind, Holder, Recorded, StateKinds, Tag};
use crate::ledger::{Outcome, Store};
use crate::meter::CommitObserver;
use crate::stored::columns::{EventColumns, Projection, StrColumn, TextColumn, NULL, STR_FIELDS};
use crate::stored::scalars;
use crate::stored::segment_thread::SegmentThread;

/// Events per segment: the tail after the last whole segment (fewer events than this) is
/// what a fresh process reads from the records. The unit tests use small segments to cover
/// several with a few hundred events.
pub const SEGMENT_EVENTS: u64 = if cfg!(test) { 64 } else { 65_536 };

const MAGIC: &[u8; 8] = b"SMCOLS\0\x02";
const HEADER_LEN: usize = 8 + 8 + 4 + 32 + 4 + 32;
/// zstd level: 3 is zstd's default, fast enough for the writer to keep up.
const LEVEL: i32 = 3;

/// The column store directory of the ledger file at `ledger`.
pub fn dir_of(ledger: &Path) -> PathBuf {
    let mut name = ledger.file_name().unwrap_or_default().to_os_string();
    name.push(".columns");
    ledger.with_file_name(name)
}

/// The file of the segment starting at `first_seq`.
fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// The first seq of the segment holding `seq` (seq >= 1).
fn segment_start(seq: u64) -> u64 {
    (seq - 1) / SEGMENT_EVENTS * SEGMENT_EVENTS + 1
}

/// What [`load`] found: how many events came from segments and why it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Events read from trusted segments (seqs `1..=events`).
    pub events: u64,
    /// Segments used.
    pub segments: usize,
    /// Why the next segment was not used, when one was there but failed a check.
    pub rejected: Option<String>,
}

/// Reads the trusted prefix of `store`'s column store into fresh columns holding the columns
/// of `need` (session tags not yet derived). No store file, no directory, or nothing trusted:
/// empty columns.
pub fn load(store: &Store, need: Projection) -> (EventColumns, Coverage) {
    let mut cols = EventColumns {
        present: need,
        ..EventColumns::default()
    };
    let mut reserved = false;
    let cov = for_each_segment(store, need, &mut |total, seg| {
        if !reserved {
            reserve(&mut cols, usize::try_from(total).unwrap_or(usize::MAX));
            reserved = true;
        }
        append(&mut cols, seg).map(|_| ())
    });
    (cols, cov)
}

/// Hands the trusted prefix of `store`'s column store to `f` one segment at a time, in seq
/// order, each decoded to the columns of `need` (its `session_tag`s are each event's own
/// verdict on its session, not yet derived over the ledger), with the number of events all
/// the segments found hold. A segment `f` fails on ends the prefix there, as one that fails
/// a check does. No store file, no directory, or nothing trusted: `f` is not called.
///
/// Each segment's header is read and checked against the chain first, in order (one lookup
/// each); then the payloads are read, checked and decoded on up to [`DECODERS`] threads, at
/// most [`AHEAD`] segments ahead of the one handed to `f` (memory stays at a few decoded
/// segments besides what `f` keeps).
pub fn for_each_segment(
    store: &Store,
    need: Projection,
    f: &mut dyn FnMut(u64, EventColumns) -> Result<()>,
) -> Coverage {
    let mut cov = Coverage::default();
    let Some(path) = store.path() else {
        return cov;
    };
    let dir = dir_of(path);
    let mut found: Vec<Found> = Vec::new();
    let mut next = 1u64;
    loop {
        let file = segment_path(&dir, next);
        let header = match read_header(&file) {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(e) => {
                cov.rejected = Some(format!("{}: {e}", file.display()));
                break;
            }
        };
        match check_header(store, next, &header) {
            Ok(count)
                if count < SEGMENT_EVENTS && ledger_holds(store, next + SEGMENT_EVENTS - 1) =>
            {
                // A part segment (the tail a closing writer kept) that the ledger has since
                // outgrown: its events and the rest come from the records, and the reader
                // saves the whole segment in its place.
                break;
            }
            Ok(count) => {
                next += count;
                found.push(Found {
                    file,
                    header,
                    count,
                });
            }
            Err(e) => {
                cov.rejected = Some(format!("{}: {e}", file.display()));
                break;
            }
        }
    }
    let total: u64 = found.iter().map(|f| f.count).sum();
    let decoded = Decoded {
        state: Mutex::new(DecodeState {
            next: 0,
            appended: 0,
            stop: false,
            done: found.iter().map(|_| None).collect(),
        }),
        ready: Condvar::new(),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, DECODERS)
        .min(found.len());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| decode_worker(&found, &decoded, need));
        }
        for (k, file) in found.iter().enumerate() {
            let seg = {
                let mut st = decoded.state.lock();
                loop {
                    if let Some(seg) = st.done[k].take() {
                        break seg;
                    }
                    decoded.ready.wait(&mut st);
                }
            };
            let ok = seg.and_then(|seg| {
                let n = seg.len as u64;
                f(total, seg).map(|()| n)
            });
            let mut st = decoded.state.lock();
            st.appended = k + 1;
            match ok {
                Ok(n) => {
                    cov.events += n;
                    cov.segments += 1;
                }
                Err(e) => {
                    cov.rejected = Some(format!("{}: {e}", file.file.display()));
                    st.stop = true;
                }
            }
            decoded.ready.notify_all();
            if st.stop {
                break;
            }
        }
        // Workers still waiting for room stop here.
        decoded.state.lock().stop = true;
        decoded.ready.notify_all();
    });
    cov
}

/// Whether the ledger has an event at `seq` (a failed lookup counts as no).
fn ledger_holds(store: &Store, seq: u64) -> bool {
    matches!(store.hash_at(seq), Ok(Some(_)))
}

/// How many events the segment file at `file` says it holds (0: no such file, or not a
/// segment of this format). Only its header is read.
fn events_on_disk(file: &Path) -> u64 {
    match read_header(file) {
        Ok(Some(h)) if &h[..8] == MAGIC => {
            u64::from(u32::from_le_bytes(h[16..20].try_into().expect("4 bytes")))
        }
        _ => 0,
    }
}

/// Threads decoding segments while [`load`] appends them.
const DECODERS: usize = 2;
/// How many segments may be decoded ahead of the next one to append.
const AHEAD: usize = 4;

/// A segment whose header passed [`check_header`].
struct Found {
    file: PathBuf,
    header: [u8; HEADER_LEN],
    count: u64,
}

/// What the decoding threads and [`load`] share.
struct Decoded {
    state: Mutex<DecodeState>,
    ready: Condvar,
}

struct DecodeState {
    /// The next segment to decode.
    next: usize,
    /// How many segments were appended (or given up).
    appended: usize,
    stop: bool,
    /// Decoded segments not yet appended.
    done: Vec<Option<Result<EventColumns>>>,
}

fn decode_worker(found: &[Found], decoded: &Decoded, need: Projection) {
    loop {
        let k = {
            let mut st = decoded.state.lock();
            loop {
                if st.stop || st.next >= found.len() {
                    return;
                }
                if st.next < st.appended + AHEAD {
                    break;
                }
                decoded.ready.wait(&mut st);
            }
            st.next += 1;
            st.next - 1
        };
        let seg = read_segment(&found[k], need);
        let mut st = decoded.state.lock();
        st.done[k] = Some(seg);
        decoded.ready.notify_all();
    }
}

/// The first [`HEADER_LEN`] bytes of a segment file; `None` when there is no such file.
fn read_header(file: &Path) -> Result<Option<[u8; HEADER_LEN]>> {
    let mut f = match fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e)),
    };
    let mut header = [0u8; HEADER_LEN];
    match f.read_exact(&mut header) {
        Ok(()) => Ok(Some(header)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(bad("not a column segment of this format"))
        }
        Err(e) => Err(bad(e)),
    }
}

/// Reads a segment whose header was checked, and decodes the columns of `need` from it.
fn read_segment(f: &Found, need: Projection) -> Result<EventColumns> {
    let bytes = fs::read(&f.file).map_err(bad)?;
    // Replaced since its header was checked: not the segment the chain vouched for.
    if bytes.get(..HEADER_LEN) != Some(&f.header[..]) {
        return Err(bad("changed while being read"));
    }
    let first = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    decode(&bytes, first, f.count, need)
}

/// Writes the segments that `cols` holds whole, from the one holding seq `from` on: those
/// not on disk yet, and with `replace` also those that are (a reader replaces what [`load`]
/// did not trust). Errors (a read-only directory, a full disk) are returned for the caller
/// to ignore: the store is an optimisation.
pub fn save(store: &Store, cols: &EventColumns, from: u64, replace: bool) -> Result<usize> {
    let Some(path) = store.path() else {
        return Ok(0);
    };
    let dir = dir_of(path);
    let mut written = 0;
    let mut start = segment_start(from.max(1));
    while start + SEGMENT_EVENTS - 1 <= cols.last_seq() {
        let Some(row) = cols.row_of_seq(start) else {
            break;
        };
        let file = segment_path(&dir, start);
        if replace || events_on_disk(&file) < SEGMENT_EVENTS {
            write_segment(store, &dir, cols, row, SEGMENT_EVENTS as usize)?;
            written += 1;
        }
        start += SEGMENT_EVENTS;
    }
    Ok(written)
}

/// Encodes rows `row..row + count` of `cols` (consecutive seqs) and writes them as a segment.
fn write_segment(
    store: &Store,
    dir: &Path,
    cols: &EventColumns,
    row: usize,
    count: usize,
) -> Result<()> {
    let hash = segment_hash(store, cols, row, count)?;
    write_segment_file(dir, cols, row, count, &hash)
}

/// The ledger's stored hash at the last of `count` consecutive events of `cols` from `row`,
/// which a segment of them records.
fn segment_hash(store: &Store, cols: &EventColumns, row: usize, count: usize) -> Result<[u8; 32]> {
    let first = cols.seq[row];
    let last = first + count as u64 - 1;
    if cols.seq[row + count - 1] != last {
        return Err(Error::Integrity(format!(
            "the columns of seqs {first}..={last} are not consecutive"
        )));
    }
    store
        .hash_at(last)?
        .ok_or_else(|| Error::Integrity(format!("the ledger has no event at seq {last}")))
}

/// Writes the segment of `count` events of `cols` from `row`, whose last has the chain hash
/// `hash`, into `dir`.
fn write_segment_file(
    dir: &Path,
    cols: &EventColumns,
    row: usize,
    count: usize,
    hash: &[u8; 32],
) -> Result<()> {
    let first = cols.seq[row];
    let bytes = encode(cols, row..row + count, first, hash)?;
    let io = |e: std::io::Error| Error::Ledger(format!("cannot write {}: {e}", dir.display()));
    fs::create_dir_all(dir).map_err(io)?;
    let file = segment_path(dir, first);
    let tmp = dir.join(format!(
        ".{first:020}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        fs::rename(&tmp, &file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// The segment file bytes of `rows` of `cols`, starting at `first_seq`, ending at `hash`.
pub fn encode(
    cols: &EventColumns,
    rows: std::ops::Range<usize>,
    first_seq: u64,
    hash: &[u8; 32],
) -> Result<Vec<u8>> {
    let sections = encode_payload(cols, rows.clone());
    let count = u32::try_from(rows.len()).expect("a segment is small");
    let mut body = vec![sections.len() as u8];
    let mut frames = Vec::with_capacity(sections.len());
    let mut raw_len = 0usize;
    let big = |_| Error::Ledger("a column segment over 4 GiB".into());
    for (name, raw) in &sections {
        let frame = zstd::bulk::compress(raw, LEVEL)
            .map_err(|e| Error::Ledger(format!("cannot compress columns: {e}")))?;
        body.push(name.len() as u8);
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&u32::try_from(raw.len()).map_err(big)?.to_le_bytes());
        body.extend_from_slice(&u32::try_from(frame.len()).map_err(big)?.to_le_bytes());
        raw_len += raw.len();
        frames.push(frame);
    }
    frames.iter().for_each(|f| body.extend_from_slice(f));
    let raw_len = u32::try_from(raw_len).map_err(big)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(&raw_len.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&body));
    out.extend_from_slice(&body);
    Ok(out)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// `values` as byte planes: a byte giving the width `w` (the bytes the largest value needs),
/// then `w` runs of one byte per value, least significant first. Values of a similar size
/// (time deltas, durations) compress better so than as LEB128, whose bytes mix positions.
fn put_planes(out: &mut Vec<u8>, values: &[u64]) {
    let max = values.iter().copied().max().unwrap_or(0);
    let width = (64 - max.leading_zeros()).div_ceil(8);
    out.push(width as u8);
    for b in 0..width {
        out.extend(values.iter().map(|&v| (v >> (8 * b)) as u8));
    }
}

fn kind_byte(k: EventKind) -> u8 {
    match k {
        EventKind::SessionStart => 0,
        EventKind::SessionEnd => 1,
        EventKind::ModelCall => 2,
        EventKind::ToolCall => 3,
        EventKind::StateOp => 4,
    }
}

/// The 16 bytes of a lowercase hyphenated UUID (the only text that turns back into the same
/// id), else `None`.
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    uuid::Uuid::try_parse(s).ok().map(|u| *u.as_bytes())
}

/// The lowercase hyphenated text of a UUID's bytes, appended to `out`.
fn uuid_text(b: &[u8], out: &mut String) {
    let u = uuid::Uuid::from_slice(b).expect("16 bytes");
    out.push_str(
        u.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    );
}

/// A UUID's first 6 bytes (a UUIDv7's Unix milliseconds) as a number.
fn uuid_ms(b: &[u8; 16]) -> i64 {
    b[..6].iter().fold(0i64, |acc, &x| acc << 8 | i64::from(x))
}

/// Nanoseconds per millisecond: an event's `ts` in the unit of a UUIDv7's timestamp.
const NS_PER_MS: i64 = 1_000_000;

/// Ids or other UUID-shaped texts. Mode 1 (every text a lowercase hyphenated UUID): each
/// UUID's millisecond part (bytes 0-5) as a zigzag LEB128 difference from a prediction — the
/// event's `ts` in milliseconds (`predict`), else the previous UUID's — then bytes 6-15 as ten
/// byte planes (plane k: byte 6 + k of every UUID). A UUIDv7 made at its event's time costs
/// then about its 74 random bits. Mode 0: LEB128 length + UTF-8 each.
fn put_ids(out: &mut Vec<u8>, texts: &[&str], predict: Option<&[i64]>) {
    let Some(uuids) = texts
        .iter()
        .map(|t| uuid_bytes(t))
        .collect::<Option<Vec<_>>>()
    else {
        out.push(0);
        texts.iter().for_each(|t| put_text(out, t));
        return;
    };
    out.push(1);
    let mut prev = 0i64;
    for (i, b) in uuids.iter().enumerate() {
        let ms = uuid_ms(b);
        let base = predict.map_or(prev, |p| p[i]);
        put(out, zigzag(ms.wrapping_sub(base)));
        prev = ms;
    }
    for k in 6..16 {
        out.extend(uuids.iter().map(|b| b[k]));
    }
}

/// The context columns: string columns whose values repeat across an agent's events (the
/// keys a version-2 record keeps in its context), stored with the kind and the verdict as one
/// tuple per event. The other string columns ([`OWN_STR`]) are sections of their own.
fn context_fields() -> impl Iterator<Item = &'static str> {
    STR_FIELDS.iter().copied().filter(|f| !OWN_STR.contains(f))
}

/// The string columns whose values differ from session to session or event to event.
const OWN_STR: &[&str] = &[
    "session_id",
    "parent_id",
    "runtime_session_id",
    "mcp_session_id",
    "key",
];

/// The payload's sections, in order (each a zstd frame of its own).
const SECTIONS: &[&str] = &[
    "id",
    "context",
    "ts",
    "duration_ns",
    "session_id",
    "parent_id",
    "runtime_session_id",
    "mcp_session_id",
    "key",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "bytes",
    "request",
    "attrs",
];

/// The segment-local codes of `rows` of `col` (in order of first appearance; `None` absent)
/// and the dictionary values they index.
fn local_codes(col: &StrColumn, rows: std::ops::Range<usize>) -> (Vec<Option<u32>>, Vec<&str>) {
    let mut local: Vec<u32> = vec![NULL; col.values.len()];
    let mut values: Vec<&str> = Vec::new();
    let codes = rows
        .map(|i| {
            let code = col.codes[i];
            if code == NULL {
                return None;
            }
            let l = &mut local[code as usize];
            if *l == NULL {
                *l = values.len() as u32;
                values.push(col.value(code).unwrap_or_default());
            }
            Some(*l)
        })
        .collect();
    (codes, values)
}

fn verdict_byte(c: &EventColumns, i: usize) -> u8 {
    let holder = match c.state_holder[i] {
        None => 0,
        Some(Holder::Provider) => 1,
        Some(Holder::Client) => 2,
        Some(Holder::Unknown) => 3,
    };
    u8::from(c.tag[i] == Tag::Stateful)
        | u8::from(c.consumes_state[i]) << 1
        | u8::from(c.creates_state[i]) << 2
        | u8::from(c.session_stateful[i]) << 3
        | holder << 4
}

/// The `context` section: each context column's segment-local dictionary (LEB128 count, then
/// LEB128 length + UTF-8 per value), the distinct tuples (LEB128 count; each: kind byte,
/// verdict byte, state kinds byte, then per context column LEB128 code + 1, 0 = absent), then
/// one LEB128 tuple index per event.
fn encode_context(c: &EventColumns, rows: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut columns = Vec::new();
    for name in context_fields() {
        let (codes, values) =
            local_codes(c.str_column(name).expect("a string column"), rows.clone());
        put(&mut out, values.len() as u64);
        values.iter().for_each(|v| put_text(&mut out, v));
        columns.push(codes);
    }
    let mut tuples: HashMap<Vec<u32>, u64, foldhash::fast::RandomState> = HashMap::default();
    let mut order: Vec<Vec<u32>> = Vec::new();
    let mut index = Vec::with_capacity(rows.len());
    // One tuple built per event in place; consecutive events mostly share theirs.
    let (mut t, mut last): (Vec<u32>, Option<u64>) = (Vec::with_capacity(3 + columns.len()), None);
    for (k, i) in rows.enumerate() {
        t.clear();
        t.push(u32::from(kind_byte(c.kind[i])));
        t.push(u32::from(verdict_byte(c, i)));
        t.push(u32::from(c.state_kinds[i].bits()));
        t.extend(columns.iter().map(|col| col[k].map_or(0, |l| l + 1)));
        let at = match last {
            Some(at) if order[at as usize] == t => at,
            _ => match tuples.get(t.as_slice()) {
                Some(&at) => at,
                None => {
                    let at = order.len() as u64;
                    tuples.insert(t.clone(), at);
                    order.push(t.clone());
                    at
                }
            },
        };
        last = Some(at);
        index.push(at);
    }
    put(&mut out, order.len() as u64);
    for t in &order {
        out.extend(t[..3].iter().map(|&b| b as u8));
        t[3..].iter().for_each(|&l| put(&mut out, u64::from(l)));
    }
    index.into_iter().for_each(|k| put(&mut out, k));
    out
}

/// The section of one of [`OWN_STR`]: its segment-local dictionary (LEB128 count, then the
/// values as [`put_ids`] writes them, each predicted by the previous), then per event the
/// zigzag LEB128 difference of its code + 1 (0 = absent) from the previous event's. A
/// session's events come together, so the difference is mostly 0.
fn encode_own_str(col: &StrColumn, rows: std::ops::Range<usize>) -> Vec<u8> {
    let (codes, values) = local_codes(col, rows);
    let mut out = Vec::new();
    put(&mut out, values.len() as u64);
    put_ids(&mut out, &values, None);
    let mut prev = 0i64;
    for code in codes {
        let v = code.map_or(0, |l| i64::from(l) + 1);
        put(&mut out, zigzag(v - prev));
        prev = v;
    }
    out
}

/// The raw sections of `rows` of `cols`, named as in [`SECTIONS`]. Deltas, byte planes and
/// LEB128 first, zstd after: fixed-width values (Arrow IPC's layout) compress to several
/// times the size.
fn encode_payload(c: &EventColumns, rows: std::ops::Range<usize>) -> Vec<(&'static str, Vec<u8>)> {
    let n = rows.len();
    let mut out = Vec::with_capacity(SECTIONS.len());
    let ids: Vec<&str> = rows.clone().map(|i| c.id.get(i)).collect();
    let ts_ms: Vec<i64> = rows
        .clone()
        .map(|i| c.ts[i].div_euclid(NS_PER_MS))
        .collect();
    let mut s = Vec::with_capacity(n * 11);
    put_ids(&mut s, &ids, Some(&ts_ms));
    out.push(("id", s));
    out.push(("context", encode_context(c, rows.clone())));
    let mut prev = 0i64;
    let deltas: Vec<u64> = rows
        .clone()
        .map(|i| {
            let d = zigzag(c.ts[i].wrapping_sub(prev));
            prev = c.ts[i];
            d
        })
        .collect();
    let mut s = Vec::with_capacity(n * 8);
    put_planes(&mut s, &deltas);
    out.push(("ts", s));
    let durations: Vec<u64> = rows
        .clone()
        .map(|i| c.duration_ns[i].map_or(0, |d| zigzag(d).wrapping_add(1)))
        .collect();
    let mut s = Vec::with_capacity(n * 8);
    put_planes(&mut s, &durations);
    out.push(("duration_ns", s));
    for &name in OWN_STR {
        let col = c.str_column(name).expect("a string column");
        out.push((name, encode_own_str(col, rows.clone())));
    }
    for (name, col) in [
        ("input_tokens", &c.input_tokens),
        ("output_tokens", &c.output_tokens),
        ("cached_tokens", &c.cached_tokens),
        ("bytes", &c.bytes),
    ] {
        let mut s = Vec::with_capacity(n * 2);
        rows.clone().for_each(|i| put(&mut s, col[i]));
        out.push((name, s));
    }
    for (name, col) in [("request", &c.request), ("attrs", &c.attrs)] {
        let mut s = Vec::with_capacity(n * 2);
        rows.clone().for_each(|i| put_text(&mut s, col.get(i)));
        out.push((name, s));
    }
    debug_assert!(out.iter().map(|(n, _)| *n).eq(SECTIONS.iter().copied()));
    out
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::Integrity(format!("column segment: {what}"))
}

/// Checks a segment file's header against `first_seq` and its chain hash against `store`;
/// returns its event count.
fn check_header(store: &Store, first_seq: u64, bytes: &[u8]) -> Result<u64> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(bad("not a column segment of this format"));
    }
    let first = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let count = u64::from(u32::from_le_bytes(
        bytes[16..20].try_into().expect("4 bytes"),
    ));
    let hash: [u8; 32] = bytes[20..52].try_into().expect("32 bytes");
    if first != first_seq || count == 0 {
        return Err(bad(format!(
            "names seqs from {first} ({count} events), expected from {first_seq}"
        )));
    }
    let last = first + count - 1;
    if store.hash_at(last)? != Some(hash) {
        return Err(bad(format!(
            "stale: the ledger's chain at seq {last} is not the one it was written for"
        )));
    }
    Ok(count)
}

/// Whether the section `name` holds a column of `need` (`context`, with the kinds and
/// verdicts, and the other always-held columns' sections always).
fn section_needed(name: &str, need: Projection) -> bool {
    match name {
        "context" | "ts" | "session_id" | "input_tokens" | "output_tokens" => true,
        "id" => need.id(),
        "duration_ns" => need.duration_ns(),
        "cached_tokens" => need.cached_tokens(),
        "bytes" => need.bytes(),
        "request" => need.request(),
        "attrs" => need.attrs(),
        field => STR_FIELDS
            .iter()
            .position(|f| *f == field)
            .is_some_and(|k| need.str_field(k)),
    }
}

/// The raw sections of a segment file's body (after the header): its directory read and
/// checked against [`SECTIONS`], the frames of the sections `need` reads decompressed and
/// checked against their stated lengths (decompressed as the frame says, not into a buffer
/// of the stated size), the others left empty (the digest covers them all).
fn sections(body: &[u8], raw_len: usize, need: Projection) -> Result<Vec<Vec<u8>>> {
    let mut r = Reader { b: body, pos: 0 };
    if usize::from(r.byte()?) != SECTIONS.len() {
        return Err(bad("another number of sections"));
    }
    let mut sizes = Vec::with_capacity(SECTIONS.len());
    for want in SECTIONS {
        let len = usize::from(r.byte()?);
        if r.bytes(len)? != want.as_bytes() {
            return Err(bad(format!(
                "the section where {want} belongs has another name"
            )));
        }
        let raw = u32::from_le_bytes(r.bytes(4)?.try_into().expect("4 bytes")) as usize;
        let packed = u32::from_le_bytes(r.bytes(4)?.try_into().expect("4 bytes")) as usize;
        sizes.push((*want, raw, packed));
    }
    if sizes.iter().map(|s| s.1).sum::<usize>() != raw_len {
        return Err(bad("payload length differs from its header"));
    }
    let mut out = Vec::with_capacity(SECTIONS.len());
    for (name, raw, packed) in sizes {
        let frame = r.bytes(packed)?;
        if !section_needed(name, need) {
            out.push(Vec::new());
            continue;
        }
        let data = zstd::stream::decode_all(frame).map_err(|e| bad(format!("{name}: {e}")))?;
        if data.len() != raw {
            return Err(bad(format!("{name}: length differs from its directory")));
        }
        out.push(data);
    }
    if r.pos != body.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// Checks a segment's digest and decodes the columns of `need` from its payload (its header
/// checked by [`check_header`]).
fn decode(bytes: &[u8], first: u64, count: u64, need: Projection) -> Result<EventColumns> {
    let raw_len = u32::from_le_bytes(bytes[52..56].try_into().expect("4 bytes")) as usize;
    let digest = &bytes[56..88];
    let body = &bytes[HEADER_LEN..];
    if Sha256::digest(body).as_slice() != digest {
        return Err(bad("damaged (its digest does not match)"));
    }
    let raw = sections(body, raw_len, need)?;
    let parts: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
    decode_payload(&parts, first, count as usize, need)
}

/// [`check_header`] then [`decode`].
#[cfg(test)]
fn check(store: &Store, first_seq: u64, bytes: &[u8]) -> Result<EventColumns> {
    let count = check_header(store, first_seq, bytes)?;
    decode(bytes, first_seq, count, Projection::ALL)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| bad("truncated payload"))?;
        self.pos += 1;
        Ok(v)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| bad("truncated payload"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    fn var(&mut self) -> Result<u64> {
        // One byte (most codes, code differences and tuple numbers) without the loop.
        if let Some(&b) = self.b.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.var_long()
    }

    fn var_long(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("overlong integer"))
    }

    fn text(&mut self) -> Result<&'a str> {
        let n = usize::try_from(self.var()?).map_err(|_| bad("length"))?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| bad("text is not UTF-8"))
    }

    /// A count of at most `max` items.
    fn count(&mut self, max: usize, what: &str) -> Result<usize> {
        usize::try_from(self.var()?)
            .ok()
            .filter(|&k| k <= max)
            .ok_or_else(|| bad(format!("{what}: more values than events")))
    }

    /// `n` values written by [`put_planes`].
    fn planes(&mut self, n: usize) -> Result<Vec<u64>> {
        let width = usize::from(self.byte()?);
        if width > 8 {
            return Err(bad("a plane width over 8 bytes"));
        }
        let mut out = vec![0u64; n];
        for b in 0..width {
            let plane = self.bytes(n)?;
            for (v, &x) in out.iter_mut().zip(plane) {
                *v |= u64::from(x) << (8 * b);
            }
        }
        Ok(out)
    }

    /// `n` texts written by [`put_ids`], each handed to `push`.
    fn ids(&mut self, n: usize, predict: Option<&[i64]>, mut push: impl FnMut(&str)) -> Result<()> {
        match self.byte()? {
            1 => {
                let mut ms = Vec::with_capacity(n);
                let mut prev = 0i64;
                for i in 0..n {
                    let base = predict.map_or(prev, |p| p[i]);
                    let v = base.wrapping_add(unzigzag(self.var()?));
                    if !(0..1 << 48).contains(&v) {
                        return Err(bad("a UUID's time out of range"));
                    }
                    ms.push(v);
                    prev = v;
                }
                let rest = self.bytes(10 * n)?;
                let mut text = String::with_capacity(36);
                for (i, &m) in ms.iter().enumerate() {
                    let mut b = [0u8; 16];
                    b[..6].copy_from_slice(&m.to_be_bytes()[2..]);
                    for k in 0..10 {
                        b[6 + k] = rest[k * n + i];
                    }
                    text.clear();
                    uuid_text(&b, &mut text);
                    push(&text);
                }
            }
            0 => {
                for _ in 0..n {
                    push(self.text()?);
                }
            }
            m => return Err(bad(format!("unknown id mode {m}"))),
        }
        Ok(())
    }

    /// Checks that everything was read.
    fn end(&self, what: &str) -> Result<()> {
        if self.pos != self.b.len() {
            return Err(bad(format!("{what}: trailing bytes")));
        }
        Ok(())
    }
}

fn decode_kind(k: u8) -> Result<EventKind> {
    Ok(match k {
        0 => EventKind::SessionStart,
        1 => EventKind::SessionEnd,
        2 => EventKind::ModelCall,
        3 => EventKind::ToolCall,
        4 => EventKind::StateOp,
        _ => return Err(bad(format!("unknown kind {k}"))),
    })
}

/// The columns of `need` of `n` events from seq `first` in the raw `sections` (in
/// [`SECTIONS`] order; those `need` does not read are not looked at). String columns keep
/// the segment's own dictionary (distinct values), without an index: [`append`] interns
/// them.
fn decode_payload(
    sections: &[&[u8]],
    first: u64,
    n: usize,
    need: Projection,
) -> Result<EventColumns> {
    if sections.len() != SECTIONS.len() {
        return Err(bad("another number of sections"));
    }
    let mut c = EventColumns {
        len: n,
        seq: (first..first + n as u64).collect(),
        present: need,
        ..EventColumns::default()
    };
    let section = |name: &str| {
        let at = SECTIONS.iter().position(|s| *s == name).expect("a section");
        Reader {
            b: sections[at],
            pos: 0,
        }
    };
    // ts first: the ids' times are predicted from it.
    let mut r = section("ts");
    let mut prev = 0i64;
    c.ts = r
        .planes(n)?
        .into_iter()
        .map(|d| {
            prev = prev.wrapping_add(unzigzag(d));
            prev
        })
        .collect();
    r.end("ts")?;
    if need.duration_ns() {
        let mut r = section("duration_ns");
        c.duration_ns = r
            .planes(n)?
            .into_iter()
            .map(|v| (v != 0).then(|| unzigzag(v.wrapping_sub(1))))
            .collect();
        r.end("duration_ns")?;
    }
    if need.id() {
        let ts_ms: Vec<i64> = c.ts.iter().map(|t| t.div_euclid(NS_PER_MS)).collect();
        let mut r = section("id");
        c.id.offsets.reserve(n);
        c.id.data.reserve(36 * n);
        let id = &mut c.id;
        r.ids(n, Some(&ts_ms), |s| id.push(s))?;
        r.end("id")?;
    }
    decode_context(&mut c, section("context"), n, need)?;
    for &name in OWN_STR {
        if !section_needed(name, need) {
            continue;
        }
        let mut r = section(name);
        let k = r.count(n, name)?;
        let mut col = StrColumn::default();
        col.values.reserve(k);
        r.ids(k, None, |s| col.values.push(Arc::from(s)))?;
        col.codes.reserve(n);
        let mut prev = 0i64;
        for _ in 0..n {
            let v = prev.wrapping_add(unzigzag(r.var()?));
            col.codes.push(match v {
                0 => NULL,
                v if v > 0 && v <= k as i64 => (v - 1) as u32,
                _ => return Err(bad(format!("{name}: code out of range"))),
            });
            prev = v;
        }
        r.end(name)?;
        *c.str_column_mut(name) = col;
    }
    for (name, col) in [
        ("input_tokens", &mut c.input_tokens),
        ("output_tokens", &mut c.output_tokens),
        ("cached_tokens", &mut c.cached_tokens),
        ("bytes", &mut c.bytes),
    ] {
        if !section_needed(name, need) {
            continue;
        }
        let mut r = section(name);
        col.reserve(n);
        for _ in 0..n {
            col.push(r.var()?);
        }
        r.end(name)?;
    }
    for (name, col) in [("request", &mut c.request), ("attrs", &mut c.attrs)] {
        if !section_needed(name, need) {
            continue;
        }
        let mut r = section(name);
        col.offsets.reserve(n);
        for _ in 0..n {
            let s = r.text()?;
            col.push(s);
        }
        r.end(name)?;
    }
    c.session_tag = c
        .session_stateful
        .iter()
        .map(|&s| if s { Tag::Stateful } else { Tag::Stateless })
        .collect();
    Ok(c)
}

/// Reads the `context` section ([`encode_context`]) into the kind, verdict and the context
/// columns of `need` of `c`.
fn decode_context(
    c: &mut EventColumns,
    mut r: Reader<'_>,
    n: usize,
    need: Projection,
) -> Result<()> {
    let fields: Vec<&str> = context_fields().collect();
    let held: Vec<bool> = fields.iter().map(|f| section_needed(f, need)).collect();
    let mut columns: Vec<StrColumn> = Vec::with_capacity(fields.len());
    let mut sizes: Vec<usize> = Vec::with_capacity(fields.len());
    for (name, &held) in fields.iter().zip(&held) {
        let k = r.count(n, name)?;
        let mut col = StrColumn::default();
        for _ in 0..k {
            let v = r.text()?;
            if held {
                col.values.push(Arc::from(v));
            }
        }
        if held {
            col.codes.reserve(n);
        }
        columns.push(col);
        sizes.push(k);
    }
    let t = r.count(n, "context")?;
    let mut tuples: Vec<(EventKind, u8, u8, Vec<u32>)> = Vec::with_capacity(t);
    for _ in 0..t {
        let head = r.bytes(3)?;
        let kind = decode_kind(head[0])?;
        let mut codes = Vec::with_capacity(fields.len());
        for (name, &k) in fields.iter().zip(&sizes) {
            codes.push(match r.var()? {
                0 => NULL,
                v if v <= k as u64 => (v - 1) as u32,
                _ => return Err(bad(format!("{name}: code out of range"))),
            });
        }
        tuples.push((kind, head[1], head[2], codes));
    }
    c.kind.reserve(n);
    for _ in 0..n {
        let k = usize::try_from(r.var()?).ok();
        let (kind, v, kinds, codes) = k
            .and_then(|k| tuples.get(k))
            .ok_or_else(|| bad("context: index out of range"))?;
        c.kind.push(*kind);
        c.tag.push(if v & 1 != 0 {
            Tag::Stateful
        } else {
            Tag::Stateless
        });
        c.consumes_state.push(v & 2 != 0);
        c.creates_state.push(v & 4 != 0);
        c.session_stateful.push(v & 8 != 0);
        c.state_holder.push(match (v >> 4) & 3 {
            0 => None,
            1 => Some(Holder::Provider),
            2 => Some(Holder::Client),
            _ => Some(Holder::Unknown),
        });
        c.state_kinds.push(StateKinds::from_bits(*kinds));
        for ((col, &code), &held) in columns.iter_mut().zip(codes).zip(&held) {
            if held {
                col.codes.push(code);
            }
        }
    }
    r.end("context")?;
    for ((name, col), held) in fields.iter().zip(columns).zip(held) {
        if held {
            *c.str_column_mut(name) = col;
        }
    }
    Ok(())
}

/// Appends the columns `cols` holds from `from` (which must hold them all: a decoded segment
/// or events read from the records), interning `from`'s string values into `cols`'
/// dictionaries; returns the number of events appended.
pub fn append(cols: &mut EventColumns, from: EventColumns) -> Result<u64> {
    let need = cols.present;
    if !from.present.covers(need) {
        return Err(bad("the columns to append lack some of the columns held"));
    }
    let s = from;
    let n = s.len;
    cols.len += n;
    cols.seq.extend_from_slice(&s.seq);
    if need.id() {
        append_text(&mut cols.id, &s.id);
    }
    cols.kind.extend_from_slice(&s.kind);
    cols.ts.extend_from_slice(&s.ts);
    if need.duration_ns() {
        cols.duration_ns.extend_from_slice(&s.duration_ns);
    }
    for (k, name) in STR_FIELDS.iter().enumerate() {
        if !need.str_field(k) {
            continue;
        }
        let from = s.str_column(name).expect("a string column");
        let to = cols.str_column_mut(name);
        let map: Vec<u32> = from.values.iter().map(|v| to.intern_shared(v)).collect();
        to.codes.extend(
            from.codes
                .iter()
                .map(|&k| if k == NULL { NULL } else { map[k as usize] }),
        );
    }
    cols.input_tokens.extend_from_slice(&s.input_tokens);
    cols.output_tokens.extend_from_slice(&s.output_tokens);
    if need.cached_tokens() {
        cols.cached_tokens.extend_from_slice(&s.cached_tokens);
    }
    if need.bytes() {
        cols.bytes.extend_from_slice(&s.bytes);
    }
    cols.tag.extend_from_slice(&s.tag);
    cols.session_tag.extend_from_slice(&s.session_tag);
    cols.consumes_state.extend_from_slice(&s.consumes_state);
    cols.creates_state.extend_from_slice(&s.creates_state);
    cols.session_stateful.extend_from_slice(&s.session_stateful);
    cols.state_holder.extend_from_slice(&s.state_holder);
    cols.state_kinds.extend_from_slice(&s.state_kinds);
    if need.request() {
        append_text(&mut cols.request, &s.request);
    }
    if need.attrs() {
        append_text(&mut cols.attrs, &s.attrs);
    }
    Ok(n as u64)
}

/// Reserves room for `n` more events in every column held (ids: 36 bytes each, a UUID's
/// text).
fn reserve(c: &mut EventColumns, n: usize) {
    let need = c.present;
    c.seq.reserve(n);
    if need.id() {
        c.id.offsets.reserve(n);
        c.id.data.reserve(n.saturating_mul(36));
    }
    c.kind.reserve(n);
    c.ts.reserve(n);
    if need.duration_ns() {
        c.duration_ns.reserve(n);
    }
    for (k, name) in STR_FIELDS.iter().enumerate() {
        if need.str_field(k) {
            c.str_column_mut(name).codes.reserve(n);
        }
    }
    for (col, held) in [
        (&mut c.input_tokens, true),
        (&mut c.output_tokens, true),
        (&mut c.cached_tokens, need.cached_tokens()),
        (&mut c.bytes, need.bytes()),
    ] {
        if held {
            col.reserve(n);
        }
    }
    c.tag.reserve(n);
    c.session_tag.reserve(n);
    c.consumes_state.reserve(n);
    c.creates_state.reserve(n);
    c.session_stateful.reserve(n);
    c.state_holder.reserve(n);
    c.state_kinds.reserve(n);
    if need.request() {
        c.request.offsets.reserve(n);
    }
    if need.attrs() {
        c.attrs.offsets.reserve(n);
    }
}

fn append_text(to: &mut TextColumn, from: &TextColumn) {
    let base = to.data.len();
    to.data.push_str(&from.data);
    to.offsets
        .extend(from.offsets[1..].iter().map(|&o| o + base));
}

/// Keeps the column store of a ledger up to date as a [`crate::meter::Recorder`] commits:
/// the events it appends are pushed into columns in memory (no record is parsed), and each
/// segment is encoded and written, on a thread of its own ([`SegmentThread`]), as soon as the
/// ledger holds all of its events. Events another process
/// appended in between are read from the records. Failures are counted, never raised: the
/// store is an optimisation and a reader rebuilds what is missing.
#[derive(Debug, Default)]
pub struct ColumnWriter {
    state: Mutex<WriterState>,
    /// The fork generation `state` was last locked in. A forked child may find `state` locked
    /// by its parent's committer, a thread the child does not have: the child's committer, the
    /// only thread that locks `state`, releases it first (see `observe`).
    generation: AtomicU64,
    /// Segments written, and attempts that failed (read without the lock).
    counts: Arc<Counts>,
    /// Where each whole segment is encoded and written.
    segments: SegmentThread,
}

#[derive(Debug, Default)]
struct Counts {
    written: AtomicU64,
    failed: AtomicU64,
}

impl Counts {
    fn add(&self, outcome: &Result<()>) {
        match outcome {
            Ok(()) => self.written.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

#[derive(Debug, Default)]
struct WriterState {
    /// Columns of consecutive seqs from a segment start, not yet written.
    cols: EventColumns,
}

impl ColumnWriter {
    pub fn new() -> Self {
        ColumnWriter::default()
    }

    /// Segments written and failed attempts so far (this process), once the segment being
    /// written, if any, is.
    pub fn counts(&self) -> (u64, u64) {
        self.segments.settle();
        (
            self.counts.written.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed),
        )
    }

    fn observe(&self, store: &Store, recs: &[Option<&Recorded>], outcomes: &[Outcome]) {
        let Some(path) = store.path() else {
            return;
        };
        let generation = crate::fork::generation();
        let child = self.generation.swap(generation, Ordering::AcqRel) != generation;
        if child && self.state.is_locked() {
            // SAFETY: only the committer thread locks `state`; in a forked child the lock can
            // only be held by the parent's committer, which the child does not have.
            unsafe { self.state.force_unlock() };
        }
        let mut st = self.state.lock();
        if child {
            st.cols = EventColumns::default();
            self.segments.forked();
        }
        for (rec, outcome) in recs.iter().zip(outcomes) {
            let Outcome::Appended { seq } = *outcome else {
                continue;
            };
            // An event the recorder no longer holds is read from the records with the next.
            let Some(rec) = rec else {
                continue;
            };
            match st.push(store, path, seq, rec) {
                Ok(Some(segment)) => {
                    let counts = Arc::clone(&self.counts);
                    self.segments.run(move || counts.add(&segment.write()));
                }
                Ok(None) => {}
                Err(()) => {
                    self.counts.failed.fetch_add(1, Ordering::Relaxed);
                    st.cols = EventColumns::default();
                }
            }
        }
    }
}

/// A whole segment's columns, ready to be encoded and written.
struct Finished {
    dir: PathBuf,
    cols: EventColumns,
    /// The ledger's stored hash at its last event.
    hash: [u8; 32],
}

impl Finished {
    fn write(&self) -> Result<()> {
        write_segment_file(&self.dir, &self.cols, 0, self.cols.len, &self.hash)
    }
}

impl WriterState {
    /// Adds the event appended at `seq`, after whatever is missing before it; returns the
    /// segment it completes unless a file there already holds all of it.
    fn push(
        &mut self,
        store: &Store,
        path: &Path,
        seq: u64,
        rec: &Recorded,
    ) -> std::result::Result<Option<Finished>, ()> {
        let start = segment_start(seq);
        let expected = if self.cols.len == 0 {
            // The columns of a whole segment at once: grown by doubling, they would be copied
            // over and over (the committer's largest copies), and a segment's size is known.
            reserve(&mut self.cols, SEGMENT_EVENTS as usize);
            start
        } else {
            self.cols.last_seq() + 1
        };
        if seq < expected || (self.cols.len > 0 && segment_start(expected) != segment_start(seq)) {
            // Out of order, or a gap across a segment boundary: start afresh at this segment.
            self.cols = EventColumns::default();
            return self.push(store, path, seq, rec);
        }
        if seq > expected {
            // Appended by another writer (or before this one started): from the records.
            let cols = &mut self.cols;
            store
                .for_each_record_between(expected - 1, seq - 1, u64::MAX, |s, text| {
                    cols.push_parsed(s, &scalars::parse(s, text)?);
                    Ok(())
                })
                .map_err(|_| ())?;
            if self.cols.last_seq() + 1 != seq {
                return Err(());
            }
        }
        self.cols.push(seq, &rec.event, rec.classification());
        if seq % SEGMENT_EVENTS == 0 {
            let cols = std::mem::take(&mut self.cols);
            let dir = dir_of(path);
            if events_on_disk(&segment_path(&dir, start)) < SEGMENT_EVENTS {
                let hash = segment_hash(store, &cols, 0, cols.len).map_err(|_| ())?;
                return Ok(Some(Finished { dir, cols, hash }));
            }
        }
        Ok(None)
    }
}

impl ColumnWriter {
    /// Writes the events after the last whole segment as a part segment (the next process
    /// reads them from it instead of parsing their records), unless the file there already
    /// holds as many, after the whole segment being written, if any. Called when the recorder
    /// closes.
    fn keep_tail(&self, store: &Store) {
        let Some(path) = store.path() else {
            return;
        };
        // A forked child that has not committed holds its parent's state: nothing of its own.
        if self.generation.load(Ordering::Acquire) != crate::fork::generation() {
            return;
        }
        self.segments.settle();
        let st = self.state.lock();
        let cols = &st.cols;
        if cols.len == 0 || segment_start(cols.seq[0]) != cols.seq[0] {
            return;
        }
        let dir = dir_of(path);
        if events_on_disk(&segment_path(&dir, cols.seq[0])) >= cols.len as u64 {
            return;
        }
        self.counts
            .add(&write_segment(store, &dir, cols, 0, cols.len));
    }
}

impl CommitObserver for ColumnWriter {
    fn committed(&self, store: &Store, recs: &[Option<&Recorded>], outcomes: &[Outcome]) {
        self.observe(store, recs, outcomes);
    }

    fn closing(&self, store: &Store) {
        self.keep_tail(store);
    }
}

#[cfg(test)]
#[path = "column_store_tests.rs"]
mod tests;
