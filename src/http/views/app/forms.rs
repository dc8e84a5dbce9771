//! The dashboard's forms: creating campaigns and KOLs, minting and changing links.
//! Each checks its session and CSRF token, then calls the same rules the API does; a form that
//! is not taken shows its page again, with the reason and the fields as they were sent.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::campaign::{campaign_page, CampaignQuery, CardForm, Editing, Refused};
use super::campaigns::campaigns_page;
use super::insights::whole_number;
use super::{rendered, see_other, session, signed_in, to_sign_in};
use crate::domain::LinkStatus;
use crate::error::{ApiError, Code};
use crate::http::campaigns::{new_campaign, CreateCampaign};
use crate::http::kols::{new_kol, CreateKol};
use crate::http::views::Lang;
use crate::http::State;
use crate::minting::{LinkPatch, LinkSpec};
use crate::report::Sort;
use crate::stats::Range;

/// The session of a form post with its right CSRF token; else the answer to give (to the
/// sign-in page, or "this form has expired").
pub(super) fn form_post(req: &HttpRequest, state: &State, csrf: &str) -> Result<String, Box<HttpResponse>> {
    // Nothing is written to a Redis not yet found to be this process's store (`limits::limit`).
    if state.spool.held() {
        return Err(Box::new(crate::http::limits::not_started()));
    }
    let Some(s) = signed_in(req, state) else {
        return Err(Box::new(to_sign_in(req)));
    };
    if !session::csrf_ok(state, &s, csrf) {
        // Still signed in: the page the form was on, loaded again, has a fresh form.
        let lang = Lang::of(req);
        let back = format!("{}?lang={}", super::sign_in::form_page(req.path()), lang.tag());
        return Err(Box::new(crate::http::redirect::page_with_way_back(
            req,
            Code::Unauthorized,
            super::FORM_EXPIRED,
            Some((&back, lang.texts().reload_form)),
        )));
    }
    Ok(s)
}

/// A form that was not taken: for a browser, its page again with the reason above the form
/// and the fields as they were sent (`page`, with the error's status); for other clients,
/// API.md's JSON error (`redirect::page`, which also answers a browser whose page could not be
/// built). A store that failed is an error answer either way.
pub(super) async fn form_error<F>(req: &HttpRequest, e: ApiError, page: F) -> HttpResponse
where
    F: std::future::Future<Output = Result<Result<String, askama::Error>, ApiError>>,
{
    let answer = |e: ApiError| match e {
        ApiError::Client { code, message } => crate::http::redirect::page(req, code, &message),
        other => actix_web::ResponseError::error_response(&other),
    };
    match e {
        ApiError::Client { code, .. } if crate::http::accepts(req, "text/html") => {
            match page.await.and_then(rendered) {
                Ok(mut page) => {
                    *page.status_mut() = code.describe().1;
                    page
                }
                // The page itself could not be built (its campaign is gone, the store is down).
                Err(e) => answer(e),
            }
        }
        e => answer(e),
    }
}

/// A form's fields as sent, why it was not taken (shown above it), and the `name` of its field
/// at fault, marked and tied to the reason for screen readers (WCAG 3.3.1).
#[derive(Default)]
pub(super) struct Sent<T> {
    pub(super) fields: T,
    pub(super) failed: Option<String>,
    field: Option<&'static str>,
}

impl<T> Sent<T> {
    /// `fields` refused with `e`, its reason in `lang` (`reason`); `typed` names what the
    /// reason may quote: the KOL, the coupon, the campaign id.
    fn failed(fields: T, e: &ApiError, lang: Lang, typed: Typed<'_>) -> Self {
        let (failed, field) = match e {
            ApiError::Client { code, message } => (Some(reason(lang, *code, message, typed)), fault(*code, message)),
            _ => (None, None),
        };
        Self { fields, failed, field }
    }

    /// Whether the field named `name` is the one at fault.
    pub(super) fn invalid(&self, name: &str) -> bool {
        self.field == Some(name)
    }
}

/// The `name` of the field of the dashboard's forms that an error of the rules they call is
/// about, where one is (the API's messages start with the field they are about).
pub(super) fn fault(code: Code, message: &str) -> Option<&'static str> {
    let field = |name: &str| message.starts_with(name);
    Some(match code {
        Code::UnknownKol => "kol",
        Code::NotFound if field("No KOL") => "kol",
        Code::CouponTaken => "coupon",
        Code::AlreadyExists => "id",
        Code::InvalidDestination => "destination",
        Code::InvalidInput if field("Followers") => "followers",
        Code::InvalidInput if message.contains("ISO 4217") => "currency",
        Code::InvalidInput => ["cost", "coupon", "handle", "platform", "name", "id", "kol"]
            .into_iter()
            .find(|f| field(f))?,
        _ => return None,
    })
}

/// What a refused form's fields held, for its reason to quote.
#[derive(Default, Clone, Copy)]
pub(super) struct Typed<'a> {
    pub(super) kol: &'a str,
    pub(super) coupon: &'a str,
    pub(super) id: &'a str,
}

/// Why a form was not taken, for its reader. The API's messages are English: a zh-TW page says
/// the reasons these two forms meet in Chinese, and what to type instead; any other reason is
/// given as the API gives it.
pub(super) fn reason(lang: Lang, code: Code, message: &str, typed: Typed<'_>) -> String {
    if lang != Lang::ZhTw {
        // The API's words for an amount are a developer's ("a non-negative decimal"); the
        // forms take money as the dashboard writes it.
        if code == Code::InvalidInput && message.starts_with("cost") {
            return "Cost must be an amount, such as 1500 or 1,500.50.".to_owned();
        }
        return message.to_owned();
    }
    let field = |name: &str| message.starts_with(name);
    match code {
        Code::UnknownKol => format!(
            "找不到代號為「{}」的 KOL：請確認代號（小寫英文字母與數字），或先建立這位 KOL。",
            typed.kol
        ),
        Code::CouponTaken => format!("折扣碼「{}」已屬於另一條連結（折扣碼不分大小寫）。", typed.coupon),
        Code::AlreadyExists if message.starts_with("A KOL") => {
            format!("代號「{}」已屬於另一位 KOL：請換一個。", typed.id)
        }
        Code::AlreadyExists => format!("代號「{}」已被另一個活動使用：請換一個。", typed.id),
        Code::InvalidInput if field("Followers cannot") => "粉絲數不可為負數。".to_owned(),
        Code::InvalidInput if field("Followers") => "粉絲數須為整數，例如 42000。".to_owned(),
        Code::InvalidInput if field("date is in the future") => {
            "日期不可晚於明天（UTC）：請填已經過去的一天。".to_owned()
        }
        Code::InvalidInput if field("date is more than") => "日期太久以前：請填貼文上線期間的一天。".to_owned(),
        Code::InvalidInput if field("date") => "日期須寫成 YYYY-MM-DD。".to_owned(),
        Code::InvalidInput if INSIGHTS.iter().any(|(en, _)| field(en)) => {
            let (en, zh) = INSIGHTS.iter().find(|(en, _)| field(en)).copied().unwrap_or_default();
            if message.starts_with(&format!("{en} cannot")) {
                format!("{zh}不可為負數。")
            } else {
                format!("{zh}須為整數，例如 42000 或 42,000。")
            }
        }
        Code::InvalidInput if field("handle") => "帳號須為 1 到 100 個字元。".to_owned(),
        Code::InvalidDestination if message.contains("absolute URL") || message.contains("http") => {
            "目的網址須為完整網址，以 https:// 開頭，例如 https://shop.example.com/item。".to_owned()
        }
        Code::InvalidDestination => format!("目的網址無效（{message}）"),
        Code::InvalidInput if field("cost") => "成本須為金額，例如 1500 或 1,500.50。".to_owned(),
        Code::InvalidInput if field("id") => {
            "代號只能使用小寫英文字母、數字、- 與 _，並以字母或數字開頭，例如 spring-sale。".to_owned()
        }
        Code::InvalidInput if field("name") => "請填寫名稱（200 字以內）。".to_owned(),
        Code::InvalidInput if message.contains("ISO 4217") => {
            "幣別須為 ISO 4217 代碼，例如 TWD、USD 或 JPY。".to_owned()
        }
        Code::InvalidInput if field("coupon") => "折扣碼須為 1 到 64 個字元，不含空白。".to_owned(),
        Code::InvalidInput if field("platform") => "請從清單中選擇平台。".to_owned(),
        Code::InvalidInput if field("action") => "無法執行這個動作：請重新載入頁面。".to_owned(),
        Code::NotFound if message.starts_with("No KOL") => format!("找不到代號為「{}」的 KOL。", typed.kol),
        _ => message.to_owned(),
    }
}

/// The insights form's fields, as the form names them in English and in zh-TW (the words of
/// Instagram's insights in Taiwan, which analysts copy from).
/// In the order of `DayInsights`' fields.
pub(super) const INSIGHTS: [(&str, &str); 6] = [
    ("Impressions", "曝光次數"),
    ("Reach", "觸及帳號數"),
    ("Likes", "按讚數"),
    ("Comments", "留言數"),
    ("Shares", "分享次數"),
    ("Saves", "儲存次數"),
];

/// A cost as the dashboard shows money, grouped by thousands ("1,500.50"), made plain
/// ("1500.50"); anything else is left for the amount's own check to judge.
pub(super) fn plain_amount(s: &str) -> String {
    let (whole, fraction) = s.split_once('.').map_or((s, None), |(w, f)| (w, Some(f)));
    let mut groups = whole.split(',');
    let first_ok = groups
        .next()
        .is_some_and(|g| (1..=3).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()));
    let rest: Vec<&str> = groups.collect();
    let grouped = first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()));
    if !grouped {
        return s.to_owned();
    }
    let digits = whole.replace(',', "");
    match fraction {
        Some(f) => format!("{digits}.{f}"),
        None => digits,
    }
}

#[derive(Deserialize, Default)]
pub(super) struct NewCampaignForm {
    pub(super) csrf: String,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) destination: Option<String>,
    pub(super) currency: Option<String>,
}

pub(super) async fn create_campaign(req: HttpRequest, state: State, form: web::Form<NewCampaignForm>) -> HttpResponse {
    let s = match form_post(&req, &state, &form.csrf) {
        Ok(s) => s,
        Err(answer) => return *answer,
    };
    let f = form.into_inner();
    let body = CreateCampaign {
        id: f.id.clone(),
        name: f.name.clone(),
        destination: f.destination.clone().filter(|d| !d.is_empty()),
        currency: f
            .currency
            .clone()
            .filter(|c| !c.is_empty())
            .map(|c| c.to_ascii_uppercase()),
        ..CreateCampaign::default()
    };
    match new_campaign(&state, body).await {
        Ok(c) => see_other(&format!("/app/campaigns/{}?lang={}", c.id, Lang::of(&req).tag())),
        Err(e) => {
            let id = f.id.clone();
            let typed = Typed {
                id: &id,
                ..Typed::default()
            };
            let sent = Sent::failed(f, &e, Lang::of(&req), typed);
            form_error(&req, e, campaigns_page(&req, &state, &s, sent, Sent::default())).await
        }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct NewKolForm {
    pub(super) csrf: String,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) handle: Option<String>,
    pub(super) platform: String,
    pub(super) followers: Option<String>,
}

/// A KOL, added on the campaigns' page as the API's `POST /api/v1/kols` adds one, so that an
/// analyst can mint their links without an API call.
pub(super) async fn create_kol(req: HttpRequest, state: State, form: web::Form<NewKolForm>) -> HttpResponse {
    let s = match form_post(&req, &state, &form.csrf) {
        Ok(s) => s,
        Err(answer) => return *answer,
    };
    let f = form.into_inner();
    let lang = Lang::of(&req);
    let made = async {
        let platform = crate::domain::Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == f.platform)
            .ok_or_else(|| ApiError::invalid("platform must be one of the list."))?;
        let followers = whole_number("Followers", f.followers.as_deref())?.unwrap_or(0);
        let body = CreateKol {
            id: f.id.clone(),
            name: f.name.clone(),
            handle: f.handle.clone().filter(|h| !h.trim().is_empty()),
            platform,
            followers,
        };
        new_kol(&state, body).await
    };
    match made.await {
        Ok(k) => see_other(&format!("/app?lang={}&added={}#new-kol", lang.tag(), k.id)),
        Err(e) => {
            let id = f.id.clone();
            let typed = Typed {
                id: &id,
                ..Typed::default()
            };
            let sent = Sent::failed(f, &e, lang, typed);
            form_error(&req, e, campaigns_page(&req, &state, &s, Sent::default(), sent)).await
        }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct MintForm {
    pub(super) csrf: String,
    /// The campaign page's sort and days (`CampaignView::view`), to lead back to.
    pub(super) view: Option<String>,
    pub(super) kol: String,
    pub(super) cost: Option<String>,
    pub(super) coupon: Option<String>,
}

pub(super) async fn mint(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    form: web::Form<MintForm>,
) -> HttpResponse {
    let s = match form_post(&req, &state, &form.csrf) {
        Ok(s) => s,
        Err(answer) => return *answer,
    };
    let f = form.into_inner();
    let spec = LinkSpec {
        kol: f.kol.clone(),
        destination: None,
        cost: f
            .cost
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| serde_json::Value::String(plain_amount(c))),
        coupon: f.coupon.clone().filter(|c| !c.is_empty()),
        code: None,
        tags: vec![],
        utm: None,
        expires_at: None,
    };
    match state.minter().one(&id, spec).await {
        // The new link's card, saying it was made: it was listed far above the form, unsaid.
        Ok(link) => see_other(&format!(
            "{}&edit={code}&did=created#link-{code}",
            page_of(&id, f.view.as_deref(), Lang::of(&req)),
            code = link.code
        )),
        Err(e) => {
            let (kol, coupon) = (f.kol.clone(), f.coupon.clone().unwrap_or_default());
            let typed = Typed {
                kol: &kol,
                coupon: &coupon,
                ..Typed::default()
            };
            let sent = Sent::failed(f, &e, Lang::of(&req), typed);
            form_error(
                &req,
                e,
                campaign_page(
                    &req,
                    &state,
                    &s,
                    &id,
                    (Sort::default(), Range::default(), None),
                    sent,
                    None,
                ),
            )
            .await
        }
    }
}

/// A card's or a share's refusal: a page saying why in the reader's language (`typed` as
/// `reason` quotes it), with the way back to the campaign; an error of kolink's its own answer.
pub(super) fn refused_with_way_back(req: &HttpRequest, e: ApiError, typed: Typed<'_>, back: &str) -> HttpResponse {
    let lang = Lang::of(req);
    match e {
        ApiError::Client { code, message } => crate::http::redirect::page_with_way_back(
            req,
            code,
            &reason(lang, code, &message, typed),
            Some((back, lang.texts().back_to_campaign)),
        ),
        other => actix_web::ResponseError::error_response(&other),
    }
}

/// Campaign `id`'s page as a form on it was showing it (`view`: its sort and days, kept when
/// they are a dashboard page's), in `lang`.
pub(super) fn page_of(id: &str, view: Option<&str>, lang: Lang) -> String {
    let page = match view.filter(|v| !v.is_empty()) {
        Some(v) => format!("/app/campaigns/{id}?{v}"),
        None => format!("/app/campaigns/{id}?"),
    };
    match super::sign_in::local_page(&page) {
        Some(p) if p.ends_with('?') => format!("{p}lang={}", lang.tag()),
        Some(p) => format!("{p}&lang={}", lang.tag()),
        None => format!("/app/campaigns/{id}?lang={}", lang.tag()),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct LinkEditForm {
    pub(super) csrf: String,
    /// The campaign page's sort and days (`CampaignView::view`), to lead back to.
    pub(super) view: Option<String>,
    /// `cost` (with `cost`), `disable` or `enable`.
    pub(super) action: String,
    pub(super) cost: Option<String>,
}

/// A link's card on its campaign's page: a new cost, or the link stopped or started again.
/// Changed as the API's `PATCH /api/v1/links/{code}` changes it; a refusal is the campaign
/// page again, the reason beside the card's form and the cost as typed (`Refused`). A link
/// the page does not have is a page saying so, with the way back.
pub(super) async fn edit_link(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
    form: web::Form<LinkEditForm>,
) -> HttpResponse {
    let s = match form_post(&req, &state, &form.csrf) {
        Ok(s) => s,
        Err(answer) => return *answer,
    };
    let (id, code) = path.into_inner();
    let lang = Lang::of(&req);
    let page = page_of(&id, form.view.as_deref(), lang);
    let refused = |e: ApiError| refused_with_way_back(&req, e, Typed::default(), &format!("{page}#link-{code}"));
    if let Err(e) = link_of(&state, &id, &code, lang).await {
        return refused(e);
    }
    let f = form.into_inner();
    let patch = match f.action.as_str() {
        "disable" => LinkPatch {
            status: Some(LinkStatus::Disabled),
            ..LinkPatch::default()
        },
        "enable" => LinkPatch {
            status: Some(LinkStatus::Active),
            ..LinkPatch::default()
        },
        "cost" => LinkPatch {
            cost: Some(serde_json::Value::String(plain_amount(
                f.cost.as_deref().unwrap_or_default().trim(),
            ))),
            ..LinkPatch::default()
        },
        _ => return refused(ApiError::invalid("action must be cost, disable or enable.")),
    };
    match state.minter().patch(&code, patch).await {
        // Back to the card, which says what was done.
        Ok(_) => see_other(&format!("{page}&edit={code}&did={}#link-{code}", f.action)),
        Err(e) => {
            let refusal = Refused {
                form: CardForm::Cost,
                reason: reason_of(&e, lang),
                field: (f.action == "cost").then_some("cost"),
                typed: vec![("cost", f.cost.clone().unwrap_or_default())],
            };
            let page = card_page(&req, &state, &s, &id, &code, f.view.as_deref(), refusal);
            form_error(&req, e, page).await
        }
    }
}

/// Why a card's form was not taken, in `lang` (`reason`; empty for an error of kolink's,
/// which is its own answer).
pub(super) fn reason_of(e: &ApiError, lang: Lang) -> String {
    match e {
        ApiError::Client { code, message } => reason(lang, *code, message, Typed::default()),
        _ => String::new(),
    }
}

/// Campaign `id`'s page as a card's form on it was showing it (`view`), `code`'s card saying
/// why that form was not taken.
pub(super) async fn card_page(
    req: &HttpRequest,
    state: &State,
    session: &str,
    id: &str,
    code: &str,
    view: Option<&str>,
    refused: Refused,
) -> Result<Result<String, askama::Error>, ApiError> {
    let q = web::Query::<CampaignQuery>::from_query(view.unwrap_or_default()).ok();
    let sort = q
        .as_ref()
        .and_then(|q| Sort::parse(q.sort.as_deref(), q.order.as_deref()).ok())
        .unwrap_or_default();
    let range = q
        .as_ref()
        .and_then(|q| crate::http::stats::day_range(q.from.as_deref(), q.to.as_deref()).ok())
        .unwrap_or_default();
    let editing = Editing {
        code,
        day: None,
        saved: false,
        removed: None,
        refused: Some(refused),
        did: None,
    };
    campaign_page(
        req,
        state,
        session,
        id,
        (sort, range, None),
        Sent::default(),
        Some(editing),
    )
    .await
}

/// Only a link of the page's campaign is changed from its page.
pub(super) async fn link_of(state: &State, id: &str, code: &str, lang: Lang) -> Result<crate::domain::Link, ApiError> {
    match state.store().get_link(code).await? {
        Some(link) if link.campaign.as_str() == id => Ok(link),
        _ => Err(ApiError::not_found(match lang {
            Lang::ZhTw => format!("活動「{id}」沒有代號為「{code}」的連結。"),
            Lang::En => format!("Campaign '{id}' has no link '{code}'."),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::plain_amount;

    #[test]
    fn a_cost_grouped_by_thousands_is_made_plain_and_nothing_else_is_touched() {
        assert_eq!(plain_amount("1,500"), "1500");
        assert_eq!(plain_amount("1,500.50"), "1500.50");
        assert_eq!(plain_amount("12,345,678.9"), "12345678.9");
        // Not grouping: left for the amount's check to refuse with its own message.
        for s in [
            "1500", "1,50", "1,5000", ",500", "1,,500", "NT$1,500", "1.500,00", "-1,500",
        ] {
            assert_eq!(plain_amount(s), s, "{s}");
        }
    }
}
