//! The admin's editor of message templates: every event in French and
//! English, with the variables it may use, a preview rendered with sample
//! data, and a way back to the built-in text.

use super::{Base, render, see_other};
use crate::domain::reason::Lang as MsgLang;
use crate::notify::{self, Event, Template};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role};
use askama::Template as Askama;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;

struct Line {
    event: &'static str,
    label: &'static str,
    language: &'static str,
    subject: String,
    customised: bool,
}

#[derive(Askama)]
#[template(path = "notification_templates.html")]
struct ListPage {
    base: Base,
    lines: Vec<Line>,
}

#[derive(Debug, Deserialize)]
pub struct FlashQuery {
    msg: Option<String>,
}

fn msg_lang(code: &str) -> Option<MsgLang> {
    match code {
        "fr" => Some(MsgLang::Fr),
        "en" => Some(MsgLang::En),
        _ => None,
    }
}

pub async fn list(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let lang = ctx.lang.domain();
    let lines = state
        .store
        .message_templates()
        .await?
        .into_iter()
        .map(|t| Line {
            event: t.event.as_str(),
            label: t.event.label(lang),
            language: crate::store::notify::lang_code(t.language),
            subject: t.template.subject,
            customised: t.customised,
        })
        .collect();
    render(&ListPage {
        base: Base::new(&ctx, "templates.title").with_flash(q.msg.as_deref()),
        lines,
    })
}

struct Variable {
    /// `{{name}}`, as written in a template.
    placeholder: String,
    meaning: &'static str,
}

#[derive(Askama)]
#[template(path = "notification_template_form.html")]
struct FormPage {
    base: Base,
    event: &'static str,
    label: &'static str,
    language: &'static str,
    subject: String,
    body: String,
    variables: Vec<Variable>,
    errors: Vec<String>,
    preview: Option<notify::Rendered>,
}

/// Sample data for the preview, in the template's language.
fn sample(lang: MsgLang) -> BTreeMap<&'static str, String> {
    let fr = lang == MsgLang::Fr;
    let pick = |f: &str, e: &str| if fr { f.to_owned() } else { e.to_owned() };
    BTreeMap::from([
        ("resource", "Salle Cézanne".to_owned()),
        ("mailbox", "salle.cezanne@plainecommune.fr".to_owned()),
        ("subject", pick("Comité de pilotage", "Steering committee")),
        ("organiser", "Alice Martin".to_owned()),
        (
            "when",
            pick("le 01/12/2026 de 14:00 à 15:00", "on 01/12/2026 from 14:00 to 15:00"),
        ),
        (
            "decision",
            pick(
                "Votre demande est en attente d'approbation :\n- Une approbation est demandée (règle du site Siège).",
                "Your request is awaiting approval:\n- Approval is required (rule of the site Siège).",
            ),
        ),
        (
            "circuit",
            pick("Validation des salles du siège", "Head office rooms approval"),
        ),
        ("step", "1/2".to_owned()),
        ("approvers", "Carol Petit".to_owned()),
        ("approver", "Carol Petit".to_owned()),
        ("comment", pick("Bon pour moi.", "Fine by me.")),
        ("link", "https://resa.example/approve/…".to_owned()),
        ("deadline", "02/12/2026 14:00".to_owned()),
        ("reference", notify::reference(uuid::Uuid::nil())),
        (
            "instructions",
            pick("clés à l'accueil du site.", "keys at the site's reception."),
        ),
    ])
}

fn form_page(
    ctx: &Ctx,
    event: Event,
    lang: MsgLang,
    template: &Template,
    errors: Vec<String>,
    preview: Option<notify::Rendered>,
) -> FormPage {
    let web_fr = ctx.lang == Lang::Fr;
    FormPage {
        base: Base::new(ctx, "templates.edit"),
        event: event.as_str(),
        label: event.label(ctx.lang.domain()),
        language: crate::store::notify::lang_code(lang),
        subject: template.subject.clone(),
        body: template.body.clone(),
        variables: notify::VARIABLES
            .iter()
            .map(|(name, fr, en)| Variable {
                placeholder: format!("{{{{{name}}}}}"),
                meaning: if web_fr { fr } else { en },
            })
            .collect(),
        errors,
        preview,
    }
}

fn parse(event: &str, lang: &str) -> Result<(Event, MsgLang)> {
    match (Event::parse(event), msg_lang(lang)) {
        (Some(e), Some(l)) => Ok((e, l)),
        _ => Err(WebError::NotFound),
    }
}

pub async fn edit(
    State(state): State<WebState>,
    ctx: Ctx,
    Path((event, lang)): Path<(String, String)>,
) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let (event, lang) = parse(&event, &lang)?;
    let template = state.store.message_template(event, lang).await?;
    let preview = notify::render(&template, &sample(lang));
    render(&form_page(&ctx, event, lang, &template, Vec::new(), Some(preview)))
}

#[derive(Debug, Deserialize)]
pub struct TemplateForm {
    subject: String,
    body: String,
    action: String,
}

pub async fn save(
    State(state): State<WebState>,
    ctx: Ctx,
    Path((event, lang)): Path<(String, String)>,
    Form(form): Form<TemplateForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let (event, lang) = parse(&event, &lang)?;
    let now = state.clock.now();
    if form.action == "reset" {
        state.store.reset_message_template(event, lang).await?;
        state
            .store
            .record_audit(
                now,
                &user.person_id.to_string(),
                "template.reset",
                "message_template",
                Some(&format!("{}:{}", event.as_str(), crate::store::notify::lang_code(lang))),
                serde_json::json!({}),
            )
            .await?;
        return Ok(see_other("/admin/templates?msg=templates.reset"));
    }
    let template = Template {
        subject: form.subject.trim().chars().take(300).collect(),
        body: form.body.replace("\r\n", "\n").chars().take(10_000).collect(),
    };
    let mut errors = Vec::new();
    if template.subject.is_empty() || template.body.trim().is_empty() {
        errors.push(ctx.lang.text("templates.empty").to_owned());
    }
    let unknown: Vec<String> = notify::unknown_placeholders(&template.subject)
        .into_iter()
        .chain(notify::unknown_placeholders(&template.body))
        .collect();
    if !unknown.is_empty() {
        errors.push(format!("{} {}", ctx.lang.text("templates.unknown"), unknown.join(", ")));
    }
    let preview = notify::render(&template, &sample(lang));
    if !errors.is_empty() {
        let page = form_page(&ctx, event, lang, &template, errors, Some(preview));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    if form.action != "save" {
        return render(&form_page(&ctx, event, lang, &template, Vec::new(), Some(preview)));
    }
    state
        .store
        .set_message_template(event, lang, &template, Some(user.person_id), now)
        .await?;
    state
        .store
        .record_audit(
            now,
            &user.person_id.to_string(),
            "template.save",
            "message_template",
            Some(&format!("{}:{}", event.as_str(), crate::store::notify::lang_code(lang))),
            serde_json::json!({ "subject": template.subject, "body": template.body }),
        )
        .await?;
    Ok(see_other("/admin/templates?msg=templates.saved"))
}
