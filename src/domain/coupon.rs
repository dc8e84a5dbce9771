//! Coupon codes. A coupon names one link; two coupons that differ only in case are the same
//! coupon (`amy10` is `AMY10`, `été10` is `ÉTÉ10`), as shop platforms treat discount codes:
//! WooCommerce keeps every code lower-cased (`mb_strtolower`), and customers type them as they
//! like. That rule lives here and nowhere else: every store keeps coupons by their `CouponKey`.

use serde::{Deserialize, Serialize};

use super::{has_control_chars, Invalid};

/// A coupon as a shop's customers type it: 1 to 64 characters, no spaces or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Coupon(String);

impl Coupon {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() || s.chars().count() > 64 || has_control_chars(s) || s.chars().any(char::is_whitespace) {
            return Err(Invalid::new(
                "coupon must be 1 to 64 characters without spaces or control characters.",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> CouponKey {
        CouponKey::of(&self.0)
    }
}

impl std::fmt::Display for Coupon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The form a coupon is unique and looked up in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CouponKey(String);

impl CouponKey {
    /// Folds the case of what a shop or a user sent: upper case of lower case, so that every
    /// case form of a code (`ß`, `SS`; `ǅ`, `ǆ`, `Ǆ`) meets in one, and an ASCII code's key is
    /// its upper case, as keys were before non-ASCII letters folded ([`CouponKey::legacy`]).
    pub fn of(coupon: &str) -> Self {
        Self(coupon.to_lowercase().to_uppercase())
    }

    /// The key a coupon was kept under before non-ASCII letters folded (only ASCII was upper
    /// cased), when it is not [`CouponKey::of`]'s. Stores move such keys to the new ones at
    /// start (`Links::fold_coupon_keys`); matching a shop's code tries this one first: a coupon
    /// still under it is one an older process wrote during a rolling upgrade, or one that could
    /// not move because another link's coupon holds its new key (`straße` beside `STRASSE`).
    pub fn legacy(coupon: &str) -> Option<Self> {
        let old = Self(coupon.to_ascii_uppercase());
        (old != Self::of(coupon)).then_some(old)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coupons_differing_in_case_share_a_key() {
        assert_eq!(Coupon::parse("amy10").unwrap().key(), CouponKey::of("AMY10"));
        assert_ne!(CouponKey::of("AMY10"), CouponKey::of("AMY11"));
        assert_eq!(
            CouponKey::of("amy10").as_str(),
            "AMY10",
            "ASCII keys as they always were"
        );
        for (a, b) in [
            ("été10", "ÉTÉ10"),
            ("Ä", "ä"),
            ("ΣΟΦΙΑ", "σοφια"),
            ("зима", "ЗИМА"),
            ("straße", "STRASSE"),
        ] {
            assert_eq!(CouponKey::of(a), CouponKey::of(b), "{a} {b}");
        }
        assert_ne!(CouponKey::of("été10"), CouponKey::of("ete10"), "accents are letters");
    }

    #[test]
    fn a_coupon_with_lower_case_non_ascii_letters_has_its_older_key_too() {
        assert_eq!(CouponKey::legacy("été10").unwrap().as_str(), "éTé10");
        assert_eq!(CouponKey::legacy("amy10"), None);
        assert_eq!(CouponKey::legacy("ÉTÉ10"), None);
    }

    #[test]
    fn blank_long_or_spaced_coupons_are_refused() {
        for bad in ["", "A B", "a\n", &"x".repeat(65)] {
            assert!(Coupon::parse(bad).is_err(), "{bad:?}");
        }
    }
}
