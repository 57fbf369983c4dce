//! A faster call path for `Session.model_call`, the recording hot path: its keyword arguments
//! are matched to parameters by identity with interned names (the names in a caller's code
//! are interned strings, so usually one pointer comparison each; other names are compared by
//! value) instead of PyO3's UTF-8 conversion and string comparison per keyword, and the match
//! of each thread's last keyword tuple is remembered (a call site passes the same tuple each
//! time). It is installed on the `Session` type as a `METH_FASTCALL |
//! METH_KEYWORDS` method with the same name, signature and docstring. Any call it does not
//! recognise as plain (positional arguments, an unknown keyword, a missing required one) goes to the PyO3 method it replaced, which raises exactly
//! the errors it always did.

use std::cell::Cell;
use std::ffi::{c_char, CString};
use std::ptr;

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use super::args::Arg;
use super::meter::{Session, MODEL_CALL_KEYWORDS};

/// The parameter names, interned, and the PyO3 method the fast path falls back to.
struct Installed {
    names: Vec<Py<PyString>>,
    original: Py<PyAny>,
    /// The `Session` type object (an address compared with each call's `self` type: cheaper
    /// than PyO3's type check, which looks the type up and asks CPython about subtypes).
    session_type: usize,
}

static INSTALLED: PyOnceLock<Installed> = PyOnceLock::new();

/// Replaces `Session.model_call` with the fast path (same name, signature and docstring).
pub fn install(session: &Bound<'_, PyType>) -> PyResult<()> {
    let py = session.py();
    let original = session.getattr("model_call")?;
    let signature: String = original.getattr("__text_signature__")?.extract()?;
    let doc: String = original.getattr("__doc__")?.extract()?;
    let names = MODEL_CALL_KEYWORDS
        .iter()
        .map(|n| PyString::intern(py, n).unbind())
        .collect();
    if INSTALLED
        .set(
            py,
            Installed {
                names,
                original: original.unbind(),
                session_type: session.as_type_ptr() as usize,
            },
        )
        .is_err()
    {
        return Ok(()); // already installed (the module is initialised once per process)
    }
    // The method table entry must outlive the type: made once per process, never freed.
    let doc = CString::new(format!("model_call{signature}\n--\n\n{doc}"))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: c"model_call".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: model_call,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: doc.into_raw().cast_const() as *const c_char,
    }));
    // SAFETY: `session` is a type object and `def` lives for the rest of the process.
    let descr = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(session.as_type_ptr(), def))?
    };
    session.setattr("model_call", descr)
}

/// The `METH_FASTCALL | METH_KEYWORDS` entry point: `args[..nargs]` are the positional
/// arguments, `args[nargs..]` the keyword values named by the `kwnames` tuple.
unsafe extern "C" fn model_call(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held (the module declares no free-threaded
    // support: `gil_used`), and the pointers are valid for the call.
    let py = unsafe { Python::assume_attached() };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        call(py, slf, args, nargs, kwnames)
    }));
    match outcome {
        Ok(Ok(obj)) => obj,
        Ok(Err(e)) => {
            e.restore(py);
            ptr::null_mut()
        }
        Err(_) => {
            pyo3::panic::PanicException::new_err("statemeter panicked in Session.model_call")
                .restore(py);
            ptr::null_mut()
        }
    }
}

/// Where each keyword of a call goes: `slots[i]` is the parameter (index into
/// [`MODEL_CALL_KEYWORDS`]) of the call's `i`-th keyword.
#[derive(Clone, Copy)]
struct Order {
    len: usize,
    slots: [u8; MODEL_CALL_KEYWORDS.len()],
}

thread_local! {
    /// The `kwnames` tuple of this thread's last plain call and its [`Order`]. A call site
    /// passes the same tuple (a constant of its code object) on every call, so a loop of calls
    /// matches its keywords once; the tuple is kept alive here, so its address is not reused
    /// while it is remembered. Per thread, so that reading it takes no lock (a lock's atomic
    /// instructions cost more than the rest of the lookup).
    static LAST: Cell<Option<(Py<PyAny>, Order)>> = const { Cell::new(None) };
}

/// The remembered [`Order`] of `names`, if it is this thread's last tuple.
#[inline(always)]
fn remembered(names: *mut ffi::PyObject) -> Option<Order> {
    LAST.try_with(|last| {
        let kept = last.take();
        let order = kept
            .as_ref()
            .filter(|(known, _)| known.as_ptr() == names)
            .map(|(_, order)| *order);
        last.set(kept);
        order
    })
    .ok()
    .flatten()
}

/// Remembers `names` and its [`Order`] as this thread's last tuple.
fn remember(names: Py<PyAny>, order: Order) {
    // The tuple remembered before is released after the cell is updated (releasing it may
    // run arbitrary code, which could call `model_call` again).
    let old = LAST.try_with(|last| last.replace(Some((names, order))));
    drop(old);
}

/// The [`Order`] of a plain call's keywords: each names a parameter once and the required
/// ones are all there; `None` for anything else.
fn match_keywords(installed: &Installed, kwnames: &Bound<'_, PyTuple>) -> Option<Order> {
    let mut order = Order {
        len: 0,
        slots: [0; MODEL_CALL_KEYWORDS.len()],
    };
    let mut seen = [false; MODEL_CALL_KEYWORDS.len()];
    // Callers usually name the parameters in signature order: look there first.
    let mut next = 0;
    for (i, name) in kwnames.iter_borrowed().enumerate() {
        if i >= MODEL_CALL_KEYWORDS.len() {
            return None;
        }
        let at = installed.names[next..]
            .iter()
            .position(|n| n.as_ptr() == name.as_ptr())
            .map(|k| next + k)
            .or_else(|| {
                installed.names[..next]
                    .iter()
                    .position(|n| n.as_ptr() == name.as_ptr())
            })
            // A name that is not the interned one (built at run time, a mapping's key made by
            // an extension): compared by value.
            .or_else(|| {
                let name = name.downcast::<PyString>().ok()?.to_str().ok()?;
                MODEL_CALL_KEYWORDS.iter().position(|k| *k == name)
            })?;
        if seen[at] {
            return None;
        }
        seen[at] = true;
        order.slots[i] = at as u8;
        order.len = i + 1;
        next = (at + 1) % MODEL_CALL_KEYWORDS.len();
    }
    seen[..3].iter().all(|&s| s).then_some(order)
}

/// Matches the keywords and records, or hands the call to the original method.
///
/// # Safety
/// The arguments of a `METH_FASTCALL | METH_KEYWORDS` call, with the GIL held.
unsafe fn call(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let installed = INSTALLED
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("Session.model_call is not installed"))?;
    // SAFETY: the caller's pointers: `slf` is the bound object, `kwnames` a tuple or NULL, and
    // `args` holds `nargs` positional values followed by one value per keyword.
    let slf = unsafe { Borrowed::from_ptr(py, slf) };
    let kwnames = unsafe { Borrowed::from_ptr_or_opt(py, kwnames) };
    // SAFETY: `slf` is a live object.
    let session = if unsafe { ffi::Py_TYPE(slf.as_ptr()) } as usize == installed.session_type {
        // SAFETY: an instance of exactly the `Session` type.
        Some(unsafe { slf.downcast_unchecked::<Session>() })
    } else {
        slf.downcast::<Session>().ok()
    };
    if let (0, Some(session), Some(names)) = (nargs, session, &kwnames) {
        let order = match remembered(names.as_ptr()) {
            Some(order) => Some(order),
            None => {
                let order = match_keywords(installed, names.downcast::<PyTuple>()?);
                if let Some(order) = order {
                    remember(Borrowed::to_owned(*names).unbind(), order);
                }
                order
            }
        };
        if let Some(order) = order {
            // SAFETY: no positional values, one value per keyword (`order.len` of them).
            let values = unsafe { std::slice::from_raw_parts(args, order.len) };
            let mut given: [Option<Borrowed<'_, '_, PyAny>>; 15] = [None; 15];
            for (&slot, &v) in order.slots[..order.len].iter().zip(values) {
                // SAFETY: a keyword value of this call.
                given[usize::from(slot)] = Some(unsafe { Borrowed::from_ptr(py, v) });
            }
            let a: [Arg<'_, '_>; 15] = std::array::from_fn(|i| given[i].as_deref());
            let event = session.get().record_model_call(py, &a)?;
            return Ok(Bound::new(py, event)?.into_ptr());
        }
    }
    let nkw = match &kwnames {
        Some(k) => k.downcast::<PyTuple>()?.len(),
        None => 0,
    };
    // SAFETY: `nargs` positional values followed by one value per keyword.
    let values = unsafe { std::slice::from_raw_parts(args, nargs as usize + nkw) };
    // Anything else: the original method, with `self` first.
    let mut positional = vec![slf.as_any().clone()];
    for &v in &values[..nargs as usize] {
        // SAFETY: a positional value of this call.
        positional.push(unsafe { Borrowed::from_ptr(py, v) }.to_owned());
    }
    let positional = PyTuple::new(py, positional)?;
    let keywords = PyDict::new(py);
    if let Some(kwnames) = &kwnames {
        for (name, &v) in kwnames
            .downcast::<PyTuple>()?
            .iter()
            .zip(&values[nargs as usize..])
        {
            // SAFETY: a keyword value of this call.
            keywords.set_item(name, unsafe { Borrowed::from_ptr(py, v) })?;
        }
    }
    Ok(installed
        .original
        .bind(py)
        .call(positional, Some(&keywords))?
        .into_ptr())
}
