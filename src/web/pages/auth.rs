//! Login against the directories and logout.

use super::{Base, render, see_other};
use crate::directory::{DirectoryError, Secret};
use crate::web::WebState;
use crate::web::error::Result;
use crate::web::session::{Ctx, cookie, pre_cookie, session_cookie};
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    base: Base,
    error: Option<&'static str>,
    username: String,
    next: String,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a local path may follow a login, never another site.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.starts_with("/login") => {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub async fn login_form(ctx: Ctx, Query(q): Query<NextQuery>) -> Result<Response> {
    if ctx.user.is_some() {
        return Ok(see_other(&local_path(q.next.as_deref())));
    }
    render(&LoginPage {
        base: Base::new(&ctx, "login.title"),
        error: None,
        username: String::new(),
        next: local_path(q.next.as_deref()),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log.
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub async fn login_submit(State(state): State<WebState>, ctx: Ctx, Form(form): Form<LoginForm>) -> Result<Response> {
    let next = local_path(form.next.as_deref());
    let refuse = |message: &'static str, status: StatusCode| -> Result<Response> {
        let page = LoginPage {
            base: Base::new(&ctx, "login.title"),
            error: Some(message),
            username: form.username.clone(),
            next: next.clone(),
        };
        Ok((status, render(&page)?).into_response())
    };
    if state.directories.is_empty() {
        return refuse(ctx.lang.text("login.no_directory"), StatusCode::SERVICE_UNAVAILABLE);
    }
    let user =
        match crate::directory::login(&state.directories, &form.username, &Secret::new(form.password.clone())).await {
            Ok(u) => u,
            Err(e) => {
                let status = if e.is_unavailable() {
                    tracing::warn!(error = %e, "web: login impossible, directory unavailable");
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    tracing::info!(login.user = %form.username, error = %e, "web: login refused");
                    StatusCode::UNAUTHORIZED
                };
                let text = match ctx.lang {
                    crate::web::i18n::Lang::Fr => e.message_fr(),
                    crate::web::i18n::Lang::En => e.message_en(),
                };
                return refuse(text, status);
            }
        };
    let Some(person) = state.store.person_by_guid(&user.directory, user.object_guid).await? else {
        return refuse(ctx.lang.text("login.unknown_person"), StatusCode::FORBIDDEN);
    };
    if person.disabled || person.deleted_at.is_some() {
        let e = DirectoryError::AccountDisabled;
        let text = match ctx.lang {
            crate::web::i18n::Lang::Fr => e.message_fr(),
            crate::web::i18n::Lang::En => e.message_en(),
        };
        return refuse(text, StatusCode::FORBIDDEN);
    }
    let now = state.clock.now();
    let session = state.store.create_session(person.id, ctx.lang.code(), now).await?;
    state
        .store
        .record_audit(
            now,
            &person.id.to_string(),
            "session.login",
            "person",
            Some(&person.id.to_string()),
            serde_json::json!({ "directory": user.directory, "account": user.sam_account_name }),
        )
        .await?;
    tracing::info!(person.id = %person.id, "web: login");
    let secure = state.secure_cookies;
    let max_age = (session.expires_at - now).num_seconds().max(0);
    // The session cookie lasts as long as the browser unless the session
    // ends first; the server's expiry is what counts.
    let mut response = see_other(&next);
    let h = response.headers_mut();
    for c in [
        cookie(
            session_cookie(secure),
            &session.id,
            crate::store::web::SESSION_MAX_AGE.num_seconds().max(max_age),
            secure,
            true,
        ),
        cookie(pre_cookie(secure), "", 0, secure, true),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

pub async fn logout(State(state): State<WebState>, ctx: Ctx) -> Result<Response> {
    if let Some(id) = &ctx.session_id {
        state.store.delete_session(id).await?;
    }
    let secure = state.secure_cookies;
    let mut response = see_other("/login");
    if let Ok(v) = HeaderValue::from_str(&cookie(session_cookie(secure), "", 0, secure, true)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_follow_a_login() {
        assert_eq!(local_path(Some("/bookings")), "/bookings");
        assert_eq!(local_path(Some("//evil.example")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }
}
