//! Detecting that another copy of SQLite in this process released statemeter's file locks.
//!
//! SQLite coordinates processes with POSIX advisory locks, which belong to the process, not
//! to a file descriptor: closing any descriptor of a file drops every lock the process holds
//! on it. One SQLite library knows this and keeps its descriptors open while it holds locks;
//! two libraries in one process (statemeter links its own SQLite, Python's `sqlite3` module
//! another) do not know about each other, so when `sqlite3` closes its connection to a ledger
//! statemeter has open, statemeter's locks are gone without its knowing: another process may
//! then write while statemeter believes it holds the write lock, or reset the shared-memory
//! index under it — the way a ledger gets corrupted.
//!
//! Every connection to a WAL database holds a shared lock on one byte of the `-shm` file (the
//! "dead man switch", offset 128) for as long as it is open. [`locks_lost`] checks, on Linux,
//! that the kernel still lists that lock for this process (`/proc/locks`). Worse, the other
//! library's close then takes itself for the last connection (our locks do not conflict with
//! its own process's) and deletes the write-ahead log and its index under statemeter: a
//! missing `-shm` file beside a writable open ledger is the same finding.

use std::path::Path;

/// The byte of the `-shm` file every open connection keeps a shared lock on (SQLite's
/// `UNIX_SHM_DMS`: 120 + 8 lock slots).
const DMS: u64 = 128;

/// `Some(true)` when this process no longer holds the lock an open connection to the ledger
/// at `path` keeps on its `-shm` file, `Some(false)` when it does, `None` when it cannot be
/// told (not Linux, no `-shm` file, `/proc/locks` unreadable).
///
/// `writable`: the connection may write, so its `-shm` file must exist while it is open; one
/// that is gone was deleted by the other library too (its close took itself for the last
/// connection, checkpointed and removed the write-ahead log and its index): `Some(true)`.
pub fn locks_lost(path: &Path, writable: bool) -> Option<bool> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    let Some(inode) = inode(Path::new(&shm)) else {
        return (writable && path.exists()).then_some(true);
    };
    // The kernel builds /proc/locks as it is read: a lock table longer than one read can
    // skip lines that moved while other processes locked and unlocked. Lost only if absent
    // from several reads.
    for _ in 0..5 {
        let table = std::fs::read_to_string("/proc/locks").ok()?;
        if holds(&table, std::process::id(), inode) {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(unix)]
fn inode(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| m.ino())
}

#[cfg(not(unix))]
fn inode(_: &Path) -> Option<u64> {
    None
}

/// Whether `/proc/locks` text lists a POSIX lock of `pid` on `inode` covering [`DMS`]. Lines
/// read `1: POSIX  ADVISORY  READ 1234 08:01:5678 128 128` (the inode after the last colon;
/// an end of `EOF` is open-ended).
fn holds(table: &str, pid: u32, inode: u64) -> bool {
    table.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Blocked waiters are listed with "->" and shifted fields: not held.
        if f.len() < 8 || f[1] != "POSIX" {
            return false;
        }
        let same = f[4].parse::<u32>().ok() == Some(pid)
            && f[5].rsplit(':').next().and_then(|i| i.parse::<u64>().ok()) == Some(inode);
        let start = f[6].parse::<u64>().unwrap_or(u64::MAX);
        let covers = f[7] == "EOF" || f[7].parse::<u64>().is_ok_and(|end| end >= DMS);
        same && start <= DMS && covers
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_locks_lines() {
        let t = "1: POSIX  ADVISORY  READ 42 08:01:777 128 128\n\
                 2: POSIX  ADVISORY  WRITE 43 08:01:777 120 EOF\n\
                 3: FLOCK  ADVISORY  WRITE 42 08:01:777 0 EOF\n\
                 4: -> POSIX  ADVISORY  READ 44 08:01:777 128 128\n";
        assert!(holds(t, 42, 777));
        assert!(holds(t, 43, 777));
        assert!(!holds(t, 42, 778));
        assert!(!holds(t, 44, 777));
        assert!(!holds("", 42, 777));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn an_open_connection_holds_the_lock_until_another_descriptor_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let store =
            crate::ledger::Store::open(Some(&path), crate::ledger::Durability::Sync).unwrap();
        if std::fs::read_to_string("/proc/locks").is_err() {
            return;
        }
        assert_eq!(locks_lost(&path, true), Some(false));
        // What another SQLite library's close does: open and close the file once more.
        let mut shm = path.as_os_str().to_owned();
        shm.push("-shm");
        drop(std::fs::File::open(&shm).unwrap());
        assert_eq!(locks_lost(&path, true), Some(true));
        drop(store);
    }
}
