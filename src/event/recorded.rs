//! [`Recorded`]: an event with its classification (computed once, on first use) and its
//! position in a ledger. The recorder makes pending ones; the ledger readers make stored ones.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::{Classification, Event, EventKind};

/// What classifies a pending event: the rules engine (`crate::classify::Ruleset`) implements
/// it, so the event model does not depend on the engine.
pub trait Classifier: std::fmt::Debug + Send + Sync {
    fn classify_event(&self, event: &Event) -> Classification;
}

/// An event with its classification (computed once, on first use) and its ledger position.
#[derive(Debug)]
pub struct Recorded {
    pub event: Event,
    classification: OnceLock<Classification>,
    classifier: Option<Arc<dyn Classifier>>,
    seq: AtomicU64,
}

impl Recorded {
    /// A new event waiting to be written; `classifier` classifies it on first use.
    #[inline(always)]
    pub fn pending(event: Event, classifier: Arc<dyn Classifier>) -> Self {
        Recorded {
            event,
            classification: OnceLock::new(),
            classifier: Some(classifier),
            seq: AtomicU64::new(0),
        }
    }

    /// A new pending event of `kind` (see [`Event::new`]), filled by `fill` where it stays: in
    /// its shared allocation, before that is shared. An event is large; building it on the
    /// stack and moving it into the allocation cost two copies of it, as much as filling it.
    /// One uniqueness check of the new `Arc` (an atomic compare-and-swap) serves both the
    /// empty event and `fill`; `fill`'s error is returned (the event is dropped).
    #[inline(always)]
    pub fn new_pending<E>(
        kind: EventKind,
        classifier: Arc<dyn Classifier>,
        fill: impl FnOnce(&mut Event) -> Result<(), E>,
    ) -> Result<Arc<Recorded>, E> {
        let slot = Arc::<Recorded>::new_uninit();
        // Written through the pointer without `Arc::get_mut`: its uniqueness check is an
        // atomic compare-and-swap, which waits for the allocation's memory (last written by
        // the writer thread that freed it) before anything after it runs; plain writes let the
        // processor go on while that memory comes.
        let p = Arc::as_ptr(&slot).cast_mut().cast::<Recorded>();
        // SAFETY: `slot` was allocated just above, so no other `Arc` or `Weak` of it exists,
        // and nothing reads it until `assume_init`; `Arc::as_ptr` points into the allocation
        // with the provenance of its owning pointer (the one `Arc::get_mut` writes through).
        // Every field is written once before `fill` sees the event and before `assume_init`.
        unsafe {
            ptr::addr_of_mut!((*p).event).write(Event::new(kind));
            ptr::addr_of_mut!((*p).classification).write(OnceLock::new());
            ptr::addr_of_mut!((*p).classifier).write(Some(classifier));
            ptr::addr_of_mut!((*p).seq).write(AtomicU64::new(0));
            let filled = fill(&mut (*p).event);
            let rec = slot.assume_init();
            filled.map(|()| rec)
        }
    }

    /// An event read back from a ledger, with the classification stored in its record.
    pub fn stored(event: Event, classification: Classification, seq: u64) -> Self {
        Recorded {
            event,
            classification: OnceLock::from(classification),
            classifier: None,
            seq: AtomicU64::new(seq),
        }
    }

    pub fn classification(&self) -> &Classification {
        self.classification.get_or_init(|| {
            self.classifier
                .as_ref()
                .expect("a pending event has a classifier")
                .classify_event(&self.event)
        })
    }

    /// Records the position the ledger gave the event.
    pub fn set_seq(&self, seq: u64) {
        self.seq.store(seq, Ordering::Release);
    }

    /// Position in the ledger, once written.
    pub fn seq(&self) -> Option<u64> {
        match self.seq.load(Ordering::Acquire) {
            0 => None,
            s => Some(s),
        }
    }
}

impl AsRef<Recorded> for Recorded {
    fn as_ref(&self) -> &Recorded {
        self
    }
}
