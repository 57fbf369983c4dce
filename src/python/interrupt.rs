//! Waits that Ctrl-C can end: the core's lock waits ask [`check_signals`] between attempts
//! (`crate::ledger::interruptible`), and flushes wait in short slices with a signal check
//! between them. The pending `KeyboardInterrupt` (or whatever a signal handler raised)
//! replaces the error the interrupted wait produced.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

use crate::meter::Recorder;

thread_local! {
    /// The exception a signal handler raised during a wait on this thread.
    static RAISED: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Runs the Python signal handlers (main thread only; elsewhere a no-op): `true` when one
/// raised, which ends the wait.
fn check_signals() -> bool {
    Python::attach(|py| match py.check_signals() {
        Ok(()) => false,
        Err(e) => {
            RAISED.with(|r| *r.borrow_mut() = Some(e));
            true
        }
    })
}

/// `f` without the GIL, its lock waits interruptible by signals.
pub fn detach<T: Send>(py: Python<'_>, f: impl FnOnce() -> crate::Result<T> + Send) -> PyResult<T> {
    let result = py.detach(|| crate::ledger::interruptible(check_signals, f));
    if let Some(e) = RAISED.with(|r| r.borrow_mut().take()) {
        return Err(e);
    }
    Ok(result?)
}

/// `recorder.flush()`, waiting in slices with a signal check between them.
pub fn flush(py: Python<'_>, recorder: &Arc<Recorder>) -> PyResult<()> {
    // The events accepted before this call: later ones do not keep this flush waiting.
    let mut target = None;
    loop {
        let r = Arc::clone(recorder);
        let (done, t) = detach(py, move || {
            let mut t = target;
            r.flush_for(&mut t, Duration::from_millis(100))
                .map(|d| (d, t))
        })?;
        if done {
            return Ok(());
        }
        target = t;
        py.check_signals()?;
    }
}
