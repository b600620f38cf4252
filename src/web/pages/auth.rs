//! Login against the directories, the demo's sign-in without a directory,
//! and logout.

use super::{Base, render, see_other};
use crate::directory::{DirectoryError, Secret};
use crate::web::WebState;
use crate::web::error::Result;
use crate::web::error::WebError;
use crate::web::session::{Ctx, Role, cookie, pre_cookie, session_cookie};
use askama::Template;
use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;

/// The demo's sign-in without a directory. Only `resa demo` installs it, as a
/// request extension of the site it serves on loopback; no configuration key
/// turns it on, so `resa serve` never offers it and answers 404 to its route.
#[derive(Debug, Clone, Default)]
pub struct DemoLogin {
    pub accounts: Vec<DemoAccount>,
}

/// One seeded demo person offered on the login page.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub person_id: Uuid,
    pub name: String,
    /// The role the seeded grants and groups give them (shown; the site still
    /// computes the role from the store on every request).
    pub role: Role,
    /// What they are, in French, e.g. "Plaine Commune, gère les salles du siège".
    pub note: String,
}

/// A demo account as the login page shows it.
struct DemoLine {
    person_id: String,
    name: String,
    role: &'static str,
    note: String,
}

fn demo_lines(ctx: &Ctx, demo: Option<&DemoLogin>) -> Vec<DemoLine> {
    demo.map(|d| {
        d.accounts
            .iter()
            .map(|a| DemoLine {
                person_id: a.person_id.to_string(),
                name: a.name.clone(),
                role: ctx.lang.text(match a.role {
                    Role::Admin => "role.admin",
                    Role::Manager => "role.manager",
                    Role::Agent => "role.agent",
                }),
                note: a.note.clone(),
            })
            .collect()
    })
    .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    base: Base,
    error: Option<&'static str>,
    username: String,
    next: String,
    /// The demo's accounts; empty outside `resa demo`.
    demo: Vec<DemoLine>,
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

pub async fn login_form(
    ctx: Ctx,
    demo: Option<Extension<Arc<DemoLogin>>>,
    Query(q): Query<NextQuery>,
) -> Result<Response> {
    if ctx.user.is_some() {
        return Ok(see_other(&local_path(q.next.as_deref())));
    }
    render(&LoginPage {
        base: Base::new(&ctx, "login.title"),
        error: None,
        username: String::new(),
        next: local_path(q.next.as_deref()),
        demo: demo_lines(&ctx, demo.as_deref().map(|d| d.as_ref())),
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

pub async fn login_submit(
    State(state): State<WebState>,
    ctx: Ctx,
    demo: Option<Extension<Arc<DemoLogin>>>,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    let next = local_path(form.next.as_deref());
    let refuse = |message: &'static str, status: StatusCode| -> Result<Response> {
        let page = LoginPage {
            base: Base::new(&ctx, "login.title"),
            error: Some(message),
            username: form.username.clone(),
            next: next.clone(),
            demo: demo_lines(&ctx, demo.as_deref().map(|d| d.as_ref())),
        };
        Ok((status, render(&page)?).into_response())
    };
    let directories = state.directories.get();
    if directories.is_empty() {
        return refuse(ctx.lang.text("login.no_directory"), StatusCode::SERVICE_UNAVAILABLE);
    }
    let user = match crate::directory::login(&directories, &form.username, &Secret::new(form.password.clone())).await {
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
    open_session(
        &state,
        &ctx,
        person.id,
        serde_json::json!({ "directory": user.directory, "account": user.sam_account_name }),
        &next,
    )
    .await
}

/// Opens a session for `person_id` and sends the browser on to `next`.
async fn open_session(
    state: &WebState,
    ctx: &Ctx,
    person_id: Uuid,
    audit: serde_json::Value,
    next: &str,
) -> Result<Response> {
    let now = state.clock.now();
    let session = state.store.create_session(person_id, ctx.lang.code(), now).await?;
    state
        .store
        .record_audit(
            now,
            &person_id.to_string(),
            "session.login",
            "person",
            Some(&person_id.to_string()),
            audit,
        )
        .await?;
    tracing::info!(person.id = %person_id, "web: login");
    let secure = state.secure_cookies;
    let max_age = (session.expires_at - now).num_seconds().max(0);
    // The session cookie lasts as long as the browser unless the session
    // ends first; the server's expiry is what counts.
    let mut response = see_other(next);
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

#[derive(Debug, Deserialize)]
pub struct DemoLoginForm {
    person: Uuid,
    next: Option<String>,
}

/// Signs in as one of the demo's listed people. Only exists under `resa
/// demo`; anywhere else the route is not found.
pub async fn demo_login_submit(
    State(state): State<WebState>,
    ctx: Ctx,
    demo: Option<Extension<Arc<DemoLogin>>>,
    Form(form): Form<DemoLoginForm>,
) -> Result<Response> {
    let Some(Extension(demo)) = demo else {
        return Err(WebError::NotFound);
    };
    if !demo.accounts.iter().any(|a| a.person_id == form.person) {
        return Err(WebError::BadRequest(ctx.lang.text("login.demo_unknown").into()));
    }
    let next = local_path(form.next.as_deref());
    open_session(&state, &ctx, form.person, serde_json::json!({ "demo": true }), &next).await
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
