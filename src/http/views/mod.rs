//! Server-rendered pages: one view module per page, templates in `templates/` (checked at
//! compile time), each rendering the same report types the JSON API returns, so a figure cannot
//! differ between a screen and the API. English and Traditional Chinese.

pub mod app;
pub mod kol_page;
pub mod session;
mod texts;

pub use texts::{Texts, EN, ZH_TW};

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::HttpRequest;

use crate::report::PagePoint;

/// The language of a page: `?lang=` first, then the one last chosen (`LANG_COOKIE`, which
/// `remember_lang` sets whenever a page is asked for with `?lang=`, so that a reader's choice
/// holds on every page their links and forms lead to), then the browser's `Accept-Language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhTw,
}

/// The cookie that keeps the reader's chosen language.
pub const LANG_COOKIE: &str = "kolink_lang";

impl Lang {
    pub fn of(req: &HttpRequest) -> Self {
        if let Some(l) = Self::asked(req) {
            return l;
        }
        if let Some(c) = req.cookie(LANG_COOKIE) {
            return Self::parse(c.value());
        }
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // The first language the browser names that we have.
        for tag in accept.split(',').map(|t| t.split(';').next().unwrap_or("").trim()) {
            let tag = tag.to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Lang::ZhTw;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::En
    }

    /// The language `?lang=` asks for, if it does.
    fn asked(req: &HttpRequest) -> Option<Self> {
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| Self::parse(&v))
    }

    pub fn parse(s: &str) -> Self {
        if s.to_ascii_lowercase().starts_with("zh") {
            Lang::ZhTw
        } else {
            Lang::En
        }
    }

    /// The language's tag, as `?lang=` and `LANG_COOKIE` take it.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhTw => "zh-TW",
        }
    }

    /// The cookie that keeps this language for the reader's next pages (a year); `Secure`
    /// where kolink is served over https, as the session's.
    pub fn cookie(self, state: &crate::http::AppState) -> Cookie<'static> {
        Cookie::build(LANG_COOKIE, self.tag())
            .path("/")
            .max_age(actix_web::cookie::time::Duration::days(365))
            .same_site(SameSite::Lax)
            .http_only(true)
            .secure(state.public_base.starts_with("https://"))
            .finish()
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::ZhTw => &ZH_TW,
        }
    }
}

/// Keeps the language a page was asked for with `?lang=` (`Lang::cookie`) on the answer.
pub async fn remember_lang(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let asked = Lang::asked(req.request());
    let state = req.app_data::<crate::http::State>().cloned();
    let mut res = next.call(req).await?;
    if let (Some(lang), Some(state)) = (asked, state) {
        res.response_mut().add_cookie(&lang.cookie(&state))?;
    }
    Ok(res)
}

/// The breakdowns the campaign page shows, by their names in reports; `Texts::dimensions` names
/// them in the same order.
pub const BREAKDOWNS: [&str; 6] = ["app", "device", "referrer", "country", "source", "preview"];

/// The device classes clicks are counted by (`crate::classify`); `Texts::devices` names them
/// in the same order.
pub const DEVICES: [&str; 5] = ["mobile", "tablet", "desktop", "appliance", "other"];

/// Where a shop's data named a conversion's link (`AuditEntry::source`); `Texts::audit_sources`
/// names them in the same order, and any other is shown as it is.
pub const AUDIT_SOURCES: [&str; 10] = [
    "click_id",
    "cart_attribute",
    "landing_site",
    "discount_code",
    "coupon_line",
    "order_meta",
    "order_attribution",
    "coupon",
    "code",
    "order_id",
];

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Money as the screens show it: its two fraction digits, the whole part grouped by thousands
/// as counts are (`138,300.00`; the API keeps `"138300.00"`).
pub fn amount(m: crate::domain::Money) -> String {
    let minor = m.minor();
    let sign = if minor < 0 { "−" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", count(abs / 100), abs % 100)
}

/// A rate as a percentage with two decimals; `–` when there is none. Negative ones take the
/// minus sign amounts take.
pub fn percent(r: Option<f64>) -> String {
    r.map_or_else(
        || "–".to_owned(),
        |r| {
            let p = r * 100.0;
            let decimals = if p != 0.0 && p.abs() < 0.01 {
                // Two significant digits, so that a small rate (2 clicks of 120,000
                // impressions) does not read as none: as many decimals as the exponent of the
                // value rounded to two digits asks (`1.7e-3` → 4).
                let exp: i32 = format!("{:.1e}", p.abs())
                    .rsplit('e')
                    .next()
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(-2);
                (1 - exp).clamp(2, 12) as usize
            } else {
                2
            };
            format!("{} %", signed(r, decimal(r.abs(), 2, decimals)))
        },
    )
}

/// `digits` (the figure `r` written without its sign) with the minus sign amounts take when
/// `r` is negative and the digits are not all zero: a rate of −0.0001 % is shown as 0.00.
pub fn signed(r: f64, digits: String) -> String {
    if r < 0.0 && digits.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        format!("−{digits}")
    } else {
        digits
    }
}

/// `x` (not negative) × 10^`shift` with `decimals` decimals, rounded half up as `x`'s shortest
/// decimal form reads: 11 clicks of 4,000 impressions are 0.00275, whose float is a hair below
/// it, and formatting the float times 100 showed 0.27 % where the figure is 0.275 %.
pub fn decimal(x: f64, shift: usize, decimals: usize) -> String {
    debug_assert!(x >= 0.0 && x.is_finite(), "{x}");
    let text = x.to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    // Where the point falls once shifted.
    let mut point = int.len() + shift;
    digits.resize(digits.len().max(point + decimals + 1), 0);
    let up = digits[point + decimals] >= 5;
    digits.truncate(point + decimals);
    if up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                point += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let whole: String = digits[..point].iter().map(|d| char::from(b'0' + d)).collect();
    let whole = whole.trim_start_matches('0');
    let fraction: String = digits[point..].iter().map(|d| char::from(b'0' + d)).collect();
    format!("{}.{fraction}", if whole.is_empty() { "0" } else { whole })
}

/// The width the dashboard's charts are drawn for (a desktop's column).
pub const DESK_CHART_WIDTH: f32 = 1000.0;
/// The width the KOL page's chart is drawn for, and the dashboard's on a phone.
pub const PHONE_CHART_WIDTH: f32 = 380.0;

/// An HTML page's answer: never cached, never framed by another site (clickjacking), its type
/// never sniffed. Every page people open is built on it: the dashboard, the KOL page, error
/// pages.
pub fn html_page(status: actix_web::http::StatusCode) -> actix_web::HttpResponseBuilder {
    let mut b = actix_web::HttpResponse::build(status);
    b.content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "private, no-store"))
        .insert_header((actix_web::http::header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            actix_web::http::header::CONTENT_SECURITY_POLICY,
            "frame-ancestors 'none'",
        ))
        .insert_header(NOSNIFF);
    b
}

/// `X-Content-Type-Options: nosniff`, on every answer but redirects (`http::configure`).
pub const NOSNIFF: (actix_web::http::header::HeaderName, &str) =
    (actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff");

/// What a page says beside a link that no longer redirects; `None` for a live one.
pub fn ended(t: &Texts, standing: crate::domain::Standing) -> Option<&'static str> {
    use crate::domain::Standing;
    match standing {
        Standing::Active => None,
        Standing::Disabled => Some(t.link_disabled),
        Standing::Expired => Some(t.link_expired),
    }
}

/// A page's daily chart (`chart.html`): drawn for a laptop's width and for a phone's (the
/// page's CSS shows one, by the width the page is read at, so that its labels read at about
/// the size of the text on both, and grow when the page is zoomed), and its days as a table,
/// for screen readers and for anyone who wants a day's numbers.
pub struct Chart {
    pub desk: String,
    pub phone: String,
    /// Day (`YYYY-MM-DD`), clicks, conversions; newest first.
    pub days: Vec<(String, String, String)>,
}

impl Chart {
    pub fn of(points: &[PagePoint], t: &Texts) -> Self {
        Chart {
            desk: daily_chart(points, t.clicks, t.conversions, DESK_CHART_WIDTH),
            phone: daily_chart(points, t.clicks, t.conversions, PHONE_CHART_WIDTH),
            days: points
                .iter()
                .rev()
                .map(|p| {
                    (
                        p.t.get(..10).unwrap_or(&p.t).to_owned(),
                        count(p.clicks),
                        count(p.conversions),
                    )
                })
                .collect(),
        }
    }
}

/// Up to this many days, the daily chart marks each day's point.
const MARKED_DAYS: usize = 14;

/// The daily chart: clicks as a filled line, conversions as a line, drawn as SVG on the server by
/// charts-rs (no script, no library to load in an in-app browser). Days are labelled `MM-DD`.
/// Its legend is the page's (`chart_legend.html`), in the page's font: charts-rs places text by
/// measuring it in the one font it carries, which has no Chinese glyphs, so a zh-TW legend
/// drawn by it had its entries written over each other.
///
/// The SVG scales to its box, text with it: `width` is the width it is drawn for. The KOL page,
/// read on phones, draws it narrower (`PHONE_CHART_WIDTH`), so that its labels are not shrunk
/// to a few pixels on a 360-pixel screen; charts-rs thins out day labels that do not fit.
pub fn daily_chart(points: &[PagePoint], clicks: &str, conversions: &str, width: f32) -> String {
    use charts_rs::{BarChart, Series, SeriesCategory};
    let days: Vec<String> = points
        .iter()
        .map(|p| p.t.get(5..10).unwrap_or(&p.t).to_owned())
        .collect();
    let mut chart = BarChart::new(
        vec![
            Series::new(clicks.to_owned(), points.iter().map(|p| p.clicks as f32).collect()),
            Series::new(
                conversions.to_owned(),
                points.iter().map(|p| p.conversions as f32).collect(),
            ),
        ],
        days,
    );
    chart.width = width;
    chart.height = 220.0;
    // Both series are lines, the clicks' filled below it: a month of bars in a phone's 380
    // pixels was 1.4 pixels a bar (charts-rs keeps 5 pixels either side of each), and a year on
    // the dashboard 1 pixel. A line reads at any number of days, as web analytics draw visits.
    for s in &mut chart.series_list {
        s.category = Some(SeriesCategory::Line);
        // A marker on each of a month's days, zeros included, covers the line: markers only
        // where a few days are drawn.
        if points.len() > MARKED_DAYS {
            s.symbol = Some(charts_rs::Symbol::None);
        }
    }
    chart.series_list[0].fill = Some(true);
    // Conversions dashed: told from clicks by more than their colour (the two lines cannot
    // both stand out from white and from each other by lightness), and seen where they meet.
    chart.series_list[1].stroke_dash_array = Some("6 3".into());
    // The legend's keys (`.key` in base.html) have the same colours. Each line stands out at
    // least 3:1 from white and from the clicks' area (WCAG 1.4.11): the conversions' orange
    // 5.2:1 and 3.8:1, the clicks' blue 6.2:1 and 4.6:1.
    chart.series.colors = vec!["#3056d3".into(), "#c2410c".into()];
    chart.series.fill_opacity = Some(0.2);
    chart.legend.show = Some(false);
    // Counts are whole: where every day's are below the axis' number of steps (none at all,
    // or a few), the axis runs 0, 1, 2 … instead of 0.2, 0.4 ….
    let top = points.iter().map(|p| p.clicks.max(p.conversions)).max().unwrap_or(0);
    if let Some(y) = chart.y_axis_configs.first_mut() {
        let steps = y.split_number.max(1);
        if top < steps as u64 {
            y.min = Some(0.0);
            y.max = Some(steps as f32);
        }
    }
    // Its text for screen readers: what the two lines add up to, over which days.
    let (all_clicks, all_conversions) = points.iter().fold((0u64, 0u64), |(c, v), p| {
        (c.saturating_add(p.clicks), v.saturating_add(p.conversions))
    });
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) => format!(
            ", {} – {}",
            a.t.get(..10).unwrap_or(&a.t),
            b.t.get(..10).unwrap_or(&b.t)
        ),
        _ => String::new(),
    };
    let said = format!("{clicks} {all_clicks}, {conversions} {all_conversions}{span}")
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    match chart.svg() {
        Ok(svg) => svg.replacen(
            "<svg ",
            &format!(r#"<svg class="chart" role="img" aria-label="{said}" "#),
            1,
        ),
        Err(e) => {
            tracing::error!(error = %e, "chart not drawn");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charts_days_are_also_a_table_newest_first_with_the_pages_numbers() {
        let day = |d: &str, clicks: u64, conversions: u64| PagePoint {
            t: format!("{d}T00:00:00Z"),
            clicks,
            conversions,
        };
        let chart = Chart::of(&[day("2026-11-20", 1234, 0), day("2026-11-21", 5, 2)], &EN);
        assert_eq!(
            chart.days,
            [
                ("2026-11-21".into(), "5".into(), "2".into()),
                ("2026-11-20".into(), "1,234".into(), "0".into())
            ]
        );
        for svg in [&chart.desk, &chart.phone] {
            assert!(svg.contains(r#"stroke-dasharray="6 3""#), "conversions dashed: {svg}");
            assert!(
                svg.contains(r##"stroke="#C2410C""##),
                "conversions in the legend's orange: {svg}"
            );
        }
    }

    #[test]
    fn a_chart_of_few_or_no_clicks_counts_in_whole_steps() {
        let day = |clicks: u64| PagePoint {
            t: "2026-11-20T00:00:00Z".to_owned(),
            clicks,
            conversions: 0,
        };
        for points in [vec![day(0), day(0)], vec![day(1), day(2)]] {
            let svg = daily_chart(&points, "Clicks", "Conversions", DESK_CHART_WIDTH);
            let labels: Vec<&str> = svg
                .split("</text>")
                .filter_map(|t| t.rsplit('>').next().map(str::trim))
                .filter(|t| t.parse::<f64>().is_ok())
                .collect();
            assert!(labels.contains(&"1"), "{labels:?}");
            assert!(labels.iter().all(|l| !l.contains('.')), "{labels:?}");
        }
    }

    #[test]
    fn a_chart_says_what_it_shows_to_screen_readers() {
        let day = |t: &str, clicks: u64, conversions: u64| PagePoint {
            t: t.to_owned(),
            clicks,
            conversions,
        };
        let points = [day("2026-11-20T00:00:00Z", 3, 1), day("2026-11-21T00:00:00Z", 4, 0)];
        let svg = daily_chart(&points, "點擊", "轉換", PHONE_CHART_WIDTH);
        assert!(
            svg.starts_with(r#"<svg class="chart" role="img" aria-label="點擊 7, 轉換 1, 2026-11-20 – 2026-11-21" "#),
            "{}",
            &svg[..200]
        );
    }

    #[test]
    fn amounts_are_grouped_by_thousands_with_their_two_digits() {
        let shown = |minor: i64| amount(crate::domain::Money::from_minor(minor));
        assert_eq!(shown(13_830_000), "138,300.00");
        assert_eq!(shown(128_000), "1,280.00");
        assert_eq!(shown(5), "0.05");
        assert_eq!(shown(-30_000), "−300.00");
        assert_eq!(shown(0), "0.00");
    }

    #[test]
    fn counts_and_rates_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(percent(Some(0.0125)), "1.25 %");
        assert_eq!(percent(None), "–");
        assert_eq!(percent(Some(0.0)), "0.00 %");
        assert_eq!(
            percent(Some(2.0 / 120_000.0)),
            "0.0017 %",
            "a small rate is not shown as none"
        );
        assert_eq!(percent(Some(0.00005)), "0.0050 %");
        assert_eq!(percent(Some(0.00001)), "0.0010 %", "a power of ten, two digits too");
        assert_eq!(percent(Some(0.000_000_01)), "0.0000010 %");
        assert_eq!(percent(Some(0.000_099_9)), "0.010 %", "rounded up to the next decade");
        assert_eq!(percent(Some(0.0001)), "0.01 %");
        assert_eq!(percent(Some(-0.000_000_3)), "−0.000030 %");
        // Rounded as the figure reads, not as its float is stored.
        assert_eq!(percent(Some(11.0 / 4000.0)), "0.28 %");
        assert_eq!(percent(Some(0.00274)), "0.27 %");
        assert_eq!(percent(Some(-0.146)), "−14.60 %");
        assert_eq!(percent(Some(-0.000_001)), "−0.00010 %");
        assert_eq!(percent(Some(0.999_96)), "100.00 %");
        assert_eq!(percent(Some(12.5)), "1250.00 %");
        assert_eq!(percent(Some(-0.000_000_000_000_1)), "−0.000000000010 %");
        assert_eq!(percent(Some(1.0 / 3.0)), "33.33 %");
        assert_eq!(percent(Some(2.0 / 3.0)), "66.67 %");
        assert_eq!(decimal(2.675, 0, 2), "2.68");
        assert_eq!(decimal(0.0, 0, 2), "0.00");
        assert_eq!(decimal(9.995, 0, 2), "10.00");
        assert_eq!(
            signed(-0.0001, decimal(0.0001, 0, 2)),
            "0.00",
            "no minus before nothing"
        );
        assert_eq!(percent(Some(-0.000_000_000_000_000_01)), "0.000000000000 %");
    }

    #[test]
    fn a_month_on_a_phone_shows_its_clicks_as_an_area_not_hairlines() {
        let points: Vec<PagePoint> = (1..=30)
            .map(|d| PagePoint {
                t: format!("2026-11-{d:02}T00:00:00Z"),
                clicks: d * 3,
                conversions: d / 10,
            })
            .collect();
        let svg = daily_chart(&points, "Clicks", "Conversions", PHONE_CHART_WIDTH);
        // Bars of a month in a phone's 380 pixels were 1.4 pixels wide (charts-rs keeps 5 pixels
        // either side of each bar): the clicks are one filled area instead.
        let narrow: Vec<&str> = svg
            .split("<rect")
            .skip(1)
            .filter(|r| {
                r.split("width=\"")
                    .nth(1)
                    .and_then(|w| w.split('"').next()?.parse::<f32>().ok())
                    .is_some_and(|w| w < 4.0)
            })
            .collect();
        assert!(narrow.is_empty(), "{} bars under 4 px", narrow.len());
        let areas = svg
            .split("<path")
            .skip(1)
            .filter(|p| p.contains("fill=\"#3056D3"))
            .count();
        assert_eq!(areas, 1, "the clicks' area: {svg}");
        // A month's days are not each marked (the markers covered the lines); a few days are.
        assert_eq!(svg.matches("<circle").count(), 0, "{svg}");
        let few = daily_chart(&points[..3], "Clicks", "Conversions", PHONE_CHART_WIDTH);
        assert_eq!(few.matches("<circle").count(), 6, "{few}");
    }

    #[test]
    fn the_chart_draws_both_series_over_the_days() {
        let points: Vec<PagePoint> = (1..=3)
            .map(|d| PagePoint {
                t: format!("2026-11-0{d}T00:00:00Z"),
                clicks: d * 10,
                conversions: if d == 2 { 1 } else { 0 },
            })
            .collect();
        let svg = daily_chart(&points, "點擊", "轉換", DESK_CHART_WIDTH);
        assert!(svg.starts_with(r#"<svg class="chart""#), "{svg}");
        assert!(svg.contains("11-01") && svg.contains("11-03"));
        // The legend is the page's, laid out by the browser: charts-rs cannot measure Chinese.
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>')?.1.split("</text>").next())
            .map(str::trim)
            .collect();
        assert!(texts.contains(&"11-02"), "{texts:?}");
        assert!(
            !texts.contains(&"點擊") && !texts.contains(&"轉換"),
            "no legend text of its own: {texts:?}"
        );
    }
}
