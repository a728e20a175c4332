//! The token endpoint's input parsers on arbitrary bytes: the form body
//! (`application/x-www-form-urlencoded`) and an `Authorization: Basic` header value.
//! Must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_server::fuzzing::{parse_basic, parse_form};

fuzz_target!(|data: &[u8]| {
    let _ = parse_form(data);
    let _ = parse_basic(data);
});
