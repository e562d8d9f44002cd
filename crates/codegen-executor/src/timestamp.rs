//! Codegen timestamps. The spec only says "string"; we have seen naive
//! (`2025-10-01T12:00:00.123456`), `Z`/offset-suffixed, and space-separated
//! (`2025-08-13 00:00:00.000000`) forms. Naive means UTC.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};

/// Parses every documented timestamp form; `None` when none matches.
pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Some(dt.with_timezone(&Utc));
    }
    // RFC 3339 with a space instead of `T`, with an offset.
    if let Ok(dt) = DateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(dt.with_timezone(&Utc));
    }
    let naive = raw.strip_suffix('Z').unwrap_or(raw);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(dt.and_utc());
        }
    }
    None
}

/// Serde helper: an optional timestamp that tolerates unparseable values
/// (kept as `None` rather than failing the whole response; the raw string
/// is not needed by any caller).
pub(crate) fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    Ok(raw.as_deref().and_then(parse_timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_all_documented_forms() {
        let want = Utc.with_ymd_and_hms(2025, 10, 1, 12, 0, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        for raw in [
            "2025-10-01T12:00:00.123456",
            "2025-10-01T12:00:00.123456Z",
            "2025-10-01 12:00:00.123456",
            "2025-10-01T14:00:00.123456+02:00",
            "2025-10-01 12:00:00.123456+00:00",
        ] {
            assert_eq!(parse_timestamp(raw), Some(want), "{raw}");
        }
        assert_eq!(
            parse_timestamp("2025-08-13 00:00:00"),
            Some(Utc.with_ymd_and_hms(2025, 8, 13, 0, 0, 0).unwrap())
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
