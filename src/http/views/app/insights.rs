//! The insights a link's card takes on the campaign page: a day's numbers reported or removed
//! through the API's own rules, and what the card shows of the days reported.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::campaign::{CardForm, Refused};
use super::forms::{
    card_page, form_error, form_post, link_of, page_of, plain_amount, reason_of, refused_with_way_back, Typed, INSIGHTS,
};
use super::see_other;
use crate::error::ApiError;
use crate::http::views::Lang;
use crate::http::State;

#[derive(Deserialize, Default)]
pub(super) struct InsightsForm {
    pub(super) csrf: String,
    /// The campaign page's sort and days (`CampaignView::view`), to lead back to.
    pub(super) view: Option<String>,
    pub(super) date: String,
    pub(super) impressions: Option<String>,
    pub(super) reach: Option<String>,
    pub(super) likes: Option<String>,
    pub(super) comments: Option<String>,
    pub(super) shares: Option<String>,
    pub(super) saves: Option<String>,
}

/// A link's numbers of one day, read off the platform's insights, from its card. A field left
/// empty keeps what was saved for that day (0 if nothing was), so that one number is corrected
/// without typing the others again; the day is then written as the API's
/// `POST /api/v1/links/{code}/metrics` writes it. Back to the card, which names the day saved
/// and its numbers; a refusal is the campaign page again, the reason beside the card's form,
/// which holds what was typed, its field at fault marked (`Refused`).
pub(super) async fn report_insights(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
    form: web::Form<InsightsForm>,
) -> HttpResponse {
    let s = match form_post(&req, &state, &form.csrf) {
        Ok(s) => s,
        Err(answer) => return *answer,
    };
    let (id, code) = path.into_inner();
    let lang = Lang::of(&req);
    let page = page_of(&id, form.view.as_deref(), lang);
    let f = form.into_inner();
    let link = match link_of(&state, &id, &code, lang).await {
        Ok(link) => link,
        Err(e) => return refused_with_way_back(&req, e, Typed::default(), &format!("{page}#link-{code}")),
    };
    let typed = [&f.impressions, &f.reach, &f.likes, &f.comments, &f.shares, &f.saves];
    // The field at fault, when a check of one field refused the form.
    let mut fault = None;
    let reported = async {
        let date = crate::http::insights::day(f.date.trim()).inspect_err(|_| fault = Some("date"))?;
        let mut numbers = [None; 6];
        for ((n, s), (label, name)) in numbers.iter_mut().zip(typed).zip(INSIGHTS.iter().zip(INSIGHT_NAMES)) {
            *n = whole_number(label.0, s.as_deref()).inspect_err(|_| fault = Some(name))?;
        }
        let saved = crate::http::insights::reported_days(&state, link.code.as_str())
            .await?
            .remove(&date)
            .unwrap_or_default();
        let mut kept = saved.numbers();
        for (was, typed) in kept.iter_mut().zip(numbers) {
            *was = typed.unwrap_or(*was);
        }
        let insights = crate::domain::DayInsights::from_numbers(kept);
        // The day's own checks (how far back, how far ahead).
        crate::http::insights::report_day(&state, &link, date, &insights)
            .await
            .inspect_err(|_| fault = Some("date"))?;
        Ok::<_, ApiError>(date)
    };
    match reported.await {
        Ok(date) => see_other(&format!("{page}&edit={code}&day={date}&saved=1#link-{code}")),
        Err(e) => {
            let mut fields: Vec<(&'static str, String)> = INSIGHT_NAMES
                .iter()
                .zip(typed)
                .map(|(name, v)| (*name, v.clone().unwrap_or_default()))
                .collect();
            fields.push(("date", f.date.clone()));
            let refusal = Refused {
                form: CardForm::Insights,
                reason: reason_of(&e, lang),
                // A store that failed is no field's fault.
                field: fault.filter(|_| matches!(e, ApiError::Client { .. })),
                typed: fields,
            };
            let page = card_page(&req, &state, &s, &id, &code, f.view.as_deref(), refusal);
            form_error(&req, e, page).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RemoveDayForm {
    pub(super) csrf: String,
    /// The campaign page's sort and days (`CampaignView::view`), to lead back to.
    pub(super) view: Option<String>,
}

/// A day of a link's insights reported by mistake (a mistyped year made the link's series
/// start there), removed from the card's list of days, as the API's
/// `DELETE /api/v1/links/{code}/metrics/{date}` removes it. Back to the card, which says so.
pub(super) async fn remove_insights(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String, String)>,
    form: web::Form<RemoveDayForm>,
) -> HttpResponse {
    if let Err(answer) = form_post(&req, &state, &form.csrf) {
        return *answer;
    }
    let (id, code, day) = path.into_inner();
    let lang = Lang::of(&req);
    let page = page_of(&id, form.view.as_deref(), lang);
    let removed = async {
        let link = link_of(&state, &id, &code, lang).await?;
        let date = crate::http::insights::day(&day)?;
        // What the day held, for the card to offer back.
        let was = crate::http::insights::reported_days(&state, link.code.as_str())
            .await?
            .remove(&date)
            .unwrap_or_default();
        crate::http::insights::remove_day(&state, &link, date).await?;
        Ok::<_, ApiError>((date, was))
    };
    match removed.await {
        Ok((date, was)) => see_other(&format!(
            "{page}&edit={code}&day={date}&removed={}#link-{code}",
            numbers_in_address(&was)
        )),
        Err(e) => refused_with_way_back(&req, e, Typed::default(), &format!("{page}#link-{code}")),
    }
}

/// A card's days of insights, as the page shows them (`?edit=<code>`).
pub(crate) struct CardInsights {
    /// What it says of the day just saved.
    pub(crate) note: Option<String>,
    /// The day its form is filled with, and that day's numbers as the form takes them
    /// ("12000"; empty where none was saved).
    pub(crate) date: String,
    values: [String; 6],
    /// Newest first, at most `DAYS_SHOWN`.
    pub(crate) days: Vec<ReportedDay>,
}

/// A day of insights a card lists: its numbers, and the address that fills its form with them.
pub(crate) struct ReportedDay {
    pub(crate) day: String,
    pub(crate) numbers: Vec<String>,
    pub(crate) href: String,
}

/// A field of a card's insights form.
pub(crate) struct InsightField {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) value: String,
    /// The field at fault of a form that was not taken.
    pub(crate) invalid: bool,
}

/// The insights form's fields' names, in the order of `INSIGHTS`.
pub(super) const INSIGHT_NAMES: [&str; 6] = ["impressions", "reach", "likes", "comments", "shares", "saves"];

/// How many reported days a card lists.
pub(super) const DAYS_SHOWN: usize = 60;

/// `code`'s card with its days of insights (`days`, as stored): its form filled with `day`'s
/// numbers, and, when that day was just saved, a note saying what was. `page` is the campaign
/// page's address, to which each listed day adds itself.
pub(super) fn card_insights(
    lang: Lang,
    page: &str,
    code: &str,
    day: Option<chrono::NaiveDate>,
    (saved, removed): (bool, Option<&crate::domain::DayInsights>),
    days: &std::collections::BTreeMap<chrono::NaiveDate, crate::domain::DayInsights>,
) -> CardInsights {
    // A day just removed fills the form with what it held: saving it puts them back.
    let on_day = removed.or_else(|| day.and_then(|d| days.get(&d)));
    CardInsights {
        note: match (saved, removed, day) {
            (true, _, Some(d)) => Some(saved_note(lang, d, &on_day.copied().unwrap_or_default())),
            (_, Some(n), Some(d)) => Some(match lang {
                Lang::En => format!(
                    "Removed the numbers of {d} ({}). Save the day to put them back.",
                    numbers_said(lang, n)
                ),
                Lang::ZhTw => format!(
                    "已刪除 {d} 的數字（{}）。按「儲存這一天」可復原。",
                    numbers_said(lang, n)
                ),
            }),
            _ => None,
        },
        date: day.map(|d| d.to_string()).unwrap_or_default(),
        values: on_day.map_or_else(Default::default, |n| n.numbers().map(|v| v.to_string())),
        days: days
            .iter()
            .rev()
            .take(DAYS_SHOWN)
            .map(|(d, n)| ReportedDay {
                day: d.to_string(),
                numbers: n.numbers().iter().map(|v| crate::http::views::count(*v)).collect(),
                href: format!("{page}&edit={code}&day={d}#link-{code}"),
            })
            .collect(),
    }
}

/// A card's insights form's six fields, filled from `card` when the page shows its days.
pub(super) fn insight_fields(t: &crate::http::views::Texts, card: Option<&CardInsights>) -> Vec<InsightField> {
    let labels = [
        t.impressions_count,
        t.reach,
        t.likes,
        t.comments,
        t.shares_count,
        t.saves,
    ];
    INSIGHT_NAMES
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (name, label))| InsightField {
            name,
            label,
            value: card.map(|c| c.values[i].clone()).unwrap_or_default(),
            invalid: false,
        })
        .collect()
}

/// What a card says of the day of insights it saved: the day and its six numbers.
pub(super) fn saved_note(lang: Lang, day: chrono::NaiveDate, n: &crate::domain::DayInsights) -> String {
    match lang {
        Lang::En => format!("Saved for {day}: {}.", numbers_said(lang, n)),
        Lang::ZhTw => format!("已儲存 {day}：{}。", numbers_said(lang, n)),
    }
}

/// A day's six numbers, named ("impressions 1,000, reach 0, …").
pub(super) fn numbers_said(lang: Lang, n: &crate::domain::DayInsights) -> String {
    let count = crate::http::views::count;
    let parts = INSIGHTS.iter().zip(n.numbers()).map(|((en, zh), v)| match lang {
        Lang::En => format!("{} {}", en.to_lowercase(), count(v)),
        Lang::ZhTw => format!("{zh} {}", count(v)),
    });
    parts
        .collect::<Vec<_>>()
        .join(if lang == Lang::En { ", " } else { "、" })
}

/// A day's six numbers in an address (`removed=`), and read back from one.
pub(super) fn numbers_in_address(n: &crate::domain::DayInsights) -> String {
    n.numbers().map(|v| v.to_string()).join("-")
}

pub(super) fn numbers_from_address(s: &str) -> Option<crate::domain::DayInsights> {
    let v: Vec<u64> = s.split('-').map(str::parse).collect::<Result<_, _>>().ok()?;
    Some(crate::domain::DayInsights::from_numbers(v.try_into().ok()?))
}

/// A count as people type it: "120,000" or "120000" (grouped by thousands only: a typo such as
/// "120,00" is refused, not read as 12000), with spaces, and in full-width digits and commas as
/// Chinese and Japanese input methods give them ("１２，０００"). `None` when left empty.
/// `label` names the field in the reason.
pub(super) fn whole_number(label: &str, s: Option<&str>) -> Result<Option<u64>, ApiError> {
    let typed: String = s
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '，' => ',',
            '－' => '-',
            other => other,
        })
        .collect();
    if typed.is_empty() {
        return Ok(None);
    }
    if typed.starts_with('-') {
        return Err(ApiError::invalid(format!("{label} cannot be negative.")));
    }
    plain_amount(&typed)
        .parse::<u64>()
        .map(Some)
        .map_err(|_| ApiError::invalid(format!("{label} must be a whole number, such as 42000 or 42,000.")))
}
