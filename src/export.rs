//! What an exported click looks like, the same in the API's click export (JSON, CSV) and in
//! `kolink tail`'s NDJSON: its `kl_cid`, time, bot, preview, suspicious, visitor, then every
//! dimension.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

use crate::domain::{ClickId, Dimension, StoredClick};

/// The columns of a click export.
pub fn click_columns() -> Vec<&'static str> {
    let mut c = vec!["id", "at", "bot", "preview", "suspicious", "visitor"];
    c.extend(Dimension::ALL.iter().map(|d| d.name()));
    c
}

/// One click as exported, column by column; `id` is the `kl_cid` the redirect handed out (bots
/// got none, but their entries carry an id all the same).
pub fn click_row(link_id: u64, c: &StoredClick) -> Vec<String> {
    let at = DateTime::from_timestamp_millis(c.entry.ms as i64).unwrap_or_default();
    let mut r = vec![
        ClickId {
            link_id,
            entry: c.entry,
        }
        .to_string(),
        at.to_rfc3339_opts(SecondsFormat::Millis, true),
        c.info.bot.to_string(),
        c.info.preview.clone(),
        c.info.suspicious.to_string(),
        c.info.visitor.clone(),
    ];
    r.extend(c.info.dims.iter().map(|(_, v)| v.to_owned()));
    r
}

/// A click's row as a JSON object (flags as booleans).
pub fn click_object(c: &StoredClick, row: &[String]) -> Map<String, Value> {
    click_columns()
        .into_iter()
        .zip(row)
        .map(|(k, v)| {
            let v = match k {
                "bot" => Value::Bool(c.info.bot),
                "suspicious" => Value::Bool(c.info.suspicious),
                _ => Value::String(v.clone()),
            };
            (k.to_owned(), v)
        })
        .collect()
}
