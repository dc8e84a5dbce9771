//! The names of a link's counters, shared by every store.
//!
//! A link's counters live in one flat map of `field → integer` (a Redis hash; a table in the
//! embedded store). Counts are kept per UTC hour, breakdowns per UTC day, so any date range can
//! be summed at read time and no rate is ever stored. Hours are kept for
//! `hourly_retention_days` only (`crate::hours`), days for ever. Fields:
//!
//! | field                         | counts                                   |
//! |-------------------------------|------------------------------------------|
//! | `c\|<day>\|<hh>`                | human clicks in that hour                |
//! | `b\|<day>\|<hh>`                | bot clicks (link-preview fetchers …)     |
//! | `pv\|<day>\|<app>`              | link-preview fetches, by app             |
//! | `s\|<day>\|<hh>`                | suspicious clicks (not counted as clicks)|
//! | `p\|<day>\|<hh>`                | pixel impressions                        |
//! | `e\|<event>\|<day>\|<hh>`        | attributed conversions of that event     |
//! | `r\|<day>\|<hh>`                | attributed purchase revenue, minor units |
//! | `f\|<day>\|<hh>`                | attributed refunds, minor units          |
//! | `x\|<dim>\|<day>\|<value>`       | human clicks by breakdown dimension      |
//!
//! `<dim>` is a `Dimension::tag`. Unique visitors are kept apart, one set per link and day:
//! [`visit`] says which clicks count as visitors and on which day.
//!
//! **Rollups.** Every increment also goes to a second, small map per link, written in the same
//! atomic step by the store: [`rollups`] names its fields. It holds each day's totals
//! (`c|<day>`, `b|<day>`, `s|<day>`, `p|<day>`, `e|<event>|<day>`, `r|<day>`, `f|<day>`), the
//! day's unique visitors as the store counted them exactly (`u|<day>`, up to
//! `store::EXACT_VISITORS`), and the all-time breakdowns (`x|<dim>|<value>`, `pv|<app>`, and
//! `h|<hh>`, clicks by hour of day). A report over every day reads that map alone: a few
//! fields per active day instead of every hour and every day's breakdowns. Reports over a range
//! of days, and hourly series, read the full map beside it for its hours and daily breakdowns,
//! but for a link whose every day lies in the range and keeps its hours ([`days_within`]): its
//! all-time breakdowns are then the range's, and its rollups answer alone. Days always come
//! from the rollups, because the full map's hours of old days are pruned (`crate::hours`). The
//! maps are read back as a [`Tally`].
//! On Redis the rollups also hold a copy of each day's reported metrics (`m|<day>`, JSON), which
//! reports read from there; a tally leaves them out.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use crate::domain::{ClickInfo, Conversion, Dimension, Event};
use crate::store::Visit;

/// `YYYY-MM-DD` of a UTC time; written digit by digit because chrono's `format` parses its
/// pattern on every call, and `format!` costs about as much again: this runs for every click.
pub fn day_string(t: DateTime<Utc>) -> String {
    let mut s = String::with_capacity(13);
    push_day(&mut s, t);
    s
}

/// `YYYY-MM-DD|hh`.
fn hour_key(t: DateTime<Utc>) -> String {
    hour_field("", t)
}

/// `<prefix>YYYY-MM-DD|hh`, one string built once: counter fields are made for every click.
fn hour_field(prefix: &str, t: DateTime<Utc>) -> String {
    let mut s = String::with_capacity(prefix.len() + 13);
    s.push_str(prefix);
    push_day(&mut s, t);
    s.push('|');
    push_digits(&mut s, t.hour(), 2);
    s
}

fn push_day(s: &mut String, t: DateTime<Utc>) {
    match u32::try_from(t.year()) {
        Ok(y) if y <= 9999 => push_digits(s, y, 4),
        // Outside years 0 to 9999, as `{:04}` writes them.
        _ => s.push_str(&format!("{:04}", t.year())),
    }
    s.push('-');
    push_digits(s, t.month(), 2);
    s.push('-');
    push_digits(s, t.day(), 2);
}

/// The last `width` decimal digits of `n`, zero-padded.
fn push_digits(s: &mut String, n: u32, width: u32) {
    for k in (0..width).rev() {
        s.push(char::from(b'0' + (n / 10u32.pow(k) % 10) as u8));
    }
}

/// The fields one click increments by one.
pub fn click_fields(at: DateTime<Utc>, click: &ClickInfo) -> Vec<String> {
    if click.bot {
        let mut fields = vec![hour_field("b|", at)];
        if !click.preview.is_empty() {
            fields.push(format!("pv|{}|{}", day_string(at), clean(&click.preview)));
        }
        return fields;
    }
    if click.suspicious {
        return vec![hour_field("s|", at)];
    }
    let day = day_string(at);
    let mut fields = Vec::with_capacity(1 + Dimension::ALL.len());
    fields.push(hour_field("c|", at));
    for (dim, value) in click.dims.iter() {
        if !value.is_empty() {
            let tag = dim.tag();
            let mut f = String::with_capacity(4 + tag.len() + day.len() + value.len());
            f.push_str("x|");
            f.push_str(tag);
            f.push('|');
            f.push_str(&day);
            f.push('|');
            push_clean(&mut f, value);
            fields.push(f);
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

/// The rollup field of a day's new unique visitors.
pub fn visitors_field(day: &str) -> String {
    format!("u|{day}")
}

/// The rollup fields that an increment of `field` also adds to (see the module doc): its day's
/// total, and for clicks the hour of day; for breakdowns and previews the all-time slice.
pub fn rollups(field: &str) -> Vec<String> {
    // Split and joined by hand: this runs for every field of every click.
    let mut parts = [""; 4];
    let mut n = 0;
    for part in field.split('|') {
        let Some(slot) = parts.get_mut(n) else {
            return vec![];
        };
        *slot = part;
        n += 1;
    }
    let join = |ps: &[&str]| {
        let mut s = String::with_capacity(ps.iter().map(|p| p.len() + 1).sum());
        for p in ps {
            if !s.is_empty() {
                s.push('|');
            }
            s.push_str(p);
        }
        s
    };
    match &parts[..n] {
        ["c", day, hour] => vec![join(&["c", day]), join(&["h", hour])],
        [kind @ ("b" | "s" | "p" | "r" | "f"), day, _hour] => vec![join(&[kind, day])],
        ["e", event, day, _hour] => vec![join(&["e", event, day])],
        ["pv", _day, app] => vec![join(&["pv", app])],
        ["x", tag, _day, value] => vec![join(&["x", tag, value])],
        _ => vec![],
    }
}

/// Whether a rollup field counts over every day (an all-time breakdown: `x|`, `pv|`, `h|`),
/// which a report over a range of days does not read.
pub fn is_all_time(rollup: &[u8]) -> bool {
    [&b"x|"[..], b"pv|", b"h|"].iter().any(|p| rollup.starts_with(p))
}

/// Whether every day that a link's rollups name passes `in_range`. Then their all-time
/// breakdowns are the range's: each all-time count is written in the same step as a count of
/// its day (a person's click adds `x|…` and `h|…` with `c|<day>`, a link preview `pv|…` with
/// `b|<day>`; see [`click_fields`] and [`rollups`]). A field of no known shape answers no.
pub fn days_within(rollups: &[(String, i64)], in_range: impl Fn(NaiveDate) -> bool) -> bool {
    rollups.iter().all(|(field, _)| {
        is_all_time(field.as_bytes())
            || field
                .rsplit_once('|')
                .and_then(|(_, day)| parse_day(day))
                .is_some_and(&in_range)
    })
}

/// The prefixes of the hourly fields: a prefix, a day and `|<hh>` make an hourly field, and a
/// prefix and a day its day's rollup. Hourly fields of old days are pruned by these
/// (`crate::hours`); breakdowns, previews and rollups are not hourly.
pub fn hourly_prefixes() -> Vec<String> {
    let mut out: Vec<String> = ["b|", "c|", "f|", "p|", "r|", "s|"].map(str::to_owned).into();
    out.extend(Event::ALL.iter().map(|e| format!("e|{}|", e.as_str())));
    out
}

/// One day's (or hour's) additive counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub clicks: u64,
    pub bots: u64,
    pub suspicious: u64,
    pub pixels: u64,
    /// Attributed conversions, by `Event::ALL` position.
    pub events: [u64; Event::ALL.len()],
    /// Minor units.
    pub revenue: i64,
    pub refunds: i64,
    /// Unique visitors counted exactly (rollups only; see `store::EXACT_VISITORS`).
    pub visitors: u64,
}

impl DayCounts {
    pub fn event(&self, e: Event) -> u64 {
        self.events[event_index(e)]
    }
}

fn event_index(e: Event) -> usize {
    Event::ALL.iter().position(|x| *x == e).unwrap_or(0)
}

/// A breakdown count: human clicks with one value of a dimension (by `Dimension::name`, or
/// `hour_of_day`), or link-preview fetches by app (`preview`), on one day or, from rollups, over
/// every day (`day: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceCount {
    pub dim: &'static str,
    pub day: Option<NaiveDate>,
    pub value: String,
    pub n: u64,
}

/// A link's counters read back and parsed once, from either map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub days: BTreeMap<NaiveDate, DayCounts>,
    /// Hourly counts (clicks, events, revenue); only in a tally of the full map.
    pub hours: BTreeMap<(NaiveDate, u32), DayCounts>,
    pub slices: Vec<SliceCount>,
    /// Its all-time slices (day `None`) count in the range of days it was read for: every day
    /// its rollups name lies in that range ([`days_within`]), so they were read alone.
    pub all_time_in_range: bool,
}

impl Tally {
    /// The tally of a link's full map alone, its days summed from its hours (tests compare it
    /// with the rollups' tally).
    #[cfg(test)]
    pub fn of_counters(counters: impl IntoIterator<Item = (String, i64)>) -> Tally {
        let mut t = Tally::default();
        t.add_full(counters, true, true);
        t
    }

    /// The tally of a link's rollups and, for a range of days or an hourly series, its full
    /// map. Days always come from the rollups: the full map's hours are pruned with age
    /// (`crate::hours`). With the full map come its hours and, unless `every_day` (where the
    /// rollups' all-time breakdowns serve), its daily breakdowns in place of the all-time ones.
    pub fn of_link(
        rollups: impl IntoIterator<Item = (String, i64)>,
        full: Option<impl IntoIterator<Item = (String, i64)>>,
        every_day: bool,
    ) -> Tally {
        let mut t = Tally::default();
        t.add_rollups(rollups, full.is_none() || every_day);
        if let Some(full) = full {
            t.add_full(full, false, !every_day);
        }
        t
    }

    /// Adds a full map's hours and, if asked, its days and its daily breakdowns.
    fn add_full(&mut self, counters: impl IntoIterator<Item = (String, i64)>, days: bool, slices: bool) {
        let t = self;
        for (field, n) in counters {
            let Some(f) = parse_field(&field) else { continue };
            let u = n.max(0) as u64;
            let (day, hour) = match f {
                // The value is the field's last part: its tail.
                Field::Preview { day, app } => {
                    if slices {
                        let at = field.len() - app.len();
                        t.slice("preview", Some(day), tail(field, at), u);
                    }
                    continue;
                }
                Field::Breakdown { dim, day, value } => {
                    if slices {
                        let at = field.len() - value.len();
                        t.slice(dim.name(), Some(day), tail(field, at), u);
                    }
                    continue;
                }
                Field::Clicks { day, hour }
                | Field::Bots { day, hour }
                | Field::Suspicious { day, hour }
                | Field::Pixel { day, hour }
                | Field::Event { day, hour, .. }
                | Field::Revenue { day, hour }
                | Field::Refunds { day, hour } => (day, hour),
            };
            if let (Field::Clicks { .. }, true) = (&f, slices) {
                t.slice("hour_of_day", Some(day), format!("{hour:02}"), u);
            }
            add(t.hours.entry((day, hour)).or_default(), &f, n);
            if days {
                add(t.days.entry(day).or_default(), &f, n);
            }
        }
    }

    /// The tally of a link's rollup map (daily totals, all-time breakdowns). A report over
    /// 10,000 links reads about 60,000 fields, so each is split by hand and a breakdown's value
    /// keeps the field's own allocation.
    pub fn of_rollups(rollups: impl IntoIterator<Item = (String, i64)>) -> Tally {
        let mut t = Tally::default();
        t.add_rollups(rollups, true);
        t
    }

    /// Adds a rollup map's days and, if asked, its all-time breakdowns.
    fn add_rollups(&mut self, rollups: impl IntoIterator<Item = (String, i64)>, slices: bool) {
        let t = self;
        for (field, n) in rollups {
            let u = n.max(0) as u64;
            let Some((kind, rest)) = field.split_once('|') else {
                continue;
            };
            // At most three parts; a fourth makes the field unknown.
            let (second, third) = match rest.split_once('|') {
                Some((_, c)) if c.contains('|') => continue,
                Some((b, c)) => (b, Some(c)),
                None => (rest, None),
            };
            let f = match (kind, third) {
                ("pv" | "h" | "x", _) if !slices => continue,
                ("pv", None) => {
                    let at = kind.len() + 1;
                    t.slice("preview", None, tail(field, at), u);
                    continue;
                }
                ("h", None) => {
                    t.slice("hour_of_day", None, tail(field, 2), u);
                    continue;
                }
                ("x", Some(value)) => {
                    if let Some(dim) = Dimension::from_tag(second) {
                        let at = field.len() - value.len();
                        t.slice(dim.name(), None, tail(field, at), u);
                    }
                    continue;
                }
                ("u", None) => {
                    if let Some(day) = parse_day(second) {
                        t.days.entry(day).or_default().visitors += u;
                    }
                    continue;
                }
                ("e", Some(day)) => Event::parse(second)
                    .zip(parse_day(day))
                    .map(|(event, day)| Field::Event { event, day, hour: 0 }),
                (kind, None) => parse_day(second).and_then(|day| {
                    let hour = 0;
                    Some(match kind {
                        "c" => Field::Clicks { day, hour },
                        "b" => Field::Bots { day, hour },
                        "s" => Field::Suspicious { day, hour },
                        "p" => Field::Pixel { day, hour },
                        "r" => Field::Revenue { day, hour },
                        "f" => Field::Refunds { day, hour },
                        _ => return None,
                    })
                }),
                _ => None,
            };
            if let Some(f) = f {
                add(t.days.entry(f.day()).or_default(), &f, n);
            }
        }
    }

    fn slice(&mut self, dim: &'static str, day: Option<NaiveDate>, value: String, n: u64) {
        self.slices.push(SliceCount { dim, day, value, n });
    }
}

/// The part of `field` from byte `at` on, in the field's own allocation.
fn tail(mut field: String, at: usize) -> String {
    field.drain(..at);
    field
}

/// Adds a daily or hourly field's count to `c`.
fn add(c: &mut DayCounts, f: &Field<'_>, n: i64) {
    let u = n.max(0) as u64;
    match f {
        Field::Clicks { .. } => c.clicks += u,
        Field::Bots { .. } => c.bots += u,
        Field::Suspicious { .. } => c.suspicious += u,
        Field::Pixel { .. } => c.pixels += u,
        Field::Event { event, .. } => c.events[event_index(*event)] += u,
        Field::Revenue { .. } => c.revenue = c.revenue.saturating_add(n),
        Field::Refunds { .. } => c.refunds = c.refunds.saturating_add(n),
        Field::Preview { .. } | Field::Breakdown { .. } => {}
    }
}

/// `YYYY-MM-DD`, read by hand: chrono's `parse_from_str` interprets its pattern on every call,
/// and reports parse every field of every link.
fn parse_day(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
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
        let d = parse_day(day)?;
        let h: u32 = hour.parse().ok().filter(|h| *h < 24)?;
        Some((d, h))
    };
    match kind {
        "pv" => {
            let day = parse_day(it.next()?)?;
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
            let day = parse_day(it.next()?)?;
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
    let mut s = String::with_capacity(v.len().min(400));
    push_clean(&mut s, v);
    s
}

/// `v` without control characters and `|`, at most 100 characters of it, onto `s`.
fn push_clean(s: &mut String, v: &str) {
    if v.len() <= 100 && v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'|') {
        // Printable ASCII, the usual case, as it is.
        s.push_str(v);
    } else {
        s.extend(v.chars().filter(|c| !c.is_control() && *c != '|').take(100));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use chrono::TimeZone;

    #[test]
    fn field_values_lose_control_characters_and_bars_and_stop_at_100_characters() {
        assert_eq!(clean("Instagram"), "Instagram");
        assert_eq!(clean("a|b\tc\u{85}d"), "abcd");
        assert_eq!(clean("台北 Taipei"), "台北 Taipei");
        let long = "é".repeat(150);
        assert_eq!(clean(&long), "é".repeat(100));
        assert_eq!(clean(&"x".repeat(120)), "x".repeat(100));
    }

    #[test]
    fn day_and_hour_keys_read_as_the_formatted_date() {
        for (y, m, d, h) in [
            (2026, 11, 22, 8),
            (2026, 1, 5, 23),
            (999, 12, 31, 0),
            (0, 1, 1, 9),
            (9999, 7, 9, 10),
        ] {
            let t = Utc.with_ymd_and_hms(y, m, d, h, 59, 59).unwrap();
            assert_eq!(day_string(t), format!("{y:04}-{m:02}-{d:02}"));
            assert_eq!(hour_key(t), format!("{y:04}-{m:02}-{d:02}|{h:02}"));
        }
        for y in [-1, 10_000, 262_000] {
            let t = Utc.with_ymd_and_hms(y, 2, 3, 4, 0, 0).unwrap();
            assert_eq!(day_string(t), format!("{y:04}-02-03"));
        }
    }

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
    fn each_counter_rolls_up_into_its_day_and_its_all_time_slice() {
        let cases: [(&str, &[&str]); 11] = [
            ("c|2026-11-22|08", &["c|2026-11-22", "h|08"]),
            ("s|2026-11-22|08", &["s|2026-11-22"]),
            ("x|ref|2026-11-22|instagram.com|more", &[]),
            ("c|2026-11-22", &[]),
            ("b|2026-11-22|08", &["b|2026-11-22"]),
            ("p|2026-11-22|23", &["p|2026-11-22"]),
            ("e|purchase|2026-11-22|08", &["e|purchase|2026-11-22"]),
            ("r|2026-11-22|08", &["r|2026-11-22"]),
            ("pv|2026-11-22|line", &["pv|line"]),
            ("x|ref|2026-11-22|instagram.com", &["x|ref|instagram.com"]),
            ("nonsense", &[]),
        ];
        for (field, rollups) in cases {
            assert_eq!(super::rollups(field), rollups, "{field}");
        }
        let t = Tally::of_rollups(HashMap::from([
            ("c|2026-11-22".to_owned(), 3),
            ("e|signup|2026-11-22".to_owned(), 1),
            ("h|08".to_owned(), 3),
            ("x|dev|mobile".to_owned(), 2),
            ("x|zz|mobile".to_owned(), 9),
            ("c|bad-day".to_owned(), 9),
            ("u|2026-11-22".to_owned(), 2),
            ("pv|line".to_owned(), 4),
            ("x|br|Mobile Safari UI/WKWebView".to_owned(), 1),
            ("x|ref|".to_owned(), 5),
            // Unknown: a fourth part, a part too few, a kind that takes no day.
            ("x|ref|a|b".to_owned(), 9),
            ("c|2026-11-22|08|x".to_owned(), 9),
            ("e|2026-11-22".to_owned(), 9),
            ("c".to_owned(), 9),
            ("h|08|x".to_owned(), 9),
        ]));
        let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(t.days.len(), 1);
        assert_eq!((t.days[&day].clicks, t.days[&day].event(Event::Signup)), (3, 1));
        assert_eq!(t.days[&day].visitors, 2);
        assert_eq!(
            t.slices
                .iter()
                .map(|s| (s.dim, s.day, s.value.as_str(), s.n))
                .collect::<std::collections::BTreeSet<_>>(),
            [
                ("hour_of_day", None, "08", 3),
                ("device", None, "mobile", 2),
                ("preview", None, "line", 4),
                ("browser", None, "Mobile Safari UI/WKWebView", 1),
                ("referrer", None, "", 5),
            ]
            .into_iter()
            .collect()
        );
    }

    /// A link whose hours of 2026-08-01 were pruned: its days still come whole from the
    /// rollups, its hours from the full map, and a range takes the daily breakdowns.
    #[test]
    fn a_links_tally_takes_days_from_the_rollups_and_hours_from_its_full_map() {
        let old = NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
        let new = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let full = || {
            vec![
                ("c|2026-11-22|08".to_owned(), 2),
                ("r|2026-11-22|08".to_owned(), 500),
                ("x|dev|2026-08-01|mobile".to_owned(), 4),
                ("x|dev|2026-11-22|mobile".to_owned(), 2),
            ]
        };
        let rollups = || {
            vec![
                ("c|2026-08-01".to_owned(), 4),
                ("c|2026-11-22".to_owned(), 2),
                ("r|2026-11-22".to_owned(), 500),
                ("u|2026-08-01".to_owned(), 3),
                ("h|08".to_owned(), 2),
                ("h|13".to_owned(), 4),
                ("x|dev|mobile".to_owned(), 6),
            ]
        };
        let slices = |t: &Tally| -> Vec<(&str, Option<NaiveDate>, String, u64)> {
            let mut v: Vec<_> = t.slices.iter().map(|s| (s.dim, s.day, s.value.clone(), s.n)).collect();
            v.sort();
            v
        };

        let ranged = Tally::of_link(rollups(), Some(full()), false);
        assert_eq!((ranged.days[&old].clicks, ranged.days[&old].visitors), (4, 3));
        assert_eq!((ranged.days[&new].clicks, ranged.days[&new].revenue), (2, 500));
        assert_eq!(ranged.hours.len(), 1);
        assert_eq!(ranged.hours[&(new, 8)].revenue, 500);
        assert_eq!(
            slices(&ranged),
            [
                ("device", Some(old), "mobile".to_owned(), 4),
                ("device", Some(new), "mobile".to_owned(), 2),
                ("hour_of_day", Some(new), "08".to_owned(), 2),
            ]
        );

        let every_day = Tally::of_link(rollups(), Some(full()), true);
        assert_eq!(every_day.days, ranged.days);
        assert_eq!(every_day.hours, ranged.hours);
        assert_eq!(slices(&every_day), slices(&Tally::of_rollups(rollups())));

        let rollups_only = Tally::of_link(rollups(), None::<Vec<(String, i64)>>, true);
        assert_eq!(rollups_only, Tally::of_rollups(rollups()));
    }

    /// Every day a link's rollups name, and only days: all-time breakdowns name none, and a
    /// field of no known shape makes the answer no.
    #[test]
    fn a_links_days_are_within_a_range_when_every_day_its_rollups_name_is() {
        let nov = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let in_range = |d: NaiveDate| d >= nov(2) && d <= nov(3);
        let fields = |fs: &[&str]| -> Vec<(String, i64)> { fs.iter().map(|f| ((*f).to_owned(), 1)).collect() };
        let inside = [
            "c|2026-11-02",
            "b|2026-11-03",
            "u|2026-11-02",
            "e|purchase|2026-11-03",
            "r|2026-11-03",
            "x|dev|mobile",
            "x|ref|a|b",
            "pv|line",
            "h|08",
        ];
        assert!(days_within(&fields(&inside), in_range));
        assert!(days_within(&[], in_range));
        for outside in ["c|2026-11-04", "e|signup|2026-10-23", "f|2026-11-01", "u|2026-11-04"] {
            let mut fs = fields(&inside);
            fs.push((outside.to_owned(), 1));
            assert!(!days_within(&fs, in_range), "{outside}");
        }
        for odd in ["c|someday", "q", "c|2026-11-02|08"] {
            assert!(!days_within(&fields(&[odd]), in_range), "{odd}");
        }
    }

    #[test]
    fn all_time_rollups_are_the_breakdowns() {
        for f in ["x|dev|mobile", "pv|line", "h|08"] {
            assert!(is_all_time(f.as_bytes()), "{f}");
        }
        for f in [
            "c|2026-11-22",
            "u|2026-11-22",
            "e|purchase|2026-11-22",
            "m|2026-11-22",
            "r|2026-11-22",
        ] {
            assert!(!is_all_time(f.as_bytes()), "{f}");
        }
    }

    /// Every hourly field is a prefix, a day and an hour, and its day's rollup the prefix and
    /// the day; no other field starts with a prefix.
    #[test]
    fn hourly_fields_are_named_by_their_prefixes() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 8, 15, 0).unwrap();
        let prefixes = hourly_prefixes();
        let mut hourly = click_fields(at, &ClickInfo::default());
        hourly.push(pixel_field(at));
        for event in Event::ALL {
            let c: Conversion = serde_json::from_value(serde_json::json!({
                "id": "c1", "shop": "acme", "order_id": "1", "event": event.as_str(),
                "amount": "1.00", "currency": "USD", "status": "attributed", "method": null,
                "link": null, "kol": null, "campaign": null, "click_id": null, "coupon": null,
                "occurred_at": "2026-11-22T08:15:00Z", "received_at": "2026-11-22T08:15:00Z",
            }))
            .unwrap();
            hourly.extend(conversion_fields(&c).into_iter().map(|(f, _)| f));
        }
        hourly.extend(["b|", "s|"].map(|p| hour_field(p, at)));
        for f in &hourly {
            let prefix = f.strip_suffix("2026-11-22|08").unwrap_or_else(|| panic!("{f}"));
            assert!(prefixes.iter().any(|p| p == prefix), "{f}");
            assert_eq!(rollups(f)[0], format!("{prefix}2026-11-22"), "{f}");
        }
        let not_hourly = ["pv|2026-11-22|line", "x|dev|2026-11-22|mobile", "u|2026-11-22", "h|08"];
        for f in not_hourly {
            assert!(!prefixes.iter().any(|p| f.starts_with(p.as_str())), "{f}");
        }
    }

    #[test]
    fn days_are_read_strictly() {
        assert_eq!(parse_day("2026-02-28"), NaiveDate::from_ymd_opt(2026, 2, 28));
        for bad in ["2026-02-30", "2026-2-28", "2026/02/28", "+026-02-28", "2026-02-28 ", ""] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
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
