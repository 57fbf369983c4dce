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
