//! Stats per link (totals, series, breakdowns), per campaign (with a row per KOL and per
//! follower tier) and per KOL (with a row per campaign). Figures come from `crate::stats`.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpResponse};
use chrono::{Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Admin, State};
use crate::domain::{Campaign, Event, Kol, Link, Tier};
use crate::error::ApiError;
use crate::stats::{breakdown, click_days, series, Counts, Interval, Range, Totals};
use crate::store::{Kind, LinkData, LinkFilter};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/links/{code}/stats").get(link_stats))
        .service(web::resource("/campaigns/{id}/stats").get(campaign_stats))
        .service(web::resource("/kols/{id}/stats").get(kol_stats));
}

#[derive(Deserialize)]
struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
    sort: Option<String>,
}

fn parse_day(field: &str, s: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    s.filter(|s| !s.is_empty())
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid(format!("{field} must be a date as YYYY-MM-DD.")))
        })
        .transpose()
}

impl StatsQuery {
    fn range(&self) -> Result<Range, ApiError> {
        let r = Range {
            from: parse_day("from", self.from.as_deref())?,
            to: parse_day("to", self.to.as_deref())?,
        };
        if let (Some(f), Some(t)) = (r.from, r.to) {
            if f > t {
                return Err(ApiError::invalid("from must not be after to."));
            }
        }
        Ok(r)
    }
}

/// Counts of each link over `range`, in order, with the goal of each link's campaign.
async fn counts_of(
    state: &State,
    links: &[Link],
    goals: &HashMap<String, Event>,
    range: Range,
) -> Result<Vec<(Counts, LinkData, BTreeMap<NaiveDate, u64>)>, ApiError> {
    let codes: Vec<String> = links.iter().map(|l| l.code.to_string()).collect();
    let data = state.store.link_data(&codes).await?;
    let mut pairs = Vec::new();
    for (code, d) in codes.iter().zip(&data) {
        for day in click_days(d, range) {
            pairs.push((code.clone(), day));
        }
    }
    let counts = state.store.unique_visitors(&pairs).await?;
    let mut uniques: HashMap<&str, BTreeMap<NaiveDate, u64>> = HashMap::new();
    for ((code, day), n) in pairs.iter().zip(counts) {
        uniques.entry(code.as_str()).or_default().insert(*day, n);
    }
    Ok(links
        .iter()
        .zip(data)
        .map(|(l, d)| {
            let u = uniques.remove(l.code.as_str()).unwrap_or_default();
            let goal = goals.get(l.campaign.as_str()).copied().unwrap_or(Event::Purchase);
            (Counts::of_link(&d, &u, goal, l.cost, range), d, u)
        })
        .collect())
}

async fn all_links(state: &State, filter: LinkFilter) -> Result<Vec<Link>, ApiError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state.store.list_links(&filter, cursor.as_deref(), 200).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => cursor = Some(n),
            None => return Ok(out),
        }
    }
}

async fn link_stats(
    _: Admin,
    state: State,
    code: web::Path<String>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let link = super::links::load(&state, &code).await?;
    let campaign = super::campaigns::load(&state, link.campaign.as_str()).await?;
    let range = q.range()?;
    let interval = match q.interval.as_deref() {
        None | Some("day") => Interval::Day,
        Some("hour") => Interval::Hour,
        Some(_) => return Err(ApiError::invalid("interval must be day or hour.")),
    };
    let from = range.from.unwrap_or_else(|| link.created_at.date_naive());
    let to = range.to.unwrap_or_else(|| Utc::now().date_naive());
    let max_days = match interval {
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
    let goals = HashMap::from([(campaign.id.to_string(), campaign.goal_event)]);
    let (counts, data, uniques) = counts_of(&state, std::slice::from_ref(&link), &goals, range)
        .await?
        .pop()
        .expect("one link in, one out");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "code": link.code,
        "campaign": link.campaign,
        "kol": link.kol,
        "from": from.to_string(),
        "to": to.to_string(),
        "totals": counts.totals(),
        "series": series(&data, &uniques, campaign.goal_event, from, to, interval),
        "breakdown": breakdown(&data, range),
    })))
}

#[derive(Serialize)]
struct Row<K: Serialize> {
    #[serde(flatten)]
    key: K,
    links: usize,
    #[serde(flatten)]
    totals: Totals,
}

#[derive(Serialize)]
struct KolKey {
    kol: String,
    name: String,
    tier: Tier,
}

#[derive(Serialize)]
struct TierKey {
    tier: Tier,
    kols: usize,
}

#[derive(Serialize)]
struct CampaignKey {
    campaign: String,
    name: String,
}

/// Sorts rows by a figure, largest first, `null` last; ties by the first key.
fn sort_rows(rows: Vec<serde_json::Value>, by: &str) -> Vec<serde_json::Value> {
    let figure = |v: &serde_json::Value| match &v[by] {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    let mut rows = rows;
    rows.sort_by(|a, b| match (figure(a), figure(b)) {
        (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    rows
}

const SORTABLE: &[&str] = &[
    "roi",
    "roas",
    "clicks",
    "unique_clicks",
    "impressions",
    "ctr",
    "conversions",
    "conversion_rate",
    "revenue",
    "net_revenue",
    "refunds",
    "cost",
    "epc",
    "cpc",
    "cpa",
    "aov",
    "engagements",
    "engagement_rate",
];

async fn campaign_stats(
    _: Admin,
    state: State,
    id: web::Path<String>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let campaign = super::campaigns::load(&state, &id).await?;
    let range = q.range()?;
    let sort = q.sort.as_deref().unwrap_or("roi");
    if !SORTABLE.contains(&sort) {
        return Err(ApiError::invalid(format!(
            "sort must be one of {}.",
            SORTABLE.join(", ")
        )));
    }
    let links = all_links(
        &state,
        LinkFilter {
            campaign: Some(campaign.id.to_string()),
            kol: None,
        },
    )
    .await?;
    let goals = HashMap::from([(campaign.id.to_string(), campaign.goal_event)]);
    let counts = counts_of(&state, &links, &goals, range).await?;

    let mut kols: BTreeMap<String, (Option<Kol>, usize, Counts)> = BTreeMap::new();
    let mut total = Counts::default();
    for (l, (c, _, _)) in links.iter().zip(&counts) {
        total.add(c);
        let e = kols.entry(l.kol.to_string()).or_insert((None, 0, Counts::default()));
        e.1 += 1;
        e.2.add(c);
    }
    for (id, e) in kols.iter_mut() {
        e.0 = super::load_record::<Kol>(state.store.as_ref(), Kind::Kol, id).await?;
    }
    let mut tiers: BTreeMap<Tier, (usize, usize, Counts)> = BTreeMap::new();
    let mut kol_rows = Vec::new();
    for (id, (kol, n, c)) in &kols {
        let tier = kol.as_ref().map(|k| k.tier).unwrap_or(Tier::Nano);
        let t = tiers.entry(tier).or_insert((0, 0, Counts::default()));
        t.0 += 1;
        t.1 += n;
        t.2.add(c);
        let key = KolKey {
            kol: id.clone(),
            name: kol.as_ref().map(|k| k.name.clone()).unwrap_or_default(),
            tier,
        };
        kol_rows.push(
            serde_json::to_value(Row {
                key,
                links: *n,
                totals: c.totals(),
            })
            .map_err(anyhow::Error::from)?,
        );
    }
    let tier_rows = tiers
        .into_iter()
        .map(|(tier, (k, n, c))| {
            serde_json::to_value(Row {
                key: TierKey { tier, kols: k },
                links: n,
                totals: c.totals(),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "campaign": campaign.id,
        "from": range.from.map(|d| d.to_string()),
        "to": range.to.map(|d| d.to_string()),
        "sort": sort,
        "links": links.len(),
        "totals": total.totals(),
        "kols": sort_rows(kol_rows, sort),
        "tiers": sort_rows(tier_rows, sort),
    })))
}

async fn kol_stats(
    _: Admin,
    state: State,
    id: web::Path<String>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let kol = super::kols::load(&state, &id).await?;
    let range = q.range()?;
    let links = all_links(
        &state,
        LinkFilter {
            campaign: None,
            kol: Some(kol.id.to_string()),
        },
    )
    .await?;
    let mut campaigns: BTreeMap<String, Option<Campaign>> = BTreeMap::new();
    for l in &links {
        campaigns.entry(l.campaign.to_string()).or_default();
    }
    for (cid, c) in campaigns.iter_mut() {
        *c = super::load_record::<Campaign>(state.store.as_ref(), Kind::Campaign, cid).await?;
    }
    let goals: HashMap<String, Event> = campaigns
        .iter()
        .filter_map(|(id, c)| Some((id.clone(), c.as_ref()?.goal_event)))
        .collect();
    let counts = counts_of(&state, &links, &goals, range).await?;
    let mut total = Counts::default();
    let mut per: BTreeMap<String, (usize, Counts)> = BTreeMap::new();
    for (l, (c, _, _)) in links.iter().zip(&counts) {
        total.add(c);
        let e = per.entry(l.campaign.to_string()).or_default();
        e.0 += 1;
        e.1.add(c);
    }
    let rows = per
        .into_iter()
        .map(|(cid, (n, c))| {
            let name = campaigns
                .get(&cid)
                .and_then(|c| c.as_ref())
                .map(|c| c.name.clone())
                .unwrap_or_default();
            serde_json::to_value(Row {
                key: CampaignKey { campaign: cid, name },
                links: n,
                totals: c.totals(),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "kol": kol.id,
        "tier": kol.tier,
        "from": range.from.map(|d| d.to_string()),
        "to": range.to.map(|d| d.to_string()),
        "links": links.len(),
        "totals": total.totals(),
        "campaigns": sort_rows(rows, "roi"),
    })))
}
