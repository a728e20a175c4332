//! Scopes (RFC 6749 §3.3) and audiences (RFC 8707 resource indicators).

use std::collections::BTreeSet;
use std::fmt;

/// One scope token: `1*( %x21 / %x23-5B / %x5D-7E )`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scopes, ordered so that the `scope` claim is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses a space-delimited `scope` parameter. `None` if any token is invalid.
    pub fn parse_delimited(s: &str) -> Option<Self> {
        s.split(' ')
            .filter(|t| !t.is_empty())
            .map(Scope::parse)
            .collect::<Option<BTreeSet<_>>>()
            .map(Self)
    }

    pub fn from_scopes(it: impl IntoIterator<Item = Scope>) -> Self {
        Self(it.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, s: &Scope) -> bool {
        self.0.contains(s)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The first scope of `self` that `other` lacks.
    pub fn first_missing_from(&self, other: &ScopeSet) -> Option<&Scope> {
        self.0.iter().find(|s| !other.contains(s))
    }

    /// Space-delimited, as the `scope` claim and response field carry it.
    pub fn to_delimited(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&s.0);
        }
        out
    }
}

/// An audience: an absolute URI without a fragment (RFC 8707 §2), at most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Audience(String);

impl Audience {
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > 2048 || s.contains('#') {
            return None;
        }
        if s.bytes()
            .any(|b| b <= 0x20 || b == 0x7f || b == b'"' || b == b'\\')
        {
            return None;
        }
        let (scheme, rest) = s.split_once(':')?;
        let mut sb = scheme.bytes();
        let scheme_ok = sb.next().is_some_and(|b| b.is_ascii_alphabetic())
            && sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        (scheme_ok && !rest.is_empty()).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let s = ScopeSet::parse_delimited("b a  a").unwrap();
        assert_eq!(s.to_delimited(), "a b");
        assert!(ScopeSet::parse_delimited("a\"b").is_none());
        assert!(ScopeSet::parse_delimited("a\\b").is_none());
        assert!(ScopeSet::parse_delimited("").unwrap().is_empty());
    }

    #[test]
    fn audiences() {
        assert!(Audience::parse("https://deploy.internal").is_some());
        assert!(Audience::parse("urn:example:api").is_some());
        assert!(Audience::parse("deploy.internal").is_none());
        assert!(Audience::parse("https://x/#frag").is_none());
        assert!(Audience::parse("https://x y").is_none());
        assert!(Audience::parse("1http://x").is_none());
    }
}
