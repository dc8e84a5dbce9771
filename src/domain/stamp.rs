//! Reading back the times kolink writes. chrono serializes a `DateTime<Utc>` as
//! `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`; its own reader takes every RFC 3339 form,
//! through a general parser of about 1,900 instructions a time, and a report of a campaign's
//! first read decodes one time per link (10,000 of them for a big campaign). A time of that
//! exact shape is read here field by field; any other text goes to chrono, so what is accepted,
//! and what it means, is chrono's.

use chrono::{DateTime, NaiveDate, Utc};

/// `s` as chrono reads an RFC 3339 time, in UTC.
pub fn parse_utc(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match written(s.as_bytes()) {
        Some(t) => Ok(t),
        None => s.parse(),
    }
}

/// Deserializes a time as `DateTime<Utc>`'s own `Deserialize` does (`#[serde(deserialize_with)]`).
pub fn deserialize_utc<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    super::deserialize_str(d, "an RFC 3339 formatted date and time string", parse_utc)
}

/// The time in `b` if it has the shape chrono writes (four-digit year, `Z`, no leap second),
/// else `None`, for chrono to read.
fn written(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (last, rest) = b.split_last()?;
    if *last != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter()
            .try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let nanos = match &rest[19..] {
        [] => 0,
        [b'.', digits @ ..] if matches!(digits.len(), 3 | 6 | 9) => {
            let n = num(20..20 + digits.len())?;
            n * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let (sec, min, hour) = (num(17..19)?, num(14..16)?, num(11..13)?);
    if sec > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    Some(date.and_hms_nano_opt(hour, min, sec, nanos)?.and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;

    /// What chrono itself reads from `s`.
    fn chronos(s: &str) -> Option<DateTime<Utc>> {
        s.parse().ok()
    }

    #[test]
    fn a_time_kolink_wrote_reads_back_the_same_on_the_short_path() {
        let t = Utc.with_ymd_and_hms(2026, 12, 6, 18, 31, 11).unwrap();
        for t in [
            t,
            t + Duration::milliseconds(120),
            t + Duration::microseconds(123_456),
            t + Duration::nanoseconds(1),
            Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
        ] {
            let text = serde_json::to_value(t).unwrap();
            let text = text.as_str().unwrap();
            assert_eq!(written(text.as_bytes()), Some(t), "{text}");
            assert_eq!(parse_utc(text).unwrap(), t);
        }
    }

    #[test]
    fn every_other_form_is_chronos_to_read() {
        for s in [
            "2026-12-06T18:31:11+08:00",
            "2026-12-06T18:31:11.1Z",
            "2026-12-06t18:31:11z",
            "2026-12-06 18:31:11Z",
            "2016-12-31T23:59:60Z",
            "+10000-01-01T00:00:00Z",
            "-026-12-06T18:31:11Z",
            "2026-12-06T18:31:11.1234567890Z",
        ] {
            assert_eq!(written(s.as_bytes()), None, "{s}");
            assert_eq!(parse_utc(s).ok(), chronos(s), "{s}");
        }
        assert!(
            chronos("2026-12-06T18:31:11+08:00").is_some(),
            "an offset is still read"
        );
    }

    #[test]
    fn what_is_not_a_time_fails_as_chrono_fails() {
        for s in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-06T24:00:00Z",
            "2026-12-06T23:60:00Z",
            "2026-12-06T18:31:1xZ",
            "2026-12-06T18:31:11.12xZ",
            "2026-12-06T18:31:11.Z",
            "2026-12-06T18:31:11ZZ",
            "2026-12-06T18:31:11",
        ] {
            assert_eq!(written(s.as_bytes()), None, "{s}");
            assert!(parse_utc(s).is_err(), "{s}");
        }
    }

    #[test]
    fn a_time_deserializes_as_chronos_own_and_a_wrong_kind_is_refused() {
        #[derive(serde::Deserialize)]
        struct At {
            #[serde(deserialize_with = "deserialize_utc")]
            at: DateTime<Utc>,
        }
        let at: At = serde_json::from_str(r#"{"at":"2026-12-06T18:31:11.120Z"}"#).unwrap();
        assert_eq!(
            at.at,
            serde_json::from_str::<DateTime<Utc>>(r#""2026-12-06T18:31:11.120Z""#).unwrap()
        );
        let escaped: At = serde_json::from_str(r#"{"at":"2026-12-06T18:31:11\u005a"}"#).unwrap();
        assert_eq!(escaped.at, Utc.with_ymd_and_hms(2026, 12, 6, 18, 31, 11).unwrap());
        let wrong = serde_json::from_str::<At>(r#"{"at":5}"#).err().unwrap().to_string();
        assert!(
            wrong.contains("expected an RFC 3339 formatted date and time string"),
            "{wrong}"
        );
        assert!(serde_json::from_str::<At>(r#"{"at":"yesterday"}"#).is_err());
    }

    proptest! {
        /// Any text of the written shape, digits anywhere: read as chrono reads it, or refused
        /// by both.
        #[test]
        fn the_short_path_agrees_with_chrono(
            y in 0u32..10_000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..62,
            s in 0u32..62, frac in prop::option::of((0u32..1_000_000_000, prop::sample::select(vec![3usize, 6, 9]))),
        ) {
            let mut text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if let Some((f, len)) = frac {
                let f = format!("{f:09}");
                text.push('.');
                text.push_str(&f[..len]);
            }
            text.push('Z');
            let short = written(text.as_bytes());
            if short.is_some() {
                prop_assert_eq!(short, chronos(&text), "{}", text);
            }
            prop_assert_eq!(parse_utc(&text).ok(), chronos(&text), "{}", text);
        }

        /// Every time chrono writes takes the short path and reads back the same.
        #[test]
        fn every_written_time_takes_the_short_path(secs in 0i64..315_569_520_000, nanos in 0u32..1_000_000_000) {
            let t = DateTime::from_timestamp(secs - 62_167_219_200, nanos).unwrap();
            let text = serde_json::to_value(t).unwrap();
            prop_assert_eq!(written(text.as_str().unwrap().as_bytes()), Some(t));
        }
    }
}
