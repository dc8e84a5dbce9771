//! Plain types and rules of the domain. Nothing here does I/O; every value that passed
//! validation has its own type with a private field and a `parse` constructor, so the rest of
//! the code cannot hold an unchecked one.

mod click_id;
mod code;
mod coupon;
mod destination;
mod dimension;
mod money;
mod platform;
mod records;
mod slug;
mod stamp;
mod utm;

pub use click_id::{ClickId, EntryId};
pub use code::{reserved_words, CodeError, ShortCode};
pub use coupon::{Coupon, CouponKey};
pub use destination::{with_click_id, Destination};
pub use dimension::{ClickInfo, Dimension, Dimensions};
pub use money::{Currency, Money, Round};
pub use platform::{Platform, Tier};
pub use records::*;
pub use slug::Slug;
pub use utm::{target_url, Utm};

/// Why a value was rejected; the message is one sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A time a client sent, if RFC 3339 can write it back (years 0000 to 9999), to the second
/// like every time kolink writes.
pub fn writable_time(field: &str, t: chrono::DateTime<chrono::Utc>) -> Result<chrono::DateTime<chrono::Utc>, Invalid> {
    use chrono::{Datelike, SubsecRound};
    if (0..=9999).contains(&t.year()) {
        Ok(t.trunc_subsecs(0))
    } else {
        Err(Invalid::new(format!(
            "{field} must be a time between the years 0000 and 9999."
        )))
    }
}

/// Deserializes a value written as a string through `parse`, reading the string in place where
/// the input allows (a JSON string without escapes), so that `parse` makes the one copy kept:
/// `String::deserialize` then `parse(&s)` allocated it twice. Other kinds of value are refused
/// as `String`'s own would be, "expected `expecting`"; so are bytes, which `String` reads when
/// they are UTF-8 (no format kolink reads gives strings as bytes).
pub(crate) fn deserialize_str<'de, D, T, E>(
    d: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    E: std::fmt::Display,
{
    struct Text<P> {
        expecting: &'static str,
        parse: P,
    }
    impl<T, E: std::fmt::Display, P: FnOnce(&str) -> Result<T, E>> serde::de::Visitor<'_> for Text<P> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<X: serde::de::Error>(self, v: &str) -> Result<T, X> {
            (self.parse)(v).map_err(X::custom)
        }
    }
    d.deserialize_str(Text { expecting, parse })
}

/// True when `s` holds a C0 control character or DEL. Such input is rejected, never stripped:
/// a CR/LF that slipped into a URL or header is an attack or a copy-paste error.
pub fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// True when `s` would show other than it reads, or nothing: it holds a bidirectional override
/// or isolate (U+202A–U+202E, U+2066–U+2069: "Amy \u{202e}gnp.exe" shows as "Amy exe.png"), or
/// it is made of invisible characters alone (spaces, zero-width characters, fillers, variation
/// selectors, tags, a byte-order mark).
/// Names and handles on screens are refused so; zero-width joiners inside emoji are kept.
pub fn hides_its_text(s: &str) -> bool {
    let invisible = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '\u{00AD}'
                    | '\u{034F}'
                    | '\u{061C}'
                    | '\u{115F}'
                    | '\u{1160}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{2800}'
                    | '\u{3164}'
                    | '\u{FE00}'..='\u{FE0F}'
                    | '\u{FEFF}'
                    | '\u{FFA0}'
                    | '\u{E0000}'..='\u{E007F}'
                    | '\u{E0100}'..='\u{E01EF}'
            )
    };
    s.chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        || s.chars().all(invisible)
}

/// Deserializes a field that may be absent (outer `None`), `null` (inner `None`) or a value:
/// how a PATCH tells "leave as is" from "clear". Use with `#[serde(default)]`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
