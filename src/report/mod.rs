//! Reports: per link (totals, series, breakdowns), per campaign (a row per KOL and per follower
//! tier) and per KOL (a row per campaign). The JSON API and the screens render these same
//! types, so a figure cannot differ between them. Figures come from `crate::stats`; the links
//! they count come in pages, a chunk at a time (`chunks`), and are counted as they come (`counts`).

mod chunks;
mod counts;
mod csv;
mod kol_page;
mod sort;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use serde::Serialize;
use tokio::sync::mpsc;

use self::chunks::pages_of;
use self::counts::{each_counts, LinkCounts};
pub use self::csv::{campaign_csv, CSV_FIGURES};
pub use self::kol_page::{kol_page, KolPage, PageFigures, PageLink, PagePoint};
pub use self::sort::{Figure, Order, Sort, SortKey};

use crate::clock::Clock;
use crate::domain::{Campaign, Event, Kol, LinkSummary, Tier};
use crate::error::ApiError;
use crate::lookup::{self, LinkFilter, LinkLists};
use crate::stats::{
    add_daily, add_hourly, breakdown, point_time, series, Breakdown, BreakdownSums, Counts, Interval, Point, Range,
    Totals,
};
use crate::store::{RecordsExt, Store};

/// A row of a report: what it groups, how many links, and their totals.
#[derive(Debug, Serialize)]
pub struct Row<K> {
    #[serde(flatten)]
    pub key: K,
    pub links: usize,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Serialize)]
pub struct KolKey {
    pub kol: String,
    pub name: String,
    pub tier: Tier,
}

#[derive(Debug, Serialize)]
pub struct TierKey {
    pub tier: Tier,
    pub kols: usize,
}

#[derive(Debug, Serialize)]
pub struct CampaignKey {
    pub campaign: String,
    pub name: String,
    /// The currency of the row's money figures (a KOL's campaigns may use several).
    pub currency: String,
}

#[derive(Debug, Serialize)]
pub struct LinkReport {
    pub code: String,
    pub campaign: String,
    pub kol: String,
    /// The range asked for; `null` ends are open (every day), as the totals are.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub totals: Totals,
    pub series: Vec<Point>,
    pub breakdown: Breakdown,
}

#[derive(Debug, Serialize)]
pub struct CampaignReport {
    pub campaign: String,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub sort: SortKey,
    /// `desc` (largest first) or `asc`.
    pub order: Order,
    pub links: usize,
    pub totals: Totals,
    pub kols: Vec<Row<KolKey>>,
    pub tiers: Vec<Row<TierKey>>,
    /// Daily (or hourly) clicks and conversions of all the campaign's links: over the range
    /// asked for, or else its last 30 days (by the hour, yesterday and today).
    pub series: Vec<PagePoint>,
    /// Human clicks of all the campaign's links by dimension (and previews by app).
    pub breakdown: Breakdown,
    /// Each link's totals by its code, when asked for (`CampaignAsk::per_link`); not in the
    /// JSON.
    #[serde(skip)]
    pub per_link: HashMap<String, Totals>,
}

#[derive(Debug, Serialize)]
pub struct KolReport {
    pub kol: String,
    pub tier: Tier,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub links: usize,
    /// Over every campaign; its money figures are `null` when the campaigns use several
    /// currencies (money is never summed across currencies).
    pub totals: Totals,
    /// The totals of each currency's campaigns, by currency code.
    pub totals_by_currency: BTreeMap<String, Totals>,
    pub campaigns: Vec<Row<CampaignKey>>,
}

/// A link's report; an hourly series may not reach before the hours kept
/// (`hourly_retention_days`, `crate::hours`).
pub async fn link(
    store: &dyn Store,
    clock: &dyn Clock,
    code: &str,
    range: Range,
    interval: Interval,
    hourly_retention_days: u32,
) -> Result<LinkReport, ApiError> {
    let link = lookup::link(store, code).await?;
    let campaign = lookup::campaign(store, link.campaign.as_str()).await?;
    let goals = HashMap::from([(campaign.id.to_string(), campaign.goal_event)]);
    let today = clock.now().date_naive();
    let mut counted = None;
    each_counts(
        store,
        pages_of(&[Arc::from([LinkSummary::from(&link)])]),
        &goals,
        range,
        interval == Interval::Hour,
        crate::hours::first_kept_day(today, hourly_retention_days),
        |_, c| counted = Some(c),
    )
    .await?;
    let c = counted.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no counts for link {code}")))?;
    // An open end of the series reaches as far as the totals do: from the first day with data
    // (or the link's creation) to the last (or today). With one end open, the other, given,
    // is kept within that life too: `from=0000-01-01` would be 740,000 days of nothing.
    let (first, last) = data_days(&c);
    let created = link.created_at.date_naive();
    let life = (
        first.map_or(created, |f| f.min(created)),
        last.map_or(today, |l| l.max(today)),
    );
    let (from, to) = match (range.from, range.to) {
        (Some(from), Some(to)) => (from, to),
        // By the hour, the last days of the link's life, as many as a series spans and whose
        // hours are kept (an old day of insights made it longer than a series may be).
        (None, None) if interval == Interval::Hour => {
            let last_days = life.1.checked_sub_days(Days::new(HOURLY_SERIES_DAYS - 1));
            let kept = crate::hours::first_kept_day(today, hourly_retention_days);
            let from = [Some(life.0), last_days, kept].into_iter().flatten().max();
            (from.unwrap_or(life.0), life.1)
        }
        (from, to) => (
            from.map_or(life.0, |f| f.max(life.0)),
            to.map_or(life.1, |t| t.min(life.1)),
        ),
    };
    let max_days = match interval {
        // An open daily range is the link's life: as long as its data, never capped.
        Interval::Day if range.from.is_none() || range.to.is_none() => u64::MAX,
        Interval::Day => 400,
        Interval::Hour => HOURLY_SERIES_DAYS,
    };
    check_series(from, to, interval, max_days, today, hourly_retention_days)?;
    Ok(LinkReport {
        code: link.code.to_string(),
        campaign: link.campaign.to_string(),
        kol: link.kol.to_string(),
        from: range.from,
        to: range.to,
        totals: c.counts.totals(),
        series: series(&c.tally, &c.uniques, campaign.goal_event, from, to, interval),
        breakdown: breakdown([&c.tally], range),
    })
}

/// An hourly series spans at most this many days.
const HOURLY_SERIES_DAYS: u64 = 31;

/// Refuses a series from `from` to `to` longer than `max_days`, or hourly before the hours
/// kept (`crate::hours`).
fn check_series(
    from: NaiveDate,
    to: NaiveDate,
    interval: Interval,
    max_days: u64,
    today: NaiveDate,
    hourly_retention_days: u32,
) -> Result<(), ApiError> {
    if from
        .checked_add_days(Days::new(max_days))
        .is_some_and(|limit| to >= limit)
    {
        return Err(ApiError::invalid(format!(
            "{} series spans at most {max_days} days: narrow from and to.",
            if interval == Interval::Day {
                "A daily"
            } else {
                "An hourly"
            }
        )));
    }
    if interval == Interval::Hour {
        crate::hours::check_hourly(from, today, hourly_retention_days)?;
    }
    Ok(())
}

/// What a campaign's report is asked for: its range, the order of its rows, and its series'
/// points (a day's or an hour's).
#[derive(Debug, Clone, Copy, Default)]
pub struct CampaignAsk {
    pub range: Range,
    pub sort: Sort,
    pub interval: Interval,
    /// Each link's totals too (`CampaignReport::per_link`): the dashboard's link cards.
    pub per_link: bool,
}

/// The first and last day that a link's counts or insights name.
fn data_days(c: &LinkCounts) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let days = [c.tally.days.first_key_value(), c.tally.days.last_key_value()]
        .into_iter()
        .flatten()
        .map(|(d, _)| *d)
        .chain(c.insights.keys().copied());
    days.fold((None, None), |(lo, hi), d| {
        (
            Some(lo.map_or(d, |l: NaiveDate| l.min(d))),
            Some(hi.map_or(d, |h: NaiveDate| h.max(d))),
        )
    })
}

/// A campaign's report. `hourly_retention_days` says which days keep their hours
/// (`crate::hours`): a range of them can be read from the links' rollups alone. Its series
/// covers the range asked for; without one, the last 30 days, or by the hour yesterday and
/// today (UTC).
pub async fn campaign(
    store: &dyn Store,
    lists: &LinkLists,
    clock: &dyn Clock,
    id: &str,
    ask: CampaignAsk,
    hourly_retention_days: u32,
) -> Result<CampaignReport, ApiError> {
    let CampaignAsk {
        range,
        sort,
        interval,
        per_link,
    } = ask;
    let campaign = lookup::campaign(store, id).await?;
    let today = clock.now().date_naive();
    let hours_kept_from = crate::hours::first_kept_day(today, hourly_retention_days);
    let to = range.to.unwrap_or(today);
    let from = match interval {
        Interval::Day => range
            .from
            .unwrap_or_else(|| to.checked_sub_days(Days::new(29)).unwrap_or(to))
            .max(to.checked_sub_days(Days::new(399)).unwrap_or(to)),
        Interval::Hour => {
            // The day before `to` and `to`; without `to`, yesterday and what of it keeps its
            // hours (all of today does).
            let from = range.from.unwrap_or_else(|| {
                let before = to.checked_sub_days(Days::new(1)).unwrap_or(to);
                match (range.to, hours_kept_from) {
                    (None, Some(kept)) => before.max(kept),
                    _ => before,
                }
            });
            check_series(from, to, interval, HOURLY_SERIES_DAYS, today, hourly_retention_days)?;
            from
        }
    };
    let hourly = interval == Interval::Hour;
    let filter = LinkFilter {
        campaign: Some(campaign.id.to_string()),
        kol: None,
    };
    let goals = HashMap::from([(campaign.id.to_string(), campaign.goal_event)]);
    let mut sums = vec![(0, 0); days_between(from, to) * if hourly { 24 } else { 1 }];
    let mut breakdown = BreakdownSums::new(range);
    let mut per_kol: BTreeMap<String, (usize, Counts)> = BTreeMap::new();
    let mut total = Counts::default();
    // The campaign's links are counted as their pages arrive: its goal is all a count needs.
    let (pages, arriving) = mpsc::unbounded_channel();
    // The sender goes with the closure once the list is read: the count's end.
    let send = move |page: &Arc<[LinkSummary]>| {
        let _ = pages.send(page.clone());
    };
    let listing = async {
        lookup::all_links_as_read(store, lists, &filter, send)
            .await
            .map_err(ApiError::from)
    };
    let mut link_totals = HashMap::new();
    let counting = each_counts(store, arriving, &goals, range, hourly, hours_kept_from, |l, c| {
        if per_link {
            link_totals.insert(l.code.to_string(), c.counts.totals());
        }
        total.add(&c.counts);
        match interval {
            Interval::Day => add_daily(&mut sums, &c.tally, campaign.goal_event, from),
            Interval::Hour => add_hourly(&mut sums, &c.tally, campaign.goal_event, from),
        }
        breakdown.add(&c.tally);
        match per_kol.get_mut(l.kol.as_str()) {
            Some(e) => {
                e.0 += 1;
                e.1.add(&c.counts);
            }
            None => {
                per_kol.insert(l.kol.to_string(), (1, c.counts));
            }
        }
    });
    let (links, ()) = tokio::try_join!(listing, counting)?;
    let mut tiers: BTreeMap<Tier, (usize, usize, Counts)> = BTreeMap::new();
    let mut kol_rows = Vec::with_capacity(per_kol.len());
    let ids: Vec<String> = per_kol.keys().cloned().collect();
    let records = store.get_many::<Kol>(&ids).await?;
    for ((kol_id, (n, c)), kol) in per_kol.into_iter().zip(records) {
        let tier = kol.as_ref().map(|k| k.tier).unwrap_or(Tier::Nano);
        let t = tiers.entry(tier).or_default();
        t.0 += 1;
        t.1 += n;
        t.2.add(&c);
        kol_rows.push(Row {
            key: KolKey {
                name: kol.map(|k| k.name).unwrap_or_default(),
                kol: kol_id,
                tier,
            },
            links: n,
            totals: c.totals(),
        });
    }
    let mut tier_rows: Vec<Row<TierKey>> = tiers
        .into_iter()
        .map(|(tier, (kols, links, c))| Row {
            key: TierKey { tier, kols },
            links,
            totals: c.totals(),
        })
        .collect();
    sort.rows(&mut kol_rows);
    sort.rows(&mut tier_rows);
    Ok(CampaignReport {
        campaign: campaign.id.to_string(),
        from: range.from,
        to: range.to,
        sort: sort.key,
        order: sort.order,
        links: links.len(),
        totals: total.totals(),
        kols: kol_rows,
        tiers: tier_rows,
        series: page_points(&sums, from, interval),
        breakdown: breakdown.finish(),
        per_link: link_totals,
    })
}

/// A KOL's report; `hourly_retention_days` as for [`campaign`].
pub async fn kol(
    store: &dyn Store,
    lists: &LinkLists,
    clock: &dyn Clock,
    id: &str,
    range: Range,
    hourly_retention_days: u32,
) -> Result<KolReport, ApiError> {
    let kol = lookup::kol(store, id).await?;
    let filter = LinkFilter {
        campaign: None,
        kol: Some(kol.id.to_string()),
    };
    let links = lookup::all_links(store, lists, &filter).await?;
    let mut campaigns: BTreeMap<String, Option<Campaign>> = BTreeMap::new();
    for l in links.iter() {
        campaigns.entry(l.campaign.to_string()).or_default();
    }
    for (cid, c) in campaigns.iter_mut() {
        *c = store.get::<Campaign>(cid).await?;
    }
    let goals: HashMap<String, Event> = campaigns
        .iter()
        .filter_map(|(id, c)| Some((id.clone(), c.as_ref()?.goal_event)))
        .collect();
    let mut total = Counts::default();
    let mut per: BTreeMap<String, (usize, Counts)> = BTreeMap::new();
    let mut by_currency: BTreeMap<String, Counts> = BTreeMap::new();
    let hours_kept_from = crate::hours::first_kept_day(clock.now().date_naive(), hourly_retention_days);
    each_counts(
        store,
        pages_of(links.pages()),
        &goals,
        range,
        false,
        hours_kept_from,
        |l, c| {
            total.add(&c.counts);
            let e = per.entry(l.campaign.to_string()).or_default();
            e.0 += 1;
            e.1.add(&c.counts);
            let currency = campaigns
                .get(l.campaign.as_str())
                .and_then(|c| c.as_ref())
                .map_or_else(String::new, |c| c.currency.as_str().to_owned());
            by_currency.entry(currency).or_default().add(&c.counts);
        },
    )
    .await?;
    let totals = match by_currency.len() {
        0 | 1 => total.totals(),
        _ => total.totals().without_money(),
    };
    let mut rows: Vec<Row<CampaignKey>> = per
        .into_iter()
        .map(|(cid, (n, c))| {
            let (name, currency) = campaigns
                .get(&cid)
                .and_then(|c| c.as_ref())
                .map(|c| (c.name.clone(), c.currency.as_str().to_owned()))
                .unwrap_or_default();
            Row {
                key: CampaignKey {
                    campaign: cid,
                    name,
                    currency,
                },
                links: n,
                totals: c.totals(),
            }
        })
        .collect();
    Sort::default().rows(&mut rows);
    Ok(KolReport {
        kol: kol.id.to_string(),
        tier: kol.tier,
        from: range.from,
        to: range.to,
        links: links.len(),
        totals,
        totals_by_currency: by_currency.into_iter().map(|(k, c)| (k, c.totals())).collect(),
        campaigns: rows,
    })
}

/// Days in `[from, to]`, both included.
fn days_between(from: NaiveDate, to: NaiveDate) -> usize {
    usize::try_from((to - from).num_days() + 1).unwrap_or(0)
}

/// A chart's points from (clicks, conversions) sums, a day's or an hour's each, starting at
/// `from`.
fn page_points(sums: &[(u64, u64)], from: NaiveDate, interval: Interval) -> Vec<PagePoint> {
    let times = from.iter_days().flat_map(|day| {
        let hours = match interval {
            Interval::Day => 0..1,
            Interval::Hour => 0..24,
        };
        hours.map(move |hour| point_time(day, hour))
    });
    sums.iter()
        .zip(times)
        .map(|(&(clicks, conversions), t)| PagePoint { t, clicks, conversions })
        .collect()
}
