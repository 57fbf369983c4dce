//! Event ids (UUIDv7) and timestamps.
//!
//! An id is a version 7 UUID (RFC 9562, section 5.7): 48 bits of Unix milliseconds, then a
//! 42-bit counter (the 12 bits of `rand_a` and the top 30 of `rand_b`, RFC 9562 section 6.2,
//! method 1, "fixed bit-length dedicated counter"), then 32 random bits. One process-wide
//! state mints them: in a new millisecond the counter starts at a random 41-bit value (so at
//! least 2^41 ids fit in the millisecond), within one it counts up, and if it ever overflows
//! the timestamp moves one millisecond on. Ids minted by one process are therefore strictly
//! increasing, also within a millisecond and across threads, and sort in recording order.
//! [`uuid_v7_at`] takes the time from the caller so that an event's `ts` and its id come from
//! one clock read.
//!
//! The random bits come from a small fast generator (wyrand, the `fastrand` crate) seeded from
//! the operating system, not from a cryptographic one. Ids must be unique, not secret: within
//! a process uniqueness comes from the counter alone (it never repeats a value in a
//! millisecond), and across processes from the 41 + 32 bits the generators draw, which are
//! statistically independent between generators seeded independently by the operating
//! system. Nothing in the ledger relies on an id being unguessable (anyone who can append to
//! a ledger can choose an event's id anyway). Minting this way costs about a tenth of the
//! `uuid` crate's `new_v7` with a shared context (u128 arithmetic, a ChaCha thread RNG).
//!
//! After `fork()` the child would repeat the parent's sequence (the state is copied with its
//! memory). A fork handler reseeds the child's generator from the operating system and moves
//! its counter on by a random 32-bit stride: the child's ids stay above the ones the process
//! minted before the fork, and differ from the parent's and its siblings'.

use std::sync::LazyLock;

use parking_lot::Mutex;
use uuid::Uuid;

use super::EventId;

/// Nanoseconds since the Unix epoch (the realtime clock; 0 if it reads before the epoch).
#[cfg(unix)]
// `time_t` and `c_long` are 64-bit here but 32-bit on some unix targets.
#[allow(clippy::useless_conversion)]
pub fn now_ns() -> i64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write; CLOCK_REALTIME always exists. The vDSO read
    // costs a third of `SystemTime::now().duration_since(UNIX_EPOCH)` with its u128 nanos.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    if rc != 0 || t.tv_sec < 0 {
        return 0;
    }
    i64::from(t.tv_sec)
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(t.tv_nsec))
}

/// Nanoseconds since the Unix epoch.
#[cfg(not(unix))]
pub fn now_ns() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Bits of the counter: `rand_a` (12) and the top 30 bits of `rand_b`.
const COUNTER_BITS: u32 = 42;
const COUNTER_LIMIT: u64 = 1 << COUNTER_BITS;
/// A new millisecond's counter starts below half the range: at least 2^41 ids fit in it.
const SEED_MASK: u64 = (1 << (COUNTER_BITS - 1)) - 1;

/// The process-wide minting state.
struct Minter {
    /// Milliseconds of the last id (never goes back).
    ms: u64,
    /// Its counter.
    counter: u64,
    rng: fastrand::Rng,
}

impl Minter {
    fn seeded() -> Minter {
        Minter {
            ms: 0,
            counter: 0,
            rng: fastrand::Rng::with_seed(os_seed()),
        }
    }

    /// The next id stamped `ms` (or the last id's millisecond, if that is later).
    #[inline]
    fn next(&mut self, ms: u64) -> Uuid {
        if ms > self.ms {
            self.ms = ms;
            self.counter = self.rng.u64(..) & SEED_MASK;
        } else {
            self.counter += 1;
            if self.counter >= COUNTER_LIMIT {
                // 2^41 ids in one millisecond: borrow the next one.
                self.ms += 1;
                self.counter = self.rng.u64(..) & SEED_MASK;
            }
        }
        let random = self.rng.u32(..);
        let ms = self.ms & ((1 << 48) - 1);
        let high = (ms << 16) | 0x7000 | (self.counter >> 30);
        let low = (0b10 << 62) | ((self.counter & ((1 << 30) - 1)) << 32) | u64::from(random);
        Uuid::from_u64_pair(high, low)
    }

    /// In a forked child: new random bits, and the counter moved on by a random stride.
    fn diverge(&mut self) {
        self.rng = fastrand::Rng::with_seed(os_seed());
        self.counter += 1 + u64::from(self.rng.u32(..));
        if self.counter >= COUNTER_LIMIT {
            self.ms += 1;
            self.counter = self.rng.u64(..) & SEED_MASK;
        }
    }
}

/// 64 bits from the operating system's generator. If it cannot be read (no such failure is
/// known on the supported systems) the time and the process id stand in, which still differ
/// between processes.
fn os_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let t = now_ns() as u64;
        t ^ (u64::from(std::process::id())).rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15
    })
}

static MINTER: LazyLock<Mutex<Minter>> = LazyLock::new(|| {
    crate::fork::on_child(reseed_in_child);
    Mutex::new(Minter::seeded())
});

/// Runs in a forked child, on its only thread: new random state, so that the child's ids
/// differ from its parent's and its siblings'.
extern "C" fn reseed_in_child() {
    // A thread of the parent may have held the lock at the fork; it never will release it.
    if MINTER.is_locked() {
        // SAFETY: the child has one thread, this one, which does not hold the lock.
        unsafe { MINTER.force_unlock() };
    }
    MINTER.lock().diverge();
}

/// A new UUIDv7 (RFC 9562) as lowercase hyphenated text, stamped now.
pub fn new_uuid_v7() -> EventId {
    uuid_v7_at(now_ns())
}

/// A new UUIDv7 stamped `ts_ns` (ns since the epoch, read from the clock just before). Never
/// earlier than an id this process already minted: the counter keeps ids increasing. Its text
/// is written into the returned id (nothing allocated).
#[inline]
pub fn uuid_v7_at(ts_ns: i64) -> EventId {
    EventId::from_uuid(mint_uuid_v7_at(ts_ns))
}

/// [`uuid_v7_at`] as a [`Uuid`] (for an id whose text is written in place,
/// [`EventId::set_uuid`]).
#[inline]
pub fn mint_uuid_v7_at(ts_ns: i64) -> Uuid {
    let ms = ts_ns.max(0) as u64 / 1_000_000;
    MINTER.lock().next(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_shape_and_uniqueness() {
        let a = new_uuid_v7();
        let b = new_uuid_v7();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, b);
    }

    #[test]
    fn ids_increase_within_a_millisecond() {
        let ids: Vec<EventId> = (0..10_000).map(|_| new_uuid_v7()).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids sort in minting order"
        );
        let parsed = Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        let (secs, _) = parsed.get_timestamp().unwrap().to_unix();
        assert!((secs as i64 - now_ns() / 1_000_000_000).abs() < 5);
    }

    #[test]
    fn an_id_carries_the_given_time_and_never_goes_back() {
        let now = now_ns();
        let a = Uuid::parse_str(&uuid_v7_at(now)).unwrap();
        let ms = |u: Uuid| {
            let (s, n) = u.get_timestamp().unwrap().to_unix();
            s * 1000 + u64::from(n) / 1_000_000
        };
        assert_eq!(ms(a), now as u64 / 1_000_000);
        // A time before the last id's keeps the order instead of going back.
        let b = Uuid::parse_str(&uuid_v7_at(now - 10_000_000_000)).unwrap();
        assert!(b > a);
    }

    #[test]
    fn the_layout_is_rfc_9562_version_7() {
        let now = now_ns();
        for _ in 0..1_000 {
            let text = uuid_v7_at(now);
            assert_eq!(text, text.to_ascii_lowercase());
            let u = Uuid::parse_str(&text).unwrap();
            assert_eq!(u.get_version_num(), 7);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(u.hyphenated().to_string(), text);
        }
    }

    #[test]
    fn a_full_counter_moves_to_the_next_millisecond() {
        let mut m = Minter::seeded();
        let a = m.next(1_000);
        m.counter = COUNTER_LIMIT - 1;
        let b = m.next(1_000);
        assert!(b > a);
        let (s, n) = b.get_timestamp().unwrap().to_unix();
        assert_eq!(s * 1000 + u64::from(n) / 1_000_000, 1_001);
        // The clock catching up keeps the borrowed millisecond until it passes it.
        let c = m.next(1_001);
        assert!(c > b);
        assert!(m.next(1_002) > c);
    }

    #[test]
    fn generators_seeded_apart_mint_apart() {
        // Two processes' states in the same millisecond (what the operating system's seeds
        // give every process): no id in common.
        let (mut a, mut b) = (Minter::seeded(), Minter::seeded());
        let ms = now_ns() as u64 / 1_000_000;
        let xs: std::collections::HashSet<Uuid> = (0..10_000).map(|_| a.next(ms)).collect();
        assert!((0..10_000).all(|_| !xs.contains(&b.next(ms))));
    }

    /// A forked child never repeats its parent's ids: both mint in the millisecond of the last
    /// id before the fork (a time stamp of 0 never moves the minter's clock), and the child's
    /// ids sort after the ones minted before it.
    #[cfg(unix)]
    #[test]
    fn a_forked_child_mints_its_own_ids() {
        use std::io::{Read, Write};
        use std::os::fd::FromRawFd;

        let before = new_uuid_v7();
        let mut fds = [0; 2];
        // SAFETY: a pipe into a valid array of two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only mints ids (its minting lock is released by the fork handler;
        // glibc's allocator is fork-safe), writes them to the pipe and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: the pipe's write end, owned by this process from here on.
            let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
            let ids: Vec<String> = (0..2_000).map(|_| uuid_v7_at(0).into()).collect();
            let ok = w.write_all(ids.join("\n").as_bytes()).is_ok();
            // SAFETY: ends the child without running the parent's destructors or handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        // SAFETY: the write end belongs to the child; the read end is ours.
        unsafe { libc::close(fds[1]) };
        let parent: Vec<EventId> = (0..2_000).map(|_| uuid_v7_at(0)).collect();
        let mut text = String::new();
        // SAFETY: the pipe's read end, owned by this process.
        unsafe { std::fs::File::from_raw_fd(fds[0]) }
            .read_to_string(&mut text)
            .unwrap();
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0);
        let child: Vec<&str> = text.split('\n').collect();
        assert_eq!(child.len(), 2_000);
        let parent: std::collections::HashSet<&str> = parent.iter().map(EventId::as_str).collect();
        assert!(child.iter().all(|id| !parent.contains(id)));
        assert!(child.iter().all(|id| *id > before.as_str()));
        assert!(child.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn threads_mint_distinct_ids() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..5_000).map(|_| new_uuid_v7()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<EventId> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
