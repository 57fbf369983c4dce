//! The parts of a request URL the classifier reads: scheme, host, port, path segments and a few
//! query parameters. Credentials in the URL (`user:pass@`) and the query string are never copied
//! into an event: the `endpoint` is `scheme://host[:port]/path` only (Gemini puts its API key in
//! `?key=`).

use std::borrow::Cow;

use crate::error::{Error, Result};

/// A URL path's segments: a handful, held inline.
pub type Segments<'a> = smallvec::SmallVec<[&'a str; 8]>;

/// A parsed absolute URL, borrowing from the input.
#[derive(Debug, Clone)]
pub struct Url<'a> {
    pub scheme: &'a str,
    /// Lower-cased host without port or brackets (borrowed when the URL already has it so).
    pub host: Cow<'a, str>,
    /// The `host[:port]` part as written (minus credentials), for the endpoint.
    pub authority: &'a str,
    /// The path as written (percent-encoded), starting with `/` (or empty).
    pub path: &'a str,
    pub query: Option<&'a str>,
}

impl<'a> Url<'a> {
    /// Parses `scheme://[userinfo@]host[:port][/path][?query][#fragment]`. The delimiters are
    /// found with `memchr` (one pass each over a short string, no pattern searcher set up per
    /// call): this runs on every captured request.
    pub fn parse(url: &'a str) -> Result<Url<'a>> {
        let url = trim(url);
        let b = url.as_bytes();
        let sep = memchr::memchr_iter(b':', b)
            .find(|&i| b.get(i + 1..i + 3) == Some(b"//"))
            .ok_or_else(|| Error::validation("url", format!("{url:?} is not an absolute URL")))?;
        let (scheme, rest) = (&url[..sep], &url[sep + 3..]);
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        {
            return Err(Error::validation("url", format!("bad scheme in {url:?}")));
        }
        let rest = memchr::memchr(b'#', rest.as_bytes()).map_or(rest, |i| &rest[..i]);
        let auth_end = memchr::memchr2(b'/', b'?', rest.as_bytes()).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let authority =
            memchr::memrchr(b'@', authority.as_bytes()).map_or(authority, |i| &authority[i + 1..]);
        if authority.is_empty() {
            return Err(Error::validation("url", format!("{url:?} has no host")));
        }
        let after = &rest[auth_end..];
        let (path, query) = match memchr::memchr(b'?', after.as_bytes()) {
            Some(i) => (&after[..i], Some(&after[i + 1..])),
            None => (after, None),
        };
        Ok(Url {
            scheme,
            host: host_of(authority),
            authority,
            path,
            query,
        })
    }

    /// `scheme://host[:port]/path`: no credentials, no query, no fragment.
    pub fn endpoint(&self) -> String {
        let mut s =
            String::with_capacity(self.scheme.len() + self.authority.len() + self.path.len() + 3);
        s.push_str(self.scheme);
        s.push_str("://");
        s.push_str(&self.authority.to_ascii_lowercase());
        s.push_str(self.path);
        s
    }

    /// Whether `s` is this URL's [`Url::endpoint`] (compared without building it).
    pub fn is_endpoint(&self, s: &str) -> bool {
        let Some(rest) = s
            .strip_prefix(self.scheme)
            .and_then(|r| r.strip_prefix("://"))
        else {
            return false;
        };
        let Some((authority, path)) = rest.split_at_checked(self.authority.len()) else {
            return false;
        };
        path == self.path
            && authority
                .bytes()
                .zip(self.authority.bytes())
                .all(|(a, b)| a == b.to_ascii_lowercase())
    }

    /// The non-empty path segments, still percent-encoded.
    pub fn segments(&self) -> Segments<'a> {
        let path = self.path;
        let mut out = Segments::new();
        let mut start = 0;
        for end in memchr::memchr_iter(b'/', path.as_bytes()).chain([path.len()]) {
            if end > start {
                out.push(&path[start..end]);
            }
            start = end + 1;
        }
        out
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| decode(v))
        })
    }
}

/// The request target of an absolute URL's text: its path and query as written (`/v1/x?y=z`),
/// without the scheme, the authority and the fragment (empty when it has neither path nor
/// query).
pub fn target(url: &str) -> &str {
    let b = url.as_bytes();
    let rest = memchr::memchr_iter(b':', b)
        .find(|&i| b.get(i + 1..i + 3) == Some(b"//"))
        .map_or(url, |i| &url[i + 3..]);
    let rest = memchr::memchr(b'#', rest.as_bytes()).map_or(rest, |i| &rest[..i]);
    memchr::memchr2(b'/', b'?', rest.as_bytes()).map_or("", |i| &rest[i..])
}

/// `s` without leading and trailing whitespace ([`str::trim`], which is only called when an end
/// is not plain ASCII).
fn trim(s: &str) -> &str {
    let plain = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii() && !char::from(b).is_whitespace());
    if plain(s.as_bytes().first()) && plain(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// The normalised host of an authority: borrowed in the common case (lower case, no port).
fn host_of(authority: &str) -> Cow<'_, str> {
    let plain = authority
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !authority.ends_with('.');
    if plain {
        Cow::Borrowed(authority)
    } else {
        Cow::Owned(crate::classify::venue::normalise_host(authority))
    }
}

/// Percent-decodes `s` (and `+` is kept as is: paths and ids do not use form encoding).
/// Invalid escapes and invalid UTF-8 are kept verbatim / replaced rather than failing.
pub fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_the_path_and_query_as_written() {
        let cases = [
            (
                "https://api.anthropic.com/v1/sessions/s1/events",
                "/v1/sessions/s1/events",
            ),
            ("https://sessions.example.com/v1/chat", "/v1/chat"),
            (
                "https://u:p@h:8443/v1/x?thread=%2Fthreads#/threads",
                "/v1/x?thread=%2Fthreads",
            ),
            ("http://h?q=/sessions", "?q=/sessions"),
            ("https://h#/sessions", ""),
            ("https://h", ""),
        ];
        for (url, want) in cases {
            assert_eq!(target(url), want, "{url}");
        }
    }

    #[test]
    fn parses_parts_and_drops_credentials_and_query() {
        let u = Url::parse("https://user:pw@API.OpenAI.com:443/v1/chat/completions?x=1#f").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "api.openai.com");
        assert_eq!(u.path, "/v1/chat/completions");
        assert_eq!(u.query, Some("x=1"));
        assert_eq!(
            u.endpoint(),
            "https://api.openai.com:443/v1/chat/completions"
        );
        assert_eq!(u.segments().as_slice(), ["v1", "chat", "completions"]);
        let g = Url::parse("https://generativelanguage.googleapis.com/v1beta/models/g:generateContent?key=SECRET&alt=sse").unwrap();
        assert!(!g.endpoint().contains("SECRET"));
        assert_eq!(g.query_param("alt").as_deref(), Some("sse"));
        assert_eq!(g.query_param("nope"), None);
        let bare = Url::parse("http://[::1]:8080").unwrap();
        assert_eq!(bare.host, "::1");
        assert_eq!(bare.path, "");
        assert!(bare.segments().is_empty());
    }

    #[test]
    fn rejects_relative_and_hostless() {
        for bad in [
            "/v1/responses",
            "api.openai.com/v1",
            "https:///x",
            "ht tp://x/",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(Error::Validation { field, .. }) if field == "url"),
                "{bad}"
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            decode("arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A1%3Aruntime%2Fr-1"),
            "arn:aws:bedrock-agentcore:us-east-1:1:runtime/r-1"
        );
        assert_eq!(decode("plain"), "plain");
        assert_eq!(decode("bad%zzescape%4"), "bad%zzescape%4");
        assert_eq!(decode("%E2%82%AC"), "€");
        assert_eq!(decode("%FF"), "\u{fffd}");
    }
}
