//! The redirect: `GET /{code}` → `302` to the link's target with a `kl_cid` click id, after the
//! click is durably stored. `HEAD` answers the same headers and records nothing. Bots are
//! redirected without a click id and counted apart.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::State;
use crate::classify::{click_info, RequestFacts};
use crate::clicks::WriteError;
use crate::domain::{with_click_id, ClickId, Redirect};
use crate::error::{body, Code, RETRY_AFTER_SECS};
use crate::store::StoreError;
use crate::telemetry::RedirectOutcome as Outcome;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{code}/qr.{format}")
            .route(web::get().to(qr))
            .route(web::head().to(qr)),
    );
    cfg.service(
        web::resource("/{code}")
            .route(web::get().to(follow))
            .route(web::head().to(head)),
    );
}

/// The redirect, matched before every other route and without a pattern: a `GET` or `HEAD` of
/// one path segment that could be a link's code (well formed, not reserved, so never one of the
/// other pages). It is the request kolink answers most, and the router otherwise tried a dozen
/// patterns before reaching it. Anything else falls through to the routes (and to `routes`).
pub fn fast_route(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .guard(actix_web::guard::fn_guard(|ctx| {
                let head = ctx.head();
                is_redirect(&head.method, head.uri.path())
            }))
            .default_service(web::to(fast)),
    );
}

/// Whether a request is a redirect's: `GET` or `HEAD` of one segment that could be a code.
pub(super) fn is_redirect(method: &actix_web::http::Method, path: &str) -> bool {
    (method == actix_web::http::Method::GET || method == actix_web::http::Method::HEAD)
        && code_of(path).is_some_and(crate::domain::ShortCode::could_be_a_link)
}

/// The code a redirect's path names: `/{code}`, or `/{code}/` (some apps and people add the
/// slash to a link they share).
fn code_of(path: &str) -> Option<&str> {
    let code = path.strip_prefix('/')?;
    Some(code.strip_suffix('/').unwrap_or(code))
}

async fn fast(req: HttpRequest, state: State) -> HttpResponse {
    let code = web::Path::from(code_of(req.path()).unwrap_or_default().to_owned());
    if req.method() == actix_web::http::Method::HEAD {
        head(req, state, code).await
    } else {
        follow(req, state, code).await
    }
}

/// The link a URL's code names, or the answer for a malformed, unknown or unreadable one
/// (with the redirect outcome it counts as). `doing` completes "This link cannot …".
async fn known_link(
    req: &HttpRequest,
    state: &State,
    code: &str,
    doing: &str,
) -> Result<std::sync::Arc<Redirect>, (Outcome, HttpResponse)> {
    let link = if crate::domain::ShortCode::is_well_formed(code) {
        state.links.get(&state.store, code).await.map_err(|e| {
            let answer = match e {
                StoreError::Unavailable(_) => {
                    crate::telemetry::warn_limited!(error = %e, "link lookup failed");
                    unavailable(req)
                }
                _ => {
                    tracing::error!(error = %e, "link lookup failed");
                    page(
                        req,
                        Code::Internal,
                        &format!("This link cannot {doing} because of an error on our side."),
                    )
                }
            };
            (Outcome::unavailable, answer)
        })?
    } else {
        None
    };
    link.ok_or_else(|| (Outcome::not_found, page(req, Code::NotFound, NOT_A_LINK)))
}

/// Looks the code up for a redirect; `Err` is the answer for unknown, gone or unavailable.
async fn live_link(req: &HttpRequest, state: &State, code: &str) -> Result<std::sync::Arc<Redirect>, HttpResponse> {
    let link = known_link(req, state, code, "be followed")
        .await
        .map_err(|(outcome, answer)| {
            state.meters.redirect(outcome);
            answer
        })?;
    if !link.is_live(state.clock.now()) {
        state.meters.redirect(Outcome::gone);
        return Err(page(req, Code::LinkGone, LINK_ENDED));
    }
    Ok(link)
}

async fn head(req: HttpRequest, state: State, code: web::Path<String>) -> HttpResponse {
    match live_link(&req, &state, &code).await {
        Ok(link) => found(&link.target_url),
        Err(answer) => answer,
    }
}

async fn follow(req: HttpRequest, state: State, code: web::Path<String>) -> HttpResponse {
    let link = match live_link(&req, &state, &code).await {
        Ok(link) => link,
        Err(answer) => return answer,
    };
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let user_agent = user_agent(&req);
    let ip = client_ip(&req, &state);
    let source = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "src")
        .map(|(_, v)| v.into_owned());
    let now = state.clock.now();
    let day = crate::counters::day_string(now);
    let mut info = click_info(
        &state.visitor_key,
        &RequestFacts {
            user_agent: &user_agent,
            referer: text("referer"),
            ip: &ip,
            country: state.settings.country_header.as_deref().and_then(text),
            source: source.as_deref(),
            day: &day,
        },
    );
    if !info.bot && !info.visitor.is_empty() {
        info.suspicious = state.suspicion.click(link.id, &info.visitor, now);
    }
    let bot = info.bot;
    match state.writer.record(link.code.as_str(), info).await {
        Ok(_) if bot => {
            state.meters.redirect(Outcome::bot);
            found(&link.target_url)
        }
        Ok(entry) => {
            state.meters.redirect(Outcome::redirected);
            found(&with_click_id(
                &link.target_url,
                &ClickId {
                    link_id: link.id,
                    entry,
                }
                .to_string(),
            ))
        }
        Err(e) => {
            state.meters.redirect(Outcome::unavailable);
            crate::telemetry::warn_limited!(error = %e, code = %link.code, "click not stored; redirect refused");
            match &*e {
                WriteError::Store(e) if !matches!(e, StoreError::Unavailable(_)) => page(
                    &req,
                    Code::Internal,
                    "This link cannot be followed because of an error on our side.",
                ),
                _ => unavailable(&req),
            }
        }
    }
}

/// `GET /{code}/qr.svg|png`: the QR code of the short URL with `?src=qr`, for print and
/// screens; scans show up as `source = qr`. `HEAD` answers the same headers.
async fn qr(req: HttpRequest, state: State, path: web::Path<(String, String)>) -> HttpResponse {
    let (code, format) = path.into_inner();
    if !matches!(format.as_str(), "svg" | "png") {
        return page(
            &req,
            Code::NotFound,
            "QR codes are at /<code>/qr.svg and /<code>/qr.png.",
        );
    }
    let link = match known_link(&req, &state, &code, "be drawn as a QR code").await {
        Ok(link) => link,
        Err((_, answer)) => return answer,
    };
    let url = crate::qr::scan_url(&format!("{}/{}", state.public_base, link.code));
    let drawn = match format.as_str() {
        "svg" => crate::qr::svg(&url)
            .map(|s| ("image/svg+xml", s.into_bytes()))
            .map_err(|e| e.to_string()),
        _ => crate::qr::png(&url)
            .map(|p| ("image/png", p))
            .map_err(|e| e.to_string()),
    };
    match drawn {
        Ok((content_type, body)) => HttpResponse::Ok()
            .content_type(content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "QR code not drawn");
            page(
                &req,
                Code::Internal,
                "This QR code cannot be drawn because of an error on our side.",
            )
        }
    }
}

/// The request's user agent. One with bytes outside ASCII is read lossily, never dropped.
/// Checked whole first: `from_utf8` reads ASCII a word at a time, the lossy reader a byte at a
/// time.
pub(super) fn user_agent(req: &HttpRequest) -> std::borrow::Cow<'_, str> {
    req.headers()
        .get(header::USER_AGENT)
        .map(|v| match std::str::from_utf8(v.as_bytes()) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(v.as_bytes()),
        })
        .unwrap_or_default()
}

/// The client address: the peer, or the address the trusted proxies wrote into their header.
pub(super) fn client_ip(req: &HttpRequest, state: &State) -> String {
    if let Some(h) = &state.settings.client_ip_header {
        let mut lines = req.headers().get_all(h.as_str()).filter_map(|v| v.to_str().ok());
        if let Some(first) = lines.next() {
            let hops = state.settings.trusted_proxies;
            let ip = match lines.next() {
                None => proxied_client(first, hops).map(str::to_owned),
                // Several lines (a proxy may add its own below the client's): one list, in order.
                Some(second) => {
                    let all: Vec<&str> = [first, second].into_iter().chain(lines).collect();
                    proxied_client(&all.join(","), hops).map(str::to_owned)
                }
            };
            if let Some(ip) = ip {
                return ip;
            }
        }
    }
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default()
}

/// The client's entry of a forwarding header (`a, b, c`) that `proxies` proxies appended to:
/// the one that many from the end, or the first when there are fewer entries. The entries
/// before it were sent by the client, who can write anything there.
fn proxied_client(header: &str, proxies: u32) -> Option<&str> {
    let hops = usize::try_from(proxies.max(1)).unwrap_or(usize::MAX);
    header
        .rsplit(',')
        .nth(hops - 1)
        .or_else(|| header.split(',').next())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        // A static value: not checked and copied again for every redirect.
        .insert_header((
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("private, no-store"),
        ))
        .finish()
}

/// The store does not answer: `503` with `Retry-After`.
fn unavailable(req: &HttpRequest) -> HttpResponse {
    let mut res = page(req, Code::StorageUnavailable, STORE_DOWN);
    res.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
    res
}

const NOT_A_LINK: &str = "This link does not exist. Check that it was copied whole.";
const LINK_ENDED: &str = "This link is no longer active.";
const STORE_DOWN: &str = "This link cannot be followed right now. Please try again in a moment.";

/// An error answer: a small HTML page for browsers (in the reader's language: `Lang::of`),
/// API.md's JSON for everyone else.
pub(super) fn page(req: &HttpRequest, code: Code, message: &str) -> HttpResponse {
    page_with_way_back(req, code, message, None)
}

/// `page`, with a link back (`href`, its text) under the message on the HTML page: the
/// dashboard's error pages lead back to it.
pub(super) fn page_with_way_back(
    req: &HttpRequest,
    code: Code,
    message: &str,
    back: Option<(&str, &str)>,
) -> HttpResponse {
    let (_, status) = code.describe();
    if super::accepts(req, "text/html") {
        let lang = super::views::Lang::of(req);
        let html_lang = lang.texts().html_lang;
        let (en, zh) = own_title(message).unwrap_or((en_title(status), zh_title(status)));
        let (title, message) = match lang {
            super::views::Lang::En => (en, message),
            super::views::Lang::ZhTw => (zh, zh_message(message)),
        };
        // Messages can name what the client sent (an id from the path): text, never markup.
        let escape = |s: &str| {
            askama::filters::escape(s, askama::filters::Html)
                .unwrap_or_else(|e| match e {})
                .to_string()
        };
        let message = escape(message);
        let back = back.map_or_else(String::new, |(href, text)| {
            format!("<p><a href=\"{}\">{}</a></p>", escape(href), escape(text))
        });
        super::views::html_page(status).body(format!(
            "<!doctype html><html lang=\"{html_lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;\
             max-width:32rem;margin:20vh auto;padding:0 1rem;color:#333}}</style></head>\
             <body><h1>{title}</h1><p>{message}</p>{back}</body></html>"
        ))
    } else {
        HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, "private, no-store"))
            .insert_header(super::views::NOSNIFF)
            .json(body(code, message))
    }
}

/// The title of a page whose message its status does not sum up (English, Traditional
/// Chinese): a form that expired is `401` as a session that ended is, but its reader is still
/// signed in, and "Please sign in again" sent them the wrong way.
fn own_title(message: &str) -> Option<(&'static str, &'static str)> {
    (message == crate::http::views::app::FORM_EXPIRED).then_some(("This form has expired", "表單已過期"))
}

/// An error page's title in English: what happened, in words a visitor knows (HTTP's own
/// reasons, such as "Bad Request", say nothing to them).
fn en_title(status: actix_web::http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "This could not be done",
        401 => "Please sign in again",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Already taken",
        410 => "No longer available",
        413 => "Too large",
        429 => "Too many tries",
        503 => "Unavailable for now",
        _ => "Something went wrong",
    }
}

/// An error page's title in Traditional Chinese.
fn zh_title(status: actix_web::http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "無法處理這個請求",
        401 => "需要重新登入",
        403 => "沒有權限",
        404 => "找不到",
        409 => "已被使用",
        410 => "已失效",
        413 => "內容過大",
        429 => "嘗試次數過多",
        503 => "暫時無法使用",
        _ => "發生錯誤",
    }
}

/// The messages of the pages people meet most (a link or a share link that is gone or not
/// there, a form that expired) in Traditional Chinese; any other is shown as it is.
fn zh_message(message: &str) -> &str {
    const ZH: [(&str, &str); 7] = [
        (NOT_A_LINK, "這個連結不存在，請確認是否完整複製。"),
        (crate::http::NOTHING_HERE, "這裡沒有頁面：請確認網址。"),
        (LINK_ENDED, "這個連結已經停用。"),
        (
            crate::http::shares::NOT_A_SHARE,
            "這個分享連結不存在，請確認是否完整複製。",
        ),
        (crate::http::shares::SHARE_ENDED, "這個分享連結已被撤銷或已過期。"),
        (
            crate::http::views::app::FORM_EXPIRED,
            "這個表單已過期：請重新載入頁面後再送出。",
        ),
        (STORE_DOWN, "這個連結暫時無法開啟，請稍後再試。"),
    ];
    ZH.iter().find(|(en, _)| *en == message).map_or(message, |(_, zh)| zh)
}

#[cfg(test)]
mod tests {
    use super::proxied_client;

    #[test]
    fn the_client_is_the_entry_the_trusted_proxies_wrote() {
        assert_eq!(proxied_client("203.0.113.7", 1), Some("203.0.113.7"));
        // What a client wrote before the proxy's entry is not the address.
        assert_eq!(proxied_client("198.51.100.1, 203.0.113.7", 1), Some("203.0.113.7"));
        assert_eq!(
            proxied_client("198.51.100.1,203.0.113.7, 10.0.0.2", 2),
            Some("203.0.113.7")
        );
        // Fewer entries than proxies: the farthest there is.
        assert_eq!(proxied_client(" 203.0.113.7 ", 3), Some("203.0.113.7"));
        assert_eq!(proxied_client("1.2.3.4, ", 1), None);
        assert_eq!(proxied_client("", 1), None);
    }
}
