//! The HTTP surface of API.md, one file per resource. Handlers only extract, call and render:
//! the rules they call live in `crate::minting`, `crate::intake`, `crate::report` and
//! `crate::lookup`, and take domain types.

pub(crate) mod campaigns;
mod conversions;
pub mod deadline;
mod exports;
mod health;
mod insights;
pub use insights::{PIXELS_IN_FLIGHT, PROXY_LOADS_A_MINUTE};
pub(crate) mod kols;
pub mod limits;
mod links;
pub mod meter;
pub(crate) mod redirect;
pub(crate) mod shares;
mod shops;
mod stats;
pub(crate) mod views;
mod webhooks;

use std::sync::Arc;

use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::cache::LinkCache;
use crate::clicks::ClickWriter;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::error::{body, ApiError, Code};
use crate::minting::Minter;
use crate::store::{Cursor, Store};

/// Largest request body accepted by the API (webhooks: `MAX_WEBHOOK_BODY`).
pub const MAX_BODY: usize = 64 * 1024;
/// The largest webhook body taken. A shop's order grows with its line items (Shopify sends
/// every line with its tax lines, discounts and properties), so a big order passes API.md's
/// 64 KiB; refused, it would be retried and then lost with the shop's last retry.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub writer: ClickWriter,
    /// Where clicks wait while the store does not answer (its depth for `/readyz`, `/metrics`).
    pub spool: std::sync::Arc<crate::spool::Spool>,
    pub meters: Arc<crate::telemetry::Meters>,
    pub links: LinkCache,
    /// The link lists of campaigns and KOLs that reports read, while unchanged.
    pub link_lists: crate::lookup::LinkLists,
    pub suspicion: crate::suspicion::Suspicion,
    /// The last pixel loads of each visitor on each link: past `suspicion::LIMIT` a minute they
    /// count nothing (`insights::pixel`).
    pub pixel_windows: crate::suspicion::Suspicion,
    /// The same for loads that say they come from a mail service's image proxy, by address
    /// alone and at `insights::PROXY_LOADS_A_MINUTE`.
    pub proxy_pixel_windows: crate::suspicion::Suspicion,
    pub limits: limits::RateLimits,
    /// The dashboard's sign-in attempts, per address (`limits::RateLimits::sign_in`).
    pub sign_in_limits: limits::RateLimits,
    /// Addresses that sent too many wrong admin tokens to the API (`limits::TokenGuesses`).
    pub token_guesses: limits::TokenGuesses,
    /// Webhook bodies being read at once (`limits::WebhookBodies`).
    pub webhook_bodies: limits::WebhookBodies,
    /// Pixel impressions being counted at once (`PIXELS_IN_FLIGHT`).
    pub pixels: tokio::sync::Semaphore,
    pub clock: SharedClock,
    /// SHA-256 of the admin token.
    pub admin_hash: [u8; 32],
    /// Key of the daily visitor-hash salt.
    pub visitor_key: crate::classify::VisitorKey,
    /// Key of the dashboard's session cookies and CSRF tokens.
    pub session_key: Arc<views::session::SessionKey>,
    /// Base of short URLs, no trailing slash.
    pub public_base: String,
    pub settings: Settings,
}

impl AppState {
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn minter(&self) -> Minter<'_> {
        Minter {
            store: self.store.as_ref(),
            cache: &self.links,
            clock: self.clock.as_ref(),
        }
    }
}

pub type State = web::Data<AppState>;

/// Proof that the request carried the admin bearer token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(check_admin(req))
    }
}

fn check_admin(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = req.app_data::<State>().expect("state is registered");
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        // The dashboard's downloads (report.csv, click exports) read with its session cookie;
        // only reads: a cookie never authorises a change through the API.
        let read = req.method() == actix_web::http::Method::GET || req.method() == actix_web::http::Method::HEAD;
        if read && views::session::current(req, state).is_some() {
            return Ok(Admin);
        }
        return Err(ApiError::new(
            Code::Unauthorized,
            "Send the admin token as 'Authorization: Bearer <token>'.",
        ));
    };
    // Wrong tokens take from the sign-in budget of the address (`limits::TokenGuesses`).
    let client = limits::client_of(req, state);
    let too_many = |wait: u64| {
        crate::telemetry::warn_limited!(%client, "wrong admin tokens past their budget");
        ApiError::RateLimited { wait }
    };
    state.token_guesses.check(client).map_err(too_many)?;
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if bool::from(hash.ct_eq(&state.admin_hash)) {
        Ok(Admin)
    } else {
        state
            .token_guesses
            .wrong(&state.sign_in_limits, client)
            .map_err(too_many)?;
        Err(ApiError::new(Code::Unauthorized, "The admin token is not valid."))
    }
}

/// JSON bodies: at most 64 KiB, `application/json`, errors in API.md's format.
fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(MAX_BODY).error_handler(|err, _req| {
        use actix_web::error::JsonPayloadError as E;
        let e = match &err {
            E::OverflowKnownLength { .. } | E::Overflow { .. } => {
                ApiError::new(Code::PayloadTooLarge, "The request body is larger than 64 KiB.")
            }
            E::ContentType => ApiError::new(
                Code::UnsupportedMediaType,
                "Send the body as JSON with 'Content-Type: application/json'.",
            ),
            // `Body` reads a raw value first, so this is text that is not JSON; what does not
            // fit is told by `crate::error::from_json`, by its path.
            E::Deserialize(de) => crate::error::not_json(de),
            _ => ApiError::new(Code::InvalidJson, "The body could not be read as JSON."),
        };
        e.into()
    })
}

/// A JSON body read as `T`: the media type, size and syntax as `json_config` says, and a value
/// that does not fit named by its path (`crate::error::from_json`), which `web::Json` cannot.
pub struct Body<T>(pub T);

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let raw = web::Json::<Box<serde_json::value::RawValue>>::from_request(req, payload);
        Box::pin(async move {
            let raw = raw.await?;
            Ok(Self(crate::error::from_json(raw.get().as_bytes(), "valid")?))
        })
    }
}

/// A JSON body that may be left out: no body reads as `T::default()`, but a body that is
/// sent must be valid. (`Option<Body<T>>` would quietly treat an invalid body as absent.)
pub struct OptionalJson<T>(pub T);

impl<T: serde::de::DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let headers = req.headers();
        let empty = match headers.get(header::CONTENT_LENGTH) {
            Some(len) => len == "0",
            None => !headers.contains_key(header::TRANSFER_ENCODING),
        };
        if empty {
            return Box::pin(std::future::ready(Ok(Self(T::default()))));
        }
        let json = Body::<T>::from_request(req, payload);
        Box::pin(async move { Ok(Self(json.await?.0)) })
    }
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        // actix names its own step ("Query deserialize error: unknown field `foo`, …").
        let text = err.to_string();
        let words = text.strip_prefix("Query deserialize error: ").unwrap_or(&text);
        ApiError::invalid(format!("The query string is not valid: {words}.")).into()
    })
}

/// Whether the client's `Accept` names `media` (`text/html`: a browser; `text/csv`: a download).
pub fn accepts(req: &HttpRequest, media: &str) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(media))
}

/// Reads a webhook's raw body, of at most `MAX_WEBHOOK_BODY` (1 MiB): signatures are verified
/// over the exact bytes.
pub async fn read_webhook_body(payload: web::Payload) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(MAX_WEBHOOK_BODY).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(ApiError::invalid("The request body could not be read.")),
        Err(_) => Err(ApiError::new(Code::PayloadTooLarge, "A webhook body is at most 1 MiB.")),
    }
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match &self.limit {
            None => Ok(50),
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=200).contains(n))
                .ok_or_else(|| ApiError::invalid("limit must be a whole number from 1 to 200.")),
        }
    }

    /// The cursor as the client sent it, if `list` handed it out; only the store reads the
    /// position in it (a foreign one is `400`).
    pub fn cursor(&self, list: &ListKey) -> Result<Option<Cursor>, ApiError> {
        match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => Ok(None),
            Some(c) => list
                .read(c)
                .map(Some)
                .ok_or_else(|| ApiError::invalid("cursor is not one this server handed out for this list.")),
        }
    }
}

/// The list a cursor belongs to: the list's name and the filters that chose its items (not the
/// page size). A cursor is handed out as `<tag>.<the store's cursor>`, the tag a hash of this
/// key, so that a cursor sent to another list, or to the same list with other filters, is
/// refused rather than starting a page at an unrelated place.
pub struct ListKey([u8; LIST_TAG_LEN]);

/// Bytes of the key's hash in a cursor's tag (8 characters of base64url).
const LIST_TAG_LEN: usize = 6;

impl ListKey {
    /// The list `name` filtered by `filters`, in a fixed order (`None`: not filtered).
    pub fn new(name: &str, filters: &[Option<&str>]) -> Self {
        let mut hash = Sha256::new();
        hash.update(name.as_bytes());
        for f in filters {
            match f {
                None => hash.update([0]),
                Some(v) => {
                    hash.update([1]);
                    hash.update((v.len() as u64).to_be_bytes());
                    hash.update(v.as_bytes());
                }
            }
        }
        let digest = hash.finalize();
        let mut tag = [0; LIST_TAG_LEN];
        tag.copy_from_slice(&digest[..LIST_TAG_LEN]);
        Self(tag)
    }

    /// `cursor` as a client gets it from this list.
    pub fn write(&self, cursor: &Cursor) -> String {
        use base64::Engine as _;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0);
        format!("{tag}.{}", cursor.to_client())
    }

    /// The store's cursor in what a client sent, if this list wrote it.
    fn read(&self, sent: &str) -> Option<Cursor> {
        use base64::Engine as _;
        let (tag, rest) = sent.split_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag).ok()?;
        (tag[..] == self.0[..]).then_some(())?;
        Cursor::from_client(rest)
    }
}

/// A list answer: `{"<plural>": [...], "next_cursor": ...}`, its cursor one of `key`'s.
pub fn list<T: serde::Serialize>(plural: &str, items: &[T], next: Option<Cursor>, key: &ListKey) -> HttpResponse {
    let mut body = serde_json::Map::new();
    body.insert(plural.to_owned(), serde_json::to_value(items).unwrap_or_default());
    body.insert(
        "next_cursor".to_owned(),
        next.map(|c| serde_json::Value::String(key.write(&c)))
            .unwrap_or(serde_json::Value::Null),
    );
    HttpResponse::Ok().json(body)
}

/// The content type of every CSV answer.
pub const CSV_TYPE: &str = "text/csv; charset=utf-8";

/// `rows` as CSV, after `header` when there is one (a download sent in parts has it once);
/// cells a spreadsheet would run as formulas are quoted (`crate::export::write_row`).
pub fn csv_bytes<R, F>(header: Option<&[&str]>, rows: R) -> Result<Vec<u8>, ApiError>
where
    R: IntoIterator<Item = Vec<F>>,
    F: AsRef<[u8]>,
{
    let failed = |e: csv::Error| ApiError::Internal(anyhow::Error::new(e).context("Failed to write CSV"));
    let mut w = csv::Writer::from_writer(Vec::new());
    if let Some(header) = header {
        w.write_record(header).map_err(failed)?;
    }
    for r in rows {
        crate::export::write_row(&mut w, &r).map_err(failed)?;
    }
    w.into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("Failed to write CSV: {e}")))
}

/// A CSV download: `header`, then `rows`.
pub fn csv_response<R, F>(header: &[&str], rows: R) -> Result<HttpResponse, ApiError>
where
    R: IntoIterator<Item = Vec<F>>,
    F: AsRef<[u8]>,
{
    let body = csv_bytes(Some(header), rows)?;
    Ok(HttpResponse::Ok().content_type(CSV_TYPE).body(body))
}

/// One page of a CSV download: its rows, and where the next page starts (`None`: the last).
pub type CsvPage<P> = (Vec<Vec<String>>, Option<P>);

/// A CSV download of every page from `first` on, each next page read (`next_page`) as the
/// answer is sent, so that an export is one file whatever its size. The first page is read
/// before the answer starts, so a store that does not answer is a `503` rather than a cut
/// download. A page that fails part way ends the answer early, without its last chunk, so the
/// client sees the download cut rather than a complete-looking file. `what` names the export in
/// the log.
pub fn csv_stream<P, F, Fut>(
    header: Vec<&'static str>,
    first: CsvPage<P>,
    next_page: F,
    what: &'static str,
) -> HttpResponse
where
    P: 'static,
    F: Fn(P) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<CsvPage<P>, ApiError>> + 'static,
{
    enum Next<P> {
        /// The page read before the answer started; the header goes with it.
        First(Vec<Vec<String>>, Option<P>),
        After(P),
        Done,
    }
    let (next_page, header) = (std::rc::Rc::new(next_page), std::rc::Rc::new(header));
    let pages = futures_util::stream::unfold(Next::First(first.0, first.1), move |next| {
        let (next_page, header) = (next_page.clone(), header.clone());
        async move {
            let (rows, after, first) = match next {
                Next::Done => return None,
                Next::First(rows, after) => (rows, after, true),
                Next::After(at) => match next_page(at).await {
                    Ok((rows, after)) => (rows, after, false),
                    Err(e) => {
                        tracing::error!(error = %e, export = what, "an export was cut short: the store failed");
                        let failed = actix_web::error::ErrorServiceUnavailable("the store failed");
                        return Some((Err(failed), Next::Done));
                    }
                },
            };
            let next = after.map_or(Next::Done, Next::After);
            Some(match csv_bytes(first.then_some(&header[..]), rows) {
                Ok(bytes) => (Ok(web::Bytes::from(bytes)), next),
                Err(e) => {
                    tracing::error!(error = %e, export = what, "an export was cut short: a row could not be written");
                    (Err(actix_web::error::ErrorInternalServerError("CSV")), Next::Done)
                }
            })
        }
    });
    HttpResponse::Ok().content_type(CSV_TYPE).streaming(pages)
}

/// Answers `201` with a JSON resource.
pub fn created<T: serde::Serialize>(v: &T) -> HttpResponse {
    HttpResponse::Created().json(v)
}

/// Rewrites framework-made error answers (404, 405, 400s of extractors, …) into API.md's
/// error format; answers that are JSON or HTML already are left as they are.
pub fn error_format() -> ErrorHandlers<actix_web::body::BoxBody> {
    fn rewrite<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
        let already = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
        if already {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let (code, msg) = match status {
            StatusCode::METHOD_NOT_ALLOWED => (Code::MethodNotAllowed, "This method is not allowed on this path."),
            StatusCode::NOT_FOUND => (Code::NotFound, NOTHING_HERE),
            StatusCode::PAYLOAD_TOO_LARGE => (Code::PayloadTooLarge, "The request is too large."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (Code::UnsupportedMediaType, "This media type is not accepted here."),
            StatusCode::UNAUTHORIZED => (
                Code::Unauthorized,
                "Send the admin token as 'Authorization: Bearer <token>'.",
            ),
            _ => (Code::InvalidInput, "The request could not be read: check its form."),
        };
        // The methods a 405's path takes (RFC 9110 asks for them): actix's own answer names them.
        let allow = res.headers().get(header::ALLOW).cloned();
        let (req, _) = res.into_parts();
        let mut new = HttpResponse::build(status);
        if let Some(allow) = allow {
            new.insert_header((header::ALLOW, allow));
        }
        let new = new.json(body(code, msg));
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, new).map_into_right_body(),
        ))
    }
    ErrorHandlers::new().default_handler_client(rewrite)
}

/// What no route answers. A page's address with a slash after it (`/s/<token>/`, `/app/`:
/// apps and people add one to an address they share) leads to the page; a browser asking for
/// a dashboard or KOL page (`/app…`, `/s/…`) that is not there gets an HTML page rather than
/// the API's JSON. Every other path answers JSON whatever was asked for.
async fn not_found(req: HttpRequest) -> HttpResponse {
    let is_page =
        |p: &str| p == "/app" || p.starts_with("/app/") || p.strip_prefix("/s/").is_some_and(|t| !t.is_empty());
    let path = req.path();
    let page = is_page(path) || path == "/s/";
    let read = matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    if let Some(trimmed) = path
        .strip_suffix('/')
        .filter(|t| read && is_page(t) && !t.ends_with('/'))
    {
        let to = match req.query_string() {
            "" => trimmed.to_owned(),
            q => format!("{trimmed}?{q}"),
        };
        return HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, to))
            .finish();
    }
    if page {
        return redirect::page(&req, Code::NotFound, NOTHING_HERE);
    }
    actix_web::ResponseError::error_response(&ApiError::not_found(NOTHING_HERE))
}

/// What an unknown path is told.
pub(crate) const NOTHING_HERE: &str = "Nothing is here: check the path.";

/// A route for `GET` and `HEAD` (answered as `GET`; the server sends no body): load balancers
/// and uptime monitors often probe with `HEAD`.
pub(crate) fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(query_config())
        .configure(redirect::fast_route)
        .route("/healthz", get_or_head().to(health::healthz))
        .route("/readyz", get_or_head().to(health::readyz))
        .route("/metrics", get_or_head().to(health::metrics))
        .route("/openapi.yaml", get_or_head().to(health::openapi))
        .route("/kolink.js", get_or_head().to(health::kolink_js))
        .service(
            web::scope("/api/v1")
                .wrap(actix_web::middleware::from_fn(limits::limit))
                .wrap(actix_web::middleware::DefaultHeaders::new().add(views::NOSNIFF))
                .configure(campaigns::routes)
                .configure(kols::routes)
                .configure(links::routes)
                .configure(insights::routes)
                .configure(shops::routes)
                .configure(shares::routes)
                .configure(conversions::routes)
                .configure(exports::routes)
                .configure(stats::routes)
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/webhooks")
                .wrap(actix_web::middleware::from_fn(limits::limit))
                .wrap(actix_web::middleware::DefaultHeaders::new().add(views::NOSNIFF))
                .configure(webhooks::routes),
        )
        .configure(insights::pixel_routes)
        .configure(shares::page_routes)
        .configure(views::app::routes)
        .configure(redirect::routes)
        .default_service(web::to(not_found));
}

/// A display name: 1 to 200 characters, no control characters.
pub fn parse_name(field: &str, s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 200 || crate::domain::has_control_chars(t) {
        return Err(ApiError::invalid(format!(
            "{field} must be 1 to 200 characters without control characters."
        )));
    }
    if crate::domain::hides_its_text(t) {
        return Err(ApiError::invalid(format!(
            "{field} must show what it says: no right-to-left overrides or isolates, and not only invisible characters."
        )));
    }
    Ok(t.to_owned())
}

pub fn parse_slug(field: &str, s: &str) -> Result<crate::domain::Slug, ApiError> {
    crate::domain::Slug::parse(s).map_err(|e| ApiError::invalid(format!("{field}: {e}.")))
}
