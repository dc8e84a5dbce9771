//! A campaign report as CSV: a row per KOL, a column per figure.

use super::CampaignReport;
use crate::stats::Totals;

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
/// follower tier; UTF-8 with a byte-order mark, so that spreadsheets open Chinese names right,
/// and names a spreadsheet would run as formulas quoted (`crate::export::write_row`).
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
        crate::export::write_row(&mut w, &rec)?;
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
        crate::export::write_row(&mut w, &rec)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Counts;

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
}
