//! Durations as the CLI writes them (`90s`, `10m`, `1h`, `30d`); JSON carries seconds.

/// Parses `90s`, `10m`, `1h` or `30d` into seconds, with the same syntax as the TOML
/// configuration (one parser in `warrant_core::time`: a bare number means seconds), and an error
/// message that says what is accepted.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    warrant_core::time::parse_duration(text).ok_or_else(|| {
        format!("{text:?} is not a duration (write a number and a unit: 90s, 10m, 1h or 30d)")
    })
}

/// Formats seconds compactly for people: `45s`, `5m`, `5m 3s`, `2h 10m`, `3d 4h`. At most two
/// units are shown; the rest is dropped, not rounded.
pub fn format_duration(seconds: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    if seconds == 0 {
        return "0s".into();
    }
    let mut rest = seconds;
    let mut parts = Vec::new();
    for (size, name) in UNITS {
        if rest >= size {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // keep the two shown units adjacent: "1h 0m" would be noise, stop instead
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("10m").unwrap(), 600);
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("30d").unwrap(), 2_592_000);
        assert_eq!(parse_duration(" 45 ").unwrap(), 45);
    }

    #[test]
    fn refuses_unknown_units_and_overflow_with_a_hint() {
        assert!(parse_duration("").is_err());
        assert!(
            parse_duration("10w")
                .unwrap_err()
                .contains("90s, 10m, 1h or 30d")
        );
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(45), "45s");
        assert_eq!(format_duration(300), "5m");
        assert_eq!(format_duration(303), "5m 3s");
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(3601), "1h");
        assert_eq!(format_duration(7800), "2h 10m");
        assert_eq!(format_duration(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    }
}
