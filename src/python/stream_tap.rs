//! `_StreamTap`: what the botocore capture keeps of an InvokeAgent response stream while the
//! caller reads it, for its trace to be read once the stream has ended: the raw body's chunks
//! (`crate::capture::body_bytes`: each copied as it passes, with when it came) and how many
//! trace events botocore handed the caller (those parts are read). Both sides of the stream
//! pass through here unchanged, so that reading it runs no Python code of statemeter's per chunk
//! or per event: the tap follows the raw body botocore reads (`follow`), and `_TappedEvents`
//! the parsed events the caller gets (`events`), telling the capture when the stream ends.
//! `_AgentTrace.read_stream` and `hand_over` take what the tap kept.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyIterator};

use crate::capture::body_bytes::BodyBytes;
use crate::event::now_ns;

struct Body {
    /// The body's chunks being followed (`follow`).
    iter: Option<Py<PyIterator>>,
    bytes: BodyBytes,
    /// A chunk that was not bytes came, or the bytes were taken: what follows is not kept
    /// (it could not be placed in the stream).
    cut: bool,
}

#[pyclass(frozen, module = "statemeter._core", name = "_StreamTap")]
pub struct StreamTap {
    body: Mutex<Body>,
    /// Trace events the caller got.
    traces: AtomicUsize,
}

impl StreamTap {
    /// The bytes kept, taken out of the tap (which keeps no more from then on).
    pub(super) fn take(&self) -> BodyBytes {
        let mut body = self.body.lock();
        body.cut = true;
        std::mem::take(&mut body.bytes)
    }

    /// How many trace events the caller got.
    pub(super) fn trace_events(&self) -> usize {
        self.traces.load(Ordering::Relaxed)
    }
}

#[pymethods]
impl StreamTap {
    #[new]
    fn new() -> Self {
        StreamTap {
            body: Mutex::new(Body {
                iter: None,
                bytes: BodyBytes::default(),
                cut: false,
            }),
            traces: AtomicUsize::new(0),
        }
    }

    /// Follows `chunks` (the raw body's own iterable of `bytes`); returns the tap, whose
    /// iteration yields them unchanged, keeping each.
    fn follow<'py>(
        slf: Bound<'py, Self>,
        chunks: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let iter = chunks.try_iter()?.unbind();
        slf.get().body.lock().iter = Some(iter);
        Ok(slf)
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// The body's next chunk, kept as it passes; the body's errors reach the caller unchanged.
    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let this = slf.get();
        let Some(iter) = this.body.lock().iter.as_ref().map(|i| i.clone_ref(py)) else {
            return Ok(None);
        };
        // The lock is never held while Python code runs (the body's own, here).
        match iter.into_bound(py).next() {
            Some(Ok(chunk)) => {
                let at = now_ns();
                let mut body = this.body.lock();
                if !body.cut {
                    if let Ok(b) = chunk.downcast::<PyBytes>() {
                        body.bytes.push(b.as_bytes(), at);
                    } else if let Ok(b) = chunk.downcast::<PyByteArray>() {
                        body.bytes.push(&b.to_vec(), at);
                    } else {
                        body.cut = true;
                    }
                }
                Ok(Some(chunk))
            }
            Some(Err(e)) => Err(e),
            None => {
                this.body.lock().iter = None;
                Ok(None)
            }
        }
    }

    /// The parsed events of the stream, `events` (botocore's `EventStream`), unchanged: each
    /// trace event counted, any other handed to `watch.observe(event)`, and
    /// `watch.finish(outcome)` called once when the iteration ends ("complete"), fails
    /// ("error") or is dropped part way ("cancelled").
    fn events(
        slf: Bound<'_, Self>,
        events: &Bound<'_, PyAny>,
        watch: Py<PyAny>,
    ) -> PyResult<TappedEvents> {
        Ok(TappedEvents {
            tap: slf.unbind(),
            watch,
            iter: Mutex::new(Some(events.try_iter()?.unbind())),
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Trace events the caller got.
    #[getter]
    fn traces(&self) -> usize {
        self.trace_events()
    }

    /// The bytes kept.
    #[getter]
    fn size(&self) -> usize {
        self.body.lock().bytes.len()
    }

    /// Drops what was kept once the trace has been read.
    fn release(&self) {
        self.take();
    }
}

/// The parsed events of a tapped stream as the caller iterates them (`_StreamTap.events`).
#[pyclass(frozen, module = "statemeter._core", name = "_TappedEvents")]
pub struct TappedEvents {
    tap: Py<StreamTap>,
    /// The capture's watch of the call (`observe(event)`, `finish(outcome)`).
    watch: Py<PyAny>,
    /// The events being iterated; `None` once the iteration has ended.
    iter: Mutex<Option<Py<PyIterator>>>,
    /// An event was asked for: dropping the iteration before its end cancels the call.
    started: std::sync::atomic::AtomicBool,
}

impl TappedEvents {
    /// Ends the iteration once: `watch.finish(outcome)`.
    fn end(&self, py: Python<'_>, outcome: &str) -> PyResult<()> {
        if self.iter.lock().take().is_none() {
            return Ok(());
        }
        self.watch
            .bind(py)
            .call_method1(intern!(py, "finish"), (outcome,))
            .map(drop)
    }
}

#[pymethods]
impl TappedEvents {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let this = slf.get();
        let Some(iter) = this.iter.lock().as_ref().map(|i| i.clone_ref(py)) else {
            return Ok(None);
        };
        this.started.store(true, Ordering::Relaxed);
        // The lock is never held while Python code runs (botocore's parser, here).
        match iter.into_bound(py).next() {
            Some(Ok(event)) => {
                let trace = match event.downcast_exact::<PyDict>() {
                    Ok(d) => d.contains(intern!(py, "trace"))?,
                    Err(_) => false,
                };
                if trace {
                    this.tap.get().traces.fetch_add(1, Ordering::Relaxed);
                } else if let Err(e) = this
                    .watch
                    .bind(py)
                    .call_method1(intern!(py, "observe"), (&event,))
                {
                    this.end(py, "error")?;
                    return Err(e);
                }
                Ok(Some(event))
            }
            Some(Err(e)) => {
                this.end(py, "error")?;
                Err(e)
            }
            None => {
                this.end(py, "complete")?;
                Ok(None)
            }
        }
    }
}

impl Drop for TappedEvents {
    /// Dropped part way (the caller stopped iterating): the call is cancelled, and what was
    /// seen recorded. Never raises.
    fn drop(&mut self) {
        if !self.started.load(Ordering::Relaxed) || self.iter.get_mut().is_none() {
            return;
        }
        Python::try_attach(|py| {
            if let Err(e) = self.end(py, "cancelled") {
                e.write_unraisable(py, Some(self.watch.bind(py)));
            }
        });
    }
}
