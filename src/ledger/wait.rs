//! Waiting for another connection's lock (another process appending, or creating the file).
//!
//! SQLite calls a busy handler while a lock it needs is held elsewhere. Ours waits up to
//! [`BUSY_TIMEOUT`] (sleeping 1 ms growing to 50 ms between attempts, as SQLite's own handler
//! does) and, while it waits, asks the check the caller installed with [`interruptible`]
//! whether to give up: the Python bindings check for signals there, so Ctrl-C ends the wait
//! instead of going unnoticed for up to 30 s. A wait that gives up fails like a timeout
//! (`database is locked`), with nothing written.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::schema::BUSY_TIMEOUT;

thread_local! {
    /// When the current wait on this thread began.
    static SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The caller's check: `true` ends the wait.
    static CHECK: Cell<Option<fn() -> bool>> = const { Cell::new(None) };
}

/// Installs the busy handler on `conn` (instead of SQLite's `busy_timeout`).
pub(crate) fn install(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(on_busy))
}

fn on_busy(count: i32) -> bool {
    const DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 50];
    let now = Instant::now();
    let since = SINCE.with(|s| match s.get() {
        Some(t) if count > 0 => t,
        _ => {
            s.set(Some(now));
            now
        }
    });
    let waited = now.duration_since(since);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    if CHECK.get().is_some_and(|check| check()) {
        return false;
    }
    let delay = Duration::from_millis(DELAYS_MS[(count.max(0) as usize).min(DELAYS_MS.len() - 1)]);
    std::thread::sleep(delay.min(BUSY_TIMEOUT - waited));
    true
}

/// Runs `f` with `check` asked between attempts whenever `f` waits for a lock on this thread;
/// `check` returning `true` ends that wait (the operation fails as if it timed out).
pub fn interruptible<T>(check: fn() -> bool, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<fn() -> bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CHECK.set(self.0);
        }
    }
    let _restore = Restore(CHECK.replace(Some(check)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    static STOP: AtomicBool = AtomicBool::new(false);

    #[test]
    fn a_check_ends_the_wait_for_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let waiter = Connection::open(&path).unwrap();
        install(&waiter).unwrap();
        let t = Instant::now();
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            STOP.store(true, Ordering::SeqCst);
        });
        let r = interruptible(
            || STOP.load(Ordering::SeqCst),
            || waiter.execute_batch("BEGIN IMMEDIATE"),
        );
        assert!(r.is_err());
        assert!(t.elapsed() < BUSY_TIMEOUT, "{:?}", t.elapsed());
        assert!(CHECK.get().is_none(), "the check is removed afterwards");
        holder.execute_batch("COMMIT").unwrap();
        waiter.execute_batch("BEGIN IMMEDIATE; COMMIT").unwrap();
    }
}
