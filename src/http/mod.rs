//! The HTTP surface of API.md. Handlers parse and validate, call the domain and the store,
//! and map results and errors to HTTP; one file per resource.

mod campaigns;
mod conversions;
mod exports;
mod health;
mod kols;
mod links;
mod metrics;
mod redirect;
mod shops;
mod stats;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clicks::ClickWriter;
use crate::config::Settings;
use crate::domain::Link;
use crate::error::{body, ApiError, Code};
use crate::store::Store;

/// Largest request body accepted anywhere.
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub writer: ClickWriter,
    pub meters: Arc<crate::telemetry::Meters>,
    pub links: LinkCache,
    /// SHA-256 of the admin token.
    pub admin_hash: [u8; 32],
    /// Key of the daily visitor-hash salt.
    pub visitor_key: Vec<u8>,
    /// Base of short URLs, no trailing slash.
    pub public_base: String,
    pub settings: Settings,
}

pub type State = web::Data<AppState>;

/// In-process cache of link records for the redirect hot path: bounded, short-lived, and
/// invalidated when this process changes a link. Unknown codes are cached too, so that a
/// scanner trying random paths costs one store read per code and TTL.
pub struct LinkCache(moka::sync::Cache<String, Option<Arc<Link>>>);

impl LinkCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        )
    }

    pub async fn get(&self, store: &dyn Store, code: &str) -> Result<Option<Arc<Link>>, ApiError> {
        if let Some(hit) = self.0.get(code) {
            return Ok(hit);
        }
        let link = store.get_link(code).await?.map(Arc::new);
        self.0.insert(code.to_owned(), link.clone());
        Ok(link)
    }

    pub fn forget(&self, code: &str) {
        self.0.invalidate(code);
    }
}

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
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(token) = token else {
        return Err(ApiError::new(
            Code::Unauthorized,
            "Send the admin token as 'Authorization: Bearer <token>'.",
        ));
    };
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if bool::from(hash.ct_eq(&state.admin_hash)) {
        Ok(Admin)
    } else {
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
            E::Deserialize(de) if de.is_data() => ApiError::invalid(format!("The body is not valid: {de}.")),
            E::Deserialize(de) => ApiError::new(Code::InvalidJson, format!("The body is not valid JSON: {de}.")),
            _ => ApiError::new(Code::InvalidJson, "The body could not be read as JSON."),
        };
        e.into()
    })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::invalid(format!("The query string is not valid: {err}.")).into())
}

/// Reads a raw body of at most 64 KiB (webhooks verify signatures over the exact bytes).
pub async fn read_body(mut payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::invalid("The request body could not be read."))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::new(
                Code::PayloadTooLarge,
                "The request body is larger than 64 KiB.",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
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

    /// The store's cursor inside the opaque one handed out.
    pub fn cursor(&self) -> Result<Option<String>, ApiError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                B64URL
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
                    .ok_or_else(|| ApiError::invalid("cursor is not one this server handed out."))
            })
            .transpose()
    }
}

pub fn encode_cursor(c: Option<String>) -> Option<String> {
    c.map(|c| B64URL.encode(c))
}

/// Answers `201` with a JSON resource.
pub fn created<T: serde::Serialize>(v: &T) -> HttpResponse {
    HttpResponse::Created().json(v)
}

/// Rewrites framework-made 404/405 answers into API.md's error format.
fn error_format() -> ErrorHandlers<actix_web::body::BoxBody> {
    fn rewrite<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
        let already = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
        if already {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let (code, msg) = if res.status() == StatusCode::METHOD_NOT_ALLOWED {
            (Code::MethodNotAllowed, "This method is not allowed on this path.")
        } else {
            (Code::NotFound, "Nothing is here: check the path.")
        };
        let (req, _) = res.into_parts();
        let new = HttpResponse::build(code.describe().1).json(body(code, msg));
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, new).map_into_right_body(),
        ))
    }
    ErrorHandlers::new()
        .handler(StatusCode::NOT_FOUND, rewrite)
        .handler(StatusCode::METHOD_NOT_ALLOWED, rewrite)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("Nothing is here: check the path."))
}

/// Every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(query_config())
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/openapi.yaml", web::get().to(health::openapi))
        .service(
            web::scope("/api/v1")
                .wrap(error_format())
                .configure(campaigns::routes)
                .configure(kols::routes)
                .configure(links::routes)
                .configure(metrics::routes)
                .configure(shops::routes)
                .configure(conversions::routes)
                .configure(exports::routes)
                .configure(stats::routes)
                .default_service(web::to(not_found)),
        )
        .service(web::scope("/webhooks").wrap(error_format()).configure(webhooks::routes))
        .configure(metrics::pixel_routes)
        .configure(redirect::routes)
        .default_service(web::to(not_found));
}

/// Reads a JSON record of `kind`.
pub async fn load_record<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: crate::store::Kind,
    id: &str,
) -> Result<Option<T>, ApiError> {
    match store.get_record(kind, id).await? {
        None => Ok(None),
        Some(json) => Ok(Some(serde_json::from_str(&json).map_err(|e| {
            ApiError::Store(anyhow::anyhow!("Failed to decode a stored record: {e}"))
        })?)),
    }
}

/// A page of JSON records of `kind`, decoded.
pub async fn list_records<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: crate::store::Kind,
    q: &PageQuery,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let page = store.list_records(kind, q.cursor()?.as_deref(), q.limit()?).await?;
    let items = page
        .items
        .iter()
        .map(|j| serde_json::from_str(j))
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| ApiError::Store(anyhow::anyhow!("Failed to decode a stored record: {e}")))?;
    Ok((items, encode_cursor(page.next)))
}

/// Deserializes a field that may be absent (outer `None`), `null` (inner `None`) or a value:
/// how PATCH tells "leave as is" from "clear".
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A display name: 1 to 200 characters, no control characters.
pub fn parse_name(field: &str, s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 200 || crate::domain::has_control_chars(t) {
        return Err(ApiError::invalid(format!(
            "{field} must be 1 to 200 characters without control characters."
        )));
    }
    Ok(t.to_owned())
}

pub fn parse_slug(field: &str, s: &str) -> Result<crate::domain::Slug, ApiError> {
    crate::domain::Slug::parse(s).map_err(|e| ApiError::invalid(format!("{field}: {e}.")))
}

pub fn parse_destination(s: &str) -> Result<crate::domain::Destination, ApiError> {
    crate::domain::Destination::parse(s).map_err(|e| ApiError::new(Code::InvalidDestination, format!("The {e}.")))
}
