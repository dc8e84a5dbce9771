//! Coupon codes. A coupon names one link; two coupons that differ only in the case of ASCII
//! letters are the same coupon (`amy10` is `AMY10`), as shop platforms treat discount codes.
//! Nothing else folds: `straße` and `STRASSE`, `Ä` and `ä` are different coupons (Unicode
//! case mapping changes lengths and differs by language, so it is not used). That rule lives
//! here and nowhere else: every store keeps coupons by their `CouponKey`.

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
    /// Folds the case of what a shop or a user sent.
    pub fn of(coupon: &str) -> Self {
        Self(coupon.to_ascii_uppercase())
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
        assert_ne!(CouponKey::of("straße"), CouponKey::of("STRASSE"));
        assert_ne!(CouponKey::of("ä"), CouponKey::of("Ä"));
    }

    #[test]
    fn blank_long_or_spaced_coupons_are_refused() {
        for bad in ["", "A B", "a\n", &"x".repeat(65)] {
            assert!(Coupon::parse(bad).is_err(), "{bad:?}");
        }
    }
}
