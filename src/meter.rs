//! The recorder: the hot path that accepts events, and the background writer that classifies,
//! encodes, chains and commits them.
//!
//! Performance notes. A record call on the hot path only validates the event, wraps it in an
//! `Arc` and pushes it onto a mutex-protected queue: one uncontended lock and no syscall, since
//! the encoder takes the queue on its own once its oldest event has waited [`LINGER`], or when
//! the queue holds a group's worth or half its capacity ([`WAKE_AT`]: the only push that wakes
//! it), or when someone flushes. Taking the queue swaps its buffer for an empty one, so the
//! lock is never held for longer than a few loads and stores (a producer that found it taken
//! would sleep in the kernel until the holder, perhaps itself waiting for a core, let go); the
//! committer likewise applies a group's outcomes to its events before it takes the lock to
//! count them. Classification and canonical encoding happen on the encoder thread, which
//! encodes what it took in groups of up to 8192 events and also writes each event's record and
//! chain hash ahead of the append
//! (`crate::ledger::ahead`: on the assumption that the append starts where the last group it
//! wrote ends, which the store checks); the SQLite inserts, the Merkle tree and the commit
//! happen on a committer thread, one transaction per group, so groups grow with load (group
//! commit) and encoding overlaps committing (two cores). The queue is bounded: a producer that finds it full waits (the caller releases the
//! GIL first) — backpressure instead of unbounded memory. With `Durability::Sync` the caller's
//! thread classifies and commits the event itself and returns only after the commit.
//!
//! Failures never lose events silently: a failed commit keeps the batch queued and retries with
//! a backoff; `flush()` asks for one retry at once and reports the failure if that retry fails
//! too (so a flush after the fault cleared succeeds without waiting out the backoff); rejected
//! ids (same id, different payload) are reported by the next `flush()`.
//!
//! `fork()`: a recorder created before a fork works in the child. The child gets a copy of the
//! parent's memory but none of its threads, and must not use the parent's SQLite connection
//! (SQLite forbids carrying an open connection across a fork), so the recorder's working state
//! ([`Shared`]: store, queue, counters, writer threads) belongs to one process. On its first
//! use in a child the recorder opens the ledger file again and starts new writer threads; the
//! parent's state is left untouched (never closed, flushed or joined there: the parent writes
//! what it accepted). Counters start again from zero in the child. An in-memory ledger cannot
//! be reopened: its recorder raises `LedgerError` in a child.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::fork::{Lock, Signal};

use crate::classify::Ruleset;
use crate::error::{Error, Result};
use crate::event::{Classification, Event, Recorded};
use crate::ledger::compact::{Member, Parts, SharedDefinitions};
use crate::ledger::{Ahead, AheadWriter, Durability, Outcome, Pending, Store};

/// Events a queue holds before producers wait for the writer.
pub const DEFAULT_CAPACITY: usize = 16_384;
/// Largest group the writer commits in one transaction.
const MAX_BATCH: usize = 8_192;
/// Queue length at which a producer wakes the encoder (a group's worth, or half the queue if
/// that is less, see [`Shared::wake_at`]); below it the encoder wakes on its own
/// [`LINGER`] after the oldest queued event. Waking the encoder costs a futex syscall (~1-5 µs): doing it per event would
/// cost more than recording the event; and an encoder woken for a few events would run beside
/// the caller, on the other core, while the caller is still recording.
const WAKE_AT: usize = MAX_BATCH;
/// Longest an event waits in the queue before the encoder takes it (without a flush): the
/// encoder's timer runs from the moment the oldest queued event was queued, not from when the
/// encoder last looked, so a burst of record calls shorter than this is not interrupted by it.
///
/// 50 ms, not the few milliseconds of a network batcher (Kafka's `linger.ms` is 5 ms): a group
/// costs the writer about 0.2-0.3 ms of CPU whatever its size up to a few dozen events (a
/// SQLite transaction: its WAL frames, two 16 KiB pages for a few events, locks, and the
/// thread wake-ups), so an agent that records a few events every few milliseconds paid that
/// per run. Over 50 ms such runs share one group. A flush, `close()` and interpreter exit do
/// not wait for it; what it lengthens is how long an accepted event may wait unwritten (and
/// what a crashed process loses without a returned flush), still short beside the peers that
/// batch for cost (OpenTelemetry's BatchSpanProcessor waits 5 s, Langfuse's client 1 s).
const LINGER: Duration = Duration::from_millis(50);
/// How long the encoder, with nothing queued, waits before it releases the events of committed
/// groups and the buffers beyond a group's worth. After that, with every group back, it sleeps
/// until an event is queued (the first event queued wakes it): an idle meter takes no CPU, and
/// a meter used in short bursts keeps its buffers between them.
const IDLE: Duration = Duration::from_millis(200);

/// The record parts the store appends: the canonical JSON of the event and of its
/// classification (the latter from `texts`, which remembers the recent ones).
fn to_pending(rec: &Recorded, texts: &mut ClassificationTexts) -> Result<Pending> {
    let mut p = Pending {
        id: String::new(),
        event_json: String::with_capacity(384),
        classification_json: String::new(),
        ts_explicit: false,
    };
    fill_pending(rec, texts, &mut p, &mut Vec::new())?;
    Ok(p)
}

/// [`to_pending`] into a [`Pending`] whose buffers are reused (each cleared first), with the
/// event's members as they were written into `members`; the number `texts` gives the
/// classification's text.
fn fill_pending(
    rec: &Recorded,
    texts: &mut ClassificationTexts,
    p: &mut Pending,
    members: &mut Vec<Member>,
) -> Result<u64> {
    p.event_json.clear();
    members.clear();
    rec.event
        .write_canonical_json_marking(&mut p.event_json, |key, at| members.push((key, at)))?;
    p.id.clear();
    p.id.push_str(&rec.event.id);
    p.classification_json.clear();
    let number = texts.write(rec.classification(), &mut p.classification_json);
    p.ts_explicit = rec.event.ts_explicit;
    Ok(number)
}

/// Told of every group the recorder commits, right after the commit and before the store's
/// lock is released (so `store` shows exactly that commit): each event (`None` where the
/// recorder no longer holds it) with its outcome. Used
/// to keep derived data up to date (the column store); it must not fail the commit, so it
/// returns nothing.
pub trait CommitObserver: Send + Sync {
    fn committed(&self, store: &Store, recs: &[Option<&Recorded>], outcomes: &[Outcome]);

    /// Told once when the recorder closes, after its last commit (the store locked).
    fn closing(&self, _store: &Store) {}
}

/// The canonical JSON of the last few distinct classifications a writer encoded. An agent's
/// events come in a handful of shapes, each classified alike: comparing a classification with
/// a remembered one (its evidence is shared with the ruleset, so mostly pointer comparisons)
/// and copying the text costs a fraction of writing it again.
#[derive(Default)]
struct ClassificationTexts {
    /// Most recently used first, each with its number (see [`ClassificationTexts::write`]).
    recent: Vec<(Classification, String, u64)>,
    /// Texts written so far.
    written: u64,
}

impl ClassificationTexts {
    const KEPT: usize = 8;

    #[cfg(test)]
    fn text(&mut self, c: &Classification) -> String {
        let mut text = String::new();
        self.write(c, &mut text);
        text
    }

    /// Appends the canonical JSON of `c` to `out`; returns the text's number: the same for
    /// the same text while it is remembered (a text written afresh gets a new one).
    fn write(&mut self, c: &Classification, out: &mut String) -> u64 {
        if let Some(i) = self.recent.iter().position(|(known, _, _)| known == c) {
            self.recent[..=i].rotate_right(1);
            out.push_str(&self.recent[0].1);
            return self.recent[0].2;
        }
        let mut text = String::with_capacity(256);
        c.write_canonical_json(&mut text);
        out.push_str(&text);
        self.written += 1;
        self.recent.truncate(Self::KEPT - 1);
        self.recent.insert(0, (c.clone(), text, self.written));
        self.written
    }
}

/// Counters exposed as `meter.stats()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub written: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub failed_commits: u64,
    pub dropped: u64,
    pub pending: u64,
    /// Failures inside integrations (capture hooks, processors), by source. They are counted
    /// and logged, never raised into the host application.
    pub integration_errors: std::collections::BTreeMap<String, u64>,
    /// OpenTelemetry spans taken by the span processor and the OTLP import.
    pub spans: SpanStats,
}

/// What became of the OpenTelemetry spans a meter was given (`meter.stats()["spans"]`):
/// `seen` = `recorded` + `joined` + `errors` + the sum of `skipped`, so no span goes
/// unaccounted for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanStats {
    pub seen: u64,
    /// Spans recorded as an event of their own.
    pub recorded: u64,
    /// Spans that describe a call HTTP capture recorded: one event for both.
    pub joined: u64,
    /// Spans whose mapping or recording failed (also counted in `integration_errors`).
    pub errors: u64,
    /// Spans that are not events, by reason.
    pub skipped: std::collections::BTreeMap<String, u64>,
}

impl SpanStats {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &SpanStats) {
        self.seen += other.seen;
        self.recorded += other.recorded;
        self.joined += other.joined;
        self.errors += other.errors;
        for (k, v) in &other.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
    }
}

/// Events the writer builds itself from raw material the caller handed over: a captured HTTP
/// call (the request described and the response's usage read on the encoder thread, not the
/// caller's), or an InvokeAgent call and the inner steps its trace reports (the stream's bytes
/// read there). `build` gives the events to record, in order ([`Built`]: none when there is
/// nothing to record, e.g. a request that was no AI API call), with the failures it met on the
/// way; or an error. Failures, an error, a panic and an event that fails validation are counted
/// as failures of the integration `source` in `stats().integration_errors` and never raised:
/// the caller went on long ago. The item takes `places` places of the queue's capacity (see
/// [`Deferred::places_for`]), so that a queue full of such items is bounded like one full of
/// events; its events are encoded and committed together, in one group.
pub struct Deferred {
    pub source: crate::event::Text,
    /// Places of the queue's capacity the item takes (at least one).
    pub places: usize,
    pub build: Box<dyn FnOnce() -> Result<Built> + Send>,
}

/// The raw material one place of the queue stands for: a deferred item holding more (a
/// request's body, a response stream's bytes) takes a place for each `PLACE_BYTES` of it.
pub const PLACE_BYTES: usize = 16 * 1024;

/// What a [`Deferred`] item built: its events in the order they are recorded, and how many
/// failures building them met (a part of the raw material that could not be read: the events
/// that could be built are still recorded).
#[derive(Debug, Default)]
pub struct Built {
    pub events: Vec<Event>,
    pub failures: usize,
}

impl From<Option<Event>> for Built {
    fn from(event: Option<Event>) -> Self {
        Built {
            events: event.into_iter().collect(),
            failures: 0,
        }
    }
}

impl Deferred {
    /// The places an item takes that will yield about `events` events and holds `bytes` of
    /// raw material until it is built: one per event, and one per [`PLACE_BYTES`] held if that
    /// is more; at least one. A queue of `capacity` places then holds at most about `capacity`
    /// events' worth, or `capacity` × [`PLACE_BYTES`] of raw material, whatever it holds.
    pub fn places_for(events: usize, bytes: usize) -> usize {
        events.max(bytes.div_ceil(PLACE_BYTES)).max(1)
    }

    /// Runs `build` and completes (stamps and validates) each event: one that fails validation
    /// is left out and counted, the others are kept. An error or a panic inside `build` is one
    /// failure and nothing to record, so the writer thread goes on.
    fn run(self) -> Built {
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(self.build))
            .unwrap_or_else(|_| Err(Error::Ledger("building deferred events panicked".into())));
        match built {
            Ok(mut built) => {
                let Built { events, failures } = &mut built;
                events.retain_mut(|e| match e.complete() {
                    Ok(()) => true,
                    Err(_) => {
                        *failures += 1;
                        false
                    }
                });
                built
            }
            Err(_) => Built {
                events: Vec::new(),
                failures: 1,
            },
        }
    }
}

/// What the queue holds: an event ready to encode, or one the writer builds first.
enum Queued {
    Ready(Arc<Recorded>),
    Deferred(Deferred),
}

struct State {
    /// Events in the order they were queued. The encoder takes them all at once by swapping
    /// this buffer with an empty one (see [`take_queue`]): the lock is held for nanoseconds,
    /// never for a copy of the queue, so a producer does not wait for it.
    queue: Vec<Queued>,
    /// Places of the capacity taken by queued deferred items beyond one each (see
    /// [`Deferred::places`]): the queue is full when `queue.len() + extra` reaches it.
    extra: usize,
    /// Producers waiting for room in the queue: the encoder wakes them when it takes it.
    room_waiters: usize,
    /// When the oldest queued event was queued (the encoder takes the queue [`LINGER`] after).
    oldest: Option<Instant>,
    /// Events handed to the writer and not yet committed.
    in_flight: u64,
    /// Callers waiting in `flush()`: the encoder does not linger while there are any.
    flushing: usize,
    /// The encoder waits with nothing queued: the producer that queues the next event wakes it
    /// (and clears this), so that its [`LINGER`] runs without it waking on its own.
    encoder_waiting: bool,
    /// Items queued: events, and [`Deferred`] items (one each, whatever they yield). A flush
    /// waits until `settled` reaches the count it found.
    accepted: u64,
    /// Deferred items that turned out to be nothing to record, or failed to build: settled,
    /// and not counted in `stats().accepted`.
    unrecorded: u64,
    /// Events deferred items yielded beyond one each (counted in `stats().accepted`).
    expanded: u64,
    /// Accepted items that are settled (their events written, duplicate, rejected or dropped;
    /// a deferred item once all its events are).
    settled: u64,
    closed: bool,
    /// Rejections not yet reported by a flush.
    unreported: Vec<Error>,
    /// The last commit failure, cleared by the next successful commit.
    failure: Option<Error>,
    /// The largest [`Shared::retry_requests`] count read at the start of a commit attempt
    /// that failed: a flush that asked for retry `n` reports a failure once this reaches `n`,
    /// and not the failure of an attempt that was already under way when it asked.
    failed_after: u64,
    /// A flush asked the committer to retry now instead of waiting out its backoff.
    retry_now: bool,
    stats: Stats,
}

struct Shared {
    store: Arc<Mutex<Store>>,
    durability: Durability,
    capacity: usize,
    /// The queue and counters, and the signals the writer threads and flushes wait on: a
    /// [`Lock`] and [`Signal`]s, which a `fork()` cannot leave stuck (see `crate::fork`).
    state: Lock<State>,
    /// Queue length at which a producer wakes the encoder: [`WAKE_AT`], or half the queue's
    /// capacity if that is less (a small queue is not left full until [`LINGER`] passes).
    wake_at: usize,
    work: Signal,
    progress: Signal,
    /// Wakes the committer from its backoff after a failed commit.
    retry: Signal,
    /// The encoder and committer threads (batch mode).
    writers: Mutex<Vec<JoinHandle<()>>>,
    /// Groups the committer is done with (committed or dropped), counted under `state`'s
    /// lock; `u64::MAX` once it has stopped.
    groups_done: AtomicU64,
    /// Set by the committer when a group's rows written ahead were not all appended as
    /// written: the encoder's copy of the store's state is out of date.
    resync: AtomicBool,
    /// Retries asked for by flushes so far (raised under `state`'s lock). Each commit attempt
    /// reads it as it starts; see [`State::failed_after`].
    retry_requests: AtomicU64,
    observer: Option<Arc<dyn CommitObserver>>,
}

impl Shared {
    /// Opens the working state over `store` and starts the writer threads (batch mode).
    fn start(store: Arc<Mutex<Store>>, config: &Config) -> Result<Arc<Shared>> {
        store.lock().register_catalogue(
            config.ruleset.digest(),
            config.ruleset.name(),
            config.ruleset.catalogue(),
        )?;
        let shared = Arc::new(Shared {
            store,
            durability: config.durability,
            capacity: config.capacity.max(1),
            wake_at: WAKE_AT.min(config.capacity / 2).max(1),
            state: Lock::new(State {
                queue: Vec::new(),
                extra: 0,
                room_waiters: 0,
                oldest: None,
                in_flight: 0,
                flushing: 0,
                encoder_waiting: false,
                accepted: 0,
                unrecorded: 0,
                expanded: 0,
                settled: 0,
                closed: false,
                unreported: Vec::new(),
                failure: None,
                failed_after: 0,
                retry_now: false,
                stats: Stats::default(),
            }),
            work: Signal::new(),
            progress: Signal::new(),
            retry: Signal::new(),
            writers: Mutex::new(Vec::new()),
            groups_done: AtomicU64::new(0),
            resync: AtomicBool::new(false),
            retry_requests: AtomicU64::new(0),
            observer: config.observer.clone(),
        });
        if config.durability == Durability::Batch {
            let spawn_err =
                |e: std::io::Error| Error::Ledger(format!("cannot start the writer threads: {e}"));
            // Two groups in flight between the threads: enough to overlap encoding with
            // committing, small enough to keep memory bounded.
            let (tx, rx) = sync_channel::<Encoded>(2);
            // Committed groups on their way back to the encoder, which frees their events and
            // reuses their buffers (see [`Encoded`]).
            let (back_tx, back_rx) = sync_channel::<Encoded>(2);
            let mut writers = shared.writers.lock();
            let s = Arc::clone(&shared);
            writers.push(
                std::thread::Builder::new()
                    .name("statemeter-commit".into())
                    .spawn(move || committer_loop(&s, rx, back_tx))
                    .map_err(spawn_err)?,
            );
            let s = Arc::clone(&shared);
            let ruleset = Arc::clone(&config.ruleset);
            writers.push(
                std::thread::Builder::new()
                    .name("statemeter-encode".into())
                    .spawn(move || encoder_loop(&s, &ruleset, tx, back_rx))
                    .map_err(spawn_err)?,
            );
        }
        Ok(shared)
    }

    /// Appends `pending` (with their record parts, unless `parts` is empty, and the rows
    /// written ahead on the assumption `ahead`) and, when committed, calls `then` before the
    /// store's lock is released. The flag: whether every row was appended as written ahead.
    fn append(
        &self,
        pending: &[Pending],
        parts: &[Parts],
        ahead: Option<&Ahead>,
        then: impl FnOnce(&Store, &[Outcome]),
    ) -> Result<(Vec<Outcome>, bool)> {
        let mut store = self.store.lock();
        let (outcomes, held) = if parts.is_empty() {
            (store.append(pending)?, false)
        } else {
            store.append_with_parts(pending, parts, ahead)?
        };
        then(&store, &outcomes);
        Ok((outcomes, held))
    }

    /// Tells the observer, if any, of a commit.
    fn observe<'a>(
        &self,
        store: &Store,
        recs: impl Iterator<Item = Option<&'a Recorded>>,
        outcomes: &[Outcome],
    ) {
        if let Some(o) = &self.observer {
            let recs: Vec<Option<&Recorded>> = recs.collect();
            o.committed(store, &recs, outcomes);
        }
    }

    /// See [`Recorder::flush`].
    fn flush(&self) -> Result<()> {
        self.flush_for(&mut None, None).map(|_| ())
    }

    /// [`Shared::flush`] waiting at most `limit`: `Ok(false)` when events are still unsettled
    /// then (the caller checks for interrupts and calls again with the same `target`, which
    /// the first call sets: the events accepted before it).
    fn flush_for(&self, target: &mut Option<u64>, limit: Option<Duration>) -> Result<bool> {
        let deadline = limit.map(|d| Instant::now() + d);
        let mut st = self.state.lock();
        let target = *target.get_or_insert(st.accepted);
        st.flushing += 1;
        self.work.notify_one();
        let mut outcome = Ok(true);
        // The retry this flush asked for: a failure counts once an attempt started after it.
        let mut asked: Option<u64> = None;
        while st.settled < target {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                outcome = Ok(false);
                break;
            }
            if let Some(f) = &st.failure {
                match asked {
                    Some(n) if st.failed_after >= n => {
                        outcome = Err(Error::Ledger(format!(
                            "{} event(s) not yet written (kept in memory, retrying): {f}",
                            target - st.settled
                        )));
                        break;
                    }
                    Some(_) => {}
                    None => {
                        asked = Some(self.retry_requests.fetch_add(1, Ordering::AcqRel) + 1);
                        st.retry_now = true;
                        self.retry.notify_all();
                    }
                }
            }
            st = self.progress.wait_for(st, Duration::from_millis(200)).0;
        }
        st.flushing -= 1;
        let done = outcome?;
        if done {
            report_rejections(&mut st)?;
        }
        Ok(done)
    }

    /// Flushes, stops the writer threads and refuses further events (see [`Recorder::close`]).
    fn close(&self) -> Result<()> {
        let flushed = self.flush();
        let dropped_before = {
            let mut st = self.state.lock();
            st.closed = true;
            st.stats.dropped
        };
        self.work.notify_all();
        self.progress.notify_all();
        self.retry.notify_all();
        let writers: Vec<_> = self.writers.lock().drain(..).collect();
        for h in writers {
            let _ = h.join();
        }
        if let Some(o) = &self.observer {
            o.closing(&self.store.lock());
        }
        let st = self.state.lock();
        let lost = st.stats.dropped - dropped_before;
        if lost > 0 {
            return Err(Error::Ledger(format!(
                "{lost} event(s) could not be written before close: {}",
                st.failure
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            )));
        }
        flushed
    }
}

/// What a recorder needs to set itself up again in a forked child.
struct Config {
    /// The ledger file (`None`: in memory, which a child cannot reopen).
    path: Option<PathBuf>,
    ruleset: Arc<Ruleset>,
    durability: Durability,
    capacity: usize,
    observer: Option<Arc<dyn CommitObserver>>,
}

/// A recorder's process-specific state: the fork generation it was set up in, and its working
/// state there.
struct Core {
    config: Config,
    current: Mutex<(u64, Arc<Shared>)>,
    /// Set once `close()` was called in any process: a child does not reopen a closed meter.
    closed: std::sync::atomic::AtomicBool,
}

impl Core {
    /// The working state if it belongs to this process (no reopening).
    fn shared_here(&self) -> Option<Arc<Shared>> {
        let current = self.current.lock();
        (current.0 == crate::fork::generation()).then(|| Arc::clone(&current.1))
    }
}

/// Records events into one [`Store`].
pub struct Recorder {
    core: Arc<Core>,
}

static LIVE: Mutex<Vec<Weak<Core>>> = Mutex::new(Vec::new());

/// Runs in a forked child, on its only thread (see the module notes).
extern "C" fn recorders_in_child() {
    // Threads of the parent may have held these locks at the fork: they never will release
    // them. The child has one thread, this one, which holds none of them.
    if LIVE.is_locked() {
        // SAFETY: see above.
        unsafe { LIVE.force_unlock() };
    }
    for core in LIVE.lock().iter().filter_map(Weak::upgrade) {
        if core.current.is_locked() {
            // SAFETY: see above.
            unsafe { core.current.force_unlock() };
        }
        // The parent's working state must never be dropped in the child (that would close
        // the parent's SQLite connection and join threads that do not exist here): keep one
        // reference forever.
        std::mem::forget(Arc::clone(&core.current.lock().1));
    }
}

impl Recorder {
    pub fn new(
        store: Arc<Mutex<Store>>,
        ruleset: Arc<Ruleset>,
        durability: Durability,
        capacity: usize,
    ) -> Result<Self> {
        Self::observed(store, ruleset, durability, capacity, None)
    }

    /// [`Recorder::new`] with an observer told of every commit.
    pub fn observed(
        store: Arc<Mutex<Store>>,
        ruleset: Arc<Ruleset>,
        durability: Durability,
        capacity: usize,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Result<Self> {
        static WATCH: std::sync::Once = std::sync::Once::new();
        WATCH.call_once(|| crate::fork::on_child(recorders_in_child));
        let config = Config {
            path: store.lock().path().map(PathBuf::from),
            ruleset,
            durability,
            capacity,
            observer,
        };
        let generation = crate::fork::generation();
        let shared = Shared::start(store, &config)?;
        let core = Arc::new(Core {
            config,
            current: Mutex::new((generation, shared)),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        let mut live = LIVE.lock();
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&core));
        Ok(Recorder { core })
    }

    /// The working state of this process: set up again (ledger reopened, writer threads
    /// started) on first use after a fork.
    fn shared(&self) -> Result<Arc<Shared>> {
        let generation = crate::fork::generation();
        let mut current = self.core.current.lock();
        if current.0 != generation {
            let config = &self.core.config;
            let Some(path) = &config.path else {
                return Err(Error::Ledger(
                    "this meter's in-memory ledger stayed in the parent process at fork(): \
                     create the Meter in the child, or give it a ledger file"
                        .into(),
                ));
            };
            // The inherited connection first: unless it is closed, the new one would share
            // its lock bookkeeping (see `Store::close_inherited`).
            match current.1.store.try_lock() {
                Some(mut inherited) => inherited.close_inherited()?,
                None => {
                    return Err(Error::Ledger(
                        "this meter was writing its ledger at the moment of fork(): its \
                         connection cannot be released in the child; flush() before forking, \
                         or create the Meter in the child"
                            .into(),
                    ))
                }
            }
            let store = Store::open(Some(path), config.durability)?;
            let shared = Shared::start(Arc::new(Mutex::new(store)), config)?;
            if self.core.closed.load(std::sync::atomic::Ordering::Acquire) {
                shared.state.lock().closed = true;
            }
            *current = (generation, shared);
        }
        Ok(Arc::clone(&current.1))
    }

    fn shared_here(&self) -> Option<Arc<Shared>> {
        self.core.shared_here()
    }

    pub fn ruleset(&self) -> &Arc<Ruleset> {
        &self.core.config.ruleset
    }

    pub fn durability(&self) -> Durability {
        self.core.config.durability
    }

    /// The ledger this recorder writes (in a forked child: the child's own connection).
    pub fn store(&self) -> Result<Arc<Mutex<Store>>> {
        Ok(Arc::clone(&self.shared()?.store))
    }

    /// The ledger this recorder writes, if it was opened in this process (never reopens).
    pub fn store_here(&self) -> Option<Arc<Mutex<Store>>> {
        self.shared_here().map(|s| Arc::clone(&s.store))
    }

    /// Wraps a validated event for recording. The event is large: it is written once, straight
    /// into the shared allocation (`Arc::new(Recorded::pending(..))` moved it through two
    /// temporaries first, a third of the hot path's copying).
    #[inline]
    pub fn wrap(&self, event: Event) -> Arc<Recorded> {
        let mut slot = Arc::<Recorded>::new_uninit();
        Arc::get_mut(&mut slot)
            .expect("a new allocation is not shared")
            .write(Recorded::pending(event, self.core.config.ruleset.clone()));
        // SAFETY: initialised by the write just above.
        unsafe { slot.assume_init() }
    }

    /// A new event of `kind`, filled by `fill` where it stays, ready to record (the record
    /// methods' hot path; see [`Recorded::new_pending`]).
    #[inline(always)]
    pub fn new_event<E>(
        &self,
        kind: crate::event::EventKind,
        fill: impl FnOnce(&mut Event) -> std::result::Result<(), E>,
    ) -> std::result::Result<Arc<Recorded>, E> {
        Recorded::new_pending(kind, self.core.config.ruleset.clone(), fill)
    }

    /// Batch mode: queues the event unless the queue is full (then gives it back so the
    /// caller can release its locks and call [`Recorder::push_blocking`]).
    pub fn try_push(&self, rec: Arc<Recorded>) -> Result<std::result::Result<(), Arc<Recorded>>> {
        self.try_queue(rec, 1, Queued::Ready)
    }

    /// Queues `item` (as `wrap` makes it a [`Queued`]) unless the queue is full, then gives
    /// it back. The encoder is woken when a group's worth is queued; otherwise it takes the
    /// queue within [`LINGER`].
    #[inline(always)]
    fn try_queue<T>(
        &self,
        item: T,
        places: usize,
        wrap: impl FnOnce(T) -> Queued,
    ) -> Result<std::result::Result<(), T>> {
        // The working state borrowed under its lock (no reference count taken: this is the hot
        // path); the lock order, `current` before `state`, is the one `shared()` uses.
        let current = self.core.current.lock();
        if current.0 != crate::fork::generation() {
            drop(current);
            return Self::try_queue_to(&*self.shared()?, item, places, wrap);
        }
        Self::try_queue_to(&current.1, item, places, wrap)
    }

    #[inline(always)]
    fn try_queue_to<T>(
        shared: &Shared,
        item: T,
        places: usize,
        wrap: impl FnOnce(T) -> Queued,
    ) -> Result<std::result::Result<(), T>> {
        let mut st = shared.state.lock();
        if st.closed {
            return Err(Error::Ledger("the meter is closed".into()));
        }
        let used = st.queue.len() + st.extra;
        if !has_room(used, places, shared.capacity) {
            return Ok(Err(item));
        }
        let mut wake = false;
        if st.queue.is_empty() {
            st.oldest = Some(Instant::now());
            wake = std::mem::take(&mut st.encoder_waiting);
        }
        st.queue.push(wrap(item));
        st.extra += places - 1;
        st.accepted += 1;
        wake |= used < shared.wake_at && used + places >= shared.wake_at;
        drop(st);
        if wake {
            shared.work.notify_one();
        }
        Ok(Ok(()))
    }

    /// Batch mode: queues `recs` in order under one acquisition of the queue's lock (a call's
    /// inner steps, handed over together when its response ends), as many as there is room
    /// for, and gives back the rest (empty when all were queued) for
    /// [`Recorder::push_blocking`] once the caller has released its locks. The encoder is woken
    /// at most once: when the queue reaches a group's worth, as [`Recorder::try_push`] does.
    pub fn try_push_all(&self, recs: Vec<Arc<Recorded>>) -> Result<Vec<Arc<Recorded>>> {
        let current = self.core.current.lock();
        if current.0 != crate::fork::generation() {
            drop(current);
            return Self::try_push_all_to(&*self.shared()?, recs);
        }
        Self::try_push_all_to(&current.1, recs)
    }

    fn try_push_all_to(shared: &Shared, recs: Vec<Arc<Recorded>>) -> Result<Vec<Arc<Recorded>>> {
        let mut st = shared.state.lock();
        if st.closed {
            return Err(Error::Ledger("the meter is closed".into()));
        }
        let used = st.queue.len() + st.extra;
        let room = shared.capacity.saturating_sub(used);
        let was_empty = st.queue.is_empty();
        let mut recs = recs.into_iter();
        st.queue.extend(recs.by_ref().take(room).map(Queued::Ready));
        let queued = st.queue.len() + st.extra - used;
        st.accepted += queued as u64;
        let mut wake = used < shared.wake_at && used + queued >= shared.wake_at;
        if was_empty && queued > 0 {
            st.oldest = Some(Instant::now());
            wake |= std::mem::take(&mut st.encoder_waiting);
        }
        drop(st);
        if wake {
            shared.work.notify_one();
        }
        Ok(recs.collect())
    }

    /// Batch mode: queues the event, waiting for room (backpressure).
    pub fn push_blocking(&self, rec: Arc<Recorded>) -> Result<()> {
        self.queue_blocking(Queued::Ready(rec), 1)
    }

    /// Batch mode: queues an event the writer builds itself (see [`Deferred`]) unless the
    /// queue is full (then gives it back, as [`Recorder::try_push`] does, for
    /// [`Recorder::defer`]). The encoder is not woken for it: it takes the queue within
    /// [`LINGER`], or at once when a group's worth is queued or someone flushes.
    pub fn try_defer(&self, deferred: Deferred) -> Result<std::result::Result<(), Deferred>> {
        let places = deferred.places.max(1);
        self.try_queue(deferred, places, Queued::Deferred)
    }

    /// Queues events the writer builds itself, waiting for room (backpressure). In sync mode
    /// they are built, classified and committed at once, in order, on the caller's thread; a
    /// failure to build them is counted, not returned, as in batch mode.
    pub fn defer(&self, deferred: Deferred) -> Result<()> {
        if self.durability() == Durability::Batch {
            let places = deferred.places.max(1);
            return self.queue_blocking(Queued::Deferred(deferred), places);
        }
        let source = crate::event::Text::clone(&deferred.source);
        let built = deferred.run();
        for _ in 0..built.failures {
            self.note_integration_error(&source);
        }
        // Each event committed in turn; the first failure to write is returned, once the
        // others were tried.
        let mut written = Ok(());
        for e in built.events {
            let outcome = self.write_now(&self.wrap(e));
            if written.is_ok() {
                written = outcome;
            }
        }
        written
    }

    fn queue_blocking(&self, item: Queued, places: usize) -> Result<()> {
        let shared = self.shared()?;
        let mut st = shared.state.lock();
        loop {
            if st.closed {
                return Err(Error::Ledger("the meter is closed".into()));
            }
            if has_room(st.queue.len() + st.extra, places, shared.capacity) {
                break;
            }
            // The encoder takes the queue now rather than when its linger ends: the queue may
            // be short of a group's worth yet have no room for an item of many places.
            st.room_waiters += 1;
            shared.work.notify_one();
            st = shared.progress.wait(st);
            st.room_waiters -= 1;
        }
        if st.queue.is_empty() {
            st.oldest = Some(Instant::now());
        }
        st.queue.push(item);
        st.extra += places - 1;
        st.accepted += 1;
        drop(st);
        shared.work.notify_one();
        Ok(())
    }

    /// Sync mode: classifies and commits one event on the caller's thread.
    pub fn write_now(&self, rec: &Recorded) -> Result<()> {
        let shared = self.shared()?;
        {
            let st = shared.state.lock();
            if st.closed {
                return Err(Error::Ledger("the meter is closed".into()));
            }
        }
        let pending = to_pending(rec, &mut ClassificationTexts::default())?;
        let outcome = shared.append(
            std::slice::from_ref(&pending),
            &[],
            None,
            |store, outcomes| shared.observe(store, std::iter::once(Some(rec)), outcomes),
        );
        let mut st = shared.state.lock();
        st.stats.accepted += 1;
        match outcome {
            Ok((outcomes, _)) => {
                let batch = std::iter::once((Some(rec), pending.id.as_str()));
                settle(&mut st, batch, outcomes, false)?;
                Ok(())
            }
            Err(e) => {
                st.stats.failed_commits += 1;
                Err(e)
            }
        }
    }

    /// Records `events` all or nothing, after every event recorded before the call: they are
    /// classified and appended in one transaction, and when one is refused (its id is already
    /// recorded with another payload, in the ledger or earlier in `events`) or the commit fails,
    /// none is written and the error says why. Events already recorded identically count as
    /// duplicates, as with single records.
    pub fn record_all(&self, events: Vec<Event>) -> Result<Vec<Arc<Recorded>>> {
        let shared = self.shared()?;
        shared.flush()?;
        if shared.state.lock().closed {
            return Err(Error::Ledger("the meter is closed".into()));
        }
        let recs: Vec<Arc<Recorded>> = events.into_iter().map(|e| self.wrap(e)).collect();
        let mut texts = ClassificationTexts::default();
        let pending = recs
            .iter()
            .map(|r| to_pending(r, &mut texts))
            .collect::<Result<Vec<_>>>()?;
        let outcome = {
            let mut store = shared.store.lock();
            let outcome = store.append_all_or_nothing(&pending);
            if let Ok(outcomes) = &outcome {
                shared.observe(&store, recs.iter().map(|r| Some(&**r)), outcomes);
            }
            outcome
        };
        let mut st = shared.state.lock();
        match outcome {
            Ok(outcomes) => {
                let n = recs.len() as u64;
                st.stats.accepted += n;
                st.accepted += n;
                st.settled += n;
                let batch = recs.iter().zip(&pending);
                let batch = batch.map(|(r, p)| (Some(&**r), p.id.as_str()));
                settle(&mut st, batch, outcomes, false)?;
                Ok(recs)
            }
            Err(e) => {
                if matches!(e, Error::Ledger(_)) {
                    st.stats.failed_commits += 1;
                }
                Err(e)
            }
        }
    }

    /// Waits until every event accepted before the call is settled. Reports rejections since
    /// the last flush, or a commit failure that is still unresolved: when the writer is
    /// failing, the flush asks for one retry at once and reports the failure only if that
    /// retry fails too.
    pub fn flush(&self) -> Result<()> {
        match self.shared_here() {
            Some(shared) => shared.flush(),
            // Nothing recorded in this process yet (a child that has not used the meter).
            None => Ok(()),
        }
    }

    /// [`Recorder::flush`] waiting at most `limit`: `Ok(true)` when done, `Ok(false)` when
    /// events are still unsettled (call again with the same `target`, which the first call
    /// sets to the events accepted before it; the caller checks for interrupts between).
    pub fn flush_for(&self, target: &mut Option<u64>, limit: Duration) -> Result<bool> {
        match self.shared_here() {
            Some(shared) => shared.flush_for(target, Some(limit)),
            None => Ok(true),
        }
    }

    /// Flushes, stops the writer threads and refuses further events. Idempotent. Events that
    /// still cannot be written (a persisting storage failure) are dropped, counted in
    /// `stats().dropped`, and reported by the error.
    pub fn close(&self) -> Result<()> {
        self.core
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        match self.shared_here() {
            Some(shared) => shared.close(),
            None => Ok(()),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.core.closed.load(std::sync::atomic::Ordering::Acquire)
            || self.shared_here().is_some_and(|s| s.state.lock().closed)
    }

    /// Counts one failure inside an integration (`source` names it, e.g. `"httpx"`).
    pub fn note_integration_error(&self, source: &str) {
        let Ok(shared) = self.shared() else { return };
        let mut st = shared.state.lock();
        *st.stats
            .integration_errors
            .entry(source.to_owned())
            .or_default() += 1;
    }

    /// Adds the outcome of spans given to an OpenTelemetry door (the span processor, the OTLP
    /// import) to `stats().spans`.
    pub fn note_spans(&self, counts: &SpanStats) {
        let Ok(shared) = self.shared() else { return };
        shared.state.lock().stats.spans.add(counts);
    }

    pub fn stats(&self) -> Stats {
        // In a child that has not recorded yet: nothing accepted there.
        let Some(shared) = self.shared_here() else {
            return Stats::default();
        };
        let st = shared.state.lock();
        let mut s = st.stats.clone();
        s.pending = st.queue.len() as u64 + st.in_flight;
        if shared.durability == Durability::Batch {
            s.accepted = st.accepted + st.expanded - st.unrecorded;
        }
        s
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Flushes every live recorder of this process (called at interpreter exit).
pub fn flush_all() -> Vec<Error> {
    let live: Vec<Arc<Core>> = LIVE.lock().iter().filter_map(Weak::upgrade).collect();
    let mut errors = Vec::new();
    // Only the working state of this process: a forked child that never recorded has nothing
    // to flush (the parent's queue is the parent's).
    for shared in live.iter().filter_map(|c| c.shared_here()) {
        if let Err(e) = shared.flush() {
            errors.push(e);
        }
    }
    errors
}

fn report_rejections(st: &mut State) -> Result<()> {
    if st.unreported.is_empty() {
        return Ok(());
    }
    let errs = std::mem::take(&mut st.unreported);
    let first = errs[0].clone();
    if errs.len() == 1 {
        return Err(first);
    }
    Err(match first {
        Error::Validation { field, message } => Error::validation(
            field,
            format!("{message} (and {} more rejected event(s))", errs.len() - 1),
        ),
        other => other,
    })
}

/// Applies commit outcomes to the events they are for, each given as the event (when someone
/// may still read its seq) and its id; `queued` says whether these came from the queue (batch
/// mode).
fn settle<'a>(
    st: &mut State,
    batch: impl Iterator<Item = (Option<&'a Recorded>, &'a str)>,
    outcomes: Vec<Outcome>,
    queued: bool,
) -> Result<()> {
    Tally::of(batch, outcomes).count(st, queued)
}

/// Commit outcomes applied to their events (each event's seq, set without any lock: a group's
/// events are thousands of objects, which the state's lock must not be held to touch) and
/// tallied, for [`Tally::count`] to add to the state under its lock.
#[derive(Default)]
struct Tally {
    written: u64,
    duplicates: u64,
    rejected: Vec<Error>,
}

impl Tally {
    fn of<'a>(
        batch: impl Iterator<Item = (Option<&'a Recorded>, &'a str)>,
        outcomes: Vec<Outcome>,
    ) -> Tally {
        let mut tally = Tally::default();
        for ((rec, id), outcome) in batch.zip(outcomes) {
            match outcome {
                Outcome::Appended { seq } => {
                    if let Some(rec) = rec {
                        rec.set_seq(seq);
                    }
                    tally.written += 1;
                }
                Outcome::Duplicate { seq } => {
                    if let Some(rec) = rec {
                        rec.set_seq(seq);
                    }
                    tally.duplicates += 1;
                }
                Outcome::Conflict { seq, message } => {
                    tally.rejected.push(Error::validation(
                        "id",
                        format!(
                            "{id:?} was already recorded (seq {seq}) with a different payload; rejected: {message}"
                        ),
                    ));
                }
            }
        }
        tally
    }

    /// Adds the tally to the counters; rejections go to the next flush (`queued`, batch mode)
    /// or are returned (the last one).
    fn count(self, st: &mut State, queued: bool) -> Result<()> {
        st.stats.written += self.written;
        st.stats.duplicates += self.duplicates;
        st.stats.rejected += self.rejected.len() as u64;
        if queued {
            st.unreported.extend(self.rejected);
            return Ok(());
        }
        match self.rejected.into_iter().last() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A group of events encoded by the encoder thread, on its way to the committer: the record
/// texts and parts, and beside each the event itself while something else holds it (a
/// caller's `Event` object, which reads the seq the commit gives it; an observer, which reads
/// every committed event). An event nobody else holds is released by the encoder as soon as it
/// is encoded. Once committed, the group goes back to the encoder, which releases the events
/// still held and writes the next group into the same buffers: the committer neither frees
/// nor allocates per event.
#[derive(Default)]
struct Encoded {
    recs: Vec<Option<Arc<Recorded>>>,
    pending: Vec<Pending>,
    parts: Vec<Parts>,
    /// What the rows written ahead in `parts` assume (`None`: none written).
    ahead: Option<Ahead>,
    /// Queued items the group's commit settles: one per event, one per deferred item however
    /// many events it yielded (all of them are in this group).
    settles: u64,
}

impl Encoded {
    /// Releases the events and keeps the buffers for the next group in `spare` (up to
    /// [`SPARE_EVENTS`] of them, and none grown past [`SPARE_BYTES`] by a large event).
    fn recycle(&mut self, spare: &mut Vec<(Pending, Parts)>) {
        self.recs.clear();
        let room = SPARE_EVENTS.saturating_sub(spare.len());
        let small = |(p, parts): &(Pending, Parts)| p.capacity() + parts.capacity() <= SPARE_BYTES;
        let kept = self.pending.drain(..).zip(self.parts.drain(..));
        spare.extend(kept.take(room).filter(small));
    }
}

/// Groups that can be away from the encoder at once: two in the channel to the committer, one
/// being committed, two on their way back.
const GROUPS_AWAY: usize = 5;
/// Most events' buffers the encoder keeps for reuse while it is busy: as many as can be away
/// at once, so that under a steady load every event's buffers are reused, none freed and
/// allocated again (buffers are only allocated when none is spare, so keeping them does not
/// raise the peak: it is the most that were ever in flight together).
const SPARE_EVENTS: usize = GROUPS_AWAY * MAX_BATCH;
/// Most events' buffers kept while the encoder is idle (nothing queued for [`LINGER`]).
const SPARE_EVENTS_IDLE: usize = MAX_BATCH;
/// Largest group the encoder commits itself when the committer is idle and nothing else is
/// taken (see [`encoder_loop`]): a few events every few milliseconds, as an agent run records
/// them. A larger group goes to the committer, so that its commit overlaps the encoding of
/// what is queued meanwhile.
const INLINE_GROUP: usize = 256;
/// Largest buffers of one event kept for reuse.
const SPARE_BYTES: usize = 8 * 1024;

/// Takes queued events, classifies and encodes them, and hands them to the committer. Runs
/// beside the committer so encoding one group overlaps the SQLite commit of the previous one.
fn encoder_loop(
    shared: &Shared,
    ruleset: &Arc<Ruleset>,
    tx: SyncSender<Encoded>,
    back: Receiver<Encoded>,
) {
    let mut texts = ClassificationTexts::default();
    let mut definitions = SharedDefinitions::default();
    // The members of the event last written (reused).
    let mut members: Vec<Member> = Vec::new();
    // The rows of each group are written ahead here (see `crate::ledger::ahead`), from this
    // copy of the store's state; `sent` counts the groups handed to the committer.
    let mut ahead = AheadWriter::default();
    let mut sent = 0u64;
    // Buffers of committed groups, reused; their events are released as they come back.
    let mut spare: Vec<(Pending, Parts)> = Vec::new();
    let mut shells: Vec<Encoded> = Vec::new();
    // Takes back the groups the committer is done with; how many.
    let take_back = |spare: &mut Vec<(Pending, Parts)>, shells: &mut Vec<Encoded>| {
        let mut n = 0usize;
        while let Ok(mut done) = back.try_recv() {
            n += 1;
            done.recycle(spare);
            done.pending.clear();
            done.parts.clear();
            // The group's lists too (a group's worth of each): one per group away.
            if shells.len() < GROUPS_AWAY {
                shells.push(done);
            }
        }
        n
    };
    // Events taken from the queue and not yet encoded: all of it is taken at once, and encoded
    // in groups of at most MAX_BATCH. Empty, it is the buffer the next take swaps in.
    let mut taken: Vec<Queued> = Vec::new();
    // Idle with every group back and released: wait for the next event without a timeout.
    let mut settled_idle = false;
    // Every group sent was done at the last idle timeout (its return may still be on its way).
    let mut all_back_before = false;
    loop {
        if taken.is_empty() {
            let mut st = shared.state.lock();
            // Linger until a group's worth is queued, someone flushes or closes, or the oldest
            // queued event has waited LINGER; with nothing queued, wait (a flush in progress
            // included: its events are with the committer) until an event is queued.
            loop {
                if st.queue.is_empty() {
                    if st.closed {
                        return;
                    }
                    st.encoder_waiting = true;
                    if settled_idle {
                        st = shared.work.wait(st);
                        continue;
                    }
                    let (guard, timed_out) = shared.work.wait_for(st, IDLE);
                    st = guard;
                    if timed_out && st.queue.is_empty() {
                        // Idle: release the events of committed groups now rather than with
                        // the next group, and the buffers beyond a group's worth; once every
                        // group sent is back and released, sleep until an event comes.
                        st.encoder_waiting = false;
                        drop(st);
                        let all_back = shared.groups_done.load(Ordering::Acquire) >= sent;
                        let returned = take_back(&mut spare, &mut shells);
                        if spare.len() > SPARE_EVENTS_IDLE {
                            spare.truncate(SPARE_EVENTS_IDLE);
                            spare.shrink_to_fit();
                        }
                        shells.truncate(1);
                        settled_idle = all_back_before && returned == 0;
                        all_back_before = all_back;
                        st = shared.state.lock();
                    }
                    continue;
                }
                st.encoder_waiting = false;
                settled_idle = false;
                all_back_before = false;
                if st.closed
                    || st.flushing > 0
                    || st.room_waiters > 0
                    || st.queue.len() + st.extra >= shared.wake_at
                {
                    break;
                }
                let waited = st.oldest.map_or(LINGER, |t| t.elapsed());
                if waited >= LINGER {
                    break;
                }
                st = shared.work.wait_for(st, LINGER - waited).0;
            }
            let full = st.room_waiters > 0;
            st.in_flight += st.queue.len() as u64;
            take_queue(&mut st, &mut taken);
            drop(st);
            if full {
                // Producers waiting for room have it now.
                shared.progress.notify_all();
            }
        }
        let n = taken.len().min(MAX_BATCH);
        take_back(&mut spare, &mut shells);
        let mut enc = shells.pop().unwrap_or_default();
        enc.recs.reserve(n);
        enc.pending.reserve(n);
        enc.parts.reserve(n);
        enc.settles = 0;
        let mut rejected = Vec::new();
        // Items settled here: deferred ones with nothing to record (`unrecorded` of them:
        // nothing built, or it failed) and those whose every event was rejected.
        let mut settled_here = 0u64;
        let mut unrecorded = 0u64;
        // Events deferred items yielded beyond one each; failures met building them (by source).
        let mut expanded = 0u64;
        let mut failed: Vec<(crate::event::Text, usize)> = Vec::new();
        // Items left for the next group: a group holds at most MAX_BATCH events, and at most
        // one deferred item's events beyond them.
        let mut later: Vec<Queued> = Vec::new();
        let mut encode = |rec: Arc<Recorded>, enc: &mut Encoded, rejected: &mut Vec<Error>| {
            let (mut p, mut parts) = spare.pop().unwrap_or_else(|| {
                let p = Pending {
                    id: String::new(),
                    event_json: String::with_capacity(384),
                    classification_json: String::new(),
                    ts_explicit: false,
                };
                (p, Parts::default())
            });
            match fill_pending(&rec, &mut texts, &mut p, &mut members) {
                Ok(number) => {
                    let (json, classification) = (&p.event_json, &p.classification_json);
                    definitions.fill(&mut parts, json, Some(&members), classification, number);
                    // Only this reference left (and no weak one to upgrade): no one can read
                    // its seq any more.
                    // An observer reads every committed event.
                    let held = shared.observer.is_some()
                        || Arc::strong_count(&rec) > 1
                        || Arc::weak_count(&rec) > 0;
                    enc.recs.push(held.then_some(rec));
                    enc.pending.push(p);
                    enc.parts.push(parts);
                    true
                }
                Err(e) => {
                    rejected.push(e);
                    spare.push((p, parts));
                    false
                }
            }
        };
        for item in taken.drain(..n) {
            if enc.recs.len() >= MAX_BATCH {
                later.push(item);
                continue;
            }
            match item {
                Queued::Ready(rec) => {
                    if encode(rec, &mut enc, &mut rejected) {
                        enc.settles += 1;
                    } else {
                        settled_here += 1;
                    }
                }
                Queued::Deferred(d) => {
                    let source = crate::event::Text::clone(&d.source);
                    let built = d.run();
                    if built.failures > 0 {
                        failed.push((source, built.failures));
                    }
                    if built.events.is_empty() {
                        unrecorded += 1;
                        settled_here += 1;
                        continue;
                    }
                    expanded += built.events.len() as u64 - 1;
                    let mut any = false;
                    for e in built.events {
                        let rec = Arc::new(Recorded::pending(e, ruleset.clone()));
                        any |= encode(rec, &mut enc, &mut rejected);
                    }
                    if any {
                        enc.settles += 1;
                    } else {
                        settled_here += 1;
                    }
                }
            }
        }
        if !later.is_empty() {
            taken.splice(0..0, later);
        }
        if !rejected.is_empty() || settled_here > 0 || expanded > 0 || !failed.is_empty() {
            let mut st = shared.state.lock();
            let k = rejected.len() as u64;
            st.stats.rejected += k;
            // Events: the expansion joins those in flight; the rejected and the unrecorded
            // items leave them. Items: those settled here.
            st.in_flight = st.in_flight + expanded - k - unrecorded;
            st.settled += settled_here;
            st.unrecorded += unrecorded;
            st.expanded += expanded;
            st.unreported.extend(rejected);
            for (source, n) in failed {
                *st.stats
                    .integration_errors
                    .entry(source.as_ref().to_owned())
                    .or_default() += n as u64;
            }
            drop(st);
            shared.progress.notify_all();
        }
        if enc.recs.is_empty() {
            shells.push(enc);
            continue;
        }
        if shared.resync.load(Ordering::Acquire) || ahead.needs_sync() {
            // The copy is taken once the committer is done with every group sent (after
            // that, nothing sets `resync` until the next group).
            wait_for_groups(shared, sent);
            shared.resync.store(false, Ordering::Release);
            if ahead.sync(&shared.store.lock()).is_err() {
                ahead.unsync();
            }
        }
        enc.ahead = ahead.write(&enc.pending, &mut enc.parts);
        // A small group with nothing else to encode, and the committer done with every group
        // sent: committed here, which spares waking the committer (a futex call, and two
        // context switches on a core that has gone cold) for a group it would commit alone.
        if taken.is_empty()
            && enc.recs.len() <= INLINE_GROUP
            && shared.groups_done.load(Ordering::Acquire) >= sent
        {
            let n = enc.recs.len() as u64;
            let started = shared.retry_requests.load(Ordering::Acquire);
            let result = commit_group(shared, &enc);
            let mut st = shared.state.lock();
            match result {
                Ok(tally) => {
                    group_committed(shared, &mut st, n, enc.settles, tally);
                    drop(st);
                    shared.progress.notify_all();
                    sent += 1;
                    enc.recycle(&mut spare);
                    enc.pending.clear();
                    enc.parts.clear();
                    enc.ahead = None;
                    shells.push(enc);
                    continue;
                }
                Err(e) => {
                    // The committer retries it, with its backoff, as any failed group.
                    commit_failed(&mut st, e, started);
                    drop(st);
                    shared.progress.notify_all();
                }
            }
        }
        if tx.send(enc).is_err() {
            return;
        }
        sent += 1;
    }
}

/// Takes everything queued into `into` (empty) in O(1): the queue's buffer and `into` are
/// swapped, so the queue goes on with `into`'s allocation and producers never wait for a copy.
#[inline]
fn take_queue(st: &mut State, into: &mut Vec<Queued>) {
    debug_assert!(into.is_empty());
    std::mem::swap(&mut st.queue, into);
    st.extra = 0;
    st.oldest = None;
}

/// Whether an item of `places` fits a queue with `used` of its `capacity` taken. An empty
/// queue takes any item, so that one larger than the whole capacity still gets in (alone).
#[inline(always)]
fn has_room(used: usize, places: usize, capacity: usize) -> bool {
    used == 0 || used + places <= capacity
}

/// Waits until the committer is done with the first `sent` groups (or has stopped).
fn wait_for_groups(shared: &Shared, sent: u64) {
    let mut st = shared.state.lock();
    while shared.groups_done.load(Ordering::Acquire) < sent {
        st = shared.progress.wait_for(st, Duration::from_millis(50)).0;
    }
}

/// Commits encoded groups in order, then hands each back to the encoder (see [`Encoded`]). A
/// failed commit is retried with a backoff (the group stays in memory and `flush()` reports
/// the failure), or at once when a flush asks; once the meter is closed, a group that still
/// cannot be written is dropped and counted.
fn committer_loop(shared: &Shared, rx: Receiver<Encoded>, back: SyncSender<Encoded>) {
    committer_groups(shared, rx, back);
    let _st = shared.state.lock();
    shared.groups_done.store(u64::MAX, Ordering::Release);
    shared.progress.notify_all();
}

/// The body of [`committer_loop`].
fn committer_groups(shared: &Shared, rx: Receiver<Encoded>, back: SyncSender<Encoded>) {
    for enc in rx {
        let n = enc.recs.len() as u64;
        let mut backoff = Duration::from_millis(10);
        loop {
            let started = shared.retry_requests.load(Ordering::Acquire);
            let result = commit_group(shared, &enc);
            let mut st = shared.state.lock();
            match result {
                Ok(tally) => {
                    group_committed(shared, &mut st, n, enc.settles, tally);
                    drop(st);
                    shared.progress.notify_all();
                    break;
                }
                Err(e) => {
                    commit_failed(&mut st, e, started);
                    if st.closed {
                        st.stats.dropped += n;
                        st.in_flight -= n;
                        st.settled += enc.settles;
                        shared.groups_done.fetch_add(1, Ordering::AcqRel);
                        drop(st);
                        shared.progress.notify_all();
                        break;
                    }
                    shared.progress.notify_all();
                    // Back off, unless a flush (or close) wants a retry now.
                    if !st.retry_now && !st.closed {
                        st = shared.retry.wait_for(st, backoff).0;
                    }
                    st.retry_now = false;
                    drop(st);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        // Back to the encoder; if it has two waiting already (or has stopped), released here.
        let _ = back.try_send(enc);
    }
}

/// One attempt to commit an encoded group (the observer told, each event's seq set); the
/// outcomes tallied for [`group_committed`]. Marks the encoder's copy of the store's state out
/// of date when the rows written ahead were not all appended as written.
fn commit_group(shared: &Shared, enc: &Encoded) -> Result<Tally> {
    let ahead = enc.ahead.as_ref();
    let result = shared.append(&enc.pending, &enc.parts, ahead, |store, outcomes| {
        shared.observe(store, enc.recs.iter().map(Option::as_deref), outcomes)
    });
    let held = matches!(result, Ok((_, true)));
    if ahead.is_some() && !held {
        shared.resync.store(true, Ordering::Release);
    }
    result.map(|(outcomes, _)| {
        let batch = enc.recs.iter().zip(&enc.pending);
        let batch = batch.map(|(r, p)| (r.as_deref(), p.id.as_str()));
        Tally::of(batch, outcomes)
    })
}

/// Counts a committed group of `n` events that settles `settles` queued items (see
/// [`Encoded::settles`]; under the state's lock; the caller notifies `progress` once it has
/// let go of it).
fn group_committed(shared: &Shared, st: &mut State, n: u64, settles: u64, tally: Tally) {
    let _ = tally.count(st, true);
    st.in_flight -= n;
    st.settled += settles;
    st.failure = None;
    shared.groups_done.fetch_add(1, Ordering::AcqRel);
}

/// Counts a failed commit attempt that started when `started` retries had been asked for (a
/// flush waiting for one of them reports it).
fn commit_failed(st: &mut State, e: Error, started: u64) {
    st.stats.failed_commits += 1;
    st.failed_after = st.failed_after.max(started);
    st.failure = Some(e);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    fn call(i: u64) -> Event {
        let mut e = Event::new(EventKind::ModelCall);
        e.provider = Some("openai".into());
        e.model = Some("gpt-5".into());
        e.api = Some("chat.completions".into());
        e.input_tokens = Some(i);
        e.finish().unwrap()
    }

    fn recorder(d: Durability, cap: usize) -> (tempfile::TempDir, Recorder) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(&dir.path().join("l.db")), d).unwrap();
        let r = Recorder::new(
            Arc::new(Mutex::new(store)),
            Ruleset::builtin_default(),
            d,
            cap,
        )
        .unwrap();
        (dir, r)
    }

    #[test]
    fn docs_example_record_is_what_the_writer_writes() {
        // docs/ledger-format.md shows one record and its hash; both must stay true.
        let docs = include_str!("../docs/ledger-format.md");
        let line = docs
            .lines()
            .find(|l| l.starts_with("{\"classification\""))
            .expect("the docs show an example record");
        let mut e = Event::new(EventKind::ModelCall);
        e.id = "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f10".into();
        e.ts = 1_761_000_000_123_456_789;
        e.ts_explicit = true;
        e.session_id = Some("0199a8c0-7c2d-7a11-8c3e-5b2f9d1e0a77".into());
        e.agent = Some("support-bot".into());
        e.tenant = Some("acme".into());
        e.venue = Some("azure".into());
        e.provider = Some("openai".into());
        e.model = Some("gpt-5".into());
        e.api = Some("responses".into());
        e.request = serde_json::json!({"previous_response_id": "resp_1"})
            .as_object()
            .cloned();
        e.input_tokens = Some(900);
        e.output_tokens = Some(80);
        e.duration_ns = Some(812_000_000);
        e.attrs.insert("ticket".into(), "T-1042".into());
        let rec = Recorded::pending(e.finish().unwrap(), Ruleset::builtin_default());
        let p = to_pending(&rec, &mut ClassificationTexts::default()).unwrap();
        let mut record = String::new();
        crate::ledger::chain::write_record(&mut record, &p.classification_json, &p.event_json, 1);
        assert_eq!(record, line);
        let hash = hex::encode(crate::ledger::chain_hash(&[0; 32], record.as_bytes()));
        assert!(
            docs.contains(&format!("`{hash}`")),
            "docs give the hash {hash}"
        );
        assert!(docs.contains(&format!("{} bytes", record.len())));
    }

    #[test]
    fn remembered_classification_texts_are_the_texts_written_afresh() {
        let rs = Ruleset::builtin_default();
        let mut shapes: Vec<Classification> = Vec::new();
        for (api, request) in [
            ("chat.completions", None),
            ("responses", Some(("previous_response_id", "resp_1"))),
            ("responses", Some(("store", "true"))),
            ("responses", None),
        ] {
            let mut e = call(1);
            e.api = Some(api.into());
            if let Some((k, v)) = request {
                let value = if v == "true" {
                    serde_json::Value::Bool(true)
                } else {
                    v.into()
                };
                e.request = Some([(k.to_string(), value)].into_iter().collect());
            }
            shapes.push(rs.classify(&e));
        }
        // Distinct classifications, more of them than are remembered.
        for i in 0..12u8 {
            let mut c = shapes[0].clone();
            c.ruleset = format!("r{i}").into();
            shapes.push(c);
        }
        let mut texts = ClassificationTexts::default();
        for i in [
            0, 1, 0, 0, 2, 1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 15, 4,
        ] {
            let c = &shapes[i];
            let mut fresh = String::new();
            c.write_canonical_json(&mut fresh);
            assert_eq!(texts.text(c), fresh, "shape {i}");
            assert!(texts.recent.len() <= ClassificationTexts::KEPT);
        }
    }

    #[test]
    fn batch_mode_writes_everything_with_backpressure() {
        let (_d, r) = recorder(Durability::Batch, 8);
        let mut recs = Vec::new();
        for i in 0..500 {
            let rec = r.wrap(call(i));
            recs.push(Arc::clone(&rec));
            if let Err(back) = r.try_push(rec).unwrap() {
                r.push_blocking(back).unwrap();
            }
        }
        r.flush().unwrap();
        assert_eq!(r.store().unwrap().lock().len().unwrap(), 500);
        let seqs: Vec<u64> = recs.iter().map(|x| x.seq().unwrap()).collect();
        assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
        let s = r.stats();
        assert_eq!((s.accepted, s.written, s.pending), (500, 500, 0));
    }

    #[test]
    fn a_few_events_are_written_once_the_oldest_has_waited_linger_without_a_flush() {
        let (_d, r) = recorder(Durability::Batch, DEFAULT_CAPACITY);
        let recs: Vec<_> = (0..3).map(|i| r.wrap(call(i))).collect();
        for rec in &recs {
            assert!(r.try_push(Arc::clone(rec)).unwrap().is_ok());
        }
        // Far fewer than a group's worth, and no flush: the encoder takes them LINGER after
        // the first was queued.
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.stats().written < 3 {
            assert!(Instant::now() < deadline, "not written without a flush");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(recs.iter().all(|rec| rec.seq().is_some()));
    }

    #[test]
    fn an_encoder_asleep_after_idling_is_woken_by_the_next_event_of_either_kind_of_push() {
        let (_d, r) = recorder(Durability::Batch, DEFAULT_CAPACITY);
        let written_within = |n: u64| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while r.stats().written < n {
                assert!(Instant::now() < deadline, "not written without a flush");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let mut n = 0;
        for push_all in [false, true, false] {
            // Idle well past IDLE twice: every group is back and the encoder waits untimed.
            std::thread::sleep(IDLE * 3);
            let recs: Vec<_> = (0..2).map(|i| r.wrap(call(n + i))).collect();
            if push_all {
                assert!(r.try_push_all(recs).unwrap().is_empty());
            } else {
                for rec in recs {
                    assert!(r.try_push(rec).unwrap().is_ok());
                }
            }
            n += 2;
            written_within(n);
        }
    }

    #[test]
    fn a_producer_waiting_for_room_is_let_in_when_the_encoder_takes_the_queue() {
        // A queue of 4 wakes the encoder at 2; producers that find it full wait for room, and
        // get it as soon as the encoder has taken what is queued.
        let (_d, r) = recorder(Durability::Batch, 4);
        let r = Arc::new(r);
        let producers: Vec<_> = (0..2)
            .map(|t| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let rec = r.wrap(call(t * 1_000 + i));
                        if let Err(back) = r.try_push(rec).unwrap() {
                            r.push_blocking(back).unwrap();
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        r.flush().unwrap();
        let s = r.stats();
        assert_eq!((s.accepted, s.written, s.pending), (600, 600, 0));
    }

    #[test]
    fn events_queued_together_take_the_room_there_is_and_give_back_the_rest() {
        let (_d, r) = recorder(Durability::Batch, 8);
        let recs: Vec<Arc<Recorded>> = (0..20).map(|i| r.wrap(call(i))).collect();
        let rest = r.try_push_all(recs.clone()).unwrap();
        // The queue was empty: eight fit, the last twelve come back in order.
        assert_eq!(rest.len(), 12);
        assert!(rest.iter().zip(&recs[8..]).all(|(a, b)| Arc::ptr_eq(a, b)));
        for rec in rest {
            r.push_blocking(rec).unwrap();
        }
        r.flush().unwrap();
        let seqs: Vec<u64> = recs.iter().map(|x| x.seq().unwrap()).collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
        let s = r.stats();
        assert_eq!((s.accepted, s.written, s.pending), (20, 20, 0));
        r.close().unwrap();
        let err = r.try_push_all(vec![r.wrap(call(99))]).unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
    }

    #[test]
    fn reused_buffers_write_the_records_fresh_ones_do() {
        // Many small groups (a small queue), events of varied sizes and shapes: each group is
        // written into the buffers of an earlier one.
        let (_d, r) = recorder(Durability::Batch, 16);
        let mut events = Vec::new();
        for i in 0..600u64 {
            let mut e = call(i);
            if i % 3 == 0 {
                e.attrs
                    .insert("note".into(), "x".repeat((i % 50) as usize * 40).into());
            }
            if i % 5 == 0 {
                e.api = Some("responses".into());
            }
            let e = e.finish().unwrap();
            events.push(e.clone());
            let rec = r.wrap(e);
            if let Err(back) = r.try_push(rec).unwrap() {
                r.push_blocking(back).unwrap();
            }
        }
        r.flush().unwrap();
        let mut fresh = Store::open(None, Durability::Batch).unwrap();
        let rs = Ruleset::builtin_default();
        let pending: Vec<Pending> = events
            .into_iter()
            .map(|e| to_pending(&Recorded::pending(e, rs.clone()), &mut Default::default()))
            .collect::<Result<_>>()
            .unwrap();
        fresh.append(&pending).unwrap();
        // Each row's record and its full chain hash (a version-3 row may keep only the hash's
        // first bytes, depending on where an append ended: that part is not compared).
        let rows = |s: &Store| {
            let mut out = Vec::new();
            s.for_each_row(|seq, record, _| {
                out.push((seq, record.to_vec()));
                Ok(true)
            })
            .unwrap();
            out.into_iter()
                .map(|(seq, record)| (seq, record, s.hash_at(seq as u64).unwrap().unwrap()))
                .collect::<Vec<_>>()
        };
        let written = rows(&r.store().unwrap().lock());
        assert_eq!(written.len(), 600);
        assert_eq!(written, rows(&fresh));
    }

    #[test]
    fn conflicting_id_is_reported_by_flush_and_not_written() {
        let (_d, r) = recorder(Durability::Batch, 100);
        let a = call(1);
        let mut b = call(2);
        b.id = a.id.clone();
        r.try_push(r.wrap(a.clone())).unwrap().unwrap();
        r.try_push(r.wrap(a)).unwrap().unwrap();
        r.try_push(r.wrap(b)).unwrap().unwrap();
        let err = r.flush().unwrap_err();
        assert!(
            matches!(err, Error::Validation { ref field, .. } if field == "id"),
            "{err}"
        );
        r.flush().unwrap();
        assert_eq!(r.store().unwrap().lock().len().unwrap(), 1);
        let s = r.stats();
        assert_eq!((s.written, s.duplicates, s.rejected), (1, 1, 1));
    }

    #[test]
    fn sync_mode_commits_before_returning() {
        let (_d, r) = recorder(Durability::Sync, 1);
        let rec = r.wrap(call(3));
        r.write_now(&rec).unwrap();
        assert_eq!(rec.seq(), Some(1));
        assert_eq!(r.store().unwrap().lock().len().unwrap(), 1);
        let mut dup = call(4);
        dup.id = rec.event.id.clone();
        assert!(r.write_now(&r.wrap(dup)).is_err());
    }

    #[test]
    fn flush_reports_a_failing_writer_then_succeeds_once_the_fault_clears() {
        let (_d, r) = recorder(Durability::Batch, 100);
        r.try_push(r.wrap(call(0))).unwrap().unwrap();
        r.flush().unwrap();
        let read_only = |on: bool| {
            let sql = format!("PRAGMA query_only = {}", if on { "ON" } else { "OFF" });
            r.store()
                .unwrap()
                .lock()
                .connection()
                .execute_batch(&sql)
                .unwrap();
        };
        read_only(true);
        for i in 1..=5 {
            r.try_push(r.wrap(call(i))).unwrap().unwrap();
        }
        // Several flushes while the fault lasts: each reports it, nothing is lost, and the
        // committer's backoff grows (up to 2 s).
        for _ in 0..4 {
            match r.flush() {
                Err(Error::Ledger(m)) => assert!(m.contains("5 event(s) not yet written"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(r.stats().pending, 5);
        read_only(false);
        // The flush retries at once instead of waiting out the backoff.
        let t = std::time::Instant::now();
        r.flush().unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(r.store().unwrap().lock().len().unwrap(), 6);
        let s = r.stats();
        assert_eq!((s.written, s.pending, s.dropped), (6, 0, 0));
        assert!(s.failed_commits >= 4, "{s:?}");
    }

    #[test]
    fn close_drops_and_reports_what_cannot_be_written() {
        let (_d, r) = recorder(Durability::Batch, 100);
        r.store()
            .unwrap()
            .lock()
            .connection()
            .execute_batch("PRAGMA query_only = ON")
            .unwrap();
        r.try_push(r.wrap(call(1))).unwrap().unwrap();
        match r.close() {
            Err(Error::Ledger(m)) => assert!(m.contains("could not be written"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.stats().dropped, 1);
    }

    /// Names the thread each commit ran on, with its group's size.
    #[derive(Default)]
    struct Threads(Mutex<Vec<(String, usize)>>);

    impl CommitObserver for Threads {
        fn committed(&self, _store: &Store, recs: &[Option<&Recorded>], _outcomes: &[Outcome]) {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            self.0.lock().push((name, recs.len()));
        }
    }

    fn observed_recorder(cap: usize) -> (tempfile::TempDir, Recorder, Arc<Threads>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(&dir.path().join("l.db")), Durability::Batch).unwrap();
        let threads = Arc::new(Threads::default());
        let r = Recorder::observed(
            Arc::new(Mutex::new(store)),
            Ruleset::builtin_default(),
            Durability::Batch,
            cap,
            Some(Arc::clone(&threads) as Arc<dyn CommitObserver>),
        )
        .unwrap();
        (dir, r, threads)
    }

    #[test]
    fn a_small_group_is_committed_by_the_encoder_and_a_large_one_by_the_committer() {
        let (_d, r, threads) = observed_recorder(DEFAULT_CAPACITY);
        // Queued together (under one lock), so that the encoder takes them as one group.
        let small: Vec<_> = (0..5).map(|i| r.wrap(call(i))).collect();
        assert!(r.try_push_all(small.clone()).unwrap().is_empty());
        // The flush is a barrier for the encoder's own commit too: every seq is set.
        r.flush().unwrap();
        assert!(small.iter().all(|rec| rec.seq().is_some()));
        assert_eq!(threads.0.lock().clone(), [("statemeter-encode".into(), 5)]);
        let large: Vec<_> = (0..INLINE_GROUP as u64 + 1)
            .map(|i| r.wrap(call(i)))
            .collect();
        let left = r.try_push_all(large.clone()).unwrap();
        assert!(left.is_empty());
        r.flush().unwrap();
        assert!(large.iter().all(|rec| rec.seq().is_some()));
        let seen = threads.0.lock().clone();
        assert_eq!(seen[1..], [("statemeter-commit".into(), INLINE_GROUP + 1)]);
        assert_eq!(
            r.store().unwrap().lock().len().unwrap(),
            5 + large.len() as u64
        );
        r.close().unwrap();
        let v = crate::ledger::verify(&r.store().unwrap().lock(), None).unwrap();
        assert!(v.ok, "{v:?}");
    }

    #[test]
    fn small_groups_committed_by_the_encoder_keep_the_order_of_groups_before_them() {
        // Large groups (to the committer) and small ones (the encoder's own, once the
        // committer is done) in turn: every event is written once, the chain in queue order.
        let (_d, r, threads) = observed_recorder(DEFAULT_CAPACITY);
        let mut all = Vec::new();
        for round in 0..6u64 {
            let n = if round % 2 == 0 { 600 } else { 3 };
            let recs: Vec<_> = (0..n).map(|i| r.wrap(call(round * 1000 + i))).collect();
            assert!(r.try_push_all(recs.clone()).unwrap().is_empty());
            all.extend(recs);
            r.flush().unwrap();
        }
        let seqs: Vec<u64> = all.iter().map(|rec| rec.seq().unwrap()).collect();
        assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
        let names: Vec<String> = threads.0.lock().iter().map(|(t, _)| t.clone()).collect();
        assert!(names.iter().any(|t| t == "statemeter-encode"), "{names:?}");
        assert!(names.iter().any(|t| t == "statemeter-commit"), "{names:?}");
        r.close().unwrap();
        let v = crate::ledger::verify(&r.store().unwrap().lock(), None).unwrap();
        assert!(v.ok && v.events == all.len() as u64, "{v:?}");
    }

    #[test]
    fn close_writes_a_small_group_still_lingering() {
        let (d, r, threads) = observed_recorder(DEFAULT_CAPACITY);
        let recs: Vec<_> = (0..4).map(|i| r.wrap(call(i))).collect();
        assert!(r.try_push_all(recs).unwrap().is_empty());
        // No flush: close takes the group without waiting for it to linger.
        r.close().unwrap();
        assert_eq!(threads.0.lock().clone(), [("statemeter-encode".into(), 4)]);
        drop(r);
        let store = Store::open(Some(&d.path().join("l.db")), Durability::Batch).unwrap();
        assert_eq!(store.len().unwrap(), 4);
    }

    #[test]
    fn a_small_group_the_encoder_fails_to_commit_is_retried_by_the_committer() {
        let (_d, r, threads) = observed_recorder(DEFAULT_CAPACITY);
        let read_only = |on: bool| {
            let sql = format!("PRAGMA query_only = {}", if on { "ON" } else { "OFF" });
            let store = r.store().unwrap();
            store.lock().connection().execute_batch(&sql).unwrap();
        };
        read_only(true);
        let recs: Vec<_> = (0..3).map(|i| r.wrap(call(i))).collect();
        assert!(r.try_push_all(recs).unwrap().is_empty());
        match r.flush() {
            Err(Error::Ledger(m)) => assert!(m.contains("3 event(s) not yet written"), "{m}"),
            other => panic!("{other:?}"),
        }
        read_only(false);
        r.flush().unwrap();
        assert_eq!(threads.0.lock().clone(), [("statemeter-commit".into(), 3)]);
        let s = r.stats();
        assert_eq!((s.written, s.pending, s.dropped), (3, 0, 0));
        assert!(s.failed_commits >= 2, "{s:?}");
    }

    /// An attempt already under way when a flush asks for a retry, and failing after that, is
    /// not the retry's failure: the flush waits for the retry, which succeeds.
    #[test]
    fn a_flush_does_not_report_an_attempt_that_started_before_it_asked_for_a_retry() {
        use std::sync::mpsc::channel;
        let (_d, r) = recorder(Durability::Batch, DEFAULT_CAPACITY);
        let limit = Duration::from_secs(30);
        // Commits, counted from 1: the first fails; the second, the committer's, waits for the
        // test, then fails; the rest succeed (a commit hook returning true rolls back). The
        // third, the retry, takes its time: a flush counting the second as the retry's failure
        // would see it long before the retry is done.
        let (entered, on_entered) = channel::<()>();
        let (release, on_release) = channel::<()>();
        let mut k = 0;
        let store = r.store().unwrap();
        store.lock().connection().commit_hook(Some(move || {
            k += 1;
            if k == 2 {
                entered.send(()).unwrap();
                on_release.recv_timeout(limit).unwrap();
            } else if k == 3 {
                std::thread::sleep(Duration::from_millis(300));
            }
            k <= 2
        }));
        assert!(r.try_push(r.wrap(call(1))).unwrap().is_ok());
        on_entered.recv_timeout(limit).unwrap();
        let shared = r.shared().unwrap();
        std::thread::scope(|s| {
            let flush = s.spawn(|| r.flush());
            let start = Instant::now();
            while shared.retry_requests.load(Ordering::Acquire) == 0 {
                assert!(start.elapsed() < limit, "the flush never asked for a retry");
                std::thread::sleep(Duration::from_millis(1));
            }
            release.send(()).unwrap();
            flush.join().unwrap().unwrap();
        });
        let s = r.stats();
        assert_eq!((s.written, s.pending, s.failed_commits), (1, 0, 2), "{s:?}");
    }

    #[test]
    fn closed_recorder_refuses_events() {
        let (_d, r) = recorder(Durability::Batch, 10);
        r.close().unwrap();
        assert!(r.try_push(r.wrap(call(1))).is_err());
    }

    /// A deferred event for each of: a built call, nothing to record, a failure, a panic.
    fn deferred(kind: u8, i: u64) -> Deferred {
        Deferred {
            source: "httpx".into(),
            places: 1,
            build: Box::new(move || match kind {
                0 => {
                    let mut e = Event::new(EventKind::ModelCall);
                    e.provider = Some("openai".into());
                    e.model = Some("gpt-5".into());
                    e.api = Some("chat.completions".into());
                    e.input_tokens = Some(i);
                    Ok(Some(e).into())
                }
                1 => Ok(Built::default()),
                2 => Err(Error::validation("url", "not a URL")),
                _ => panic!("a bug in the builder"),
            }),
        }
    }

    #[test]
    fn deferred_events_are_built_by_the_writer_in_queue_order() {
        for d in [Durability::Batch, Durability::Sync] {
            let (_d, r) = recorder(d, 4);
            let quiet = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            for i in 0..12u64 {
                if d == Durability::Sync {
                    r.defer(deferred((i % 4) as u8, i)).unwrap();
                    continue;
                }
                // Every fourth a ready event between them: the ledger keeps the queue's order.
                if i % 4 == 3 {
                    r.try_push(r.wrap(call(100 + i)))
                        .unwrap()
                        .unwrap_or_else(|back| {
                            r.push_blocking(back).unwrap();
                        });
                } else if let Err(back) = r.try_defer(deferred((i % 4) as u8, i)).unwrap() {
                    r.defer(back).unwrap();
                }
            }
            r.flush().unwrap();
            std::panic::set_hook(quiet);
            let s = r.stats();
            let failures = if d == Durability::Batch { 3 } else { 6 };
            assert_eq!(s.integration_errors.get("httpx"), Some(&failures), "{d:?}");
            let written = if d == Durability::Batch { 6 } else { 3 };
            assert_eq!((s.accepted, s.written, s.pending), (written, written, 0));
            let store = r.store().unwrap();
            let store = store.lock();
            let tokens: Vec<u64> = (1..=store.len().unwrap())
                .map(|seq| {
                    let record = store.expanded_record_at(seq).unwrap().unwrap();
                    let v: serde_json::Value = serde_json::from_str(&record).unwrap();
                    v["event"]["input_tokens"].as_u64().unwrap()
                })
                .collect();
            let expected: Vec<u64> = if d == Durability::Batch {
                vec![0, 103, 4, 107, 8, 111]
            } else {
                vec![0, 4, 8]
            };
            assert_eq!(tokens, expected);
        }
    }

    /// A deferred item yielding several events: a call (its id fixed by the caller) and
    /// `children` children of it, each with its tokens; `failures` failures met on the way;
    /// `invalid` children that fail validation.
    fn turn(i: u64, children: u64, failures: usize, invalid: u64) -> Deferred {
        Deferred {
            source: "botocore".into(),
            places: Deferred::places_for(1 + children as usize, 0),
            build: Box::new(move || {
                let mut outer = call(i);
                outer.attrs.insert("children".into(), children.into());
                let mut events = vec![outer.clone()];
                for c in 0..children + invalid {
                    let mut e = Event::new(EventKind::ToolCall);
                    e.tool = Some(if c < children { "search" } else { "" }.into());
                    e.parent_id = Some(outer.id.as_str().into());
                    e.bytes = None;
                    e.duration_ns = Some(c as i64);
                    events.push(e);
                }
                Ok(Built { events, failures })
            }),
        }
    }

    #[test]
    fn a_deferred_item_takes_the_places_it_asks_for() {
        // One place per event it will yield, or per PLACE_BYTES it holds if that is more.
        assert_eq!(Deferred::places_for(0, 0), 1);
        assert_eq!(Deferred::places_for(1, 2_000), 1);
        assert_eq!(Deferred::places_for(101, 132_724), 101);
        assert_eq!(Deferred::places_for(1, PLACE_BYTES + 1), 2);
        assert_eq!(Deferred::places_for(3, 10 * PLACE_BYTES), 10);
        // An empty queue takes any item (alone); otherwise the item must fit.
        assert!(has_room(0, 5_000, 1_000));
        assert!(has_room(400, 600, 1_000));
        assert!(!has_room(400, 601, 1_000));
        assert!(!has_room(1_000, 1, 1_000));

        // A queue of 1,000 places, taken by the encoder at 500 or when its linger ends.
        let (_d, r) = recorder(Durability::Batch, 1_000);
        let started = Instant::now();
        let mut big = turn(1, 0, 0, 0);
        big.places = 400;
        assert!(r.try_defer(big).unwrap().is_ok(), "an empty queue takes it");
        let mut bigger = turn(2, 0, 0, 0);
        bigger.places = 601;
        let refused = r.try_defer(bigger).unwrap();
        let one = r.try_push(r.wrap(call(3))).unwrap();
        if started.elapsed() < LINGER {
            // The encoder cannot have taken the queue yet: 400 places are taken, 600 left.
            assert!(refused.is_err(), "601 places do not fit in 600");
            assert!(one.is_ok(), "one place fits");
        }
        // Waiting for room, it gets in once the encoder has taken the queue.
        if let Err(back) = refused {
            r.defer(back).unwrap();
        }
        if let Err(back) = one {
            r.push_blocking(back).unwrap();
        }
        r.flush().unwrap();
        let s = r.stats();
        assert_eq!((s.accepted, s.written, s.pending), (3, 3, 0));
    }

    #[test]
    fn producers_of_items_larger_than_the_room_left_all_get_in() {
        // A queue of 8 places; items of 1 to 20 places, some larger than the whole queue (they
        // get in alone), from two threads beside plain events: nothing waits forever, all
        // is written.
        let (_d, r) = recorder(Durability::Batch, 8);
        let r = Arc::new(r);
        let producers: Vec<_> = (0..2u64)
            .map(|t| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    for i in 0..60u64 {
                        let mut d = turn(t * 1_000 + i, 1, 0, 0);
                        d.places = 1 + ((i * 7 + t) % 20) as usize;
                        if let Err(back) = r.try_defer(d).unwrap() {
                            r.defer(back).unwrap();
                        }
                        let rec = r.wrap(call(t * 1_000 + i));
                        if let Err(back) = r.try_push(rec).unwrap() {
                            r.push_blocking(back).unwrap();
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        r.flush().unwrap();
        let s = r.stats();
        // Each turn yields its call and one child; each plain event one.
        assert_eq!((s.accepted, s.written, s.pending), (360, 360, 0));
        let rows = ledger_rows(&r);
        assert_eq!(rows.len(), 360);
        assert!(rows
            .iter()
            .all(|(kind, _, parent)| (kind == "tool_call") == parent.is_some()));
    }

    /// Each event in the ledger, in order: (kind, input tokens or duration, parent's seq).
    fn ledger_rows(r: &Recorder) -> Vec<(String, i64, Option<u64>)> {
        let store = r.store().unwrap();
        let store = store.lock();
        let mut seq_of = std::collections::HashMap::new();
        (1..=store.len().unwrap())
            .map(|seq| {
                let record = store.expanded_record_at(seq).unwrap().unwrap();
                let v: serde_json::Value = serde_json::from_str(&record).unwrap();
                let e = &v["event"];
                seq_of.insert(e["id"].as_str().unwrap().to_owned(), seq);
                let n = e["input_tokens"]
                    .as_i64()
                    .or(e["duration_ns"].as_i64())
                    .unwrap();
                let parent = e["parent_id"].as_str().map(|p| seq_of[p]);
                (e["kind"].as_str().unwrap().to_owned(), n, parent)
            })
            .collect()
    }

    #[test]
    fn a_deferred_item_yields_its_events_in_order() {
        for d in [Durability::Batch, Durability::Sync] {
            let (_d, r) = recorder(d, 3);
            let quiet = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let queue = |item: Deferred| match r.try_defer(item) {
                Ok(Err(back)) => r.defer(back).unwrap(),
                Ok(Ok(())) => {}
                Err(e) => panic!("{e}"),
            };
            let defer = |item: Deferred| {
                if d == Durability::Batch {
                    queue(item)
                } else {
                    r.defer(item).unwrap()
                }
            };
            let ready = |i: u64| {
                if d == Durability::Batch {
                    if let Err(back) = r.try_push(r.wrap(call(i))).unwrap() {
                        r.push_blocking(back).unwrap();
                    }
                } else {
                    r.write_now(&r.wrap(call(i))).unwrap();
                }
            };
            ready(1);
            // Three children, and two failures met reading the raw material.
            defer(turn(10, 3, 2, 0));
            ready(2);
            // A panic and an error: nothing recorded, one failure each; the writer goes on.
            defer(Deferred {
                source: "botocore".into(),
                places: 1,
                build: Box::new(|| panic!("a bug in the builder")),
            });
            defer(Deferred {
                source: "botocore".into(),
                places: 1,
                build: Box::new(|| Err(Error::validation("bytes", "unreadable"))),
            });
            // Nothing to record, no failure.
            defer(Deferred {
                source: "botocore".into(),
                places: 1,
                build: Box::new(|| Ok(Built::default())),
            });
            // One child fails validation (a tool call without a tool): left out and counted.
            defer(turn(20, 1, 0, 1));
            ready(3);
            r.flush().unwrap();
            std::panic::set_hook(quiet);
            let s = r.stats();
            assert_eq!(s.integration_errors.get("botocore"), Some(&5), "{d:?}");
            assert_eq!((s.accepted, s.written, s.pending), (9, 9, 0), "{d:?}");
            let tool = |n: i64, parent: u64| ("tool_call".to_owned(), n, Some(parent));
            let call = |n: i64| ("model_call".to_owned(), n, None);
            assert_eq!(
                ledger_rows(&r),
                [
                    call(1),
                    call(10),
                    tool(0, 2),
                    tool(1, 2),
                    tool(2, 2),
                    call(2),
                    call(20),
                    tool(0, 7),
                    call(3),
                ],
                "{d:?}"
            );
        }
    }

    /// Holds the committer in its second commit (after the commit, before it is counted)
    /// until released.
    #[derive(Default)]
    struct SecondCommitGate {
        commits: std::sync::atomic::AtomicUsize,
        open: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
    }

    impl SecondCommitGate {
        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    /// Opens the gate when dropped (a failing test must not leave the committer held).
    struct OpenOnDrop(Arc<SecondCommitGate>);

    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            self.0.open();
        }
    }

    impl CommitObserver for SecondCommitGate {
        fn committed(&self, _: &Store, _: &[Option<&Recorded>], _: &[Outcome]) {
            if self.commits.fetch_add(1, Ordering::AcqRel) == 1 {
                let mut open = self.open.lock().unwrap();
                while !*open {
                    open = self.opened.wait(open).unwrap();
                }
            }
        }
    }

    #[test]
    fn flush_waits_for_what_follows_a_deferred_item_in_a_later_group() {
        // A group holds MAX_BATCH events and one deferred item's beyond them: the event queued
        // after that item goes to the next group, and a flush that counted the item as one
        // (it was not built yet) still waits for that event.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(&dir.path().join("l.db")), Durability::Batch).unwrap();
        let gate = Arc::new(SecondCommitGate::default());
        let r = Recorder::observed(
            Arc::new(Mutex::new(store)),
            Ruleset::builtin_default(),
            Durability::Batch,
            2 * MAX_BATCH,
            Some(Arc::clone(&gate) as Arc<dyn CommitObserver>),
        )
        .unwrap();
        let _opens = OpenOnDrop(Arc::clone(&gate));
        let first = (0..MAX_BATCH as u64 - 2).map(|i| r.wrap(call(i))).collect();
        assert!(r.try_push_all(first).unwrap().is_empty());
        r.try_defer(turn(1_000_000, 50, 0, 0))
            .unwrap()
            .ok()
            .unwrap();
        r.try_push(r.wrap(call(2_000_000))).unwrap().unwrap();
        // Until the second group (the last event) is held in its commit, and after, the flush
        // is not done.
        let mut target = None;
        let deadline = Instant::now() + Duration::from_secs(120);
        while gate.commits.load(Ordering::Acquire) < 2 {
            let done = r.flush_for(&mut target, Duration::from_millis(20)).unwrap();
            assert!(!done, "the flush ended before the last event was committed");
            assert!(Instant::now() < deadline);
        }
        assert!(!r
            .flush_for(&mut target, Duration::from_millis(100))
            .unwrap());
        assert_eq!(r.stats().pending, 1);
        gate.open();
        r.flush().unwrap();
        let rows = ledger_rows(&r);
        assert_eq!(rows.len(), MAX_BATCH - 2 + 51 + 1);
        assert_eq!(rows.last().unwrap().1, 2_000_000);
        let s = r.stats();
        let n = rows.len() as u64;
        assert_eq!((s.accepted, s.written, s.pending), (n, n, 0));
    }
}
