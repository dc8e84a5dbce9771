//! Server-rendered pages: one view module per page, templates in `templates/` (checked at
//! compile time), each rendering the same report types the JSON API returns, so a figure cannot
//! differ between a screen and the API. English and Traditional Chinese.

pub mod app;
pub mod kol_page;
pub mod session;

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

/// Every piece of text a page shows, in one language.
pub struct Texts {
    pub html_lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub kol_title: &'static str,
    pub totals: &'static str,
    pub clicks: &'static str,
    pub unique_clicks: &'static str,
    pub ctr: &'static str,
    pub conversions: &'static str,
    pub conversion_rate: &'static str,
    pub daily: &'static str,
    pub range_from: &'static str,
    pub range_to: &'static str,
    pub range_show: &'static str,
    pub range_all: &'static str,
    pub range_cost_note: &'static str,
    pub range_refused: &'static str,
    pub links: &'static str,
    pub copy: &'static str,
    pub copied: &'static str,
    pub copy_by_hand: &'static str,
    pub qr_alt: &'static str,
    pub link_disabled: &'static str,
    pub link_expired: &'static str,
    pub qr_download: &'static str,
    pub no_links: &'static str,
    pub no_conversions: &'static str,
    pub footer: &'static str,
    pub app_title: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub admin_token: &'static str,
    pub bad_token: &'static str,
    pub session_ended: &'static str,
    /// "Too many attempts … try again in", then the seconds, then `seconds_later`.
    pub too_many_tries: &'static str,
    pub seconds_later: &'static str,
    pub campaign: &'static str,
    pub currency: &'static str,
    pub revenue: &'static str,
    pub cost: &'static str,
    pub roi: &'static str,
    pub kol: &'static str,
    pub tier: &'static str,
    pub leaderboard: &'static str,
    pub tiers: &'static str,
    pub breakdowns: &'static str,
    pub conversions_list: &'static str,
    pub audit: &'static str,
    pub status: &'static str,
    pub order: &'static str,
    pub downloads: &'static str,
    pub report_csv: &'static str,
    pub clicks_csv: &'static str,
    pub no_campaigns: &'static str,
    /// The campaigns' page's list of the latest conversions no campaign claimed.
    pub unclaimed: &'static str,
    pub unclaimed_note: &'static str,
    pub no_unclaimed: &'static str,
    pub shop: &'static str,
    pub new_campaign: &'static str,
    pub create: &'static str,
    /// The conversions table's money column: a purchase's revenue, or what a refund took back.
    pub amount: &'static str,
    /// Before the reason a form's link or campaign was not created.
    pub not_created: &'static str,
    /// Before why a card's form was not taken.
    pub not_saved: &'static str,
    /// What a card says once its cost was saved, or its link stopped or started again.
    pub cost_saved: &'static str,
    pub link_stopped: &'static str,
    pub link_started: &'static str,
    pub mint_link: &'static str,
    pub name: &'static str,
    pub destination: &'static str,
    pub coupon: &'static str,
    pub back: &'static str,
    pub back_to_campaign: &'static str,
    pub reload_form: &'static str,
    pub new_kol: &'static str,
    pub kol_added: &'static str,
    pub handle: &'static str,
    pub platform: &'static str,
    pub followers: &'static str,
    pub platform_blog: &'static str,
    pub when: &'static str,
    pub chart_cut: &'static str,
    pub of_the_days: &'static str,
    pub share_with_kol: &'static str,
    pub shared_pages: &'static str,
    pub shared_since: &'static str,
    pub shared_until: &'static str,
    pub shared_covers: &'static str,
    pub shared_this_campaign: &'static str,
    pub shared_every_campaign: &'static str,
    pub revoke: &'static str,
    pub share_title: &'static str,
    pub share_once: &'static str,
    pub share_revoke: &'static str,
    pub newest_conversions: &'static str,
    pub all_conversions_csv: &'static str,
    pub platform_other: &'static str,
    pub save_cost: &'static str,
    /// A link card's form of one day's insights: its opener, fields, button, hint and the
    /// card's word once it saved them.
    pub report_day: &'static str,
    pub day_utc: &'static str,
    pub reach: &'static str,
    pub pixel_impressions: &'static str,
    pub bot_clicks: &'static str,
    pub previews: &'static str,
    pub suspicious_clicks: &'static str,
    pub likes: &'static str,
    pub comments: &'static str,
    pub shares_count: &'static str,
    pub saves: &'static str,
    pub save_day: &'static str,
    pub report_day_hint: &'static str,
    pub impressions_count: &'static str,
    /// A card's list of the days of insights reported: its caption, a row's link that fills
    /// the form with it, what an empty list says, the link that shows the list.
    pub days_reported: &'static str,
    pub edit_day: &'static str,
    /// The heading of a table's column of buttons or links (said, not shown).
    pub actions: &'static str,
    /// A reported day's button that removes it.
    pub remove_day: &'static str,
    /// The opener of a chart's days as a table.
    pub chart_table: &'static str,
    pub no_days_reported: &'static str,
    pub see_days_reported: &'static str,
    pub disable_link: &'static str,
    pub enable_link: &'static str,
    pub roas: &'static str,
    pub impressions: &'static str,
    pub net_revenue: &'static str,
    /// The mint form's KOL field, and the new-campaign form's id field.
    pub kol_id: &'static str,
    pub campaign_id: &'static str,
    /// The tiers table's column of how many KOLs are in a tier.
    pub kol_count: &'static str,
    pub refunds: &'static str,
    pub epc: &'static str,
    pub cpc: &'static str,
    pub cpa: &'static str,
    pub aov: &'static str,
    pub engagements: &'static str,
    pub engagement_rate: &'static str,
    /// The breakdown cards' names, in the order of `BREAKDOWNS`.
    pub dimensions: [&'static str; 6],
    /// Follower tiers, smallest first (nano, micro, mid, macro, mega).
    pub tier_names: [&'static str; 5],
    /// Conversion statuses: attributed, duplicate, unattributed, outside the window, currency
    /// mismatch, a refund pending its purchase, over-refund, a test order.
    pub statuses: [&'static str; 8],
    /// Devices in the device breakdown: mobile, tablet, desktop, appliance, other
    /// (`DEVICES`); and the `qr` source (scans of a link's QR code).
    pub devices: [&'static str; 5],
    pub qr_source: &'static str,
    /// The conversions list's event column, and each event in the order of `Event::ALL`.
    pub event: &'static str,
    pub events: [&'static str; 6],
    /// A conversion's audit: each of `AUDIT_SOURCES`, in order.
    pub audit_sources: [&'static str; 10],
    /// A candidate's result: chosen, lower priority, no link, a bot's click, after the
    /// conversion, outside the window.
    pub audit_results: [&'static str; 6],
    /// The audit of a conversion that named nothing to attribute it by.
    pub audit_none: &'static str,
}

pub static EN: Texts = Texts {
    html_lang: "en",
    other_lang: "zh-TW",
    other_lang_name: "中文",
    kol_title: "Your links",
    totals: "Totals",
    clicks: "Clicks",
    unique_clicks: "Unique clicks",
    ctr: "CTR",
    conversions: "Conversions",
    conversion_rate: "Conversion rate",
    daily: "Last 30 days (UTC)",
    range_from: "From (UTC day)",
    range_to: "To",
    range_show: "Show",
    range_all: "All days",
    range_cost_note:
        "Clicks, conversions and money are those of the days shown; cost and ROI count each link's whole cost.",
    range_refused: "These days cannot be shown: give dates, and the first day must not be after the last. The figures below are of every day.",
    links: "Links",
    copy: "Copy",
    copied: "Copied",
    copy_by_hand: "Selected: copy it",
    qr_alt: "QR code of",
    link_disabled: "Disabled: this link no longer leads anywhere. Do not share it.",
    link_expired: "Expired: this link no longer leads anywhere. Do not share it.",
    qr_download: "QR code (PNG)",
    no_links: "No links yet.",
    no_conversions: "No conversions yet.",
    footer: "Figures from kolink: clicks by people (bots excluded), conversions the shop reported.",
    app_title: "Campaigns",
    sign_in: "Sign in",
    sign_out: "Sign out",
    admin_token: "Admin token",
    bad_token: "That is not the admin token.",
    session_ended: "Your session has ended (signed out, or it expired): sign in again to go back to your page.",
    too_many_tries: "Too many attempts from this address: try again in",
    seconds_later: "seconds.",
    campaign: "Campaign",
    currency: "Currency",
    revenue: "Revenue",
    cost: "Cost",
    roi: "ROI",
    kol: "KOL",
    tier: "Tier",
    leaderboard: "KOL leaderboard",
    tiers: "Follower tiers",
    breakdowns: "Breakdowns",
    conversions_list: "Conversions",
    audit: "Audit",
    status: "Status",
    order: "Order",
    downloads: "Downloads: ",
    report_csv: "report.csv",
    clicks_csv: "Clicks (CSV)",
    no_campaigns: "No campaigns yet.",
    unclaimed: "Conversions no campaign claimed",
    unclaimed_note: "Among the latest 500 conversions: what the shops sent, and why no link took it.",
    no_unclaimed: "None: every recent conversion found its link.",
    shop: "Shop",
    new_campaign: "New campaign",
    create: "Create",
    amount: "Amount",
    not_created: "Not created:",
    not_saved: "Not saved:",
    cost_saved: "Cost saved.",
    link_stopped: "Link stopped: it no longer redirects.",
    link_started: "Link started again: it redirects.",
    mint_link: "New link for a KOL",
    name: "Name",
    destination: "Destination",
    coupon: "Coupon",
    back: "All campaigns",
    back_to_campaign: "Back to the campaign",
    reload_form: "Back to the page, with a fresh form",
    new_kol: "New KOL",
    kol_added: "Added, and ready for links:",
    handle: "Handle",
    platform: "Platform",
    followers: "Followers",
    platform_blog: "Blog",
    when: "When (UTC)",
    chart_cut: "The chart draws the last 400 days of them; the figures are of every day asked for.",
    of_the_days: "of the days shown",
    share_with_kol: "Page for the KOL",
    shared_pages: "KOLs' pages shared",
    shared_since: "Since (UTC)",
    shared_until: "Until",
    shared_covers: "Covers",
    shared_this_campaign: "This campaign",
    shared_every_campaign: "All their campaigns",
    revoke: "End this page",
    share_title: "A page for",
    share_once: "Send this address to the KOL: it opens their own figures of this campaign, read-only, with their links and QR codes. It is shown only now; make another if it is lost.",
    share_revoke: "To end it, use \"End this page\" under the campaign's links.",
    newest_conversions: "The 50 newest",
    all_conversions_csv: "every one (CSV)",
    platform_other: "Other",
    save_cost: "Save cost",
    report_day: "Report a day's insights",
    day_utc: "Day (UTC)",
    reach: "Reach",
    pixel_impressions: "Pixel impressions",
    bot_clicks: "Bot clicks",
    previews: "Previews",
    suspicious_clicks: "Suspicious clicks",
    likes: "Likes",
    comments: "Comments",
    shares_count: "Shares",
    saves: "Saves",
    save_day: "Save the day",
    report_day_hint: "That day's numbers only, as the platform's insights show them for the day (not the post's total so far). An empty field keeps what was saved for that day. CTR is clicks over impressions.",
    impressions_count: "Impressions",
    days_reported: "Days reported, newest first",
    edit_day: "Correct",
    actions: "Actions",
    remove_day: "Remove",
    chart_table: "The chart's days as a table",
    no_days_reported: "No day reported yet.",
    see_days_reported: "Days reported",
    disable_link: "Stop link",
    enable_link: "Start link again",
    roas: "ROAS",
    impressions: "Impressions",
    net_revenue: "Net revenue",
    kol_id: "KOL id",
    campaign_id: "Campaign id",
    kol_count: "KOLs",
    refunds: "Refunds",
    epc: "EPC",
    cpc: "CPC",
    cpa: "CPA",
    aov: "AOV",
    engagements: "Engagements",
    engagement_rate: "Engagement rate",
    dimensions: ["App", "Device", "Referrer", "Country", "Source", "Link previews"],
    tier_names: ["Nano", "Micro", "Mid", "Macro", "Mega"],
    statuses: [
        "Attributed",
        "Duplicate",
        "Unattributed",
        "Outside the window",
        "Currency mismatch",
        "Waiting for its purchase",
        "Over-refund",
        "Test order",
    ],
    devices: ["Phone", "Tablet", "Computer", "Appliance", "Other"],
    qr_source: "QR code",
    event: "Event",
    events: ["Purchase", "Sign-up", "Lead", "Install", "Subscription", "Refund"],
    audit_sources: [
        "click id",
        "cart attribute",
        "landing page",
        "discount code",
        "coupon line",
        "order meta",
        "order attribution",
        "coupon",
        "link code",
        "order id",
    ],
    audit_results: [
        "chosen",
        "lower priority",
        "no link",
        "a bot's click",
        "after the conversion",
        "outside the window",
    ],
    audit_none: "No click id, coupon or link code was sent",
};

pub static ZH_TW: Texts = Texts {
    html_lang: "zh-Hant-TW",
    other_lang: "en",
    other_lang_name: "English",
    kol_title: "你的連結",
    totals: "總計",
    clicks: "點擊",
    unique_clicks: "不重複點擊",
    ctr: "點擊率",
    conversions: "轉換",
    conversion_rate: "轉換率",
    daily: "最近 30 天（UTC）",
    range_from: "開始日期（UTC）",
    range_to: "結束日期",
    range_show: "顯示",
    range_all: "全部日期",
    range_cost_note: "點擊、轉換與金額為所選日期內的數字；成本與投資報酬率以每條連結的全部成本計算。",
    range_refused: "無法顯示這段日期：請填日期，且開始日期不可晚於結束日期。以下為全部日期的數字。",
    links: "連結",
    copy: "複製",
    copied: "已複製",
    copy_by_hand: "已選取，請手動複製",
    qr_alt: "QR 碼：",
    link_disabled: "已停用：此連結已不再轉址，請勿再分享。",
    link_expired: "已過期：此連結已不再轉址，請勿再分享。",
    qr_download: "QR 碼（PNG）",
    no_links: "還沒有連結。",
    no_conversions: "還沒有轉換。",
    footer: "數據來自 kolink：真人點擊（已排除機器人），轉換由商店回報。",
    app_title: "活動",
    sign_in: "登入",
    sign_out: "登出",
    admin_token: "管理者權杖",
    bad_token: "權杖不正確。",
    session_ended: "你的登入已結束（已登出或已過期）：請重新登入，回到剛才的頁面。",
    too_many_tries: "此位址嘗試次數過多，請於",
    seconds_later: "秒後再試。",
    campaign: "活動",
    currency: "幣別",
    revenue: "營收",
    cost: "成本",
    roi: "投資報酬率",
    kol: "KOL",
    tier: "級距",
    leaderboard: "KOL 排行榜",
    tiers: "粉絲級距",
    breakdowns: "細分",
    conversions_list: "轉換紀錄",
    audit: "歸因過程",
    status: "狀態",
    order: "訂單",
    downloads: "下載：",
    report_csv: "report.csv",
    clicks_csv: "點擊（CSV）",
    no_campaigns: "還沒有活動。",
    unclaimed: "未歸屬任何活動的轉換",
    unclaimed_note: "最近 500 筆轉換中：商店送來的內容，以及為何沒有連結認領。",
    no_unclaimed: "沒有：最近的轉換都找到了連結。",
    shop: "商店",
    new_campaign: "新增活動",
    create: "建立",
    amount: "金額",
    not_created: "未建立：",
    not_saved: "未儲存：",
    cost_saved: "已儲存成本。",
    link_stopped: "連結已停用，不再轉址。",
    link_started: "連結已重新啟用，恢復轉址。",
    mint_link: "為 KOL 建立連結",
    name: "名稱",
    destination: "目的網址",
    coupon: "折扣碼",
    back: "所有活動",
    back_to_campaign: "回到活動",
    reload_form: "回到頁面，重新填寫",
    new_kol: "新增 KOL",
    kol_added: "已新增，可以建立連結：",
    handle: "帳號",
    platform: "平台",
    followers: "粉絲數",
    platform_blog: "部落格",
    when: "時間（UTC）",
    chart_cut: "圖表只畫出其中最後 400 天；數字涵蓋所選的全部日期。",
    of_the_days: "所選日期內",
    share_with_kol: "KOL 專屬頁面",
    shared_pages: "已分享的 KOL 專屬頁面",
    shared_since: "建立時間（UTC）",
    shared_until: "到期",
    shared_covers: "範圍",
    shared_this_campaign: "此活動",
    shared_every_campaign: "其所有活動",
    revoke: "停用此頁面",
    share_title: "專屬頁面：",
    share_once: "把這個網址傳給 KOL：打開即可看到他在這個活動的數據、連結與 QR 碼（唯讀）。網址只會顯示這一次，遺失了請再建立一個。",
    share_revoke: "要停用時，請在活動頁面連結下方按「停用此頁面」。",
    newest_conversions: "最新 50 筆",
    all_conversions_csv: "全部（CSV）",
    platform_other: "其他",
    save_cost: "儲存成本",
    report_day: "填寫某一天的成效",
    day_utc: "日期（UTC）",
    reach: "觸及帳號數",
    pixel_impressions: "像素曝光",
    bot_clicks: "機器人點擊",
    previews: "預覽次數",
    suspicious_clicks: "可疑點擊",
    likes: "按讚數",
    comments: "留言數",
    shares_count: "分享次數",
    saves: "儲存次數",
    save_day: "儲存這一天",
    report_day_hint: "只填那一天的數字（平台洞察報告中當日的數字，不是貼文至今的累計）。空白的欄位保留這一天已儲存的數字。點擊率＝點擊數 ÷ 曝光次數。",
    impressions_count: "曝光次數",
    days_reported: "已填的日子（由新到舊）",
    edit_day: "修改",
    actions: "操作",
    remove_day: "刪除",
    chart_table: "以表格檢視每日數字",
    no_days_reported: "還沒有填過任何一天。",
    see_days_reported: "已填的日子",
    disable_link: "停用連結",
    enable_link: "重新啟用連結",
    roas: "廣告投資報酬率（ROAS）",
    impressions: "曝光",
    net_revenue: "淨營收",
    kol_id: "KOL 代號",
    campaign_id: "活動代號",
    kol_count: "KOL 數",
    refunds: "退款",
    epc: "每次點擊收益（EPC）",
    cpc: "每次點擊成本（CPC）",
    cpa: "每次轉換成本（CPA）",
    aov: "平均訂單金額（AOV）",
    engagements: "互動",
    engagement_rate: "互動率",
    dimensions: ["應用程式", "裝置", "來源網站", "國家", "流量來源", "連結預覽"],
    tier_names: ["奈米", "微型", "中型", "大型", "超大型"],
    statuses: [
        "已歸因",
        "重複",
        "未歸因",
        "超出歸因期間",
        "幣別不符",
        "等待購買紀錄",
        "超額退款",
        "測試訂單",
    ],
    devices: ["手機", "平板", "電腦", "家電裝置", "其他"],
    qr_source: "QR 碼",
    event: "事件",
    events: ["購買", "註冊", "名單", "安裝", "訂閱", "退款"],
    audit_sources: [
        "點擊 ID",
        "購物車屬性",
        "到達網址",
        "折扣代碼",
        "折扣碼明細",
        "訂單中繼資料",
        "訂單歸因資料",
        "折扣碼",
        "連結代碼",
        "訂單編號",
    ],
    audit_results: [
        "採用",
        "優先順序較低",
        "無對應連結",
        "機器人點擊",
        "點擊晚於轉換",
        "超出歸因期間",
    ],
    audit_none: "未附點擊編號、折扣碼或連結代碼",
};

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

/// A rate as a percentage with two decimals; `–` when there is none.
pub fn percent(r: Option<f64>) -> String {
    r.map_or_else(
        || "–".to_owned(),
        |r| {
            let p = r * 100.0;
            if p != 0.0 && p.abs() < 0.01 {
                // Two significant digits, so that a small rate (2 clicks of 120,000
                // impressions) does not read as none: as many decimals as the exponent of the
                // value rounded to two digits asks (`1.7e-3` → 4).
                let exp: i32 = format!("{:.1e}", p.abs())
                    .rsplit('e')
                    .next()
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(-2);
                let decimals = (1 - exp).clamp(2, 12) as usize;
                format!("{p:.decimals$} %")
            } else {
                format!("{p:.2} %")
            }
        },
    )
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
        assert_eq!(percent(Some(-0.000_000_3)), "-0.000030 %");
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
