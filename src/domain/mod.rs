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
mod utm;

pub use click_id::{ClickId, EntryId};
pub use code::{CodeError, ShortCode};
pub use coupon::{Coupon, CouponKey};
pub use destination::{with_click_id, Destination};
pub use dimension::{ClickInfo, Dimension, Dimensions};
pub use money::{Currency, Money};
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

/// A time a client sent, if RFC 3339 can write it back: years 0000 to 9999.
pub fn writable_time(field: &str, t: chrono::DateTime<chrono::Utc>) -> Result<chrono::DateTime<chrono::Utc>, Invalid> {
    use chrono::Datelike;
    if (0..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(Invalid::new(format!(
            "{field} must be a time between the years 0000 and 9999."
        )))
    }
}

/// True when `s` holds a C0 control character or DEL. Such input is rejected, never stripped:
/// a CR/LF that slipped into a URL or header is an attack or a copy-paste error.
pub fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
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
