//! [`EventId`]: the text of an event's id, kept inside the event when it is at most 36 bytes
//! long (a UUID's hyphenated text, what every minted id is) and in its own allocation only
//! when longer (an id a caller chose: any non-empty text of at most 128 bytes).
//!
//! Every recorded event gets an id; kept as a `String` it was one allocation per event on the
//! recording thread, freed on the writer thread, which costs the recording thread more than
//! its size suggests (the allocator's shared bins, memory last written by the other core).
//! The small-string crates in common use keep at most 23 or 24 bytes inline, too few for a
//! UUID, hence this type: a byte array and its length, or a boxed `str`, behind `&str`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use uuid::Uuid;

/// The longest id kept inline: the length of a UUID's hyphenated text.
pub const INLINE_ID_BYTES: usize = uuid::fmt::Hyphenated::LENGTH;

/// An event's id: a string, compared, ordered and hashed as its text.
#[derive(Clone)]
pub struct EventId(Repr);

#[derive(Clone)]
enum Repr {
    /// The text is `bytes[..len]`, copied whole from a `str` (so valid UTF-8).
    Inline {
        len: u8,
        bytes: [u8; INLINE_ID_BYTES],
    },
    /// Longer than [`INLINE_ID_BYTES`].
    Heap(Box<str>),
}

impl EventId {
    /// The empty id (an event not yet given one).
    pub const fn new() -> Self {
        EventId(Repr::Inline {
            len: 0,
            bytes: [0; INLINE_ID_BYTES],
        })
    }

    /// The lowercase hyphenated text of `uuid` (RFC 9562), written in place.
    #[inline]
    pub fn from_uuid(uuid: Uuid) -> Self {
        let mut bytes = [0; INLINE_ID_BYTES];
        uuid.hyphenated().encode_lower(&mut bytes);
        EventId(Repr::Inline {
            len: INLINE_ID_BYTES as u8,
            bytes,
        })
    }

    /// Sets the id to the lowercase hyphenated text of `uuid`, written where the id is (an id
    /// returned and then moved into an event would be written twice, and its bytes read back
    /// wider than they were stored, which the processor cannot forward from its store buffer).
    #[inline]
    pub fn set_uuid(&mut self, uuid: Uuid) {
        if let Repr::Heap(_) = self.0 {
            *self = EventId::new();
        }
        if let Repr::Inline { len, bytes } = &mut self.0 {
            uuid.hyphenated().encode_lower(bytes);
            *len = INLINE_ID_BYTES as u8;
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let text = &bytes[..usize::from(*len)];
                // SAFETY: `bytes[..len]` was copied from a `str` of exactly `len` bytes (see
                // `From<&str>` and `from_uuid`, whose hex digits and hyphens are ASCII) and is
                // never written otherwise.
                unsafe { std::str::from_utf8_unchecked(text) }
            }
            Repr::Heap(s) => s,
        }
    }

    /// Whether the text is kept in its own allocation (longer than [`INLINE_ID_BYTES`]).
    pub fn is_allocated(&self) -> bool {
        matches!(self.0, Repr::Heap(_))
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::new()
    }
}

impl From<&str> for EventId {
    #[inline]
    fn from(s: &str) -> Self {
        if s.len() <= INLINE_ID_BYTES {
            let mut bytes = [0; INLINE_ID_BYTES];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            EventId(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            EventId(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for EventId {
    fn from(s: String) -> Self {
        if s.len() <= INLINE_ID_BYTES {
            EventId::from(s.as_str())
        } else {
            EventId(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl From<&String> for EventId {
    fn from(s: &String) -> Self {
        EventId::from(s.as_str())
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        match id.0 {
            Repr::Heap(s) => s.into_string(),
            Repr::Inline { .. } => id.as_str().to_owned(),
        }
    }
}

impl From<&EventId> for String {
    fn from(id: &EventId) -> Self {
        id.as_str().to_owned()
    }
}

impl From<EventId> for Arc<str> {
    fn from(id: EventId) -> Self {
        Arc::from(id.as_str())
    }
}

impl Deref for EventId {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for EventId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for EventId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for EventId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EventId {}

impl PartialEq<str> for EventId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for EventId {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<EventId> for str {
    fn eq(&self, other: &EventId) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<EventId> for &str {
    fn eq(&self, other: &EventId) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<EventId> for String {
    fn eq(&self, other: &EventId) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for EventId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EventId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Hashed as its text, as `Borrow<str>` requires.
impl Hash for EventId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

/// As the text's `Debug` (a quoted string).
impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Classification, Classifier, Event, EventKind, Recorded};
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::collections::hash_map::DefaultHasher;
    use std::collections::HashSet;

    thread_local! {
        /// Allocations made by this thread (the lib's test binary counts them all).
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    /// The system allocator, counting each thread's allocations.
    struct Counting;

    fn count() {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }

    // SAFETY: every call is passed on to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, p: *mut u8, layout: Layout, size: usize) -> *mut u8 {
            count();
            unsafe { System.realloc(p, layout, size) }
        }
        unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
            unsafe { System.dealloc(p, layout) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// The allocations `f` makes on this thread.
    fn allocations_in(f: impl FnOnce()) -> u64 {
        let before = ALLOCATIONS.with(Cell::get);
        f();
        ALLOCATIONS.with(Cell::get) - before
    }

    #[derive(Debug)]
    struct Nothing;

    impl Classifier for Nothing {
        fn classify_event(&self, _: &Event) -> Classification {
            unreachable!("not classified here")
        }
    }

    /// The recording hot path's event: one allocation, its own; the id minted for it, or one
    /// given of up to 36 bytes, is kept inside it.
    #[test]
    fn a_pending_event_is_one_allocation_with_its_id_inside() {
        let classifier: Arc<dyn Classifier> = Arc::new(Nothing);
        let (provider, model, api): (Arc<str>, Arc<str>, Arc<str>) =
            ("openai".into(), "gpt-5".into(), "chat.completions".into());
        let build = |id: Option<&str>| {
            Recorded::new_pending(EventKind::ModelCall, classifier.clone(), |e| {
                if let Some(id) = id {
                    e.id = id.into();
                }
                e.provider = Some(provider.clone());
                e.model = Some(model.clone());
                e.api = Some(api.clone());
                e.input_tokens = Some(12);
                e.complete()
            })
            .unwrap()
        };
        let first = build(None); // the minting state and shared defaults, made once
        let mut recs = Vec::with_capacity(4);
        assert_eq!(allocations_in(|| recs.push(build(None))), 1);
        assert_eq!(allocations_in(|| recs.push(build(Some("evt-1")))), 1);
        let long = "l".repeat(INLINE_ID_BYTES + 1);
        assert_eq!(allocations_in(|| recs.push(build(Some(&long)))), 2);
        assert_eq!(recs[0].event.id.len(), INLINE_ID_BYTES);
        assert!(recs[0].event.id > first.event.id);
        assert_eq!(recs[1].event.id, "evt-1");
        assert_eq!(recs[2].event.id, long);
    }

    fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn texts_up_to_a_uuid_are_inline_and_longer_ones_allocated() {
        for text in [
            "",
            "e1",
            "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f10",
            "émoji 🙂 and more",
        ] {
            let id = EventId::from(text);
            assert_eq!(id.as_str(), text);
            assert!(!id.is_allocated(), "{text:?}");
            assert_eq!(EventId::from(text.to_owned()).as_str(), text);
        }
        let exactly = "x".repeat(INLINE_ID_BYTES);
        assert!(!EventId::from(exactly.as_str()).is_allocated());
        for text in ["x".repeat(INLINE_ID_BYTES + 1), "é".repeat(64)] {
            let id = EventId::from(text.as_str());
            assert!(id.is_allocated());
            assert_eq!(id, text);
            assert_eq!(String::from(EventId::from(text.clone())), text);
        }
    }

    #[test]
    fn a_uuid_is_written_as_its_lowercase_hyphenated_text() {
        let u = Uuid::from_u128(0x0199_a8c0_7c2e_7d3b_9f1a_3c5e_2b8d_4f10);
        let id = EventId::from_uuid(u);
        assert_eq!(id, "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f10");
        assert_eq!(id.as_str(), u.hyphenated().to_string());
        assert!(!id.is_allocated());
        for before in ["", "short", &"long".repeat(20)] {
            let mut set = EventId::from(before);
            set.set_uuid(u);
            assert_eq!(set, id);
            assert!(!set.is_allocated());
        }
    }

    #[test]
    fn compared_ordered_hashed_and_shown_as_text() {
        let (a, b) = (EventId::from("a"), EventId::from("b".repeat(40)));
        let long_a = EventId::from(format!("a{}", "z".repeat(40)));
        assert!(a < long_a && long_a < b);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
        assert_eq!(hash_of(&a), hash_of("a"));
        assert_eq!(hash_of(&b), hash_of(b.as_str()));
        let set: HashSet<EventId> = [a.clone(), b.clone()].into_iter().collect();
        assert!(set.contains("a"));
        assert_eq!(format!("{a} {a:?}"), "a \"a\"");
        assert_eq!(EventId::new(), EventId::default());
        assert!(EventId::new().is_empty());
        assert_eq!(Arc::<str>::from(a.clone()), Arc::from("a"));
        let owned = String::from("a");
        assert!("a" == a);
        assert_eq!(owned, a);
        assert_eq!(a, owned);
    }
}
