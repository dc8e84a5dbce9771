//! The one table of client-visible errors: a stable snake_case code and one status each.
//! Bodies follow API.md: `{"error": {"code": "...", "message": "..."}}`.
//!
//! Two kinds of failure are not the client's: a store that does not answer is
//! `503 storage_unavailable` with `Retry-After` (retrying later works), and anything unexpected
//! (a bug, data kolink cannot read) is `500 internal`, logged with its cause chain and answered
//! without details.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidJson,
    InvalidInput,
    InvalidDestination,
    InvalidCode,
    HoursNotKept,
    ReservedCode,
    UnknownCampaign,
    UnknownKol,
    Unauthorized,
    InvalidSignature,
    NotFound,
    AlreadyExists,
    CodeTaken,
    CouponTaken,
    CurrencyLocked,
    LinkGone,
    MethodNotAllowed,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    UnsupportedMediaType,
    StorageUnavailable,
    Internal,
}

impl Code {
    /// The table: (code, status).
    pub fn describe(self) -> (&'static str, StatusCode) {
        use Code::*;
        match self {
            InvalidJson => ("invalid_json", StatusCode::BAD_REQUEST),
            InvalidInput => ("invalid_input", StatusCode::BAD_REQUEST),
            InvalidDestination => ("invalid_destination", StatusCode::BAD_REQUEST),
            InvalidCode => ("invalid_code", StatusCode::BAD_REQUEST),
            HoursNotKept => ("hours_not_kept", StatusCode::BAD_REQUEST),
            ReservedCode => ("reserved_code", StatusCode::BAD_REQUEST),
            UnknownCampaign => ("unknown_campaign", StatusCode::BAD_REQUEST),
            UnknownKol => ("unknown_kol", StatusCode::BAD_REQUEST),
            Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED),
            InvalidSignature => ("invalid_signature", StatusCode::UNAUTHORIZED),
            NotFound => ("not_found", StatusCode::NOT_FOUND),
            AlreadyExists => ("already_exists", StatusCode::CONFLICT),
            CodeTaken => ("code_taken", StatusCode::CONFLICT),
            CouponTaken => ("coupon_taken", StatusCode::CONFLICT),
            CurrencyLocked => ("currency_locked", StatusCode::CONFLICT),
            LinkGone => ("link_gone", StatusCode::GONE),
            MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            PayloadTooLarge => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            RateLimited => ("rate_limited", StatusCode::TOO_MANY_REQUESTS),
            RequestTimeout => ("request_timeout", StatusCode::REQUEST_TIMEOUT),
            UnsupportedMediaType => ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            StorageUnavailable => ("storage_unavailable", StatusCode::SERVICE_UNAVAILABLE),
            Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Client { code: Code, message: String },
    /// The store does not answer; the cause is logged, never shown.
    #[error("storage is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Not the client's doing; the cause is logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
    /// The client is past a budget of its address: `429` with `Retry-After: wait`.
    #[error("too many requests: retry in {wait} s")]
    RateLimited { wait: u64 },
}

/// How long a client is asked to wait before retrying a `503`, in seconds.
pub const RETRY_AFTER_SECS: u32 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(e) => ApiError::Unavailable(e),
            StoreError::Corrupt(e) => ApiError::Internal(e),
            StoreError::BadCursor => ApiError::invalid("cursor is not one this server handed out."),
        }
    }
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError::Client {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::Client { code, .. } => *code,
            ApiError::Unavailable(_) => Code::StorageUnavailable,
            ApiError::Internal(_) => Code::Internal,
            ApiError::RateLimited { .. } => Code::RateLimited,
        }
    }
}

/// A domain rule's words, as a sentence of the API: with its full stop (they are written to
/// be quoted inside others: "amount: … "). Their first word stays as written: it may be a
/// field's name (`utm.source must …`).
impl From<crate::domain::Invalid> for ApiError {
    fn from(e: crate::domain::Invalid) -> Self {
        let mut sentence = e.0;
        if !sentence.ends_with(['.', '!', '?']) {
            sentence.push('.');
        }
        ApiError::invalid(sentence)
    }
}

/// A JSON body read as `T`. A value that does not fit is `invalid_input` naming where it is,
/// however deep ("The body is not valid: utm.medium: …"); text that is not JSON is
/// `invalid_json`. `what` ends "The body is not …": `valid`, or the payload expected.
pub fn from_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| unfit(what, e))?;
    // What `serde_json::from_slice` also refuses: anything after the value but white space.
    de.end().map_err(|e| not_json(&e))?;
    Ok(value)
}

/// `from_json` for a body already read as a JSON value.
pub fn from_json_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| unfit("valid", e))
}

fn unfit(what: &str, e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let e = e.into_inner();
    if !e.is_data() {
        return not_json(&e);
    }
    // The path says where; serde_json's line and column add nothing to it.
    let text = e.to_string();
    let text = text
        .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
        .unwrap_or(&text);
    let text = in_plain_words(text);
    if path == "." {
        ApiError::invalid(format!("The body is not {what}: {text}."))
    } else {
        ApiError::invalid(format!("The body is not {what}: {path}: {text}."))
    }
}

/// serde's account of a value that does not fit, in the words of the JSON a client sent rather
/// than of kolink's Rust types ("expected struct CreateCampaign", "expected u64").
fn in_plain_words(text: &str) -> String {
    // A struct may be sent as an array of its fields in order (serde's reading of a sequence):
    // "invalid length 0, expected struct CreateCampaign with 7 elements".
    if text.starts_with("invalid length ") && text.contains(", expected struct ") {
        return "expected a JSON object ({…}), not an array".to_owned();
    }
    let mut out = text.to_owned();
    if let Some(at) = out.find(", expected struct ") {
        out.replace_range(at.., ", expected a JSON object ({…})");
    }
    for (rust, words) in [
        ("invalid type: sequence", "invalid type: an array"),
        ("invalid type: map", "invalid type: an object"),
        ("expected a sequence", "expected an array ([…])"),
        ("expected a map", "expected a JSON object ({…})"),
    ] {
        out = out.replace(rust, words);
    }
    for (rust, words) in [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number, 0 or more"),
        ("usize", "a whole number, 0 or more"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
        ("f64", "a number"),
    ] {
        if let Some(head) = out.strip_suffix(&format!("expected {rust}")) {
            out = format!("{head}expected {words}");
            break;
        }
    }
    out
}

pub(crate) fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::new(Code::InvalidJson, format!("The body is not valid JSON: {e}."))
}

/// The JSON error body of API.md.
pub fn body(code: Code, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"code": code.describe().0, "message": message}})
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().describe().1
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        let message = match self {
            ApiError::Client { message, .. } => message.clone(),
            ApiError::Unavailable(e) => {
                crate::telemetry::warn_limited!(error = format!("{e:#}"), "storage unavailable");
                res.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
                // A store that stopped answering may still carry out a change it was sent
                // (a frozen Redis does, once it wakes): a retry of it can find it done.
                "Storage is unavailable right now; retry in a moment (a change sent just now may still be saved: a retry that answers 409 found it).".to_owned()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                "Something went wrong on our side; it has been logged.".to_owned()
            }
            ApiError::RateLimited { wait } => {
                let wait = (*wait).max(1);
                res.insert_header((header::RETRY_AFTER, wait));
                format!("Too many requests from this address: retry in {wait} s.")
            }
        };
        res.json(body(self.code(), &message))
    }
}

/// An error and its causes as one line, `outer: inner: …`, for a fatal error's last words. A
/// cause whose words the part before already ends with is left out: Redis's errors repeat
/// their own cause ("Connection refused (os error 111): Connection refused (os error 111)").
pub fn chain_text(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for part in e.chain().map(|c| c.to_string()) {
        if line.ends_with(&part) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&part);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_error_says_each_cause_once_and_domain_words_end_as_sentences() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let e = anyhow::Error::new(RepeatsItsCause(io)).context("Failed to connect to Redis");
        assert_eq!(
            chain_text(&e),
            "Failed to connect to Redis: Connection refused (os error 111)"
        );
        let ApiError::Client { message: m, .. } =
            ApiError::from(crate::domain::Currency::parse_listed("TWN").unwrap_err())
        else {
            panic!("invalid input");
        };
        assert!(m.starts_with("'TWN' is not") && m.ends_with("\"JPY\"."), "{m}");
    }

    /// An error whose words end with its cause's, as Redis's do.
    #[derive(Debug)]
    struct RepeatsItsCause(std::io::Error);

    impl std::fmt::Display for RepeatsItsCause {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", self.0)
        }
    }

    impl std::error::Error for RepeatsItsCause {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Order {
        #[allow(dead_code)]
        lines: Vec<Line>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Line {
        #[allow(dead_code)]
        qty: u32,
    }

    fn message(e: ApiError) -> (Code, String) {
        match e {
            ApiError::Client { code, message } => (code, message),
            other => panic!("not a client error: {other:?}"),
        }
    }

    #[test]
    fn a_value_that_does_not_fit_is_named_by_its_path() {
        let e = from_json::<Order>(br#"{"lines": [{"qty": 1}, {"qty": -1}]}"#, "valid").unwrap_err();
        assert_eq!(
            message(e),
            (
                Code::InvalidInput,
                "The body is not valid: lines[1].qty: invalid value: integer `-1`, expected a whole number from 0 to 4294967295.".into()
            )
        );
        let value = serde_json::json!({"lines": [{"qty": "two"}]});
        let (code, text) = message(from_json_value::<Order>(value).unwrap_err());
        assert_eq!(code, Code::InvalidInput);
        assert!(
            text.starts_with("The body is not valid: lines[0].qty: invalid type: string"),
            "{text}"
        );
    }

    #[test]
    fn what_does_not_fit_is_said_in_json_s_words_not_rust_s() {
        // A body that is an array, an object where an array goes, a fraction for a count.
        for (body, said) in [
            (&br#"[]"#[..], "The body is not valid: expected a JSON object ({…}), not an array."),
            (
                br#"{"lines": {"qty": 1}}"#,
                "The body is not valid: lines: invalid type: an object, expected an array ([…]).",
            ),
            (
                br#"{"lines": [[]]}"#,
                "The body is not valid: lines[0]: expected a JSON object ({…}), not an array.",
            ),
            (
                br#"{"lines": ["one"]}"#,
                "The body is not valid: lines[0]: invalid type: string \"one\", expected a JSON object ({…}).",
            ),
            (
                br#"{"lines": [{"qty": 1.5}]}"#,
                "The body is not valid: lines[0].qty: invalid type: floating point `1.5`, expected a whole number from 0 to 4294967295.",
            ),
        ] {
            let (code, text) = message(from_json::<Order>(body, "valid").unwrap_err());
            assert_eq!((code, text.as_str()), (Code::InvalidInput, said));
            for rust in ["struct", "Order", "Line", "u32", "sequence"] {
                assert!(!text.contains(rust), "{text}");
            }
        }
    }

    #[test]
    fn what_is_wrong_with_the_whole_body_has_no_path() {
        // An unknown field is named where it is, too.
        let (code, text) = message(from_json::<Order>(br#"{"lines": [], "x": 1}"#, "an order").unwrap_err());
        assert_eq!(code, Code::InvalidInput);
        assert!(
            text.starts_with("The body is not an order: x: unknown field `x`"),
            "{text}"
        );
        let (_, text) = message(from_json::<Order>(b"{}", "valid").unwrap_err());
        assert_eq!(text, "The body is not valid: missing field `lines`.");
    }

    #[test]
    fn text_that_is_not_json_stays_invalid_json() {
        for body in [&b"{\"lines\": ["[..], b"{\"lines\": []} x", b"nope"] {
            let (code, _) = message(from_json::<Order>(body, "valid").unwrap_err());
            assert_eq!(code, Code::InvalidJson, "{}", String::from_utf8_lossy(body));
        }
        assert!(from_json::<Order>(b" {\"lines\": []}\n", "valid").is_ok());
    }
}
