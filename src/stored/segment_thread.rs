//! A finished column segment encoded and written on a thread of its own, so that the
//! committer, the writer's busiest thread, only hands over the columns: encoding a segment
//! (dictionaries, byte planes, zstd) and writing its file take it about a tenth of its time
//! otherwise. One segment at a time: handing over the next waits for the one before, which a
//! segment's worth of commits later has long finished.

use parking_lot::Mutex;
use std::thread::JoinHandle;

/// The segment being written, if any, with the fork generation of the thread writing it.
#[derive(Debug, Default)]
pub(crate) struct SegmentThread {
    running: Mutex<Option<(u64, JoinHandle<()>)>>,
}

impl SegmentThread {
    /// Runs `job` on a new thread after the one before it has finished, or on the calling
    /// thread if no thread can be started.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        let mut running = self.running.lock();
        settle(&mut running);
        let job = std::sync::Arc::new(Mutex::new(Some(job)));
        let theirs = std::sync::Arc::clone(&job);
        let spawned = std::thread::Builder::new()
            .name("statemeter-cols".into())
            .spawn(move || {
                if let Some(job) = theirs.lock().take() {
                    job();
                }
            });
        match spawned {
            Ok(handle) => *running = Some((crate::fork::generation(), handle)),
            Err(_) => {
                if let Some(job) = job.lock().take() {
                    job();
                }
            }
        }
    }

    /// Waits for the segment being written, if any.
    pub(crate) fn settle(&self) {
        settle(&mut self.running.lock());
    }

    /// In a forked child, before its first use: forgets the parent's thread, and releases the
    /// lock if a thread of the parent held it at the fork (waiting for that thread), a thread
    /// the child does not have.
    pub(crate) fn forked(&self) {
        if self.running.is_locked() {
            // SAFETY: the lock can only be held by a thread of the parent, which the child
            // does not have; the child's committer, which alone calls this, holds nothing.
            unsafe { self.running.force_unlock() };
        }
        if let Some((_, handle)) = self.running.lock().take() {
            std::mem::forget(handle);
        }
    }
}

fn settle(running: &mut Option<(u64, JoinHandle<()>)>) {
    if let Some((generation, handle)) = running.take() {
        if generation == crate::fork::generation() {
            let _ = handle.join();
        } else {
            // Started before a fork: the thread is the parent's, not this process's. Joining
            // or detaching it here would name a thread that does not exist.
            std::mem::forget(handle);
        }
    }
}
