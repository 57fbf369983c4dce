//! Event ids (UUIDv7) and timestamps.
//!
//! Ids are the `uuid` crate's version 7 UUIDs, made as [`Uuid::now_v7`] makes them: 48 bits of
//! Unix milliseconds, then a 42-bit counter reseeded with random bits each millisecond (RFC
//! 9562, section 6.2, method 2), then random bits, under one process-wide [`ContextV7`]. Ids
//! minted by one process are therefore strictly increasing, also within a millisecond, and
//! sort in recording order. [`uuid_v7_at`] takes the time from the caller so that an event's
//! `ts` and its id come from one clock read (a clock read costs as much as the rest of the id).
//!
//! After `fork()` the child would repeat the parent's random sequence (the thread RNG and the
//! context's counter are copied with its memory), so processes forked from one parent would
//! mint the same ids in the same millisecond. A fork handler reseeds the child's thread RNG
//! from the operating system and gives it a fresh context.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use uuid::timestamp::context::ContextV7;
use uuid::timestamp::Timestamp;
use uuid::{ClockSequence, Uuid};

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The process-wide v7 context, shared by every thread (what `Uuid::now_v7` uses, but one the
/// caller can hand a time it has already read).
struct SharedContext {
    context: Mutex<ContextV7>,
    usable_bits: usize,
}

impl ClockSequence for SharedContext {
    type Output = u64;

    fn generate_sequence(&self, seconds: u64, subsec_nanos: u32) -> u64 {
        self.context.lock().generate_sequence(seconds, subsec_nanos)
    }

    fn generate_timestamp_sequence(&self, seconds: u64, subsec_nanos: u32) -> (u64, u64, u32) {
        self.context
            .lock()
            .generate_timestamp_sequence(seconds, subsec_nanos)
    }

    fn usable_bits(&self) -> usize {
        self.usable_bits
    }
}

static CONTEXT: LazyLock<SharedContext> = LazyLock::new(|| {
    crate::fork::on_child(reseed_in_child);
    let context = ContextV7::new();
    let usable_bits = context.usable_bits();
    SharedContext {
        context: Mutex::new(context),
        usable_bits,
    }
});

/// Runs in a forked child, on its only thread: new random state, so that the child's ids
/// differ from its parent's and its siblings'.
extern "C" fn reseed_in_child() {
    // A thread of the parent may have held the lock at the fork; it never will release it.
    if CONTEXT.context.is_locked() {
        // SAFETY: the child has one thread, this one, which does not hold the lock.
        unsafe { CONTEXT.context.force_unlock() };
    }
    *CONTEXT.context.lock() = ContextV7::new();
    // The thread RNG `uuid` draws from (this thread's; threads started later seed their own).
    // Reseeding reads the operating system's generator; if that fails, the RNG is unusable.
    let _ = rand::rng().reseed();
}

/// A new UUIDv7 (RFC 9562) as lowercase hyphenated text, stamped now.
pub fn new_uuid_v7() -> String {
    uuid_v7_at(now_ns())
}

/// A new UUIDv7 stamped `ts_ns` (ns since the epoch, read from the clock just before). Never
/// earlier than an id this process already minted: the context keeps ids increasing.
pub fn uuid_v7_at(ts_ns: i64) -> String {
    let ns = ts_ns.max(0) as u64;
    let ts = Timestamp::from_unix(&*CONTEXT, ns / 1_000_000_000, (ns % 1_000_000_000) as u32);
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    Uuid::new_v7(ts)
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
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
        let ids: Vec<String> = (0..10_000).map(|_| new_uuid_v7()).collect();
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
    fn threads_mint_distinct_ids() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..5_000).map(|_| new_uuid_v7()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<String> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
