//! [`Recorded`]: an event with its classification (computed once, on first use) and its
//! position in a ledger. The recorder makes pending ones; the ledger readers make stored ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::{Classification, Event};

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
