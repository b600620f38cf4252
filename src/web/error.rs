//! The one error type of the web layer, and the only place that maps errors
//! to HTTP status codes.
//!
//! Policy: what the user sees is a status, a short text in their language and,
//! for internal errors, a reference; the cause (SQL, LDAP, template) goes to
//! the log with that same reference and never into the page. A handler's
//! error becomes a bare response carrying an [`ErrorPage`] extension; the
//! session layer, which knows the user's language, renders it.

use crate::directory::DirectoryError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No valid session: HTML pages redirect to the login form, the API answers 401.
    #[error("not logged in")]
    Unauthenticated { api: bool, next: String },
    /// Logged in, but the role does not allow this.
    #[error("forbidden")]
    Forbidden,
    /// A POST without the session's CSRF token.
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error("not found")]
    NotFound,
    /// The request cannot be understood; the text is safe to show.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    #[error("internal: {0}")]
    Internal(String),
}

/// What kind of error page to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Forbidden,
    Csrf,
    NotFound,
    BadRequest,
    Internal,
}

/// Carried by an error response until the session layer renders it.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub kind: ErrorKind,
    /// The reference shown to the user and written in the log (internal errors).
    pub reference: Option<String>,
    /// A text safe to show (bad requests only).
    pub detail: Option<String>,
    /// JSON rather than HTML (the API).
    pub api: bool,
}

/// Eight hexadecimal characters: short enough to read over the phone.
pub fn new_reference() -> String {
    use rand::Rng;
    format!("{:08X}", rand::rng().random::<u32>())
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, kind, detail) = match &self {
            WebError::Unauthenticated { api: true, .. } => {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(serde_json::json!({"error": "unauthenticated"})),
                )
                    .into_response();
            }
            WebError::Unauthenticated { api: false, next } => {
                let target = format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, target)]).into_response();
            }
            WebError::Forbidden => (StatusCode::FORBIDDEN, ErrorKind::Forbidden, None),
            WebError::Csrf => (StatusCode::FORBIDDEN, ErrorKind::Csrf, None),
            WebError::NotFound => (StatusCode::NOT_FOUND, ErrorKind::NotFound, None),
            WebError::BadRequest(text) => (StatusCode::BAD_REQUEST, ErrorKind::BadRequest, Some(text.clone())),
            WebError::Store(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, ErrorKind::NotFound, None),
            WebError::Directory(e) if e.is_unavailable() => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorKind::Internal, None)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Internal, None),
        };
        let reference = (kind == ErrorKind::Internal).then(new_reference);
        if let Some(r) = &reference {
            tracing::error!(error.reference = %r, error = %self, cause = ?self, "web: internal error");
        } else {
            tracing::debug!(error = %self, "web: request refused");
        }
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage {
            kind,
            reference,
            detail,
            api: false,
        });
        response
    }
}

pub type Result<T, E = WebError> = std::result::Result<T, E>;
