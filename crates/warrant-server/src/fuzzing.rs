//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md), not an API.
//!
//! The token endpoint's input parsers are crate-private; these thin wrappers let libFuzzer reach
//! them without making them public. Each returns whether the input was accepted, so a fuzz
//! target has something to observe; a panic is the only failure.

use crate::protocol::form::{self, Params};

/// `protocol::form::Params::parse` on a form body (`application/x-www-form-urlencoded`), then
/// the lookups the endpoints make.
pub fn parse_form(bytes: &[u8]) -> bool {
    let Ok(params) = Params::parse(bytes) else {
        return false;
    };
    let _ = params.get("grant_type");
    let _ = params.all("resource").count();
    true
}

/// `protocol::form::parse_basic` on an `Authorization` header value.
pub fn parse_basic(header: &[u8]) -> bool {
    form::parse_basic(header).is_ok()
}
