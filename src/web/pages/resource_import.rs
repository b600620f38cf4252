//! Importing resources from a CSV file on the web site: the same import as
//! `resa resources import` (every bad line reported, nothing written while
//! one is wrong, a second run of the same file changing nothing).

use super::{Base, render, tr};
use crate::resources::{COLUMNS, ImportError, import_csv};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The largest file taken: a few thousand resources.
const MAX_FILE: usize = 2 << 20;

struct Texts {
    intro: String,
    file: String,
    submit: String,
    result: String,
    created: String,
    updated: String,
    unchanged: String,
    nothing_written: String,
    line: String,
    problem: String,
    back: String,
}

impl Texts {
    fn new(lang: Lang) -> Self {
        let t = |fr: &str, en: &str| tr(lang, fr, en);
        Texts {
            intro: match lang {
                Lang::Fr => format!(
                    "Un fichier CSV (séparateur virgule, UTF-8) avec une ligne d'en-tête et les colonnes {} ; des colonnes attr:CLÉ facultatives donnent les attributs définis par le type. Les ressources sont reconnues par leur boîte aux lettres : importer deux fois le même fichier ne change rien. Si une ligne est fausse, rien n'est importé.",
                    COLUMNS.join(", ")
                ),
                Lang::En => format!(
                    "A CSV file (comma separated, UTF-8) with a header line and the columns {}; optional attr:KEY columns give the attributes the type defines. Resources are matched by mailbox: importing the same file twice changes nothing. If any line is wrong, nothing is imported.",
                    COLUMNS.join(", ")
                ),
            },
            file: t("Fichier CSV", "CSV file"),
            submit: t("Importer", "Import"),
            result: t("Résultat de l'import", "Import result"),
            created: t("créées", "created"),
            updated: t("modifiées", "updated"),
            unchanged: t("inchangées", "unchanged"),
            nothing_written: t(
                "Des lignes sont fausses : rien n'a été importé. Corrigez le fichier et importez-le de nouveau.",
                "Some lines are wrong: nothing was imported. Fix the file and import it again.",
            ),
            line: t("Ligne", "Line"),
            problem: t("Problème", "Problem"),
            back: t("Retour aux ressources", "Back to the resources"),
        }
    }
}

struct Outcome {
    created: usize,
    updated: usize,
    unchanged: usize,
    /// (line, text in the page's language).
    errors: Vec<(u64, String)>,
}

#[derive(Template)]
#[template(path = "resource_import.html")]
struct ImportPage {
    base: Base,
    t: Texts,
    outcome: Option<Outcome>,
    error: Option<String>,
}

fn page(ctx: &Ctx, outcome: Option<Outcome>, error: Option<String>) -> ImportPage {
    ImportPage {
        base: Base::new(ctx, "resources.import"),
        t: Texts::new(ctx.lang),
        outcome,
        error,
    }
}

pub async fn form(ctx: Ctx) -> Result<Response> {
    ctx.require(Role::Admin)?;
    render(&page(&ctx, None, None))
}

/// The `file` part of the form, at most [`MAX_FILE`] bytes.
async fn read_file(multipart: &mut Multipart, lang: Lang) -> std::result::Result<Vec<u8>, String> {
    let unreadable = || tr(lang, "Le formulaire n'a pas pu être lu.", "The form could not be read.");
    while let Some(mut field) = multipart.next_field().await.map_err(|_| unreadable())? {
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|_| unreadable())? {
            if bytes.len() + chunk.len() > MAX_FILE {
                return Err(tr(
                    lang,
                    "Le fichier dépasse 2 Mo : découpez-le.",
                    "The file is over 2 MB: split it.",
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            break;
        }
        return Ok(bytes);
    }
    Err(tr(lang, "Choisissez un fichier CSV.", "Choose a CSV file."))
}

pub async fn import(State(state): State<WebState>, ctx: Ctx, mut multipart: Multipart) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let refused = |status: StatusCode, text: String| -> Result<Response> {
        Ok((status, render(&page(&ctx, None, Some(text)))?).into_response())
    };
    let bytes = match read_file(&mut multipart, lang).await {
        Ok(b) => b,
        Err(text) => return refused(StatusCode::UNPROCESSABLE_ENTITY, text),
    };
    let report = match import_csv(&state.store, bytes.as_slice(), &state.exchange_endpoints).await {
        Ok(r) => r,
        Err(ImportError::Csv(e)) => {
            return refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{} {e}", tr(lang, "Fichier CSV illisible :", "Unreadable CSV file:")),
            );
        }
        Err(ImportError::Store(e)) => return Err(WebError::Store(e)),
    };
    let failed = !report.errors.is_empty();
    state
        .store
        .record_audit(
            state.clock.now(),
            &user.person_id.to_string(),
            "resources.import",
            "resource",
            None,
            serde_json::json!({
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "errors": report.errors.len(),
            }),
        )
        .await?;
    let outcome = Outcome {
        created: report.created,
        updated: report.updated,
        unchanged: report.unchanged,
        errors: report
            .errors
            .into_iter()
            .map(|e| (e.line, if lang == Lang::En { e.en } else { e.fr }))
            .collect(),
    };
    let status = if failed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, render(&page(&ctx, Some(outcome), None))?).into_response())
}
