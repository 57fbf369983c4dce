//! A Python `bytes` object handed to the meter's writer thread as it is, without a copy
//! ([`crate::capture::call::Held::Shared`]).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The contents of a `bytes` object, read in place by whichever thread holds this. Dropped
/// without the interpreter lock (on the writer thread), the reference is released by PyO3 the
/// next time a thread enters statemeter's extension.
pub struct HeldBytes {
    _owner: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: `ptr` and `len` are the buffer of `_owner`, a `bytes` object: CPython writes that
// buffer only while making the object and frees it only with the object, which the reference
// held here keeps alive until this is dropped. Reading it from another thread is then a read
// of memory no one writes, and needs no lock; the reference itself is a `Py`, which is `Send`
// (its drop on a thread without the interpreter lock defers the decrement).
unsafe impl Send for HeldBytes {}

impl HeldBytes {
    pub fn new(bytes: &Bound<'_, PyBytes>) -> HeldBytes {
        let b = bytes.as_bytes();
        HeldBytes {
            ptr: b.as_ptr(),
            len: b.len(),
            _owner: bytes.clone().unbind(),
        }
    }
}

impl AsRef<[u8]> for HeldBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the buffer is alive and unchanged while `_owner` is held (see `Send`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}
