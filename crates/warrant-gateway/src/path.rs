//! The canonical form of a request path, which is what routes match and what the upstream
//! receives.
//!
//! Upstreams decode, normalise and sometimes case-fold paths before they route (Go routes on the
//! decoded path; Tomcat and Spring drop `;` parameters and resolve `..`). Were the gateway to
//! match the path as sent and forward it unchanged, `/api/%61dmin`, `/api/admin;x` or
//! `/api/x/../admin` would match a route for `/api` and be served by the upstream as
//! `/api/admin`. So a path is first brought to one spelling, or refused:
//!
//! - refused: a path not starting with `/`; a `.` or `..` segment (also spelt `%2e`); an encoded
//!   `/` or `\` (`%2F`, `%5C`); a raw `\`; a `;`; an empty segment (`//`, except the final one of
//!   a path ending in `/`); a control character, raw or encoded (`%00`, `%0A`, …); a `%` not
//!   followed by two hex digits;
//! - rewritten: percent-encoded unreserved characters (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`)
//!   are decoded, and the hex digits of every other escape upper-cased (RFC 3986 §6.2.2.1).
//!
//! A path that is already canonical is returned as it is, without allocating.

use std::borrow::Cow;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// Not origin-form: does not start with `/`.
    NotOriginForm,
    /// A `.` or `..` segment.
    DotSegment,
    /// An encoded `/` or `\`.
    EncodedSeparator,
    /// A raw `\`.
    Backslash,
    /// A `;`.
    Semicolon,
    /// An empty segment (`//`).
    EmptySegment,
    /// A control character (including NUL), raw or encoded.
    Control,
    /// A `%` not followed by two hex digits.
    InvalidEscape,
}

/// The canonical form of `path` (see the module documentation), or why it is refused.
pub(crate) fn canonical_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    // The rewritten path, started at the first change; `copied` is how much of `path` is in it.
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut segment_start = 1;
    // The current segment's `.`s (decoded), while it has nothing else.
    let mut dots = 0usize;
    let mut only_dots = true;
    let mut i = 1;
    loop {
        if i == b.len() || b[i] == b'/' {
            if only_dots && (dots == 1 || dots == 2) {
                return Err(PathError::DotSegment);
            }
            if i == segment_start && i < b.len() {
                return Err(PathError::EmptySegment);
            }
            if i == b.len() {
                break;
            }
            i += 1;
            segment_start = i;
            dots = 0;
            only_dots = true;
            continue;
        }
        match b[i] {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::InvalidEscape);
                };
                let decoded = hi << 4 | lo;
                let replacement: Option<[u8; 3]> = if is_unreserved(decoded) {
                    if decoded == b'.' {
                        dots += 1;
                    } else {
                        only_dots = false;
                    }
                    Some([decoded, 0, 0])
                } else if decoded == b'/' || decoded == b'\\' {
                    return Err(PathError::EncodedSeparator);
                } else if decoded < 0x20 || decoded == 0x7f {
                    return Err(PathError::Control);
                } else {
                    only_dots = false;
                    let upper = [
                        b'%',
                        b[i + 1].to_ascii_uppercase(),
                        b[i + 2].to_ascii_uppercase(),
                    ];
                    (upper[1] != b[i + 1] || upper[2] != b[i + 2]).then_some(upper)
                };
                if let Some(r) = replacement {
                    let s = out.get_or_insert_with(|| String::with_capacity(path.len()));
                    s.push_str(&path[copied..i]);
                    // Only ASCII is ever written here (`r[0]` is unreserved or `%`).
                    let len = if r[0] == b'%' { 3 } else { 1 };
                    for &c in &r[..len] {
                        s.push(char::from(c));
                    }
                    copied = i + 3;
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            c if c < 0x20 || c == 0x7f => return Err(PathError::Control),
            b'.' => {
                dots += 1;
                i += 1;
            }
            _ => {
                only_dots = false;
                i += 1;
            }
        }
    }
    Ok(match out {
        None => Cow::Borrowed(path),
        Some(mut s) => {
            s.push_str(&path[copied..]);
            Cow::Owned(s)
        }
    })
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3.
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> String {
        match canonical_path(p) {
            Ok(c) => c.into_owned(),
            Err(e) => panic!("{p}: {e:?}"),
        }
    }

    fn err(p: &str) -> PathError {
        match canonical_path(p) {
            Ok(c) => panic!("{p} accepted as {c}"),
            Err(e) => e,
        }
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in [
            "/",
            "/orders",
            "/orders/",
            "/orders/42",
            "/deploy/write/1",
            "/a%20b/%C3%A9",
            "/x/.well-known/a..b/...",
            "/.hidden/..x/x..",
            "/é/ü",
            "/a%3Bb%25",
        ] {
            assert!(
                matches!(canonical_path(p), Ok(Cow::Borrowed(s)) if s == p),
                "{p}"
            );
        }
    }

    #[test]
    fn encoded_unreserved_characters_are_decoded() {
        // /api/%61dmin must match a route for /api/admin, as a Go upstream would serve it.
        assert_eq!(ok("/api/%61dmin/delete"), "/api/admin/delete");
        assert_eq!(ok("/%61dmin"), "/admin");
        assert_eq!(ok("/%41%7a%30%2D%2e%5F%7E"), "/Az0-._~");
        assert_eq!(ok("/a%2ea"), "/a.a");
        assert_eq!(ok("/a%2e%2e"), "/a..");
    }

    #[test]
    fn other_escapes_are_upper_cased() {
        assert_eq!(ok("/a%3bb/%c3%a9?"), "/a%3Bb/%C3%A9?");
        assert_eq!(ok("/%e2%82%aC/x"), "/%E2%82%AC/x");
        assert_eq!(ok("/x%20y"), "/x%20y");
        assert_eq!(ok("/%25%61"), "/%25a");
    }

    #[test]
    fn dot_segments_are_refused() {
        for p in [
            "/.",
            "/..",
            "/api/x/../admin",
            "/api/./admin",
            "/svc/../../other",
            "/api/%2e%2e/admin",
            "/api/%2E%2E/admin",
            "/api/.%2e/admin",
            "/api/%2e./admin",
            "/api/%2e/admin",
            "/api/..",
            "/api/%2e",
        ] {
            assert_eq!(err(p), PathError::DotSegment, "{p}");
        }
    }

    #[test]
    fn separators_parameters_and_empty_segments_are_refused() {
        for p in [
            "/api%2fadmin",
            "/api%2Fadmin",
            "/api%5cadmin",
            "/api%5Cadmin",
        ] {
            assert_eq!(err(p), PathError::EncodedSeparator, "{p}");
        }
        assert_eq!(err("/api\\admin"), PathError::Backslash);
        assert_eq!(err("/api/admin;x/delete"), PathError::Semicolon);
        assert_eq!(err("/api;/admin"), PathError::Semicolon);
        for p in ["//", "//api", "/api//admin", "/api///"] {
            assert_eq!(err(p), PathError::EmptySegment, "{p}");
        }
    }

    #[test]
    fn controls_bad_escapes_and_other_forms_are_refused() {
        for p in [
            "/a\0b", "/a\nb", "/a\x7fb", "/a%00b", "/a%0Ab", "/a%0db", "/a%7F",
        ] {
            assert_eq!(err(p), PathError::Control, "{p:?}");
        }
        for p in ["/a%", "/a%4", "/a%zz", "/a%4g/b", "/%%41"] {
            assert_eq!(err(p), PathError::InvalidEscape, "{p}");
        }
        for p in ["", "*", "api/admin", "http://x/"] {
            assert_eq!(err(p), PathError::NotOriginForm, "{p}");
        }
    }
}
