//! Conditions on an external token's claims: where a claim is ([`ClaimPath`]) and what it must
//! be ([`Check`]: exact JSON equality, a glob on a string, or one of a few values).
//!
//! Every check is exact about JSON types: the string `"true"` is not the boolean `true`, and the
//! number `1` is not `1.0` (serde_json keeps integers and floats apart). GitLab's `ref_protected`
//! is the *string* `"true"`, so a condition on it must say `"true"`, not `true`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::policy::PolicyViolation;

/// At most this many segments in a claim path.
pub const MAX_PATH_SEGMENTS: usize = 8;
/// At most this many bytes in one segment of a claim path.
pub const MAX_SEGMENT_BYTES: usize = 128;
/// At most this many values in a [`Check::OneOf`].
pub const MAX_VALUES: usize = 64;
/// At most this many bytes in a glob pattern or a string value of a check.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Where a claim sits in a token: a top-level name, or the names leading into nested objects.
///
/// In JSON it is written either as a dotted string (`"repository"`, `"kubernetes_io.pod.name"`)
/// or — for claim names that themselves contain a dot, like Kubernetes' `kubernetes.io` — as an
/// array of names taken verbatim (`["kubernetes.io", "namespace"]`). There is no escape syntax
/// inside the string form: a name with a dot needs the array form. Arrays inside the token are
/// never indexed; a path only walks objects. A path is valid once built: 1 to
/// [`MAX_PATH_SEGMENTS`] non-empty names of at most [`MAX_SEGMENT_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "PathRepr", into = "PathRepr")]
pub struct ClaimPath(Vec<String>);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PathRepr {
    Dotted(String),
    Segments(Vec<String>),
}

impl ClaimPath {
    /// A dotted path: `"a.b"` is claim `a`, then member `b` of it.
    pub fn parse(dotted: &str) -> Result<Self, PolicyViolation> {
        Self::from_segments(dotted.split('.').map(str::to_owned).collect())
    }

    /// A path from names taken verbatim (a name may contain a dot).
    pub fn from_segments(segments: Vec<String>) -> Result<Self, PolicyViolation> {
        if segments.is_empty() || segments.len() > MAX_PATH_SEGMENTS {
            return Err(PolicyViolation(format!(
                "a claim path has 1 to {MAX_PATH_SEGMENTS} names"
            )));
        }
        if let Some(s) = segments.iter().find(|s| {
            s.is_empty() || s.len() > MAX_SEGMENT_BYTES || s.chars().any(char::is_control)
        }) {
            return Err(PolicyViolation(format!(
                "claim name {s:?} must be 1 to {MAX_SEGMENT_BYTES} bytes without control characters"
            )));
        }
        Ok(ClaimPath(segments))
    }

    /// The names, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The top-level claim name.
    pub fn head(&self) -> &str {
        self.0.first().map(String::as_str).unwrap_or_default()
    }

    /// The value at this path, if every name along it is present.
    pub fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        let mut v = claims.get(first)?;
        for name in rest {
            v = v.as_object()?.get(name)?;
        }
        Some(v)
    }

    /// Puts `value` at this path in `out`, creating the objects along it (a non-object already
    /// in the way is replaced).
    pub(crate) fn insert(&self, out: &mut Map<String, Value>, value: Value) {
        let Some((last, parents)) = self.0.split_last() else {
            return;
        };
        let mut here = out;
        for name in parents {
            let slot = here
                .entry(name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(next) = slot else { return };
            here = next;
        }
        here.insert(last.clone(), value);
    }
}

impl TryFrom<PathRepr> for ClaimPath {
    type Error = PolicyViolation;
    fn try_from(r: PathRepr) -> Result<Self, PolicyViolation> {
        match r {
            PathRepr::Dotted(s) => ClaimPath::parse(&s),
            PathRepr::Segments(v) => ClaimPath::from_segments(v),
        }
    }
}

impl From<ClaimPath> for PathRepr {
    fn from(p: ClaimPath) -> Self {
        if p.0.iter().any(|s| s.contains('.')) {
            PathRepr::Segments(p.0)
        } else {
            PathRepr::Dotted(p.0.join("."))
        }
    }
}

impl fmt::Display for ClaimPath {
    /// The dotted form, or the JSON array form when a name contains a dot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().any(|s| s.contains('.')) {
            let json = serde_json::to_string(&self.0).map_err(|_| fmt::Error)?;
            f.write_str(&json)
        } else {
            f.write_str(&self.0.join("."))
        }
    }
}

/// What a claim must be. A missing claim fails every check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Exact JSON equality, types included (`"true"` ≠ `true`, `1` ≠ `1.0`).
    Equals(Value),
    /// A glob on a string claim (a claim of another type fails), anchored at both ends: `*`
    /// matches any run of characters without `/`, `**` any run including `/`, `?` one character
    /// other than `/`. Every other character, `[`, `{` and `\` included, matches itself.
    Glob(String),
    /// Exact JSON equality with one of the values.
    OneOf(Vec<Value>),
}

/// A condition on one claim of an external token. In JSON:
/// `{"claim": "repository", "equals": "acme/api"}`, `{"claim": "ref", "glob": "refs/tags/v*"}`,
/// `{"claim": ["kubernetes.io", "namespace"], "one_of": ["ci", "prod"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub claim: ClaimPath,
    #[serde(flatten)]
    pub check: Check,
}

impl Condition {
    /// A condition on a dotted claim path.
    pub fn new(claim: &str, check: Check) -> Result<Self, PolicyViolation> {
        Ok(Condition {
            claim: ClaimPath::parse(claim)?,
            check,
        })
    }

    /// Whether the claims satisfy this condition; if not, why, naming the claim, what the
    /// condition expects and what the token holds. That explanation is for the audit record
    /// and for admins (`warrant trust test`), never for the client.
    pub fn test(&self, claims: &Map<String, Value>) -> Result<(), String> {
        let Some(got) = self.claim.lookup(claims) else {
            return Err(format!(
                "{}: expected {}, the claim is missing",
                self.claim,
                self.expected()
            ));
        };
        let holds = match &self.check {
            Check::Equals(want) => got == want,
            Check::OneOf(values) => values.contains(got),
            Check::Glob(pattern) => got.as_str().is_some_and(|s| glob_match(pattern, s)),
        };
        if holds {
            Ok(())
        } else {
            Err(format!(
                "{}: expected {}, got {}",
                self.claim,
                self.expected(),
                shown(got)
            ))
        }
    }

    fn expected(&self) -> String {
        match &self.check {
            Check::Equals(v) => format!("equals {v}"),
            Check::Glob(p) => format!("glob {}", Value::from(p.as_str())),
            Check::OneOf(v) => format!("one of {}", Value::from(v.clone())),
        }
    }

    /// Refuses a check that cannot be meant: an empty or trivially-true glob, an empty or
    /// oversized list, a value that is not a string, number or boolean.
    pub fn validate(&self) -> Result<(), PolicyViolation> {
        let bad = |why: &str| {
            Err(PolicyViolation(format!(
                "condition on {}: {why}",
                self.claim
            )))
        };
        match &self.check {
            Check::Equals(v) => check_value(v).or_else(|w| bad(&w)),
            Check::OneOf(values) => {
                if values.is_empty() || values.len() > MAX_VALUES {
                    return bad(&format!("one_of takes 1 to {MAX_VALUES} values"));
                }
                values.iter().try_for_each(check_value).or_else(|w| bad(&w))
            }
            Check::Glob(p) => check_glob(p).or_else(|w| bad(&w)),
        }
    }
}

/// A claim value as shown in a detail: JSON, cut to 128 characters.
pub(crate) fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(128) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn check_value(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) if s.len() > MAX_PATTERN_BYTES => {
            Err(format!("a value is at most {MAX_PATTERN_BYTES} bytes"))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        _ => Err("values are strings, numbers or booleans (not null, arrays or objects)".into()),
    }
}

fn check_glob(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > MAX_PATTERN_BYTES {
        return Err(format!("a glob is 1 to {MAX_PATTERN_BYTES} bytes"));
    }
    if p.contains("***") {
        return Err("a glob has `*` or `**`, never three stars in a row".into());
    }
    if p.chars().any(char::is_control) {
        return Err("a glob has no control characters".into());
    }
    if p.chars().all(|c| c == '*') {
        return Err("a glob of only stars matches every value; a condition must narrow".into());
    }
    Ok(())
}

/// One element of a compiled glob.
#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Star,
    DoubleStar,
}

fn compile(pattern: &str) -> Vec<Tok> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                Tok::DoubleStar
            }
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    out
}

/// Whether `text` matches the glob `pattern` (semantics on [`Check::Glob`]).
///
/// It simulates the pattern as a non-deterministic automaton — the set of pattern positions
/// reachable so far — so it does `O(pattern × text)` work whatever the input, with no
/// backtracking: `*a*a*a*a*a*a*a*a*b` against ten thousand `a`s costs the same as any other
/// pattern of that length.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    glob_match_counted(pattern, text).0
}

/// [`glob_match`], and the number of automaton steps it took (for the linearity test).
pub(crate) fn glob_match_counted(pattern: &str, text: &str) -> (bool, usize) {
    let toks = compile(pattern);
    let n = toks.len();
    let mut steps = 0usize;
    let mut now = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    now[0] = true;
    close(&toks, &mut now);
    for c in text.chars() {
        next.iter_mut().for_each(|s| *s = false);
        let mut alive = false;
        for (i, tok) in toks.iter().enumerate() {
            if !now[i] {
                continue;
            }
            steps += 1;
            let (advance, stay) = match *tok {
                Tok::Lit(l) => (l == c, false),
                Tok::One => (c != '/', false),
                Tok::Star => (false, c != '/'),
                Tok::DoubleStar => (false, true),
            };
            if advance {
                next[i + 1] = true;
                alive = true;
            }
            if stay {
                next[i] = true;
                alive = true;
            }
        }
        if !alive {
            return (false, steps);
        }
        close(&toks, &mut next);
        std::mem::swap(&mut now, &mut next);
    }
    (now[n], steps)
}

/// Adds the positions reachable without reading a character: past any star (stars may match
/// nothing). One forward pass suffices because such moves only go forward.
fn close(toks: &[Tok], states: &mut [bool]) {
    for (i, tok) in toks.iter().enumerate() {
        if states[i] && matches!(tok, Tok::Star | Tok::DoubleStar) {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn glob_semantics() {
        let yes = [
            ("acme/*", "acme/api"),
            ("acme/*", "acme/"),
            ("refs/heads/main", "refs/heads/main"),
            ("refs/heads/**", "refs/heads/feature/x/y"),
            ("refs/tags/v?.*", "refs/tags/v1.2"),
            (
                "**/deploy.yml@refs/heads/main",
                "acme/api/.github/workflows/deploy.yml@refs/heads/main",
            ),
            ("a**b", "a/x/b"),
            ("[x]{y}\\", "[x]{y}\\"),
            ("é?", "éü"),
        ];
        for (p, t) in yes {
            assert!(glob_match(p, t), "{p} should match {t}");
        }
        let no = [
            ("acme/*", "acme/api/x"),
            ("acme/*", "acme-evil/api"),
            ("acme/*", "xacme/api"),
            ("refs/heads/main", "refs/heads/main-evil"),
            ("refs/heads/main", "refs/heads/mai"),
            ("refs/tags/v?", "refs/tags/v/"),
            ("refs/tags/v?", "refs/tags/v12"),
            ("a*b", "a/b"),
            ("[x]", "x"),
            ("abc", ""),
        ];
        for (p, t) in no {
            assert!(!glob_match(p, t), "{p} should not match {t}");
        }
    }

    #[test]
    fn glob_is_linear_on_a_pathological_pattern() {
        let text = "a".repeat(10_000);
        let pattern = "*a*a*a*a*a*a*a*a*b";
        let (matched, steps) = glob_match_counted(pattern, &text);
        assert!(!matched);
        // At most one step per pattern position per character: no backtracking.
        assert!(steps <= (pattern.len() + 1) * text.len(), "{steps} steps");
        let (matched, _) = glob_match_counted("*a*a*a*a*a*a*a*a*a", &text);
        assert!(matched);
    }

    #[test]
    fn equality_is_exact_about_types() {
        let c = claims(json!({"ref_protected": "true", "n": 1, "b": true}));
        let t = |claim: &str, v: Value| Condition::new(claim, Check::Equals(v)).unwrap().test(&c);
        assert!(t("ref_protected", json!("true")).is_ok());
        assert!(t("ref_protected", json!(true)).is_err());
        assert!(t("n", json!(1)).is_ok());
        assert!(t("n", json!("1")).is_err());
        assert!(t("n", json!(1.0)).is_err());
        assert!(t("b", json!(true)).is_ok());
        assert!(t("b", json!("true")).is_err());
    }

    #[test]
    fn glob_needs_a_string_and_missing_claims_fail() {
        let c = claims(json!({"n": 1}));
        let g = Condition::new("n", Check::Glob("1".into())).unwrap();
        assert_eq!(g.test(&c), Err("n: expected glob \"1\", got 1".into()));
        let m = Condition::new("absent", Check::OneOf(vec![json!("x")])).unwrap();
        let err = m.test(&c).unwrap_err();
        assert!(err.contains("absent") && err.contains("missing"), "{err}");
    }

    #[test]
    fn one_of() {
        let c = claims(json!({"env": "prod"}));
        let ok =
            Condition::new("env", Check::OneOf(vec![json!("staging"), json!("prod")])).unwrap();
        assert!(ok.test(&c).is_ok());
        let no = Condition::new("env", Check::OneOf(vec![json!("staging")])).unwrap();
        assert_eq!(
            no.test(&c),
            Err("env: expected one of [\"staging\"], got \"prod\"".into())
        );
    }

    #[test]
    fn nested_paths_and_dotted_names() {
        let c = claims(json!({
            "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "deployer"}},
            "a": {"b": {"c": "deep"}, "list": [{"x": 1}]},
        }));
        let k = ClaimPath::from_segments(vec!["kubernetes.io".into(), "namespace".into()]).unwrap();
        assert_eq!(k.lookup(&c), Some(&json!("ci")));
        // The dotted form splits the name, so it does not find `kubernetes.io`.
        assert_eq!(
            ClaimPath::parse("kubernetes.io.namespace")
                .unwrap()
                .lookup(&c),
            None
        );
        assert_eq!(
            ClaimPath::parse("a.b.c").unwrap().lookup(&c),
            Some(&json!("deep"))
        );
        assert_eq!(ClaimPath::parse("a.list.0.x").unwrap().lookup(&c), None);
        assert_eq!(ClaimPath::parse("a.b.c.d").unwrap().lookup(&c), None);

        // JSON forms, both ways.
        let cond: Condition = serde_json::from_value(
            json!({"claim": ["kubernetes.io", "namespace"], "equals": "ci"}),
        )
        .unwrap();
        assert_eq!(cond.claim, k);
        assert!(cond.test(&c).is_ok());
        assert_eq!(
            serde_json::to_value(&cond).unwrap(),
            json!({"claim": ["kubernetes.io", "namespace"], "equals": "ci"})
        );
        let cond: Condition =
            serde_json::from_value(json!({"claim": "a.b.c", "glob": "d*"})).unwrap();
        assert!(cond.test(&c).is_ok());
        assert_eq!(
            serde_json::to_value(&cond).unwrap(),
            json!({"claim": "a.b.c", "glob": "d*"})
        );
        assert_eq!(k.to_string(), r#"["kubernetes.io","namespace"]"#);
        assert_eq!(ClaimPath::parse("a.b").unwrap().to_string(), "a.b");
    }

    #[test]
    fn bad_paths_and_checks_are_refused() {
        for p in ["", "a..b", ".a", "a."] {
            assert!(ClaimPath::parse(p).is_err(), "{p:?}");
        }
        assert!(ClaimPath::parse(&["x"; MAX_PATH_SEGMENTS + 1].join(".")).is_err());
        assert!(ClaimPath::from_segments(vec![]).is_err());
        assert!(serde_json::from_value::<Condition>(json!({"claim": "", "equals": 1})).is_err());
        assert!(serde_json::from_value::<Condition>(json!({"claim": "a", "equal": 1})).is_err());

        let bad = |check: Check| Condition::new("c", check).unwrap().validate().is_err();
        assert!(bad(Check::Glob(String::new())));
        assert!(bad(Check::Glob("*".into())));
        assert!(bad(Check::Glob("**".into())));
        assert!(bad(Check::Glob("a***".into())));
        assert!(bad(Check::Glob("a\nb".into())));
        assert!(bad(Check::Glob("x".repeat(MAX_PATTERN_BYTES + 1))));
        assert!(bad(Check::OneOf(vec![])));
        assert!(bad(Check::OneOf(vec![json!("x"); MAX_VALUES + 1])));
        assert!(bad(Check::Equals(Value::Null)));
        assert!(bad(Check::Equals(json!(["a"]))));
        assert!(bad(Check::OneOf(vec![json!({"a": 1})])));
        assert!(!bad(Check::Glob("acme/*".into())));
        assert!(!bad(Check::Equals(json!(42))));
    }
}
