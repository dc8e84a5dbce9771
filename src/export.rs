//! What an exported click looks like, the same in the API's click export (JSON, CSV) and in
//! `kolink tail`'s NDJSON: its `kl_cid`, time, bot, preview, suspicious, visitor, then every
//! dimension.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

use crate::domain::{ClickId, Dimension, StoredClick};

/// A CSV cell as a spreadsheet may open it: text that a spreadsheet would run as a formula
/// (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return, OWASP's list) gets a leading
/// `'`, which spreadsheets show as text and do not run. Anyone can put such text in an export:
/// a `Referer`, a shop's order id, a KOL's name. A number stays a number (`-120.00`, `-1e-5`).
pub fn spreadsheet_cell(cell: &[u8]) -> Cow<'_, [u8]> {
    match cell.first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if !is_number(cell) => {
            let mut quoted = Vec::with_capacity(cell.len() + 1);
            quoted.push(b'\'');
            quoted.extend_from_slice(cell);
            Cow::Owned(quoted)
        }
        _ => Cow::Borrowed(cell),
    }
}

/// Writes one CSV row, each cell through `spreadsheet_cell`: every CSV kolink answers goes
/// through here.
pub fn write_row<W: std::io::Write, F: AsRef<[u8]>>(w: &mut csv::Writer<W>, row: &[F]) -> csv::Result<()> {
    w.write_record(row.iter().map(|cell| spreadsheet_cell(cell.as_ref())))
}

/// `-?digits[.digits][e[+-]digits]`: how kolink writes counts, money and rates.
fn is_number(cell: &[u8]) -> bool {
    fn digits(s: &[u8]) -> (usize, &[u8]) {
        let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
        (n, &s[n..])
    }
    let (n, rest) = digits(cell.strip_prefix(b"-").unwrap_or(cell));
    if n == 0 {
        return false;
    }
    let rest = match rest.strip_prefix(b".") {
        Some(fraction) => match digits(fraction) {
            (0, _) => return false,
            (_, rest) => rest,
        },
        None => rest,
    };
    match rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        Some(exponent) => {
            let exponent = exponent
                .strip_prefix(b"-")
                .or_else(|| exponent.strip_prefix(b"+"))
                .unwrap_or(exponent);
            matches!(digits(exponent), (1.., []))
        }
        None => rest.is_empty(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_quoted_and_numbers_are_not() {
        for (cell, shown) in [
            ("=HYPERLINK(\"http://x\",\"a\")", "'=HYPERLINK(\"http://x\",\"a\")"),
            ("+1+1", "'+1+1"),
            ("-1-1", "'-1-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-.5", "'-.5"),
            ("-1.", "'-1."),
            ("-1e", "'-1e"),
            ("-inf", "'-inf"),
            ("-120.00", "-120.00"),
            ("-1", "-1"),
            ("-1.5e-5", "-1.5e-5"),
            ("-2E+3", "-2E+3"),
            ("1+1", "1+1"),
            ("Amy =1", "Amy =1"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_cell(cell.as_bytes()).as_ref(), shown.as_bytes(), "{cell:?}");
        }
    }
}
