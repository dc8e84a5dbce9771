//! Reading links' counts for a report: a chunk of links at a time, the next chunk read while
//! this one is counted, each link's counts handed on and nothing of it kept (`each_counts`).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::chunks::{Chunks, Pages};
use crate::counters::Tally;
use crate::domain::{DayInsights, Event, LinkSummary};
use crate::error::ApiError;
use crate::stats::{click_days, Counts, Range};
use crate::store::{Detail, LinkData, Store, EXACT_VISITORS};

/// Counts of one link, with what its series and breakdowns are built from.
pub(super) struct LinkCounts {
    pub(super) counts: Counts,
    pub(super) tally: Tally,
    pub(super) insights: BTreeMap<NaiveDate, DayInsights>,
    pub(super) uniques: BTreeMap<NaiveDate, u64>,
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
pub(super) async fn each_counts(
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
pub(super) struct ChunkData {
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
pub(super) async fn read_chunk(
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
pub(super) async fn count_chunk(
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
