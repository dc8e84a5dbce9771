//! The names of a link's counters, shared by every store.
//!
//! A link's counters live in one flat map of `field → integer` (a Redis hash; a table in the
//! embedded store). Counts are kept per UTC hour, breakdowns per UTC day, so any date range can
//! be summed at read time and no rate is ever stored. Fields:
//!
//! | field                         | counts                                   |
//! |-------------------------------|------------------------------------------|
//! | `c|<day>|<hh>`                | human clicks in that hour                |
//! | `b|<day>|<hh>`                | bot clicks (link-preview fetchers …)     |
//! | `pv|<day>|<app>`              | link-preview fetches, by app             |
//! | `s|<day>|<hh>`                | suspicious clicks (not counted as clicks)|
//! | `p|<day>|<hh>`                | pixel impressions                        |
//! | `e|<event>|<day>|<hh>`        | attributed conversions of that event     |
//! | `r|<day>|<hh>`                | attributed purchase revenue, minor units |
//! | `f|<day>|<hh>`                | attributed refunds, minor units          |
//! | `x|<dim>|<day>|<value>`       | human clicks by breakdown dimension      |
//!
//! `<dim>` is a `Dimension::tag`. Unique visitors are kept apart, one set per link and day:
//! [`visit`] says which clicks count as visitors and on which day.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use crate::domain::{ClickInfo, Conversion, Dimension, Event};
use crate::store::Visit;

/// `YYYY-MM-DD` of a UTC time; written by hand because chrono's `format` parses its pattern
/// on every call, and this runs for every click.
pub fn day_string(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

fn hour_key(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}|{:02}", t.year(), t.month(), t.day(), t.hour())
}

/// The fields one click increments by one.
pub fn click_fields(at: DateTime<Utc>, click: &ClickInfo) -> Vec<String> {
    if click.bot {
        let mut fields = vec![format!("b|{}", hour_key(at))];
        if !click.preview.is_empty() {
            fields.push(format!("pv|{}|{}", day_string(at), clean(&click.preview)));
        }
        return fields;
    }
    if click.suspicious {
        return vec![format!("s|{}", hour_key(at))];
    }
    let day = day_string(at);
    let mut fields = vec![format!("c|{}", hour_key(at))];
    for (dim, value) in click.dims.iter() {
        if !value.is_empty() {
            fields.push(format!("x|{}|{day}|{}", dim.tag(), clean(value)));
        }
    }
    fields
}

/// The unique visit a click adds: a person's visitor hash on the click's UTC day. Bots,
/// suspicious clicks and clicks without a visitor hash add none.
pub fn visit(at: DateTime<Utc>, click: &ClickInfo) -> Option<Visit> {
    (!click.bot && !click.suspicious && !click.visitor.is_empty()).then(|| Visit {
        day: day_string(at),
        visitor: click.visitor.clone(),
    })
}

/// The field a pixel impression increments.
pub fn pixel_field(at: DateTime<Utc>) -> String {
    format!("p|{}", hour_key(at))
}

/// The (field, amount) pairs an attributed conversion adds, bucketed by when it occurred.
pub fn conversion_fields(c: &Conversion) -> Vec<(String, i64)> {
    let h = hour_key(c.occurred_at);
    let mut out = vec![(format!("e|{}|{h}", c.event.as_str()), 1)];
    if let Some(amount) = c.amount {
        match c.event {
            Event::Purchase => out.push((format!("r|{h}"), amount.minor())),
            Event::Refund => out.push((format!("f|{h}"), amount.minor())),
            _ => {}
        }
    }
    out
}

/// A counter field read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<'a> {
    Clicks {
        day: NaiveDate,
        hour: u32,
    },
    Bots {
        day: NaiveDate,
        hour: u32,
    },
    Suspicious {
        day: NaiveDate,
        hour: u32,
    },
    Preview {
        day: NaiveDate,
        app: &'a str,
    },
    Pixel {
        day: NaiveDate,
        hour: u32,
    },
    Event {
        event: Event,
        day: NaiveDate,
        hour: u32,
    },
    Revenue {
        day: NaiveDate,
        hour: u32,
    },
    Refunds {
        day: NaiveDate,
        hour: u32,
    },
    Breakdown {
        dim: Dimension,
        day: NaiveDate,
        value: &'a str,
    },
}

impl Field<'_> {
    /// The UTC day the field counts.
    pub fn day(&self) -> NaiveDate {
        match self {
            Field::Clicks { day, .. }
            | Field::Bots { day, .. }
            | Field::Suspicious { day, .. }
            | Field::Preview { day, .. }
            | Field::Pixel { day, .. }
            | Field::Event { day, .. }
            | Field::Revenue { day, .. }
            | Field::Refunds { day, .. }
            | Field::Breakdown { day, .. } => *day,
        }
    }
}

pub fn parse_field(f: &str) -> Option<Field<'_>> {
    let mut it = f.splitn(4, '|');
    let kind = it.next()?;
    let day_hour = |day: &str, hour: &str| -> Option<(NaiveDate, u32)> {
        let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        let h: u32 = hour.parse().ok().filter(|h| *h < 24)?;
        Some((d, h))
    };
    match kind {
        "pv" => {
            let day = NaiveDate::parse_from_str(it.next()?, "%Y-%m-%d").ok()?;
            Some(Field::Preview { day, app: it.next()? })
        }
        "c" | "b" | "s" | "p" | "r" | "f" => {
            let (day, hour) = day_hour(it.next()?, it.next()?)?;
            Some(match kind {
                "c" => Field::Clicks { day, hour },
                "b" => Field::Bots { day, hour },
                "s" => Field::Suspicious { day, hour },
                "p" => Field::Pixel { day, hour },
                "r" => Field::Revenue { day, hour },
                _ => Field::Refunds { day, hour },
            })
        }
        "e" => {
            let event = Event::parse(it.next()?)?;
            let (day, hour) = day_hour(it.next()?, it.next()?)?;
            Some(Field::Event { event, day, hour })
        }
        "x" => {
            let dim = Dimension::from_tag(it.next()?)?;
            let day = NaiveDate::parse_from_str(it.next()?, "%Y-%m-%d").ok()?;
            Some(Field::Breakdown {
                dim,
                day,
                value: it.next()?,
            })
        }
        _ => None,
    }
}

/// Breakdown values are short, printable and free of the field separator.
fn clean(v: &str) -> String {
    v.chars().filter(|c| !c.is_control() && *c != '|').take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_human_click_counts_its_hour_and_breakdowns() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 8, 15, 0).unwrap();
        let click = ClickInfo {
            visitor: "v1".into(),
            dims: crate::domain::Dimensions::default()
                .with(Dimension::Referrer, "instagram.com")
                .with(Dimension::Device, "mobile")
                .with(Dimension::Source, "qr"),
            ..ClickInfo::default()
        };
        let fields = click_fields(at, &click);
        assert_eq!(
            fields,
            [
                "c|2026-11-22|08",
                "x|ref|2026-11-22|instagram.com",
                "x|dev|2026-11-22|mobile",
                "x|src|2026-11-22|qr"
            ]
        );
        for f in &fields {
            assert!(parse_field(f).is_some(), "{f}");
        }
        assert_eq!(
            visit(at, &click),
            Some(Visit {
                day: "2026-11-22".into(),
                visitor: "v1".into()
            })
        );
        assert_eq!(
            parse_field(&fields[1]),
            Some(Field::Breakdown {
                dim: Dimension::Referrer,
                day: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
                value: "instagram.com"
            })
        );
    }

    #[test]
    fn a_bot_click_counts_only_as_a_bot() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 23, 0, 0).unwrap();
        let fields = click_fields(
            at,
            &ClickInfo {
                bot: true,
                dims: crate::domain::Dimensions::default().with(Dimension::Referrer, "x.com"),
                ..Default::default()
            },
        );
        assert_eq!(fields, ["b|2026-11-22|23"]);
        let preview = ClickInfo {
            bot: true,
            preview: "line".into(),
            ..Default::default()
        };
        let fields = click_fields(at, &preview);
        assert_eq!(fields, ["b|2026-11-22|23", "pv|2026-11-22|line"]);
        assert_eq!(
            parse_field(&fields[1]),
            Some(Field::Preview {
                day: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
                app: "line"
            })
        );
        let suspicious = ClickInfo {
            suspicious: true,
            visitor: "v1".into(),
            ..Default::default()
        };
        assert_eq!(click_fields(at, &suspicious), ["s|2026-11-22|23"]);
        assert_eq!(visit(at, &suspicious), None);
        let bot = ClickInfo {
            bot: true,
            visitor: "v1".into(),
            ..Default::default()
        };
        assert_eq!(visit(at, &bot), None, "bots are never visitors");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        for f in [
            "",
            "z|2026-11-22|01",
            "c|2026-11-22|24",
            "c|nope|01",
            "x|zz|2026-11-22|a",
            "e|buy|2026-11-22|01",
        ] {
            assert_eq!(parse_field(f), None, "{f}");
        }
    }
}
