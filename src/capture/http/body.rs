//! A request body read only as far as classification needs.
//!
//! Performance note. A chat request is mostly content (messages, input, tool outputs): parsing it
//! into a `serde_json::Value` would allocate every string. [`Body::parse`] instead reads the
//! top-level object into `(key, raw JSON text)` pairs with its own scanner ([`Scan`]): every
//! value is skipped over (validated, nothing allocated; strings are passed 16 bytes at a time,
//! long ones 32 at a time where the CPU has AVX2,
//! looking for a quote, a backslash or a control character in one pass) and only the members
//! the caller wants are kept, as slices of the body. It accepts exactly the texts serde_json accepts when it reads the
//! keys as strings, the kept members as raw values and skips the rest (the tests check it
//! against serde_json). The provider modules then parse the few small values they keep
//! (`store`, `previous_response_id`, ...) from their slices and never touch the content ones.
//! [`has_key`] answers "is there a `cache_control` anywhere in here" with a substring search that
//! only accepts a real object key (see its doc), without parsing.

use std::borrow::Cow;

use serde_json::Value;

/// What [`Body::value`] keeps for a member it cannot build (nested too deeply).
pub const UNREADABLE: &str = "(unreadable: nested deeper than 128 levels)";

/// The top-level members of a JSON object body, in document order: each value is its JSON
/// text (valid JSON, no surrounding whitespace).
pub struct Body<'a> {
    fields: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> Body<'a> {
    /// A body with no members.
    pub const fn empty() -> Body<'static> {
        Body { fields: Vec::new() }
    }

    /// Reads a JSON object body. `None` for anything else (not JSON, an array, a scalar).
    pub fn parse(bytes: &'a [u8]) -> Option<Body<'a>> {
        Body::parse_some(bytes, &|_| true)
    }

    /// [`Body::parse`] keeping only the members `want` names: the others are skipped without
    /// being kept (content such as `messages` is then passed over once, never re-validated).
    pub fn parse_some(bytes: &'a [u8], want: &dyn Fn(&str) -> bool) -> Option<Body<'a>> {
        Body::parse_request(bytes, want, &|_| false).map(|(body, _)| body)
    }

    /// [`Body::parse_some`], also keeping the members `if_file_id` names when the body has an
    /// object member named `file_id` at any depth (what [`has_key`] would find), and saying
    /// whether it has. The body is read once for both.
    pub fn parse_request(
        bytes: &'a [u8],
        want: &dyn Fn(&str) -> bool,
        if_file_id: &dyn Fn(&str) -> bool,
    ) -> Option<(Body<'a>, bool)> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first != b'{' {
            return None;
        }
        let mut scan = Scan::new(bytes);
        let fields = scan.object(want, if_file_id)?;
        Some((Body { fields }, scan.file_id))
    }

    /// The first element of a JSON array body when it is an object (a JSON-RPC batch).
    pub fn parse_first_of_array(bytes: &'a [u8]) -> Option<(Body<'a>, usize)> {
        let items = Scan::new(bytes).array()?;
        let first = items.first()?;
        Some((Body::parse(first.as_bytes())?, items.len()))
    }

    /// The raw value of member `key` (the last one when a key repeats, as most parsers do).
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// Whether member `key` is present and not `null`.
    pub fn has(&self, key: &str) -> bool {
        self.raw(key).is_some_and(|v| v != "null")
    }

    /// Member `key` when it is a JSON string.
    pub fn str(&self, key: &str) -> Option<Cow<'a, str>> {
        raw_str(self.raw(key)?)
    }

    /// Member `key` when it is a JSON boolean.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.raw(key)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// Member `key` parsed as a JSON value (`None` when absent or `null`). Only for small,
    /// non-content members. A member that is present but too deeply nested for serde_json to
    /// build (its recursion limit is 128 levels; skipping content has no limit) is kept as the
    /// string [`UNREADABLE`]: the parameter was sent, so its presence still counts.
    pub fn value(&self, key: &str) -> Option<Value> {
        let raw = self.raw(key)?;
        // The usual members (flags, ids) without serde_json: the text is valid JSON already.
        match raw {
            "null" => return None,
            "true" => return Some(Value::Bool(true)),
            "false" => return Some(Value::Bool(false)),
            _ if raw.len() >= 2 && raw.starts_with('"') && !raw.contains('\\') => {
                return Some(Value::String(raw[1..raw.len() - 1].to_owned()));
            }
            _ => {}
        }
        match serde_json::from_str(raw) {
            Ok(Value::Null) => None,
            Ok(v) => Some(v),
            Err(_) => Some(Value::String(UNREADABLE.to_owned())),
        }
    }

    /// Member `key` as a nested object body.
    pub fn object(&self, key: &str) -> Option<Body<'a>> {
        Body::parse(self.raw(key)?.as_bytes())
    }

    /// The members in document order.
    pub fn members(&self) -> impl Iterator<Item = (&str, &'a str)> + '_ {
        self.fields.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// Member `key` as a list of raw elements (when it is an array).
    pub fn array(&self, key: &str) -> Option<Vec<&'a str>> {
        elements(self.raw(key)?)
    }
}

/// The raw elements of `raw` (valid JSON text) when it is an array.
pub fn elements(raw: &str) -> Option<Vec<&str>> {
    if !raw.starts_with('[') {
        return None;
    }
    Scan::new(raw.as_bytes()).array()
}

/// A raw JSON string value, unescaped (borrowed when it has no escapes).
pub fn raw_str(s: &str) -> Option<Cow<'_, str>> {
    if !s.starts_with('"') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(s).ok().map(Cow::Owned)
}

/// Whether `json` (valid JSON text) contains an object member named `key` at any depth.
///
/// A match of `"key"` counts only when its opening quote is not escaped (an even number of
/// backslashes before it) and a `:` follows after optional whitespace. In valid JSON an
/// unescaped quote always delimits a string, and a string followed by `:` is an object key, so
/// text inside a prompt (where quotes are escaped as `\"`) never matches.
pub fn has_key(json: &[u8], key: &str) -> bool {
    KeyFinder::new(key).in_json(json)
}

/// [`has_key`] for one key, built once (a `static` for the keys looked for on every request).
pub struct KeyFinder {
    finder: memchr::memmem::Finder<'static>,
    len: usize,
}

impl KeyFinder {
    pub fn new(key: &str) -> KeyFinder {
        let needle = format!("\"{key}\"");
        KeyFinder {
            len: needle.len(),
            finder: memchr::memmem::Finder::new(needle.as_bytes()).into_owned(),
        }
    }

    /// Whether `json` has an object member with this key at any depth (see [`has_key`]).
    pub fn in_json(&self, json: &[u8]) -> bool {
        let mut from = 0;
        while let Some(at) = self.finder.find(&json[from..]) {
            let start = from + at;
            let backslashes = json[..start]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            let after = &json[start + self.len..];
            let colon = after.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':');
            if backslashes % 2 == 0 && colon {
                return true;
            }
            from = start + 1;
        }
        false
    }
}

/// Calls `f` with the value of every object member named `key` (at any depth, document order)
/// whose value is a JSON string. `json` must be valid JSON text; a match counts only where
/// [`has_key`] would count it (an unescaped `"key"` followed by `:`), so text inside a prompt
/// never matches.
pub fn for_each_str_value<'j>(json: &'j str, key: &str, mut f: impl FnMut(Cow<'j, str>)) {
    let bytes = json.as_bytes();
    let mut needle = Vec::with_capacity(key.len() + 2);
    needle.push(b'"');
    needle.extend_from_slice(key.as_bytes());
    needle.push(b'"');
    let finder = memchr::memmem::Finder::new(&needle);
    let mut from = 0;
    while let Some(at) = finder.find(&bytes[from..]) {
        let start = from + at;
        from = start + 1;
        let backslashes = bytes[..start]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            continue;
        }
        let mut i = start + needle.len();
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'"') {
            continue;
        }
        // The string runs to the next quote not escaped by a backslash.
        let open = i;
        let mut j = open + 1;
        let mut escaped = false;
        while let Some(&b) = bytes.get(j) {
            match b {
                b'\\' => j += 2,
                b'"' => break,
                _ => j += 1,
            }
            escaped |= b == b'\\';
        }
        let Some(lit) = json.get(open..=j) else {
            return;
        };
        if !escaped {
            f(Cow::Borrowed(&lit[1..lit.len() - 1]));
        } else if let Ok(s) = serde_json::from_str::<String>(lit) {
            f(Cow::Owned(s));
        }
        from = j + 1;
    }
}

/// `b` as text when it is valid UTF-8. Keys and kept members are nearly always ASCII, which an
/// inlined word-at-a-time test settles without the general validator's call and set-up.
#[inline]
fn utf8(b: &[u8]) -> Option<&str> {
    if is_ascii(b) {
        // SAFETY: ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    } else {
        std::str::from_utf8(b).ok()
    }
}

/// Whether `b` is ASCII: a key-sized slice with one or two word loads, inlined; longer ones
/// with [`slice::is_ascii`].
#[inline(always)]
fn is_ascii(b: &[u8]) -> bool {
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    match b.len() {
        0..8 => b.iter().fold(0, |acc, &c| acc | c) < 0x80,
        8..=16 => (word(0) | word(b.len() - 8)) & HIGH == 0,
        _ => b.is_ascii(),
    }
}

/// A scanner over JSON text that accepts what serde_json accepts (`serde_json::from_slice`
/// with the object's keys read as strings, the kept values as raw values, the others skipped):
/// strings without raw control characters and with valid escapes, JSON numbers, literals, no
/// trailing commas, nothing after the top-level value. Like serde_json it checks UTF-8 only in
/// keys and kept values (a skipped string is not decoded), and it has no nesting limit.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    /// Whether a key read so far is `"file_id"` (written without escapes, as [`has_key`]
    /// matches it).
    file_id: bool,
}

impl<'a> Scan<'a> {
    fn new(b: &'a [u8]) -> Scan<'a> {
        Scan {
            b,
            i: 0,
            file_id: false,
        }
    }

    /// Skips JSON whitespace; the next byte, if any.
    #[inline]
    fn ws(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    /// A top-level object and nothing after it: its members `want` names, as (key, raw value),
    /// and those `if_file_id` names when a key `file_id` was seen.
    fn object(
        &mut self,
        want: &dyn Fn(&str) -> bool,
        if_file_id: &dyn Fn(&str) -> bool,
    ) -> Option<Vec<(Cow<'a, str>, &'a str)>> {
        let b = self.b;
        if self.ws()? != b'{' {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        // The members kept in case a `file_id` key turns up: their UTF-8 is checked only then
        // (serde_json checks it in kept members only).
        let mut pending = Pending::default();
        let mut c = self.ws()?;
        if c != b'}' {
            loop {
                if c != b'"' {
                    return None;
                }
                let open = self.i;
                self.i += 1;
                let escaped = self.string()?;
                let lit = &b[open..self.i];
                self.note_key(lit);
                let key = if escaped {
                    Cow::Owned(serde_json::from_slice::<String>(lit).ok()?)
                } else {
                    Cow::Borrowed(utf8(&lit[1..lit.len() - 1])?)
                };
                if self.ws()? != b':' {
                    return None;
                }
                self.i += 1;
                let keep = want(&key);
                if keep || if_file_id(&key) {
                    self.ws()?;
                    let start = self.i;
                    self.value()?;
                    let raw = if keep {
                        utf8(&b[start..self.i])?
                    } else {
                        // Filled in below if it is kept after all.
                        pending.push((out.len(), start, self.i));
                        ""
                    };
                    if out.capacity() == 0 {
                        out.reserve(8);
                    }
                    out.push((key, raw));
                } else {
                    self.value()?;
                }
                match self.ws()? {
                    b',' => {
                        self.i += 1;
                        c = self.ws()?;
                    }
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.i += 1;
        if self.ws().is_some() {
            return None;
        }
        if !pending.is_empty() {
            if self.file_id {
                for &(at, start, end) in pending.iter() {
                    out[at].1 = utf8(&b[start..end])?;
                }
            } else {
                let mut at = 0;
                out.retain(|_| {
                    at += 1;
                    !pending.iter().any(|p| p.0 == at - 1)
                });
            }
        }
        Some(out)
    }

    /// A top-level array and nothing after it: its elements' raw text.
    fn array(mut self) -> Option<Vec<&'a str>> {
        let b = self.b;
        if self.ws()? != b'[' {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        if self.ws()? != b']' {
            loop {
                self.ws()?;
                let start = self.i;
                self.value()?;
                out.push(utf8(&b[start..self.i])?);
                match self.ws()? {
                    b',' => self.i += 1,
                    b']' => break,
                    _ => return None,
                }
            }
        }
        self.i += 1;
        self.ws().is_none().then_some(out)
    }

    /// Skips one value (after optional whitespace), however deeply nested.
    fn value(&mut self) -> Option<()> {
        let mut stack = Nesting::default();
        loop {
            match self.ws()? {
                b'"' => {
                    self.i += 1;
                    self.string()?;
                }
                b'{' => {
                    self.i += 1;
                    if self.ws()? == b'}' {
                        self.i += 1;
                    } else {
                        stack.push(true);
                        self.member_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.i += 1;
                    if self.ws()? == b']' {
                        self.i += 1;
                    } else {
                        stack.push(false);
                        continue;
                    }
                }
                b'n' => self.literal(b"null")?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value is complete: close the containers it completes, or take a comma.
            loop {
                let Some(object) = stack.top() else {
                    return Some(());
                };
                match self.ws()? {
                    b',' => {
                        self.i += 1;
                        if object {
                            self.member_key()?;
                        }
                        break;
                    }
                    b']' if !object => {
                        self.i += 1;
                        stack.pop();
                    }
                    b'}' if object => {
                        self.i += 1;
                        stack.pop();
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Notes a key's literal (with its quotes).
    #[inline]
    fn note_key(&mut self, lit: &[u8]) {
        const QUOTE_FILE_ID: u64 = u64::from_le_bytes(*b"\"file_id");
        if lit.len() == 9
            && lit[8] == b'"'
            && lit[..8].try_into().map(u64::from_le_bytes).ok() == Some(QUOTE_FILE_ID)
        {
            self.file_id = true;
        }
    }

    /// `"key" :` inside a skipped object.
    #[inline(always)]
    fn member_key(&mut self) -> Option<()> {
        if self.ws()? != b'"' {
            return None;
        }
        let open = self.i;
        self.i += 1;
        self.string()?;
        if self.i - open == 9 {
            self.note_key(&self.b[open..self.i]);
        }
        if self.ws()? != b':' {
            return None;
        }
        self.i += 1;
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let b = self.b;
        let mut i = self.i;
        let digits = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i)? {
            b'0' => {
                i += 1;
                if b.get(i).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
            }
            b'1'..=b'9' => i = digits(i + 1),
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            let end = digits(i + 1);
            if end == i + 1 {
                return None;
            }
            i = end;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let end = digits(i);
            if end == i {
                return None;
            }
            i = end;
        }
        self.i = i;
        Some(())
    }

    /// The rest of a string whose opening quote was just passed; whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<bool> {
        let b = self.b;
        let mut i = self.i;
        let mut escaped = false;
        loop {
            i = next_special(b, i);
            match *b.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    i += 1;
                    match *b.get(i)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 1,
                        b'u' => {
                            if !b.get(i + 1..i + 5)?.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            i += 5;
                        }
                        _ => return None,
                    }
                }
                // A raw control character.
                _ => return None,
            }
        }
    }
}

/// The index of the first byte at or after `i` that ends the plain run of a JSON string (a
/// quote, a backslash or a control character), or `b.len()`. One pass, 16 bytes at a time, and
/// past the first 32 bytes 32 at a time when the CPU has AVX2 ([`next_special_avx2`]): a prompt
/// is mostly long strings, and this loop is most of the time a body takes to read.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn next_special(b: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut chunks = 0;
    while i + 16 <= b.len() {
        if chunks == 2 && std::arch::is_x86_feature_detected!("avx2") {
            // A long string (a prompt): 32 bytes at a time from here.
            // SAFETY: the CPU has AVX2 (checked just above).
            let (at, found) = unsafe { next_special_avx2(b, i) };
            if found {
                return at;
            }
            i = at;
            if i + 16 > b.len() {
                break;
            }
        }
        chunks += 1;
        // SAFETY: SSE2 is part of the x86_64 baseline; the 16 bytes at `i` are inside `b`
        // (checked above), and `loadu` has no alignment requirement.
        let mask = unsafe {
            let x = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            // x <= 0x1f (unsigned): min(x, 0x1f) == x.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
        };
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i < b.len() && !is_special(b[i]) {
        i += 1;
    }
    i
}

/// [`next_special`]'s loop over a long run, 32 bytes at a time: the index of the first special
/// byte at or after `i` and `true`, or `false` with the index where fewer than 32 bytes are left.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn next_special_avx2(b: &[u8], mut i: usize) -> (usize, bool) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };
    while i + 32 <= b.len() {
        // SAFETY: the caller checked AVX2; the 32 bytes at `i` are inside `b` (checked above),
        // and `loadu` has no alignment requirement.
        let mask = unsafe {
            let x = _mm256_loadu_si256(b.as_ptr().add(i).cast::<__m256i>());
            let quote = _mm256_cmpeq_epi8(x, _mm256_set1_epi8(b'"' as i8));
            let backslash = _mm256_cmpeq_epi8(x, _mm256_set1_epi8(b'\\' as i8));
            let control = _mm256_cmpeq_epi8(_mm256_min_epu8(x, _mm256_set1_epi8(0x1f)), x);
            _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(quote, backslash), control)) as u32
        };
        if mask != 0 {
            return (i + mask.trailing_zeros() as usize, true);
        }
        i += 32;
    }
    (i, false)
}

/// [`next_special`] elsewhere: short runs a word at a time, long ones with `memchr` and a
/// vectorised control-character check.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn next_special(b: &[u8], mut i: usize) -> usize {
    for _ in 0..4 {
        let Some(word) = b.get(i..i + 8) else { break };
        let mask = special_bytes(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        if mask != 0 {
            return i + mask.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    let rest = &b[i.min(b.len())..];
    let n = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
    if has_control(&rest[..n]) {
        return i + rest[..n].iter().position(|&c| c < 0x20).unwrap_or(n);
    }
    i + n
}

/// A byte that ends the plain run of a JSON string: a quote, a backslash or a control character.
#[inline]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

#[cfg(not(target_arch = "x86_64"))]
/// The high bit of each byte of `w` that is a quote, a backslash or a control character; and
/// maybe of bytes above the first such (a borrow), never below: the lowest bit set is exact.
#[inline]
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let bs = w ^ (ONES * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(ONES) & !bs;
    (control | quote | backslash) & HIGH
}

#[cfg(not(target_arch = "x86_64"))]
/// Whether `s` has a byte below 0x20 (a minimum over 64-byte blocks, which compiles to vector
/// instructions).
fn has_control(s: &[u8]) -> bool {
    let mut blocks = s.chunks_exact(64);
    for block in &mut blocks {
        if block.iter().fold(u8::MAX, |m, &c| m.min(c)) < 0x20 {
            return true;
        }
    }
    blocks.remainder().iter().any(|&c| c < 0x20)
}

/// Where the members kept only if a `file_id` key turns up are: (index in the members, start,
/// end). A few inline, more in a vector (allocated only then).
#[derive(Default)]
struct Pending {
    n: usize,
    first: [(usize, usize, usize); 4],
    more: Vec<(usize, usize, usize)>,
}

impl Pending {
    fn push(&mut self, p: (usize, usize, usize)) {
        if self.n < self.first.len() {
            self.first[self.n] = p;
        } else {
            self.more.push(p);
        }
        self.n += 1;
    }

    fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn iter(&self) -> impl Iterator<Item = &(usize, usize, usize)> {
        self.first[..self.n.min(self.first.len())]
            .iter()
            .chain(&self.more)
    }
}

/// The open containers of a skipped value (`true` for an object), 64 levels in a word and any
/// deeper ones in a vector (allocated only then).
#[derive(Default)]
struct Nesting {
    depth: usize,
    bits: u64,
    deeper: Vec<bool>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            self.bits = (self.bits & !(1 << self.depth)) | (u64::from(object) << self.depth);
        } else {
            self.deeper.push(object);
        }
        self.depth += 1;
    }

    fn top(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d <= 64 => Some(self.bits >> (d - 1) & 1 == 1),
            _ => self.deeper.last().copied(),
        }
    }

    fn pop(&mut self) {
        self.depth -= 1;
        if self.depth >= 64 {
            self.deeper.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// serde_json's reading of a body (keys as strings, wanted members as raw values, the
    /// others skipped), which [`Scan`] must match exactly.
    mod reference {
        use std::borrow::Cow;
        use std::fmt;

        use serde::de::{self, Deserializer, MapAccess, Visitor};
        use serde::Deserialize;
        use serde_json::value::RawValue;

        struct Key<'a>(Cow<'a, str>);

        impl<'de> Deserialize<'de> for Key<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Key<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a string key")
                    }
                    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                        Ok(Key(Cow::Borrowed(v)))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                        Ok(Key(Cow::Owned(v.to_owned())))
                    }
                }
                d.deserialize_str(V)
            }
        }

        struct Fields<'w>(&'w dyn Fn(&str) -> bool);

        impl<'de> Visitor<'de> for Fields<'_> {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    if (self.0)(&k) {
                        let v: &'de RawValue = map.next_value()?;
                        out.push((k.into_owned(), v.get().to_owned()));
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
        }

        pub fn fields(bytes: &[u8], want: &dyn Fn(&str) -> bool) -> Option<Vec<(String, String)>> {
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
            if *first != b'{' {
                return None;
            }
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let fields = de.deserialize_map(Fields(want)).ok()?;
            de.end().ok()?;
            Some(fields)
        }

        pub fn array(bytes: &[u8]) -> Option<Vec<String>> {
            let items: Vec<&RawValue> = serde_json::from_slice(bytes).ok()?;
            Some(items.iter().map(|r| r.get().to_owned()).collect())
        }
    }

    fn ours(bytes: &[u8], want: &dyn Fn(&str) -> bool) -> Option<Vec<(String, String)>> {
        let body = Body::parse_some(bytes, want)?;
        Some(
            body.members()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    fn want_short(k: &str) -> bool {
        k.len() % 2 == 0
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            "\"([a-z /\u{e9}\u{1F600}]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4}|\\\\ud83d\\\\ude00){0,40}\"",
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((prop_oneof![3 => "\"([a-z_\u{e9}]|\\\\n){0,8}\"", 1 => Just("\"file_id\"".to_owned())], inner), 0..5).prop_map(
                    |v| {
                        let members: Vec<String> =
                            v.into_iter().map(|(k, v)| format!("{k} : {v}")).collect();
                        format!("{{ {} }}", members.join(",\n"))
                    }
                ),
            ]
        })
    }

    /// A JSON object text, then a few byte edits that mostly make it invalid.
    fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
        let key = prop_oneof![
            4 => "\"([a-z_]|\\\\u00e9){0,8}\"",
            1 => Just("\"file_id\"".to_owned()),
            1 => Just("\"messages\"".to_owned()),
        ];
        let object = prop::collection::vec((key, json_text()), 0..6).prop_map(|v| {
            let members: Vec<String> = v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!(" {{{}}}\n", members.join(","))
        });
        let edit = (
            any::<prop::sample::Index>(),
            prop::sample::select(&b"{}[]\",:\\ \x00\x0c\x1f\xc3\xff01-.eEntfu"[..]),
            0..3u8,
        );
        (object, prop::collection::vec(edit, 0..3)).prop_map(|(text, edits)| {
            let mut b = text.into_bytes();
            for (at, byte, op) in edits {
                let i = at.index(b.len() + 1);
                match op {
                    0 => b.insert(i, byte),
                    1 if i < b.len() => {
                        b.remove(i);
                    }
                    _ if i < b.len() => b[i] = byte,
                    _ => {}
                }
            }
            b
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        #[test]
        fn scan_accepts_and_keeps_what_serde_json_does(b in body_bytes()) {
            prop_assert_eq!(ours(&b, &want_short), reference::fields(&b, &want_short));
            prop_assert_eq!(ours(&b, &|_| true), reference::fields(&b, &|_| true));
            // Members kept only with a `file_id` key: as if wanted when has_key finds one.
            let if_file_id = |k: &str| k.len() % 3 == 0;
            let file_id = has_key(&b, "file_id");
            let theirs = reference::fields(&b, &|k| want_short(k) || (file_id && if_file_id(k)));
            let ours_request = Body::parse_request(&b, &want_short, &if_file_id).map(|(body, f)| {
                let members: Vec<(String, String)> = body.members().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                (members, f)
            });
            prop_assert_eq!(ours_request.as_ref().map(|(m, _)| m), theirs.as_ref());
            if let Some((_, f)) = ours_request {
                prop_assert_eq!(f, file_id);
            }
            let mut arr = b.clone();
            if let Some(open) = arr.iter().position(|&c| c == b'{') {
                arr[open] = b'[';
            }
            let ours_arr = Scan::new(&arr).array().map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            prop_assert_eq!(ours_arr, reference::array(&arr));
        }

        #[test]
        fn scan_matches_serde_json_on_any_bytes(b in prop::collection::vec(prop::sample::select(&b"{}[]\",: \\a0-e.u\x01\xe9"[..]), 0..40)) {
            prop_assert_eq!(ours(&b, &want_short), reference::fields(&b, &want_short));
        }
    }

    #[test]
    fn members_kept_for_file_ids() {
        let messages = |k: &str| k == "messages";
        let read = |b: &[u8]| {
            Body::parse_request(b, &|k| k == "model", &messages).map(|(body, f)| {
                (
                    body.members()
                        .map(|(k, _)| k.to_owned())
                        .collect::<Vec<_>>(),
                    f,
                )
            })
        };
        let with =
            br#"{"messages":[{"content":[{"type":"input_file","file_id":"f"}]}],"model":"m"}"#;
        assert_eq!(
            read(with),
            Some((vec!["messages".into(), "model".into()], true))
        );
        assert_eq!(
            Body::parse_request(with, &|_| false, &messages)
                .unwrap()
                .0
                .raw("messages"),
            Some(r#"[{"content":[{"type":"input_file","file_id":"f"}]}]"#)
        );
        let without =
            br#"{"messages":[{"content":"say \"file_id\": 1"}],"model":"m","k":"file_id"}"#;
        assert_eq!(read(without), Some((vec!["model".into()], false)));
        // Invalid UTF-8 in a member: refused only when the member is kept, as serde_json does.
        assert_eq!(
            read(b"{\"messages\":\"\xff\",\"model\":\"m\"}"),
            Some((vec!["model".into()], false))
        );
        assert_eq!(read(b"{\"messages\":\"\xff\",\"x\":{\"file_id\":1}}"), None);
        // An escaped key is not the key has_key finds.
        assert_eq!(read(br#"{"file\u005fid":1}"#), Some((vec![], false)));
        assert!(!has_key(br#"{"file\u005fid":1}"#, "file_id"));
    }

    #[test]
    fn scan_edge_cases_match_serde_json() {
        let long = format!("{{\"m\":\"{}\",\"k\":1}}", "x".repeat(100));
        let long_ctrl = format!("{{\"m\":\"{}\u{1}\",\"k\":1}}", "x".repeat(100));
        let deep = format!(
            "{{\"m\":{}1{},\"model\":\"a\"}}",
            "[{\"a\":".repeat(300),
            "}]".repeat(300)
        );
        let cases: Vec<&[u8]> = vec![
            b"{}",
            b" { } ",
            b"{,}",
            b"{\"a\":1,}",
            b"{\"a\":[1,]}",
            b"{\"a\":{\"b\":1,}}",
            b"{\"a\":01}",
            b"{\"a\":-}",
            b"{\"a\":1.}",
            b"{\"a\":1e}",
            b"{\"a\":1e+}",
            b"{\"a\":-0.5E-3}",
            b"{\"a\":nul}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":\"\\u12G4\"}",
            b"{\"ab\":\"\xff\"}",
            b"{\"a\":\"\xff\"}",
            b"{\"\xff\":1}",
            b"{\"a\\ud800\":1}",
            b"{\"ab\":\"\\ud800\"}",
            b"{\"a\\u00e9b\":1}",
            b"{\"a\":1}x",
            b"\x0c{}",
            b"{\"a\" 1}",
            b"{\"a\":1 \"b\":2}",
            b"{\"a\":[1 2]}",
            b"{\"a\":{1:2}}",
            b"{\"a\":\"\t\"}",
            long.as_bytes(),
            long_ctrl.as_bytes(),
            deep.as_bytes(),
        ];
        for c in cases {
            assert_eq!(
                ours(c, &want_short),
                reference::fields(c, &want_short),
                "{:?}",
                String::from_utf8_lossy(c)
            );
            assert_eq!(
                ours(c, &|_| true),
                reference::fields(c, &|_| true),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn string_ends_found_at_every_offset_and_length() {
        // Long runs take the 32-byte path (where the CPU has it), short ones and tails the
        // 16-byte and byte paths: each must stop at the first quote, backslash or control
        // character, wherever it sits.
        for len in 0..160 {
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                for at in (0..=len).step_by(7).chain([len]) {
                    let mut b = vec![b'a'; len];
                    b.extend_from_slice(&[0xc3, 0xa9, b'~', 0x7f]);
                    if at < b.len() {
                        b[at] = special;
                    }
                    let want = b.iter().position(|&c| is_special(c)).unwrap_or(b.len());
                    assert_eq!(
                        next_special(&b, 0),
                        want,
                        "len {len}, special {special} at {at}"
                    );
                    let from_1 = b[1..]
                        .iter()
                        .position(|&c| is_special(c))
                        .map_or(b.len(), |p| p + 1);
                    assert_eq!(next_special(&b, 1), from_1);
                }
            }
        }
        for text in ["", "é", "abcdefgh", "abcdefghijklmnop", "abcdefghijklmnopq"] {
            assert!(is_ascii(text.as_bytes()) == text.is_ascii(), "{text}");
        }
        for n in 0..40 {
            let mut b = vec![b'k'; n];
            assert!(is_ascii(&b));
            for i in 0..n {
                b[i] = 0xc3;
                assert!(!is_ascii(&b), "{n} {i}");
                b[i] = b'k';
            }
        }
    }

    #[test]
    fn reads_top_level_members_without_parsing_content() {
        let text = br#" {"model":"gpt-5","store":false,"messages":[{"role":"user","content":"hi \"there\""}],
                        "previous_response_id":"resp_1","n":null,"esc":"a\u00e9b","dup":1,"dup":2} "#;
        let b = Body::parse(text).unwrap();
        assert_eq!(b.str("model").as_deref(), Some("gpt-5"));
        assert_eq!(b.bool("store"), Some(false));
        assert!(b.has("messages"));
        assert!(!b.has("n"));
        assert!(!b.has("missing"));
        assert_eq!(b.str("esc").as_deref(), Some("aéb"));
        assert_eq!(b.value("dup"), Some(serde_json::json!(2)));
        assert_eq!(b.array("messages").unwrap().len(), 1);
        assert!(b.str("store").is_none());
        // Present but nested past serde_json's recursion limit: its presence is kept.
        let deep = format!(
            r#"{{"previous_response_id":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let b = Body::parse(deep.as_bytes()).unwrap();
        assert_eq!(
            b.value("previous_response_id"),
            Some(Value::String(UNREADABLE.into()))
        );
    }

    #[test]
    fn non_objects_and_invalid_json_are_none() {
        for bad in [&b""[..], b"[1]", b"\"s\"", b"{\"a\":", b"{} x", b"not json"] {
            assert!(
                Body::parse(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let (first, n) = Body::parse_first_of_array(br#"[{"method":"a"},{"method":"b"}]"#).unwrap();
        assert_eq!((first.str("method").as_deref(), n), (Some("a"), 2));
    }

    #[test]
    fn has_key_only_accepts_real_keys() {
        let j = br#"{"messages":[{"content":[{"type":"text","text":"x","cache_control" : {"type":"ephemeral"}}]}]}"#;
        assert!(has_key(j, "cache_control"));
        // In a prompt the quotes are escaped, and a value is not a key.
        let prompt =
            br#"{"messages":[{"content":"say \"cache_control\": now"}],"k":"cache_control"}"#;
        assert!(!has_key(prompt, "cache_control"));
        // An escaped backslash before a real key does not hide it.
        let tricky = br#"{"a":"x\\","cache_control":1}"#;
        assert!(has_key(tricky, "cache_control"));
        assert!(!has_key(b"{}", "cache_control"));
    }

    #[test]
    fn str_values_of_a_key() {
        let j = r#"{"a":{"fileUri" : "u1"},"b":[{"fileUri":"u\"2"},{"fileUri":3}],"t":"say \"fileUri\": \"x\"","fileUri":"é"}"#;
        let mut got = Vec::new();
        for_each_str_value(j, "fileUri", |v| got.push(v.into_owned()));
        assert_eq!(got, ["u1", "u\"2", "é"]);
        let mut none = Vec::new();
        for_each_str_value(r#"{"fileUri":"#, "fileUri", |v| none.push(v.into_owned()));
        for_each_str_value(r#"{"fileUri":"open"#, "fileUri", |v| {
            none.push(v.into_owned())
        });
        assert!(none.is_empty());
    }
}
