//! The static assets, compiled into the binary so the site needs no files
//! beside it.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::web::error::WebError;

const CSS: &str = include_str!("../../../static/site.css");
const JS: &str = include_str!("../../../static/site.js");

pub async fn asset(Path(file): Path<String>) -> Result<Response, WebError> {
    let (body, kind) = match file.as_str() {
        "site.css" => (CSS, "text/css; charset=utf-8"),
        "site.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(WebError::NotFound),
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(response)
}
