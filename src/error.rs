//! The one table of client-visible errors: a stable snake_case code and one status each.
//! Bodies follow API.md: `{"error": {"code": "...", "message": "..."}}`. Unexpected failures
//! (the store being down) are logged with their cause chain and answered without details.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidJson,
    InvalidInput,
    InvalidDestination,
    InvalidCode,
    ReservedCode,
    UnknownCampaign,
    UnknownKol,
    Unauthorized,
    InvalidSignature,
    NotFound,
    AlreadyExists,
    CodeTaken,
    CouponTaken,
    LinkGone,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    StorageUnavailable,
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
            ReservedCode => ("reserved_code", StatusCode::BAD_REQUEST),
            UnknownCampaign => ("unknown_campaign", StatusCode::BAD_REQUEST),
            UnknownKol => ("unknown_kol", StatusCode::BAD_REQUEST),
            Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED),
            InvalidSignature => ("invalid_signature", StatusCode::UNAUTHORIZED),
            NotFound => ("not_found", StatusCode::NOT_FOUND),
            AlreadyExists => ("already_exists", StatusCode::CONFLICT),
            CodeTaken => ("code_taken", StatusCode::CONFLICT),
            CouponTaken => ("coupon_taken", StatusCode::CONFLICT),
            LinkGone => ("link_gone", StatusCode::GONE),
            MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            PayloadTooLarge => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            UnsupportedMediaType => ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            StorageUnavailable => ("storage_unavailable", StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Client { code: Code, message: String },
    /// The store failed; the cause is logged, never shown.
    #[error("storage failed")]
    Store(#[from] anyhow::Error),
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
            ApiError::Store(_) => Code::StorageUnavailable,
        }
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(e: crate::domain::Invalid) -> Self {
        ApiError::invalid(e.0)
    }
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
        let message = match self {
            ApiError::Client { message, .. } => message.clone(),
            ApiError::Store(e) => {
                tracing::error!(error = format!("{e:#}"), "storage failure");
                "Storage is unavailable right now; retry in a moment.".to_owned()
            }
        };
        HttpResponse::build(self.status_code()).json(body(self.code(), &message))
    }
}
