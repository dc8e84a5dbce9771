//! Money as integer minor units (two fraction digits), never a float; and ISO 4217 currencies.
//!
//! Inputs may be a JSON number or a decimal string with at most two fraction digits (a shop
//! platform's amounts with more are rounded: `from_platform_json`). A JSON number is read from
//! its decimal text, not converted through `f64` arithmetic.

use std::fmt;

use super::Invalid;

/// Largest accepted amount: 10^13 minor units (one hundred billion), so sums never overflow.
const MAX_MINOR: i64 = 10_000_000_000_000;

fn too_large(what: &str) -> Invalid {
    Invalid::new(format!("{what} is more than the largest amount, \"100000000000.00\""))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Money(i64);

/// How an amount finer than the minor unit is rounded (`Money::from_platform_json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Half away from zero: what is paid.
    HalfUp,
    /// Towards zero: what is taken back.
    Down,
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_minor(minor: i64) -> Self {
        Self(minor)
    }

    pub fn minor(self) -> i64 {
        self.0
    }

    /// An amount of `minor` units computed from others (a conversion), if it is a valid one:
    /// not negative, and not past the largest.
    pub fn checked_from_minor(minor: i128) -> Option<Self> {
        i64::try_from(minor)
            .ok()
            .filter(|m| (0..=MAX_MINOR).contains(m))
            .map(Self)
    }

    /// Parses a non-negative decimal amount such as `1280`, `1280.5` or `"1280.00"`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = || {
            Invalid::new(format!(
                "'{}' is not a valid amount: use a non-negative decimal with at most two fraction digits, e.g. \"1280.00\"",
                super::slug::truncate(s)
            ))
        };
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let too_large = || too_large(&format!("'{}'", super::slug::truncate(s)));
        if int.is_empty()
            || frac.len() > 2
            || (s.contains('.') && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if int.trim_start_matches('0').len() > 12 {
            return Err(too_large());
        }
        let whole: i64 = int.parse().map_err(|_| bad())?;
        let mut cents: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        if frac.len() == 1 {
            cents *= 10;
        }
        let minor = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .filter(|m| *m <= MAX_MINOR)
            .ok_or_else(too_large)?;
        Ok(Self(minor))
    }

    /// Parses a JSON value that is a number or a string.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, Invalid> {
        match v {
            serde_json::Value::String(s) => Self::parse(s),
            serde_json::Value::Number(n) => {
                // Past u64, serde_json keeps a number as a float, printed in exponent form.
                if n.as_f64().is_some_and(|f| f > (MAX_MINOR / 100) as f64) {
                    return Err(too_large("the amount"));
                }
                let text = n.to_string();
                // serde_json prints floats such as 1e21 in exponent form: those are not money.
                Self::parse(text.strip_suffix(".0").unwrap_or(&text))
            }
            _ => Err(Invalid::new(
                "an amount must be a number or a decimal string such as \"1280.00\"",
            )),
        }
    }

    /// An amount as a shop platform writes it: as `from_json`, but more than two fraction
    /// digits (Shopify and WooCommerce write the store's own, three for KWD, BHD, OMR, JOD …)
    /// are rounded to the minor unit kolink keeps, instead of refused: a shop's order is never
    /// turned away for its format. Purchases round half away from zero, refunds down
    /// ([`Round`]), so that an order's refunds, each rounded, never add up past its rounded
    /// total (which would make the last of them an over-refund).
    pub fn from_platform_json(v: &serde_json::Value, round: Round) -> Result<Self, Invalid> {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Self::from_json(v),
        };
        match text.split_once('.') {
            Some((int, frac)) if frac.len() > 2 && frac.bytes().all(|b| b.is_ascii_digit()) => {
                let up = match round {
                    Round::HalfUp => frac.as_bytes()[2] >= b'5',
                    Round::Down => false,
                };
                let kept = Self::from_json(&serde_json::Value::String(format!("{int}.{}", &frac[..2])))?;
                let rounded = kept.0 + i64::from(up);
                if rounded > MAX_MINOR {
                    return Err(too_large(&format!("'{}'", super::slug::truncate(&text))));
                }
                Ok(Self(rounded))
            }
            _ => Self::from_json(v),
        }
    }

    /// `self / n`, rounded half away from zero to the minor unit; `None` when `n` is zero.
    pub fn div_round(self, n: u64) -> Option<Money> {
        if n == 0 {
            return None;
        }
        let n = n as i128;
        let a = self.0 as i128;
        let q = (2 * a.abs() + n) / (2 * n);
        Some(Money((if a < 0 { -q } else { q }) as i64))
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, o: Money) -> Money {
        Money(self.0.saturating_sub(o.0))
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Amount)
    }
}

/// Reads an amount as `Money::from_json` reads the JSON value it arrives as, without building
/// that value for a string (what kolink writes): a report of a campaign's first read decodes
/// one cost per link.
struct Amount;

impl Amount {
    fn number<E: serde::de::Error>(n: serde_json::Number) -> Result<Money, E> {
        Money::from_json(&serde_json::Value::Number(n)).map_err(E::custom)
    }

    fn other<E: serde::de::Error>() -> Result<Money, E> {
        Money::from_json(&serde_json::Value::Null).map_err(E::custom)
    }
}

impl<'de> serde::de::Visitor<'de> for Amount {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a decimal string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Money, E> {
        Money::parse(v).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Money, E> {
        Self::number(v.into())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Money, E> {
        Self::number(v.into())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Money, E> {
        serde_json::Number::from_f64(v).map_or_else(Self::other, Self::number)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Money, E> {
        Self::other()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Money, E> {
        Self::other()
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Money, E> {
        Self::other()
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Money, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Self::other()
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Money, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Self::other()
    }
}

/// An ISO 4217 code: three ASCII letters, kept upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(Invalid::new(format!(
                "'{}' is not a currency: use a three-letter ISO 4217 code such as \"TWD\"",
                super::slug::truncate(s)
            )))
        }
    }

    /// A currency typed by a user (a campaign's, the default): one the ISO 4217 list has, so
    /// that a typo ("TWN") is refused where it is typed rather than turning every purchase into
    /// a currency mismatch. A shop's delivery keeps `parse`: a currency the list lacks there is
    /// stored, not refused.
    pub fn parse_listed(s: &str) -> Result<Self, Invalid> {
        let c = Self::parse(s)?;
        match iso_currency::Currency::from_code(c.as_str()) {
            Some(_) => Ok(c),
            None => Err(Invalid::new(format!(
                "'{}' is not an ISO 4217 currency code: use one such as \"TWD\", \"USD\" or \"JPY\"",
                c.as_str()
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_str(d, "a string", Currency::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_amounts_past_two_fraction_digits_are_rounded_not_refused() {
        let read = |v: serde_json::Value| Money::from_platform_json(&v, Round::HalfUp).map(|m| m.minor());
        assert_eq!(read(serde_json::json!("12.500")).unwrap(), 1250);
        assert_eq!(read(serde_json::json!("12.345")).unwrap(), 1235);
        assert_eq!(read(serde_json::json!("12.3449")).unwrap(), 1234);
        assert_eq!(read(serde_json::json!("0.005")).unwrap(), 1);
        assert_eq!(read(serde_json::json!("99.995")).unwrap(), 10000);
        assert_eq!(read(serde_json::json!(7.125)).unwrap(), 713);
        assert_eq!(read(serde_json::json!("1280.00")).unwrap(), 128000);
        assert_eq!(read(serde_json::json!(1280)).unwrap(), 128000);
        assert!(read(serde_json::json!("12.5x5")).is_err());
        assert!(read(serde_json::json!("-1.000")).is_err());
        assert!(read(serde_json::json!("100000000000.005")).is_err(), "past the largest");
        assert!(
            Money::parse("12.500").is_err(),
            "the API's own inputs stay at two digits"
        );
        // Refunds round down: two refunds of 0.505 of a 1.010 order (1.01) take 1.00, not 1.02.
        let down = |s: &str| {
            Money::from_platform_json(&serde_json::json!(s), Round::Down)
                .unwrap()
                .minor()
        };
        assert_eq!((down("0.505"), down("0.509"), down("12.50")), (50, 50, 1250));
    }
    use serde_json::json;

    #[test]
    fn parses_strings_with_up_to_two_fraction_digits() {
        assert_eq!(Money::parse("5000").unwrap().minor(), 500_000);
        assert_eq!(Money::parse("1280.5").unwrap().minor(), 128_050);
        assert_eq!(Money::parse("1280.05").unwrap().minor(), 128_005);
        assert_eq!(Money::parse("0.01").unwrap().minor(), 1);
        assert_eq!(Money::parse("0").unwrap().minor(), 0);
    }

    #[test]
    fn a_users_currency_is_one_iso_4217_lists_and_a_shops_any_three_letters() {
        assert_eq!(Currency::parse_listed("twd").unwrap().as_str(), "TWD");
        assert!(Currency::parse_listed("JPY").is_ok());
        assert!(Currency::parse_listed("TWN")
            .unwrap_err()
            .to_string()
            .contains("ISO 4217"));
        assert!(Currency::parse_listed("TW").is_err());
        assert_eq!(Currency::parse("XBT").unwrap().as_str(), "XBT");
    }

    #[test]
    fn an_amount_past_the_largest_says_so() {
        assert_eq!(Money::parse("100000000000.00").unwrap().minor(), MAX_MINOR);
        assert_eq!(Money::parse("000100000000000").unwrap().minor(), MAX_MINOR);
        for big in ["100000000000.01", "999999999999", "99999999999999999999"] {
            let e = Money::parse(big).unwrap_err().to_string();
            assert!(e.contains("largest amount"), "{big}: {e}");
        }
        assert!(Money::parse("12.345")
            .unwrap_err()
            .to_string()
            .contains("two fraction digits"));
        let e = Money::from_json(&json!(99999999999999999999.0))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "the amount is more than the largest amount, \"100000000000.00\"");
        assert!(Money::from_json(&json!(100000000000.0)).is_ok());
    }

    #[test]
    fn rejects_bad_amounts() {
        for s in [
            "",
            "-1",
            "1.234",
            "1.",
            ".5",
            "1,5",
            "abc",
            "1e3",
            " 1",
            "NaN",
            "100000000000000",
        ] {
            assert!(Money::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn parses_json_numbers_without_float_arithmetic() {
        assert_eq!(Money::from_json(&json!(5000)).unwrap().minor(), 500_000);
        assert_eq!(Money::from_json(&json!(19.99)).unwrap().minor(), 1999);
        assert_eq!(Money::from_json(&json!(0.1)).unwrap().minor(), 10);
        assert_eq!(Money::from_json(&json!(1280.0)).unwrap().minor(), 128_000);
        assert!(Money::from_json(&json!(1.005)).is_err());
        assert!(Money::from_json(&json!(-3)).is_err());
        assert!(Money::from_json(&json!(true)).is_err());
        assert!(Money::from_json(&json!(1e30)).is_err());
    }

    #[test]
    fn deserializes_as_from_json_reads_the_same_json() {
        for text in [
            r#""1280.50""#,
            r#""12\u00380""#,
            "5000",
            "19.99",
            "1280.0",
            "1.005",
            "-3",
            "1e30",
            "18446744073709551615",
            r#""abc""#,
            "true",
            "null",
            "[1]",
            r#"{"amount":1}"#,
        ] {
            let direct = serde_json::from_str::<Money>(text).map_err(|e| e.to_string());
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let through_value = Money::from_json(&value).map_err(|e| e.to_string());
            match (&direct, &through_value) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert!(a.starts_with(b.as_str()), "{text}: {a} against {b}"),
                _ => panic!("{text}: {direct:?} against {through_value:?}"),
            }
        }
        let field = serde_json::from_str::<Vec<Money>>(r#"["1.00", true]"#)
            .unwrap_err()
            .to_string();
        assert!(field.contains("an amount must be a number"), "{field}");
    }

    #[test]
    fn formats_with_two_fraction_digits() {
        assert_eq!(Money::from_minor(128_000).to_string(), "1280.00");
        assert_eq!(Money::from_minor(5).to_string(), "0.05");
        assert_eq!(Money::from_minor(-128_050).to_string(), "-1280.50");
        assert_eq!(serde_json::to_string(&Money::from_minor(1)).unwrap(), "\"0.01\"");
    }

    #[test]
    fn divides_with_half_away_from_zero_rounding() {
        // 56320.00 / 1500 = 37.5466… → 37.55
        assert_eq!(
            Money::from_minor(5_632_000).div_round(1500).unwrap().to_string(),
            "37.55"
        );
        // 5000.00 / 1500 = 3.333… → 3.33
        assert_eq!(Money::from_minor(500_000).div_round(1500).unwrap().to_string(), "3.33");
        assert_eq!(Money::from_minor(1).div_round(2).unwrap().minor(), 1);
        assert_eq!(Money::from_minor(-1).div_round(2).unwrap().minor(), -1);
        assert_eq!(Money::from_minor(10).div_round(0), None);
    }

    #[test]
    fn currencies_are_three_letters_upper_cased() {
        assert_eq!(Currency::parse("twd").unwrap().as_str(), "TWD");
        for s in ["", "TW", "TWDD", "T1D", "€€€"] {
            assert!(Currency::parse(s).is_err(), "{s}");
        }
    }
}
