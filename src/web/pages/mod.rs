//! The HTML pages: one module per area, all rendered by askama templates
//! (checked at compile time, HTML-escaped by default: no template uses
//! `|safe`), with the shared frame in [`Base`].

pub mod admin;
pub mod approvals;
pub mod assets;
pub mod auth;
pub mod bookings;
pub mod circuits;
pub mod equipment;
pub mod export;
pub mod org_admin;
pub mod policy_form;
pub mod reports;
pub mod resource_import;
pub mod search;
pub mod templates_admin;
pub mod territory;
pub mod vehicles;

use super::error::{ErrorKind, ErrorPage, Result, WebError};
use super::i18n::{Lang, TEXTS};
use super::session::{Ctx, Role, User};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// What every page's frame needs: language, user, CSRF token, title.
#[derive(Debug, Clone)]
pub struct Base {
    pub lang: Lang,
    pub title: String,
    pub user: Option<User>,
    pub csrf: String,
    pub path: String,
    /// A confirmation shown at the top of the page (a text of the table).
    pub flash: Option<&'static str>,
}

impl Base {
    pub fn new(ctx: &Ctx, title_key: &str) -> Base {
        Base {
            lang: ctx.lang,
            title: ctx.lang.text(title_key).to_owned(),
            user: ctx.user.clone(),
            csrf: ctx.csrf.clone(),
            path: ctx.path.clone(),
            flash: None,
        }
    }

    /// Shows the text `key` as a confirmation, if it is one of the table's.
    pub fn with_flash(mut self, key: Option<&str>) -> Base {
        self.flash = key
            .and_then(|k| TEXTS.iter().find(|(t, _, _)| *t == k))
            .map(|_| self.lang.text(key.unwrap_or_default()));
        self
    }

    pub fn tr(&self, key: &str) -> &'static str {
        self.lang.text(key)
    }

    pub fn lang_code(&self) -> &'static str {
        self.lang.code()
    }

    /// The language the switch link leads to.
    pub fn other_lang(&self) -> &'static str {
        match self.lang {
            Lang::Fr => "en",
            Lang::En => "fr",
        }
    }

    pub fn is_manager(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role >= Role::Manager)
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role >= Role::Admin)
    }

    pub fn user_name(&self) -> &str {
        self.user.as_ref().map(|u| u.name.as_str()).unwrap_or_default()
    }

    pub fn role_text(&self) -> &'static str {
        match self.user.as_ref().map(|u| u.role) {
            Some(Role::Admin) => self.tr("role.admin"),
            Some(Role::Manager) => self.tr("role.manager"),
            _ => self.tr("role.agent"),
        }
    }

    /// `aria-current="page"` for the menu entry of this page.
    pub fn current(&self, prefix: &str) -> &'static str {
        let here = if prefix == "/" {
            self.path == "/"
        } else {
            self.path.starts_with(prefix)
        };
        if here { "page" } else { "false" }
    }
}

/// Renders a template into a response.
pub fn render(t: &impl Template) -> Result<Response> {
    Ok(Html(t.render()?).into_response())
}

/// A 303 to `to`: the answer to every successful POST.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, to.to_owned())]).into_response()
}

/// A time zone by name, Paris when unknown.
pub fn tz(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::Europe::Paris)
}

/// "mardi 1 décembre 2026 à 14 h" in the page's language.
pub fn instant(lang: Lang, zone: &str, t: DateTime<Utc>) -> String {
    crate::domain::reason::format_instant(lang.domain(), tz(zone), t)
}

/// A span of time, dated.
pub fn span(lang: Lang, zone: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    crate::domain::reason::span(lang.domain(), tz(zone), start, end, true)
}

/// The reason texts of a stored decision's `reasons`, in the page's language,
/// declined occurrences included.
pub fn reason_texts(lang: Lang, reasons: &serde_json::Value) -> Vec<String> {
    let field = lang.code();
    let mut out = Vec::new();
    for r in reasons.as_array().into_iter().flatten() {
        if let Some(text) = r.get(field).and_then(|v| v.as_str()) {
            out.push(text.to_owned());
        }
        for d in r
            .get("declined_occurrences")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let when = match (
                d.get("start")
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse::<DateTime<Utc>>().ok()),
                d.get("end")
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse::<DateTime<Utc>>().ok()),
            ) {
                (Some(s), Some(e)) => span(lang, "Europe/Paris", s, e),
                _ => String::new(),
            };
            let texts: Vec<&str> = d
                .get("reasons")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|x| x.get(field).and_then(|v| v.as_str()))
                .collect();
            out.push(format!("{when} : {}", texts.join(" ; ")));
        }
    }
    out
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    base: Base,
}

pub async fn home(ctx: Ctx) -> Result<Response> {
    ctx.require(Role::Agent)?;
    render(&HomePage {
        base: Base::new(&ctx, "home.title"),
    })
}

pub async fn not_found() -> WebError {
    WebError::NotFound
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    base: Base,
    message: &'static str,
    detail: Option<String>,
    reference: Option<String>,
    help: Option<&'static str>,
}

/// The French or the English text, by the page's language.
pub fn tr(lang: Lang, fr: &str, en: &str) -> String {
    match lang {
        Lang::Fr => fr.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// The error page of `page`, in the user's language; never any internal text.
pub fn error_page(ctx: &Ctx, status: StatusCode, page: &ErrorPage) -> Response {
    let key = match page.kind {
        ErrorKind::Forbidden => "error.forbidden",
        ErrorKind::Csrf => "error.csrf",
        ErrorKind::NotFound => "error.not_found",
        ErrorKind::BadRequest => "error.bad_request",
        ErrorKind::Internal => "error.internal",
    };
    let t = ErrorTemplate {
        base: Base::new(ctx, "error.title"),
        message: ctx.lang.text(key),
        detail: page.detail.clone(),
        reference: page.reference.clone(),
        help: page.reference.as_ref().map(|_| ctx.lang.text("error.internal_help")),
    };
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "web: the error page itself failed");
            (status, "Erreur / Error").into_response()
        }
    }
}
