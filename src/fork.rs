//! `fork()`: a child process starts with a copy of the parent's memory but only the thread
//! that forked. Whatever the parent's other threads were doing is frozen in the child: their
//! locks stay held, their SQLite connections belong to the parent, and random generators
//! repeat the parent's sequence. Modules that keep such state register a child handler with
//! [`on_child`]; [`generation`] tells code whether it runs in another process than the one
//! that set its state up (it is bumped in every forked child, before the other handlers run).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn bump() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// How many forks separate this process from the one that loaded the library (0 there).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Runs `handler` in every child forked after this call, right after the fork, on the only
/// thread the child has (register each handler once; it must not wait for locks other threads
/// may have held at the fork).
pub fn on_child(handler: extern "C" fn()) {
    static BUMP: Once = Once::new();
    BUMP.call_once(|| register(bump));
    register(handler);
}

fn register(handler: extern "C" fn()) {
    #[cfg(unix)]
    // SAFETY: registers a plain function; pthread_atfork only fails on ENOMEM, in which case
    // the handler is simply not run (as before this module existed).
    unsafe {
        libc::pthread_atfork(None, None, Some(handler));
    }
    #[cfg(not(unix))]
    let _ = handler;
}

/// A mutex whose whole state is in itself (`std::sync::Mutex`: a futex word), for the locks
/// writer threads block on.
///
/// `parking_lot` parks a blocked thread in one process-wide table of queues; a thread of the
/// parent that was parking or waking another at the moment of `fork()` leaves that table
/// locked or half-updated in the child, and the child's first wait or wake that lands in the
/// same bucket then blocks forever or follows a dangling queue entry. The meter's writer
/// threads wait and wake constantly (every few milliseconds when idle), so their waits must
/// not go through that table: a [`Lock`] and its [`Signal`]s keep everything in the objects,
/// and the child, which makes new ones, never touches the parent's.
///
/// A panic while holding the lock does not poison it: the data stays usable, as with
/// `parking_lot`.
#[derive(Debug, Default)]
pub struct Lock<T>(std::sync::Mutex<T>);

/// The guard of a [`Lock`].
pub type LockGuard<'a, T> = std::sync::MutexGuard<'a, T>;

impl<T> Lock<T> {
    pub const fn new(value: T) -> Self {
        Lock(std::sync::Mutex::new(value))
    }

    pub fn lock(&self) -> LockGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A condition variable for a [`Lock`] (`std::sync::Condvar`; see [`Lock`] for why not
/// `parking_lot`'s).
#[derive(Debug, Default)]
pub struct Signal(std::sync::Condvar);

impl Signal {
    pub const fn new() -> Self {
        Signal(std::sync::Condvar::new())
    }

    pub fn notify_one(&self) {
        self.0.notify_one();
    }

    pub fn notify_all(&self) {
        self.0.notify_all();
    }

    /// Releases `guard`'s lock until notified (or woken spuriously), then takes it again.
    pub fn wait<'a, T>(&self, guard: LockGuard<'a, T>) -> LockGuard<'a, T> {
        self.0
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`Signal::wait`] for at most `timeout`; true when it timed out.
    pub fn wait_for<'a, T>(
        &self,
        guard: LockGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> (LockGuard<'a, T>, bool) {
        let (guard, result) = self
            .0
            .wait_timeout(guard, timeout)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard, result.timed_out())
    }
}
