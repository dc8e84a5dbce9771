//! Which link a conversion belongs to, and why. Pure rules; the lookups happen in
//! `crate::conversions`.
//!
//! Candidates come in API.md's order: the click id, then the coupon, then the link code. The
//! first candidate that qualifies wins. A click later than the conversion never qualifies (the
//! next method is tried). Only a click can be too old: a click older than its
//! campaign's attribution window at `occurred_at` does not qualify, and when nothing else does,
//! the conversion is `outside_window` (stored with that link, but not counted). A currency other
//! than the campaign's makes it `currency_mismatch` (stored, not counted: sums never mix
//! currencies).

use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::domain::{ConversionStatus, Currency, Method};

/// A link a conversion may belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub method: Method,
    pub link: String,
    pub kol: String,
    pub campaign: String,
    pub window_days: u32,
    pub currency: Currency,
    /// Whether the campaign's currency is locked already (it has conversions).
    pub currency_locked: bool,
    /// When the click happened (for `Method::ClickId`).
    pub click_at: Option<DateTime<Utc>>,
    /// Which of the conversion's claims it came from (its place in the audit trail).
    pub claim: usize,
}

/// Why a candidate does not qualify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unqualified {
    AfterConversion,
    OutsideWindow,
}

/// Whether a candidate qualifies for a conversion at `occurred_at`.
pub fn check(c: &Candidate, occurred_at: DateTime<Utc>) -> Result<(), Unqualified> {
    let Some(at) = c.click_at else { return Ok(()) };
    // Shops send times to the second: a click in the conversion's own second qualifies.
    if at.trunc_subsecs(0) > occurred_at {
        return Err(Unqualified::AfterConversion);
    }
    if occurred_at - at > Duration::days(i64::from(c.window_days)) {
        return Err(Unqualified::OutsideWindow);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: ConversionStatus,
    pub chosen: Option<Candidate>,
    /// The conversion's currency: the one sent, else the chosen campaign's.
    pub currency: Option<Currency>,
}

pub fn decide(candidates: Vec<Candidate>, occurred_at: DateTime<Utc>, currency: Option<Currency>) -> Decision {
    let candidates: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| check(c, occurred_at) != Err(Unqualified::AfterConversion))
        .collect();
    let in_window = |c: &Candidate| check(c, occurred_at).is_ok();
    let Some(first) = candidates.first().cloned() else {
        return Decision {
            status: ConversionStatus::Unattributed,
            chosen: None,
            currency,
        };
    };
    let Some(chosen) = candidates.into_iter().find(in_window) else {
        let currency = currency.or_else(|| Some(first.currency.clone()));
        return Decision {
            status: ConversionStatus::OutsideWindow,
            chosen: Some(first),
            currency,
        };
    };
    let status = match &currency {
        Some(c) if *c != chosen.currency => ConversionStatus::CurrencyMismatch,
        _ => ConversionStatus::Attributed,
    };
    let currency = currency.or_else(|| Some(chosen.currency.clone()));
    Decision {
        status,
        chosen: Some(chosen),
        currency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 9, 0, 0).unwrap()
    }

    fn twd() -> Currency {
        Currency::parse("TWD").unwrap()
    }

    fn click(link: &str, day: u32) -> Candidate {
        Candidate {
            method: Method::ClickId,
            link: link.into(),
            kol: "amy".into(),
            campaign: "spring".into(),
            window_days: 7,
            currency: twd(),
            currency_locked: true,
            click_at: Some(at(day)),
            claim: 0,
        }
    }

    fn coupon(link: &str) -> Candidate {
        Candidate {
            method: Method::Coupon,
            click_at: None,
            ..click(link, 1)
        }
    }

    #[test]
    fn nothing_to_go_on_is_unattributed() {
        let d = decide(vec![], at(20), None);
        assert_eq!(d.status, ConversionStatus::Unattributed);
        assert_eq!(d.chosen, None);
    }

    #[test]
    fn a_click_inside_the_window_wins() {
        let d = decide(vec![click("a", 14), coupon("b")], at(20), None);
        assert_eq!(d.status, ConversionStatus::Attributed);
        assert_eq!(d.chosen.unwrap().link, "a");
        assert_eq!(d.currency, Some(twd()));
    }

    #[test]
    fn the_window_edge_is_inclusive() {
        assert_eq!(
            decide(vec![click("a", 13)], at(20), None).status,
            ConversionStatus::Attributed
        );
    }

    #[test]
    fn an_old_click_gives_way_to_a_coupon() {
        let d = decide(vec![click("a", 1), coupon("b")], at(20), None);
        assert_eq!(d.status, ConversionStatus::Attributed);
        assert_eq!(d.chosen.unwrap().method, Method::Coupon);
    }

    #[test]
    fn an_old_click_alone_is_outside_the_window() {
        let d = decide(vec![click("a", 1)], at(20), None);
        assert_eq!(d.status, ConversionStatus::OutsideWindow);
        assert_eq!(d.chosen.unwrap().link, "a");
    }

    #[test]
    fn a_click_after_the_conversion_gives_way_to_the_next_method() {
        let d = decide(vec![click("a", 21), coupon("b")], at(20), None);
        assert_eq!(d.chosen.unwrap().method, Method::Coupon);
        let d = decide(vec![click("a", 21)], at(20), None);
        assert_eq!((d.status, d.chosen), (ConversionStatus::Unattributed, None));
    }

    #[test]
    fn another_currency_is_a_mismatch() {
        let d = decide(vec![coupon("b")], at(20), Some(Currency::parse("USD").unwrap()));
        assert_eq!(d.status, ConversionStatus::CurrencyMismatch);
        assert_eq!(d.currency.unwrap().as_str(), "USD");
    }
}
