//! Reports: per link (totals, series, breakdowns), per campaign (a row per KOL and per follower
//! tier) and per KOL (a row per campaign). The JSON API and the screens render these same
//! types, so a figure cannot differ between them. Figures come from `crate::stats`; the links
//! they count come in pages, a chunk at a time (`chunks`).

mod chunks;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use serde::Serialize;
use tokio::sync::mpsc;

use self::chunks::{pages_of, Chunks, Pages};

use crate::clock::Clock;
use crate::counters::Tally;
use crate::domain::{Campaign, DayInsights, Event, Kol, LinkSummary, Tier};
use crate::error::ApiError;
use crate::lookup::{self, LinkFilter, LinkLists};
use crate::stats::{
    add_daily, breakdown, click_days, point_time, series, Breakdown, BreakdownSums, Counts, Interval, Point, Range,
    Totals,
};
use crate::store::{Detail, LinkData, RecordsExt, Store, EXACT_VISITORS};

/// A figure rows can be sorted by, largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Roi,
    Roas,
    Clicks,
    UniqueClicks,
    Impressions,
    Ctr,
    Conversions,
    ConversionRate,
    Revenue,
    NetRevenue,
    Refunds,
    Cost,
    Epc,
    Cpc,
    Cpa,
    Aov,
    Engagements,
    EngagementRate,
}

/// A figure's value, compared within its kind: counts and money exactly, rates as numbers.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub enum Figure {
    Count(u64),
    Minor(i64),
    Rate(f64),
}

impl SortKey {
    pub const ALL: [SortKey; 18] = [
        SortKey::Roi,
        SortKey::Roas,
        SortKey::Clicks,
        SortKey::UniqueClicks,
        SortKey::Impressions,
        SortKey::Ctr,
        SortKey::Conversions,
        SortKey::ConversionRate,
        SortKey::Revenue,
        SortKey::NetRevenue,
        SortKey::Refunds,
        SortKey::Cost,
        SortKey::Epc,
        SortKey::Cpc,
        SortKey::Cpa,
        SortKey::Aov,
        SortKey::Engagements,
        SortKey::EngagementRate,
    ];

    /// The name of the figure in `totals`, and in `?sort=`.
    pub fn name(self) -> &'static str {
        use SortKey::*;
        match self {
            Roi => "roi",
            Roas => "roas",
            Clicks => "clicks",
            UniqueClicks => "unique_clicks",
            Impressions => "impressions",
            Ctr => "ctr",
            Conversions => "conversions",
            ConversionRate => "conversion_rate",
            Revenue => "revenue",
            NetRevenue => "net_revenue",
            Refunds => "refunds",
            Cost => "cost",
            Epc => "epc",
            Cpc => "cpc",
            Cpa => "cpa",
            Aov => "aov",
            Engagements => "engagements",
            EngagementRate => "engagement_rate",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            ApiError::invalid(format!("sort must be one of {}.", names.join(", ")))
        })
    }

    /// This figure of `t`; `None` where it is `null`.
    pub fn figure(self, t: &Totals) -> Option<Figure> {
        use SortKey::*;
        let rate = |r: Option<f64>| r.map(Figure::Rate);
        let money = |m: Option<crate::domain::Money>| m.map(|m| Figure::Minor(m.minor()));
        match self {
            Roi => rate(t.roi),
            Roas => rate(t.roas),
            Clicks => Some(Figure::Count(t.clicks)),
            UniqueClicks => Some(Figure::Count(t.unique_clicks)),
            Impressions => Some(Figure::Count(t.impressions)),
            Ctr => rate(t.ctr),
            Conversions => Some(Figure::Count(t.conversions)),
            ConversionRate => rate(t.conversion_rate),
            Revenue => money(t.revenue),
            NetRevenue => money(t.net_revenue),
            Refunds => money(t.refunds),
            Cost => money(t.cost),
            Epc => money(t.epc),
            Cpc => money(t.cpc),
            Cpa => money(t.cpa),
            Aov => money(t.aov),
            Engagements => Some(Figure::Count(t.engagements)),
            EngagementRate => rate(t.engagement_rate),
        }
    }

    /// Sorts rows by this figure, largest first, missing (`null`) last; ties keep their order.
    pub fn sort<K>(self, rows: &mut [Row<K>]) {
        rows.sort_by(|a, b| match (self.figure(&a.totals), self.figure(&b.totals)) {
            (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
}

impl Serialize for SortKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

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
    pub links: usize,
    pub totals: Totals,
    pub kols: Vec<Row<KolKey>>,
    pub tiers: Vec<Row<TierKey>>,
    /// Daily clicks and conversions of all the campaign's links: over the range asked for, or
    /// else its last 30 days.
    pub series: Vec<PagePoint>,
    /// Human clicks of all the campaign's links by dimension (and previews by app).
    pub breakdown: Breakdown,
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

/// Counts of one link, with what its series and breakdowns are built from.
struct LinkCounts {
    counts: Counts,
    tally: Tally,
    insights: BTreeMap<NaiveDate, DayInsights>,
    uniques: BTreeMap<NaiveDate, u64>,
}

/// Hands `each` the counts of each link over `range`, in order; `goals` gives each campaign's
/// goal event. A report over every day reads the links' rollups; `hourly` needs the full maps
/// too. A range of days needs a link's full map (its hours and daily breakdowns) beside the
/// days of its rollups, unless every day its rollups name lies in the range and keeps its
/// hours (`hours_kept_from`, `crate::hours::first_kept_day`; `None`: every hour is kept): then
/// the rollups alone answer, all-time breakdowns included (see [`read_chunk`]). The links come
/// in pages as a list is read (a campaign's report counts its first links while the rest are
/// read); they are read a chunk at a time, the next chunk while this one is counted, and
/// nothing of a link is kept once `each` has it.
async fn each_counts(
    store: &dyn Store,
    pages: Pages,
    goals: &HashMap<String, Event>,
    range: Range,
    hourly: bool,
    hours_kept_from: Option<NaiveDate>,
    mut each: impl FnMut(&LinkSummary, LinkCounts),
) -> Result<(), ApiError> {
    let mut chunks = Chunks::new(pages);
    let Some(mut chunk) = chunks.next().await else {
        return Ok(());
    };
    let mut data = read_chunk(store, chunk.links(), range, hourly, hours_kept_from).await?;
    loop {
        let (read_next, counted) = tokio::join!(
            async {
                let next = chunks.next().await?;
                let data = read_chunk(store, next.links(), range, hourly, hours_kept_from).await;
                Some((next, data))
            },
            count_chunk(store, chunk.links(), data, goals, range, &mut each),
        );
        counted?;
        let Some((next, next_data)) = read_next else {
            return Ok(());
        };
        (chunk, data) = (next, next_data?);
    }
}

/// What is read of one link for a report: its data, and whether its rollups alone answer the
/// report's range (then `full` is empty and the rollups keep their all-time breakdowns).
struct ChunkData {
    data: Vec<LinkData>,
    whole: Vec<bool>,
}

/// Reads a chunk of links for `each_counts`. Over a range of days, a link minted on or after
/// the range's first day, which keeps its hours, is read by its rollups first; if every day
/// they name lies in the range (`counters::days_within`: a conversion dated before the link, by
/// its coupon or code, or a click after the range's end puts a day outside), they answer
/// alone, else the link is read again as the others are, rollups and full map in one read (so
/// that its totals and breakdowns come from the same moment).
/// The rest are read with their full maps at once. A campaign minted inside the range (the
/// usual report) is then a few fields per link and day, not every hour and day's breakdowns.
async fn read_chunk(
    store: &dyn Store,
    chunk: &[LinkSummary],
    range: Range,
    hourly: bool,
    hours_kept_from: Option<NaiveDate>,
) -> Result<ChunkData, ApiError> {
    let codes = |at: &[usize]| -> Vec<String> { at.iter().map(|&i| chunk[i].code.to_string()).collect() };
    let every: Vec<usize> = (0..chunk.len()).collect();
    let detail = match (range.is_open(), hourly) {
        (true, false) => Detail::Rollups,
        (true, true) => Detail::Full,
        (false, _) => Detail::Range,
    };
    // A range with a first day (never an open one) whose hours are kept, not an hourly series.
    let from = range
        .from
        .filter(|f| !hourly && hours_kept_from.is_none_or(|kept| *f >= kept));
    let Some(from) = from else {
        let data = store.link_data(&codes(&every), detail).await?;
        return Ok(ChunkData {
            whole: vec![false; data.len()],
            data,
        });
    };
    let (young, old): (Vec<usize>, Vec<usize>) = every
        .into_iter()
        .partition(|&i| chunk[i].created_at.date_naive() >= from);
    let (young_data, old_data) = tokio::try_join!(
        async {
            match young.is_empty() {
                true => Ok(vec![]),
                false => store.link_data(&codes(&young), Detail::Rollups).await,
            }
        },
        async {
            match old.is_empty() {
                true => Ok(vec![]),
                false => store.link_data(&codes(&old), Detail::Range).await,
            }
        },
    )?;
    let mut data: Vec<Option<LinkData>> = vec![None; chunk.len()];
    let mut whole = vec![false; chunk.len()];
    let mut partial = Vec::new();
    for (i, d) in young.into_iter().zip(young_data) {
        if crate::counters::days_within(&d.rollups, |day| range.contains(day)) {
            whole[i] = true;
            data[i] = Some(d);
        } else {
            partial.push(i);
        }
    }
    for (i, d) in old.into_iter().zip(old_data) {
        data[i] = Some(d);
    }
    if !partial.is_empty() {
        let again = store.link_data(&codes(&partial), Detail::Range).await?;
        for (i, d) in partial.into_iter().zip(again) {
            data[i] = Some(d);
        }
    }
    let data = data
        .into_iter()
        .map(|d| d.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the store answered fewer links than asked"))))
        .collect::<Result<_, _>>()?;
    Ok(ChunkData { data, whole })
}

/// The counts of one chunk of links from their data, to `each`.
async fn count_chunk(
    store: &dyn Store,
    links: &[LinkSummary],
    chunk: ChunkData,
    goals: &HashMap<String, Event>,
    range: Range,
    each: &mut impl FnMut(&LinkSummary, LinkCounts),
) -> Result<(), ApiError> {
    let ChunkData { mut data, whole } = chunk;
    let tallies: Vec<Tally> = data
        .iter_mut()
        .zip(&whole)
        .map(|(d, &whole)| {
            let rollups = std::mem::take(&mut d.rollups);
            if whole {
                let mut t = Tally::of_link(rollups, None::<Vec<_>>, true);
                t.all_time_in_range = true;
                t
            } else {
                // An open range without an hourly series reads no full map: it is empty then.
                let full = std::mem::take(&mut d.full);
                Tally::of_link(rollups, Some(full), range.is_open())
            }
        })
        .collect();
    // The rollups hold each day's visitors up to EXACT_VISITORS; past that the store counts
    // them.
    let mut uniques: Vec<BTreeMap<NaiveDate, u64>> = vec![BTreeMap::new(); links.len()];
    let mut pairs = Vec::new();
    let mut asked = Vec::new();
    for (i, (l, t)) in links.iter().zip(&tallies).enumerate() {
        for day in click_days(t, range) {
            match t.days.get(&day).map_or(0, |c| c.visitors) {
                n if n < EXACT_VISITORS => {
                    uniques[i].insert(day, n);
                }
                _ => {
                    pairs.push((l.code.to_string(), day));
                    asked.push(i);
                }
            }
        }
    }
    if !pairs.is_empty() {
        let counts = store.unique_visitors(&pairs).await?;
        for ((i, (_, day)), n) in asked.into_iter().zip(&pairs).zip(counts) {
            uniques[i].insert(*day, n);
        }
    }
    for (((l, data), tally), uniques) in links.iter().zip(data).zip(tallies).zip(uniques) {
        let goal = goals.get(l.campaign.as_str()).copied().unwrap_or(Event::Purchase);
        let counts = Counts::of_link(&tally, &data.insights, &uniques, goal, l.cost, range);
        each(
            l,
            LinkCounts {
                counts,
                tally,
                insights: data.insights,
                uniques,
            },
        );
    }
    Ok(())
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
    // (or the link's creation) to the last (or today).
    let (first, last) = data_days(&c);
    let created = link.created_at.date_naive();
    let from = range.from.unwrap_or_else(|| first.map_or(created, |f| f.min(created)));
    let to = range.to.unwrap_or_else(|| last.map_or(today, |l| l.max(today)));
    let max_days = match interval {
        // An open daily range is the link's life: as long as its data, never capped.
        Interval::Day if range.from.is_none() || range.to.is_none() => u64::MAX,
        Interval::Day => 400,
        Interval::Hour => 31,
    };
    if from
        .checked_add_days(Days::new(max_days))
        .is_some_and(|limit| to >= limit)
    {
        return Err(ApiError::invalid(format!(
            "A {} series spans at most {max_days} days: narrow from and to.",
            if interval == Interval::Day { "daily" } else { "hourly" }
        )));
    }
    if interval == Interval::Hour {
        crate::hours::check_hourly(from, today, hourly_retention_days)?;
    }
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
/// (`crate::hours`): a range of them can be read from the links' rollups alone.
pub async fn campaign(
    store: &dyn Store,
    lists: &LinkLists,
    clock: &dyn Clock,
    id: &str,
    range: Range,
    sort: SortKey,
    hourly_retention_days: u32,
) -> Result<CampaignReport, ApiError> {
    let campaign = lookup::campaign(store, id).await?;
    let filter = LinkFilter {
        campaign: Some(campaign.id.to_string()),
        kol: None,
    };
    let goals = HashMap::from([(campaign.id.to_string(), campaign.goal_event)]);
    let to = range.to.unwrap_or_else(|| clock.now().date_naive());
    let from = range
        .from
        .unwrap_or_else(|| to.checked_sub_days(Days::new(29)).unwrap_or(to))
        .max(to.checked_sub_days(Days::new(399)).unwrap_or(to));
    let mut daily = vec![(0, 0); days_between(from, to)];
    let mut breakdown = BreakdownSums::new(range);
    let mut per_kol: BTreeMap<String, (usize, Counts)> = BTreeMap::new();
    let mut total = Counts::default();
    let hours_kept_from = crate::hours::first_kept_day(clock.now().date_naive(), hourly_retention_days);
    // The campaign's links are counted as their pages arrive: its goal is all a count needs.
    let (pages, arriving) = mpsc::unbounded_channel();
    let listing = async {
        let pages = pages;
        let send = |page: &Arc<[LinkSummary]>| {
            let _ = pages.send(page.clone());
        };
        Ok::<_, ApiError>(lookup::all_links_as_read(store, lists, &filter, send).await?)
    };
    let counting = each_counts(store, arriving, &goals, range, false, hours_kept_from, |l, c| {
        total.add(&c.counts);
        add_daily(&mut daily, &c.tally, campaign.goal_event, from);
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
    sort.sort(&mut kol_rows);
    sort.sort(&mut tier_rows);
    Ok(CampaignReport {
        campaign: campaign.id.to_string(),
        from: range.from,
        to: range.to,
        sort,
        links: links.len(),
        totals: total.totals(),
        kols: kol_rows,
        tiers: tier_rows,
        series: page_points(&daily, from),
        breakdown: breakdown.finish(),
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
            let name = campaigns
                .get(&cid)
                .and_then(|c| c.as_ref())
                .map(|c| c.name.clone())
                .unwrap_or_default();
            Row {
                key: CampaignKey { campaign: cid, name },
                links: n,
                totals: c.totals(),
            }
        })
        .collect();
    SortKey::Roi.sort(&mut rows);
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

/// What a KOL's share page shows: their own links and figures, nothing about orders, customers,
/// money or other KOLs.
#[derive(Debug, Serialize)]
pub struct KolPage {
    pub kol: String,
    pub name: String,
    /// The campaign the share is limited to, if it is.
    pub campaign: Option<String>,
    pub totals: PageFigures,
    pub links: Vec<PageLink>,
    /// Daily clicks and conversions of the last 30 days (UTC), all links together.
    pub series: Vec<PagePoint>,
}

#[derive(Debug, Serialize)]
pub struct PageFigures {
    pub clicks: u64,
    pub unique_clicks: u64,
    pub impressions: u64,
    pub ctr: Option<f64>,
    pub conversions: u64,
    pub conversion_rate: Option<f64>,
}

impl From<&Totals> for PageFigures {
    fn from(t: &Totals) -> Self {
        PageFigures {
            clicks: t.clicks,
            unique_clicks: t.unique_clicks,
            impressions: t.impressions,
            ctr: t.ctr,
            conversions: t.conversions,
            conversion_rate: t.conversion_rate,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PageLink {
    pub code: String,
    pub campaign: String,
    pub short_url: String,
    pub qr_svg: String,
    pub qr_png: String,
    #[serde(flatten)]
    pub figures: PageFigures,
}

#[derive(Debug, Serialize)]
pub struct PagePoint {
    pub t: String,
    pub clicks: u64,
    pub conversions: u64,
}

/// The share page of a KOL: every link of theirs (of `campaign` only, when given).
pub async fn kol_page(
    store: &dyn Store,
    lists: &LinkLists,
    clock: &dyn Clock,
    public_base: &str,
    kol_id: &str,
    campaign: Option<&str>,
) -> Result<KolPage, ApiError> {
    let kol = lookup::kol(store, kol_id).await?;
    let filter = LinkFilter {
        campaign: campaign.map(str::to_owned),
        kol: Some(kol.id.to_string()),
    };
    let links = lookup::all_links(store, lists, &filter).await?;
    let mut goals = HashMap::new();
    for l in links.iter() {
        if !goals.contains_key(l.campaign.as_str()) {
            let goal = store.get::<Campaign>(l.campaign.as_str()).await?.map(|c| c.goal_event);
            goals.insert(l.campaign.to_string(), goal.unwrap_or(Event::Purchase));
        }
    }
    let to = clock.now().date_naive();
    let from = to.checked_sub_days(Days::new(29)).unwrap_or(to);
    let mut daily = vec![(0, 0); days_between(from, to)];
    let mut total = Counts::default();
    let mut page_links = Vec::with_capacity(links.len());
    // Every day: the rollups alone, whatever hours are kept.
    each_counts(
        store,
        pages_of(links.pages()),
        &goals,
        Range::default(),
        false,
        None,
        |l, c| {
            total.add(&c.counts);
            let goal = goals.get(l.campaign.as_str()).copied().unwrap_or(Event::Purchase);
            add_daily(&mut daily, &c.tally, goal, from);
            let short_url = format!("{public_base}/{}", l.code);
            page_links.push(PageLink {
                code: l.code.to_string(),
                campaign: l.campaign.to_string(),
                qr_svg: format!("{short_url}/qr.svg"),
                qr_png: format!("{short_url}/qr.png"),
                short_url,
                figures: PageFigures::from(&c.counts.totals()),
            });
        },
    )
    .await?;
    Ok(KolPage {
        kol: kol.id.to_string(),
        name: kol.name,
        campaign: campaign.map(str::to_owned),
        totals: PageFigures::from(&total.totals()),
        links: page_links,
        series: page_points(&daily, from),
    })
}

/// Days in `[from, to]`, both included.
fn days_between(from: NaiveDate, to: NaiveDate) -> usize {
    usize::try_from((to - from).num_days() + 1).unwrap_or(0)
}

/// A chart's points from daily (clicks, conversions) sums starting at `from`.
fn page_points(daily: &[(u64, u64)], from: NaiveDate) -> Vec<PagePoint> {
    daily
        .iter()
        .zip(from.iter_days())
        .map(|(&(clicks, conversions), day)| PagePoint {
            t: point_time(day, 0),
            clicks,
            conversions,
        })
        .collect()
}

/// The figures of a report's CSV, in column order: every figure of `Totals` but the `events`
/// map, whose counts follow as one column per event.
pub const CSV_FIGURES: [&str; 24] = [
    "impressions",
    "pixel_impressions",
    "reach",
    "clicks",
    "unique_clicks",
    "bot_clicks",
    "previews",
    "suspicious_clicks",
    "ctr",
    "conversions",
    "conversion_rate",
    "revenue",
    "refunds",
    "net_revenue",
    "cost",
    "roi",
    "roas",
    "epc",
    "cpc",
    "cpa",
    "aov",
    "engagements",
    "engagement_rate",
    "events",
];

/// `report.csv` of a campaign: one row per KOL with every totals figure, then one row per
/// follower tier; UTF-8 with a byte-order mark, so that spreadsheets open Chinese names right.
pub fn campaign_csv(r: &CampaignReport) -> Result<Vec<u8>, csv::Error> {
    let events = crate::domain::Event::ALL;
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let mut header = vec!["row", "kol", "name", "tier", "kols", "links"];
    header.extend(CSV_FIGURES.iter().filter(|f| **f != "events"));
    header.extend(events.iter().map(|e| e.as_str()));
    w.write_record(&header)?;
    let figures = |t: &Totals| -> Vec<String> {
        let json = serde_json::to_value(t).unwrap_or_default();
        let mut out: Vec<String> = CSV_FIGURES
            .iter()
            .filter(|f| **f != "events")
            .map(|f| match &json[*f] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect();
        out.extend(
            events
                .iter()
                .map(|e| t.events.get(e.as_str()).copied().unwrap_or(0).to_string()),
        );
        out
    };
    for row in &r.kols {
        let mut rec = vec![
            "kol".to_owned(),
            row.key.kol.clone(),
            row.key.name.clone(),
            serde_json::to_value(row.key.tier)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            String::new(),
            row.links.to_string(),
        ];
        rec.extend(figures(&row.totals));
        w.write_record(&rec)?;
    }
    for row in &r.tiers {
        let mut rec = vec![
            "tier".to_owned(),
            String::new(),
            String::new(),
            serde_json::to_value(row.key.tier)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            row.key.kols.to_string(),
            row.links.to_string(),
        ];
        rec.extend(figures(&row.totals));
        w.write_record(&rec)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Money;

    #[test]
    fn the_csv_has_a_column_for_every_figure_of_the_totals() {
        let json = serde_json::to_value(Counts::default().totals()).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed: Vec<&str> = CSV_FIGURES.to_vec();
        listed.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(listed, keys);
    }

    fn row(name: &str, totals: Totals) -> Row<String> {
        Row {
            key: name.to_owned(),
            links: 1,
            totals,
        }
    }

    fn totals(clicks: u64, revenue_minor: i64, cost_minor: i64) -> Totals {
        Counts {
            clicks: u128::from(clicks),
            revenue: Money::from_minor(revenue_minor),
            cost: Money::from_minor(cost_minor),
            ..Counts::default()
        }
        .totals()
    }

    #[test]
    fn every_sort_key_names_a_figure_of_the_totals() {
        let json = serde_json::to_value(totals(1, 1, 1)).unwrap();
        for k in SortKey::ALL {
            assert!(json.get(k.name()).is_some(), "{}", k.name());
            assert_eq!(SortKey::parse(k.name()).unwrap(), k);
        }
        assert!(SortKey::parse("followers").is_err());
    }

    #[test]
    fn rows_sort_largest_first_with_missing_figures_last_and_money_exactly() {
        let mut rows = vec![
            row("free", totals(10, 0, 0)),
            // Money differing in the last minor unit of a large sum: exact, not float.
            row("a", totals(10, 9_007_199_254_740_993, 100)),
            row("b", totals(10, 9_007_199_254_740_992, 100)),
        ];
        SortKey::Revenue.sort(&mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(order, ["a", "b", "free"]);
        SortKey::Roi.sort(&mut rows);
        assert_eq!(rows[2].key, "free", "no cost: roi is null and sorts last");
    }
}
