//! Admin pages for typed attributes: the attributes a resource type
//! defines (a boolean one is a piece of equipment the search filters on),
//! and the values of one resource.

use super::bookings::FlashQuery;
use super::{Base, render, see_other, tr};
use crate::store::equipment::{AttrValue, AttributeDef, ValueType, parse_value};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

fn type_label(lang: Lang, t: ValueType) -> String {
    let (fr, en) = match t {
        ValueType::Boolean => ("Oui / non (équipement)", "Yes / no (equipment)"),
        ValueType::Text => ("Texte", "Text"),
        ValueType::Integer => ("Nombre entier", "Whole number"),
        ValueType::Decimal => ("Nombre décimal", "Decimal number"),
        ValueType::Date => ("Date", "Date"),
        ValueType::Choice => ("Liste de choix", "List of choices"),
    };
    tr(lang, fr, en)
}

/// The page's texts, in its language.
struct Texts {
    key: String,
    key_help: String,
    label_fr: String,
    label_en: String,
    value_type: String,
    choices: String,
    choices_help: String,
    required: String,
    add: String,
    remove: String,
    none: String,
    caption: String,
    save: String,
    yes: String,
    no: String,
    unset: String,
    back: String,
}

impl Texts {
    fn new(lang: Lang) -> Self {
        let t = |fr: &str, en: &str| tr(lang, fr, en);
        Texts {
            key: t("Clé", "Key"),
            key_help: t(
                "Minuscules sans accent, chiffres et _, par exemple visio ; c'est aussi le nom de la colonne attr:visio de l'import CSV.",
                "Lower case without accents, digits and _, for example visio; it is also the name of the attr:visio column of the CSV import.",
            ),
            label_fr: t("Libellé en français", "French label"),
            label_en: t("Libellé en anglais", "English label"),
            value_type: t("Type de valeur", "Kind of value"),
            choices: t("Choix", "Choices"),
            choices_help: t(
                "Pour une liste de choix seulement : les choix séparés par des virgules.",
                "For a list of choices only: the choices, separated by commas.",
            ),
            required: t("Obligatoire", "Required"),
            add: t("Ajouter l'attribut", "Add the attribute"),
            remove: t("Supprimer", "Remove"),
            none: t(
                "Ce type ne définit encore aucun attribut.",
                "This type defines no attribute yet.",
            ),
            caption: t("Attributs du type", "Attributes of the type"),
            save: t("Enregistrer", "Save"),
            yes: t("Oui", "Yes"),
            no: t("Non", "No"),
            unset: t("Non renseigné", "Not set"),
            back: t("Retour", "Back"),
        }
    }
}

struct DefLine {
    key: String,
    label: String,
    kind: String,
    choices: String,
    required: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct DefForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    label_fr: String,
    #[serde(default)]
    label_en: String,
    #[serde(default)]
    value_type: String,
    #[serde(default)]
    choices: String,
    #[serde(default)]
    required: Option<String>,
}

#[derive(Template)]
#[template(path = "attributes_type.html")]
struct TypePage {
    base: Base,
    type_id: Uuid,
    type_name: String,
    lines: Vec<DefLine>,
    kinds: Vec<(String, String)>,
    form: DefForm,
    error: Option<String>,
    t: Texts,
}

async fn type_page(state: &WebState, ctx: &Ctx, id: Uuid, form: DefForm, error: Option<String>) -> Result<TypePage> {
    let lang = ctx.lang;
    let Some(t) = state
        .store
        .list_resource_types()
        .await?
        .into_iter()
        .find(|t| t.id == id)
    else {
        return Err(WebError::NotFound);
    };
    let lines = state
        .store
        .attribute_definitions(id)
        .await?
        .into_iter()
        .map(|d| DefLine {
            label: d.label(lang == Lang::En).to_owned(),
            kind: type_label(lang, d.value_type),
            choices: d.choices.join(", "),
            required: d.required,
            key: d.key,
        })
        .collect();
    Ok(TypePage {
        base: Base::new(ctx, "attributes.title"),
        type_id: id,
        type_name: match lang {
            Lang::Fr => t.name_fr,
            Lang::En => t.name_en,
        },
        lines,
        kinds: ValueType::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), type_label(lang, *k)))
            .collect(),
        form,
        error,
        t: Texts::new(lang),
    })
}

pub async fn type_attributes(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Query(q): Query<FlashQuery>,
) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let mut page = type_page(&state, &ctx, id, DefForm::default(), None).await?;
    page.base = page.base.with_flash(q.msg.as_deref());
    render(&page)
}

async fn refuse(state: &WebState, ctx: &Ctx, id: Uuid, form: DefForm, text: String) -> Result<Response> {
    let page = type_page(state, ctx, id, form, Some(text)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

pub async fn add_type_attribute(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<DefForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let def = AttributeDef {
        resource_type_id: id,
        key: form.key.trim().to_owned(),
        value_type: ValueType::parse(form.value_type.trim()).unwrap_or(ValueType::Boolean),
        choices: form
            .choices
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        required: form.required.is_some(),
        label_fr: form.label_fr.trim().to_owned(),
        label_en: form.label_en.trim().to_owned(),
    };
    if let Err((fr, en)) = def.check() {
        return refuse(&state, &ctx, id, form, tr(lang, &fr, &en)).await;
    }
    if state.store.list_resource_types().await?.iter().all(|t| t.id != id) {
        return Err(WebError::NotFound);
    }
    if !state.store.add_attribute_definition(&def).await? {
        let text = tr(
            lang,
            "Ce type a déjà un attribut de cette clé.",
            "This type already has an attribute with this key.",
        );
        return refuse(&state, &ctx, id, form, text).await;
    }
    let now = state.clock.now();
    state
        .store
        .record_audit(
            now,
            &user.person_id.to_string(),
            "attribute.define",
            "resource_type",
            Some(&id.to_string()),
            serde_json::json!({ "key": def.key, "value_type": def.value_type.as_str(), "choices": def.choices }),
        )
        .await?;
    Ok(see_other(&format!("/admin/types/{id}/attributes?msg=attributes.saved")))
}

pub async fn remove_type_attribute(
    State(state): State<WebState>,
    ctx: Ctx,
    Path((id, key)): Path<(Uuid, String)>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    match state.store.remove_attribute_definition(id, &key).await? {
        Ok(false) => Err(WebError::NotFound),
        Err(used) => {
            let text = match lang {
                Lang::Fr => format!(
                    "« {key} » est renseigné sur {used} ressource(s) : videz-le d'abord sur chacune, rien n'a été supprimé."
                ),
                Lang::En => {
                    format!("\"{key}\" is set on {used} resource(s): clear it on each first; nothing was removed.")
                }
            };
            let page = type_page(&state, &ctx, id, DefForm::default(), Some(text)).await?;
            Ok((StatusCode::CONFLICT, render(&page)?).into_response())
        }
        Ok(true) => {
            state
                .store
                .record_audit(
                    state.clock.now(),
                    &user.person_id.to_string(),
                    "attribute.remove",
                    "resource_type",
                    Some(&id.to_string()),
                    serde_json::json!({ "key": key }),
                )
                .await?;
            Ok(see_other(&format!("/admin/types/{id}/attributes?msg=attributes.saved")))
        }
    }
}

/// One attribute's control on a resource's page.
struct ValueInput {
    key: String,
    label: String,
    /// "boolean", "choice", "date", "number" or "text".
    kind: &'static str,
    value: String,
    choices: Vec<String>,
    required: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "attributes_resource.html")]
struct ResourcePage {
    base: Base,
    resource_id: Uuid,
    resource_name: String,
    type_id: Uuid,
    inputs: Vec<ValueInput>,
    has_errors: bool,
    t: Texts,
}

async fn resource_page(
    state: &WebState,
    ctx: &Ctx,
    id: Uuid,
    typed: Option<&HashMap<String, String>>,
    errors: &HashMap<String, String>,
) -> Result<ResourcePage> {
    let lang = ctx.lang;
    let Some(r) = state.store.resource_row(id).await? else {
        return Err(WebError::NotFound);
    };
    let inputs = state
        .store
        .resource_attributes(id)
        .await?
        .into_iter()
        .map(|(d, v)| {
            let stored = match &v {
                Some(AttrValue::Boolean(b)) => if *b { "true" } else { "false" }.to_owned(),
                Some(v) => v.text(),
                None => String::new(),
            };
            ValueInput {
                label: d.label(lang == Lang::En).to_owned(),
                kind: match d.value_type {
                    ValueType::Boolean => "boolean",
                    ValueType::Choice => "choice",
                    ValueType::Date => "date",
                    ValueType::Integer | ValueType::Decimal => "number",
                    ValueType::Text => "text",
                },
                value: typed.and_then(|t| t.get(&d.key).cloned()).unwrap_or(stored),
                choices: d.choices,
                required: d.required,
                error: errors.get(&d.key).cloned(),
                key: d.key,
            }
        })
        .collect();
    Ok(ResourcePage {
        base: Base::new(ctx, "attributes.resource_title"),
        resource_id: id,
        resource_name: r.name,
        type_id: r.resource_type_id,
        inputs,
        has_errors: !errors.is_empty(),
        t: Texts::new(lang),
    })
}

pub async fn resource_attributes(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Query(q): Query<FlashQuery>,
) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let mut page = resource_page(&state, &ctx, id, None, &HashMap::new()).await?;
    page.base = page.base.with_flash(q.msg.as_deref());
    render(&page)
}

pub async fn save_resource_attributes(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let defs = state.store.resource_attributes(id).await?;
    if defs.is_empty() && state.store.resource_row(id).await?.is_none() {
        return Err(WebError::NotFound);
    }
    let mut values = Vec::new();
    let mut errors = HashMap::new();
    for (d, _) in &defs {
        let raw = form.get(&d.key).map(String::as_str).unwrap_or_default();
        // A boolean's select sends "true", "false" or "" (not set).
        match parse_value(d, raw) {
            Ok(v) => values.push((d.key.clone(), v)),
            Err((fr, en)) => {
                errors.insert(d.key.clone(), tr(lang, &fr, &en));
            }
        }
    }
    if !errors.is_empty() {
        let page = resource_page(&state, &ctx, id, Some(&form), &errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    state.store.set_resource_attributes(id, &values).await?;
    let details: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(k, v)| (k.clone(), v.as_ref().map(|v| v.text()).into()))
        .collect();
    state
        .store
        .record_audit(
            state.clock.now(),
            &user.person_id.to_string(),
            "attribute.set",
            "resource",
            Some(&id.to_string()),
            serde_json::Value::Object(details),
        )
        .await?;
    Ok(see_other(&format!(
        "/admin/resources/{id}/attributes?msg=attributes.saved"
    )))
}
