//! How long hourly counters are kept, and the job that prunes older ones.
//!
//! Every count is kept twice (`crate::counters`): by hour in a link's full map, by day in its
//! rollups. Days are kept for ever, and every report reads its days from the rollups. Hours are
//! only for hourly series (`interval=hour`, at most 31 days each), so a link's hourly fields of
//! days before the last `hourly_retention_days` UTC days are removed: its full map then holds its
//! recent hours and its daily breakdowns, not about 9,000 hourly fields a year. An hourly series
//! that reaches before the first kept day is refused (`hours_not_kept`). The `hour_of_day`
//! breakdown of a range of days counts the days whose hours are kept; over every day it comes
//! from the rollups, whole.
//!
//! Every process runs the job, at start and then whenever the first kept day moves (a new UTC
//! day). It is idempotent: a link already pruned for the day is a cheap check, and on Redis a
//! whole pass that one process finished for the day is not repeated by the others, or at a
//! restart. The store works a bounded number of links at a time (`Counters::prune_hours`), so
//! clicks are written between.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate};

use crate::clock::SharedClock;
use crate::error::{ApiError, Code};
use crate::store::Store;
use crate::telemetry::Meters;

/// How often the job looks whether the first kept day moved.
const LOOK_EVERY: Duration = Duration::from_secs(60);
/// How long the job waits after a failed prune before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(600);

/// The most days `hourly_retention_days` may say (a century).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The first UTC day whose hours are kept on `today` when `retention_days` are; `None` when
/// every hour is kept (0).
pub fn first_kept_day(today: NaiveDate, retention_days: u32) -> Option<NaiveDate> {
    (retention_days > 0).then(|| {
        today
            .checked_sub_days(Days::new(u64::from(retention_days) - 1))
            .unwrap_or(NaiveDate::MIN)
    })
}

/// Refuses an hourly series from `from` when its hours are no longer kept.
pub fn check_hourly(from: NaiveDate, today: NaiveDate, retention_days: u32) -> Result<(), ApiError> {
    match first_kept_day(today, retention_days) {
        Some(first) if from < first => Err(ApiError::new(
            Code::HoursNotKept,
            format!(
                "Hourly counts are kept for the last {retention_days} days: ask for interval=hour from {first} on, or for interval=day."
            ),
        )),
        _ => Ok(()),
    }
}

/// Prunes the hours of days before the first kept one, and again whenever that day moves,
/// until the process ends. Does nothing when every hour is kept.
/// Nothing is pruned while the spool is `held`: a process started from its link book has not
/// yet found Redis to be its store.
pub async fn keep(
    store: Arc<dyn Store>,
    clock: SharedClock,
    retention_days: u32,
    meters: Arc<Meters>,
    spool: Arc<crate::spool::Spool>,
) {
    if retention_days == 0 {
        return;
    }
    let mut done = None;
    loop {
        if spool.held() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let first = first_kept_day(clock.now().date_naive(), retention_days);
        let Some(first) = first.filter(|f| done != Some(*f)) else {
            tokio::time::sleep(LOOK_EVERY).await;
            continue;
        };
        match store.prune_hours(first).await {
            Ok(n) => {
                done = Some(first);
                meters.hours_pruned(n, first);
                if n > 0 {
                    tracing::info!(removed = n, keep_from = %first, "pruned hourly counters past their retention");
                }
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "Failed to prune old hourly counters");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_retention_counts_today_as_its_last_day() {
        assert_eq!(first_kept_day(d("2026-12-06"), 1), Some(d("2026-12-06")));
        assert_eq!(first_kept_day(d("2026-12-06"), 90), Some(d("2026-09-08")));
        assert_eq!(first_kept_day(d("2026-12-06"), 0), None);
        assert_eq!(first_kept_day(d("0001-01-01"), u32::MAX), Some(NaiveDate::MIN));
    }

    #[test]
    fn an_hourly_series_before_the_first_kept_day_is_refused() {
        let today = d("2026-12-06");
        assert!(check_hourly(d("2026-09-08"), today, 90).is_ok());
        let e = check_hourly(d("2026-09-07"), today, 90).unwrap_err();
        assert_eq!(e.code(), Code::HoursNotKept);
        assert!(e.to_string().contains("from 2026-09-08 on"), "{e}");
        assert!(check_hourly(d("2000-01-01"), today, 0).is_ok());
    }
}
