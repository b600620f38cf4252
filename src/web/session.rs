//! Sessions, CSRF, language and roles: the layer every request goes through.
//!
//! The cookie holds a random session id; the store keeps only its SHA-256, so
//! a copy of the database opens no session. The cookie is HttpOnly,
//! SameSite=Lax, Path=/ and, unless `secure_cookies` is off, Secure with the
//! `__Host-` prefix. Every POST must carry the session's CSRF token (form
//! field `_csrf` or header `X-CSRF-Token`); before login the token is an HMAC
//! of a random pre-session cookie, so the login form is protected too.
//! A multipart body (a form with files) is not read whole here: its first
//! part must be the `_csrf` field, checked before any file is accepted,
//! unless the header carries the token.
//! Roles are computed from the store on every request, so removing someone
//! from the admin group or a Manage grant takes effect at once.

use super::error::{ErrorKind, ErrorPage, WebError};
use super::i18n::Lang;
use super::{AdminGroup, WebState};
use crate::store::Store;
use crate::store::directory::{GrantRole, GrantScope};
use crate::store::web::ResourceRow;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use uuid::Uuid;

/// Largest form body accepted; the site's forms are far smaller.
const MAX_FORM_BYTES: usize = 256 * 1024;
/// How much of a multipart body is read, at most, to find its `_csrf` field.
const MULTIPART_TOKEN_WINDOW: usize = 64 * 1024;
/// The name of the CSRF field in every form.
pub const CSRF_FIELD: &str = "_csrf";
/// The header an API client or script may send the token in instead.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The language cookie (not secret, readable by nobody but the server anyway).
pub const LANG_COOKIE: &str = "resa_lang";

/// What a person may do on the site; the order is the order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Agent,
    Manager,
    Admin,
}

/// The logged-in person.
#[derive(Debug, Clone)]
pub struct User {
    pub person_id: Uuid,
    pub name: String,
    pub role: Role,
    /// Where they hold a Manage grant.
    pub manage_scopes: Vec<GrantScope>,
}

impl User {
    /// Whether they may manage this resource (admins manage everything).
    pub fn manages(&self, r: &ResourceRow) -> bool {
        self.role == Role::Admin
            || self.manage_scopes.iter().any(|s| match *s {
                GrantScope::Global => true,
                GrantScope::Organisation(id) => id == r.organisation_id,
                GrantScope::Site(id) => id == r.site_id,
                GrantScope::SiteType { site, resource_type } => {
                    site == r.site_id && resource_type == r.resource_type_id
                }
                GrantScope::ResourceType(id) => id == r.resource_type_id,
                GrantScope::Resource(id) => id == r.id,
            })
    }
}

/// The request's context, put in its extensions by [`layer`] and read by
/// handlers as an extractor.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub lang: Lang,
    pub user: Option<User>,
    /// The token to put in this page's forms.
    pub csrf: String,
    /// The path of the request (no query), for the language switch and redirects.
    pub path: String,
    /// The raw session id (only to end the session at logout).
    pub session_id: Option<String>,
}

impl Ctx {
    /// The user if their role is at least `role`: otherwise the login form
    /// (no session) or a 403 page.
    pub fn require(&self, role: Role) -> Result<&User, WebError> {
        match &self.user {
            None => Err(WebError::Unauthenticated {
                api: self.path.starts_with("/api/"),
                next: self.path.clone(),
            }),
            Some(u) if u.role >= role => Ok(u),
            Some(_) => Err(WebError::Forbidden),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| WebError::Internal("the session layer is missing".into()))
    }
}

/// The name of the session cookie.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure { "__Host-resa" } else { "resa_session" }
}

/// The name of the pre-login cookie (the seed of the login form's CSRF token).
pub fn pre_cookie(secure: bool) -> &'static str {
    if secure { "__Host-resa-pre" } else { "resa_pre" }
}

/// A `Set-Cookie` value with the site's attributes; `max_age` 0 deletes it.
pub fn cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool, http_only: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age_seconds}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The value of cookie `name` in the request, if any.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF token of an anonymous visitor: an HMAC of their pre-session cookie.
pub fn pre_session_token(key: &[u8], pre: &str) -> String {
    use base64::Engine;
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(b"resa-login-csrf:");
    mac.update(pre.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The role of a person, from the store.
pub async fn role_of(
    store: &Store,
    admin_groups: &[AdminGroup],
    person_id: Uuid,
) -> Result<(Role, Vec<GrantScope>), WebError> {
    let grants = store.grants_for_person(person_id).await?;
    let manage_scopes: Vec<GrantScope> = grants
        .iter()
        .filter(|g| g.role == GrantRole::Manage)
        .map(|g| g.scope)
        .collect();
    if !admin_groups.is_empty() {
        let mine: Vec<Uuid> = store
            .groups_of_person(person_id)
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        for a in admin_groups {
            if let Some(g) = store.group_by_account(&a.directory, &a.group).await?
                && mine.contains(&g.id)
            {
                return Ok((Role::Admin, manage_scopes));
            }
        }
    }
    let role = if manage_scopes.is_empty() {
        Role::Agent
    } else {
        Role::Manager
    };
    Ok((role, manage_scopes))
}

/// The query's `lang=` value, if it names a language.
fn lang_in_query(query: Option<&str>) -> Option<Lang> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::parse(&v))
}

/// The token a POST carries, from the header or the form body.
fn submitted_token(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(v) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
}

/// Whether the request's body is `multipart/form-data`.
fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// What the beginning of a multipart body holds.
enum FirstPart {
    /// The `_csrf` field, whole.
    Token(String),
    /// Another field or a file: no token first, so the body is refused.
    NotToken,
    /// Not enough bytes yet to tell.
    Incomplete,
}

/// Parses the first part of a multipart body from the bytes read so far.
async fn first_part(content_type: &HeaderValue, prefix: &[bytes::Bytes]) -> FirstPart {
    use axum::extract::{FromRequest, Multipart};
    // At most the window is parsed: a first chunk may be a whole upload.
    let mut room = MULTIPART_TOKEN_WINDOW;
    let mut chunks: Vec<Result<bytes::Bytes, std::io::Error>> = Vec::new();
    for chunk in prefix {
        if room == 0 {
            break;
        }
        let take = chunk.len().min(room);
        chunks.push(Ok(chunk.slice(0..take)));
        room -= take;
    }
    let Ok(request) = Request::builder()
        .header(header::CONTENT_TYPE, content_type.clone())
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
    else {
        return FirstPart::NotToken;
    };
    let Ok(mut multipart) = Multipart::from_request(request, &()).await else {
        return FirstPart::NotToken;
    };
    match multipart.next_field().await {
        Ok(Some(field)) => {
            if field.name() != Some(CSRF_FIELD) || field.file_name().is_some() {
                return FirstPart::NotToken;
            }
            match field.text().await {
                Ok(token) => FirstPart::Token(token),
                Err(_) => FirstPart::Incomplete,
            }
        }
        Ok(None) | Err(_) => FirstPart::Incomplete,
    }
}

/// Reads a multipart body until its first part is whole, and returns the
/// CSRF token if that part is the `_csrf` field, with the body whole again
/// (the bytes read, then the rest still streaming) for the handler.
async fn multipart_token(headers: &HeaderMap, body: Body) -> (Option<String>, Body) {
    use futures_util::StreamExt;
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return (None, Body::empty());
    };
    let mut stream = body.into_data_stream();
    let mut prefix: Vec<bytes::Bytes> = Vec::new();
    let mut read = 0usize;
    let mut token = None;
    loop {
        let ended = match stream.next().await {
            Some(Ok(chunk)) => {
                read += chunk.len();
                prefix.push(chunk);
                false
            }
            Some(Err(_)) => return (None, Body::empty()),
            None => true,
        };
        match first_part(content_type, &prefix).await {
            FirstPart::Token(t) => {
                token = Some(t);
                break;
            }
            FirstPart::NotToken => break,
            FirstPart::Incomplete if ended || read > MULTIPART_TOKEN_WINDOW => break,
            FirstPart::Incomplete => {}
        }
    }
    let head = futures_util::stream::iter(prefix.into_iter().map(Ok::<_, axum::Error>));
    (token, Body::from_stream(head.chain(stream)))
}

/// The layer: loads the session and the role, picks the language, checks
/// CSRF on every unsafe method, and renders error pages.
pub async fn layer(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let secure = state.secure_cookies;
    let now = state.clock.now();
    let (mut parts, body) = request.into_parts();
    let mut set_cookies: Vec<String> = Vec::new();

    let query_lang = lang_in_query(parts.uri.query());
    let cookie_lang = read_cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse);

    // The session, if the cookie names a live one.
    let session_id = read_cookie(&parts.headers, session_cookie(secure)).map(str::to_owned);
    let mut session = None;
    if let Some(id) = &session_id {
        match state.store.touch_session(id, now).await {
            Ok(s) => session = s,
            Err(e) => return render_error(WebError::from(e).into_response(), &fallback_ctx(&parts)),
        }
        if session.is_none() {
            // A stale cookie is dropped, so the browser stops sending it.
            set_cookies.push(cookie(session_cookie(secure), "", 0, secure, true));
        }
    }
    let session_lang = session.as_ref().and_then(|s| Lang::parse(&s.language));
    let lang = query_lang.or(cookie_lang).or(session_lang).unwrap_or_default();
    if let Some(l) = query_lang {
        set_cookies.push(cookie(LANG_COOKIE, l.code(), 365 * 24 * 3600, secure, true));
        if let (Some(id), Some(_)) = (&session_id, &session)
            && let Err(e) = state.store.set_session_language(id, l.code()).await
        {
            tracing::warn!(error = %e, "web: cannot save the session language");
        }
    }

    // The CSRF token of this visitor.
    let csrf = match &session {
        Some(s) => s.csrf_token.clone(),
        None => {
            let pre = match read_cookie(&parts.headers, pre_cookie(secure)) {
                Some(p) if p.len() >= 16 && p.len() <= 64 => p.to_owned(),
                _ => {
                    let p = random_token();
                    set_cookies.push(cookie(pre_cookie(secure), &p, 24 * 3600, secure, true));
                    p
                }
            };
            pre_session_token(&state.secret_key, &pre)
        }
    };

    let user = match &session {
        Some(s) => match role_of(&state.store, &state.admin_groups, s.person_id).await {
            Ok((role, manage_scopes)) => Some(User {
                person_id: s.person_id,
                name: s.display_name.clone(),
                role,
                manage_scopes,
            }),
            Err(e) => return render_error(e.into_response(), &fallback_ctx(&parts)),
        },
        None => None,
    };
    let ctx = Ctx {
        lang,
        user,
        csrf,
        path: parts.uri.path().to_owned(),
        session_id: session.as_ref().and(session_id.clone()),
    };

    // CSRF: every method that changes something needs the token.
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let body = if safe {
        body
    } else if is_multipart(&parts.headers) {
        // A form with files: the header's token, else the `_csrf` part that
        // must come first; the body streams on to the handler, which bounds it.
        let (token, body) = match parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
            Some(t) => (Some(t.to_owned()), body),
            None => multipart_token(&parts.headers, body).await,
        };
        if !token.is_some_and(|t| same_token(&t, &ctx.csrf)) {
            tracing::warn!(http.path = %ctx.path, "web: multipart POST refused, missing or wrong CSRF token");
            return finish(render_error(WebError::Csrf.into_response(), &ctx), &set_cookies);
        }
        body
    } else {
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return finish(
                    render_error(
                        WebError::BadRequest(ctx.lang.text("error.too_large").into()).into_response(),
                        &ctx,
                    ),
                    &set_cookies,
                );
            }
        };
        let ok = submitted_token(&parts.headers, &bytes).is_some_and(|t| same_token(&t, &ctx.csrf));
        if !ok {
            tracing::warn!(http.path = %ctx.path, "web: POST refused, missing or wrong CSRF token");
            return finish(render_error(WebError::Csrf.into_response(), &ctx), &set_cookies);
        }
        Body::from(bytes)
    };

    parts.extensions.insert(ctx.clone());
    let response = next.run(Request::from_parts(parts, body)).await;
    finish(render_error(response, &ctx), &set_cookies)
}

/// A context for errors raised before the session is known.
fn fallback_ctx(parts: &Parts) -> Ctx {
    Ctx {
        lang: read_cookie(&parts.headers, LANG_COOKIE)
            .and_then(Lang::parse)
            .unwrap_or_default(),
        user: None,
        csrf: String::new(),
        path: parts.uri.path().to_owned(),
        session_id: None,
    }
}

fn finish(mut response: Response, set_cookies: &[String]) -> Response {
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Replaces a bare error response by its page in the user's language.
fn render_error(response: Response, ctx: &Ctx) -> Response {
    let Some(page) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    let status = response.status();
    if ctx.path.starts_with("/api/") || page.api {
        let code = match page.kind {
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Csrf => "csrf",
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Internal => "internal",
        };
        let body = serde_json::json!({ "error": code, "reference": page.reference, "detail": page.detail });
        return (status, axum::Json(body)).into_response();
    }
    super::pages::error_page(ctx, status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", "a"));
    }

    #[test]
    fn cookies_carry_the_site_attributes() {
        let c = cookie(session_cookie(true), "v", 60, true, true);
        assert_eq!(c, "__Host-resa=v; Path=/; SameSite=Lax; Max-Age=60; HttpOnly; Secure");
        assert!(!cookie(session_cookie(false), "v", 60, false, true).contains("Secure"));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("resa_session_x=1; resa_session=2; other=3"),
        );
        assert_eq!(read_cookie(&h, "resa_session"), Some("2"));
        assert_eq!(read_cookie(&h, "missing"), None);
    }

    #[test]
    fn the_pre_session_token_depends_on_key_and_cookie() {
        let a = pre_session_token(b"key one", "cookie");
        assert_eq!(a, pre_session_token(b"key one", "cookie"));
        assert_ne!(a, pre_session_token(b"key two", "cookie"));
        assert_ne!(a, pre_session_token(b"key one", "cookie2"));
    }

    #[test]
    fn admin_groups_read_directory_and_group() {
        assert_eq!(
            AdminGroup::parse("pc:GG-Resa-Admins"),
            Some(AdminGroup {
                directory: "pc".into(),
                group: "GG-Resa-Admins".into()
            })
        );
        assert_eq!(AdminGroup::parse("GG-Resa-Admins"), None);
        assert_eq!(AdminGroup::parse(":x"), None);
    }
}
