//! Admin pages of the catalogue's frame: organisations, sites (address, time
//! zone, weekly opening hours, local holidays) and resource types.
//!
//! Admins only, checked on every route. Forms are plain HTML: a refused form
//! comes back with everything typed in it, an error summary at the top whose
//! links lead to the fields, and each field's own message (RGAA). Every
//! change is audited by the store in the change's own transaction.
//!
//! A site's opening hours are the `opening_hours` field of the site's policy:
//! the rule engine reads policies at each decision, so the next request is
//! decided with the new hours, and the policy page shows them as set at the
//! site.

use super::{Base, render, see_other};
use crate::domain::policy::{TimeRange, WeeklyHours};
use crate::domain::{Policy, Scope};
use crate::store::StoreError;
use crate::store::admin::{Change, Deletion, SiteFields, TypeFields};
use crate::store::catalogue::Category;
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role, User};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, NaiveTime, Weekday};
use serde::Deserialize;
use uuid::Uuid;

/// (key, French, English): the texts of these pages.
const TEXTS: &[(&str, &str, &str)] = &[
    (
        "title.organisations",
        "Organisations et sites",
        "Organisations and sites",
    ),
    ("title.organisation", "Organisation", "Organisation"),
    ("title.new_site", "Nouveau site", "New site"),
    ("title.site", "Site", "Site"),
    ("title.types", "Types de ressources", "Resource types"),
    ("title.type", "Type de ressource", "Resource type"),
    ("name", "Nom", "Name"),
    ("slug", "Identifiant court", "Short identifier"),
    (
        "slug.help",
        "Lettres minuscules sans accent, chiffres et tirets ; utilisé par l'import CSV. Laissé vide, il est tiré du nom.",
        "Lower-case letters without accents, digits and hyphens; used by the CSV import. Left empty, it is made from the name.",
    ),
    (
        "slug.locked",
        "Identifiant déjà utilisé : il ne peut plus changer.",
        "Identifier in use: it can no longer change.",
    ),
    ("required", "obligatoire", "required"),
    ("sites", "Sites", "Sites"),
    ("resources", "Ressources", "Resources"),
    ("actions", "Actions", "Actions"),
    ("create", "Créer", "Create"),
    ("save", "Enregistrer", "Save"),
    ("delete", "Supprimer", "Delete"),
    ("edit", "Modifier", "Edit"),
    ("none", "Aucun pour l'instant.", "None yet."),
    ("new_organisation", "Nouvelle organisation", "New organisation"),
    ("new_site", "Ajouter un site", "Add a site"),
    ("new_type", "Nouveau type de ressource", "New resource type"),
    ("organisation", "Organisation", "Organisation"),
    ("address", "Adresse", "Address"),
    ("time_zone", "Fuseau horaire", "Time zone"),
    (
        "time_zone.help",
        "Nom IANA, par exemple Europe/Paris (La Réunion : Indian/Reunion).",
        "IANA name, for example Europe/Paris (Réunion: Indian/Reunion).",
    ),
    ("general", "Informations générales", "General information"),
    ("hours", "Heures d'ouverture", "Opening hours"),
    (
        "hours.help",
        "Une ou plusieurs plages par jour, au format HH:MM dans le fuseau du site ; 00:00 en fermeture veut dire minuit. Un jour sans plage est fermé. Sans aucune plage, le site suit les heures héritées de son organisation ou de la politique générale. Pour ajouter une plage de plus, enregistrez : une ligne vide apparaît.",
        "One or more ranges per day, as HH:MM in the site's time zone; 00:00 as closing time means midnight. A day without a range is closed. Without any range, the site follows the hours inherited from its organisation or the global policy. To add another range, save: an empty line appears.",
    ),
    (
        "hours.inherited",
        "Ce site n'a pas d'heures propres : il suit les heures héritées.",
        "This site has no hours of its own: it follows the inherited hours.",
    ),
    (
        "hours.own",
        "Ce site a ses propres heures d'ouverture.",
        "This site has its own opening hours.",
    ),
    ("hours.range", "Plage", "Range"),
    ("opens", "Ouverture", "Opens"),
    ("closes", "Fermeture", "Closes"),
    ("hours.save", "Enregistrer les heures", "Save the hours"),
    ("holidays", "Jours fériés locaux", "Local holidays"),
    (
        "holidays.help",
        "Les jours fériés nationaux sont connus de resa (la politique dit si les ressources ferment ces jours-là) ; ajoutez ici les fermetures propres au site (pont, fête locale) : toute demande sur ce jour, à l'heure du site, est refusée avec son libellé.",
        "French public holidays are known to resa (the policy says whether resources close on them); add here the site's own closing days (bridge day, local feast): any request on such a day, in the site's time, is declined with its label.",
    ),
    ("holidays.none", "Aucun jour férié local.", "No local holiday."),
    ("holiday.day", "Date", "Date"),
    ("holiday.name", "Libellé", "Label"),
    ("holiday.add", "Ajouter le jour férié", "Add the holiday"),
    ("danger", "Suppression", "Deletion"),
    (
        "attributes",
        "Attributs et équipements de ce type",
        "Attributes and equipment of this type",
    ),
    (
        "danger.org",
        "Possible seulement sans site. Sa politique, ses droits et ses jours fériés sont supprimés avec elle.",
        "Only without sites. Its policy, grants and holidays are deleted with it.",
    ),
    (
        "danger.site",
        "Possible seulement sans ressource. Sa politique, ses heures, ses droits, ses fermetures et ses jours fériés sont supprimés avec lui.",
        "Only without resources. Its policy, hours, grants, blackouts and holidays are deleted with it.",
    ),
    (
        "danger.type",
        "Possible seulement si aucune ressource n'est de ce type. Sa politique, ses droits et ses fermetures sont supprimés avec lui.",
        "Only when no resource is of this type. Its policy, grants and blackouts are deleted with it.",
    ),
    ("hours.inherited_now", "Heures héritées :", "Inherited hours:"),
    ("hours.closed", "fermé", "closed"),
    ("hours.all_day", "toute la journée", "all day"),
    (
        "hours.override",
        "Une politique de type de ressource ou de ressource peut encore remplacer les heures du site.",
        "A resource type's or a resource's policy can still replace the site's hours.",
    ),
    ("category", "Catégorie", "Category"),
    ("category.room", "Salle", "Room"),
    ("category.vehicle", "Véhicule", "Vehicle"),
    ("category.equipment", "Matériel", "Equipment"),
    ("name_fr", "Nom en français", "Name in French"),
    ("name_en", "Nom en anglais", "Name in English"),
    (
        "category.locked",
        "Des ressources sont de ce type : sa catégorie et son identifiant ne peuvent plus changer.",
        "Resources are of this type: its category and identifier can no longer change.",
    ),
    (
        "errors.title",
        "Le formulaire contient des erreurs :",
        "The form has errors:",
    ),
    (
        "err.name",
        "Indiquez un nom de 1 à 200 caractères.",
        "Give a name of 1 to 200 characters.",
    ),
    (
        "err.markup",
        "Les caractères < et > ne sont pas acceptés dans un nom.",
        "The characters < and > are not accepted in a name.",
    ),
    (
        "err.slug",
        "L'identifiant court ne peut contenir que des lettres minuscules sans accent, des chiffres et des tirets, et commence par une lettre ou un chiffre (63 caractères au plus).",
        "The short identifier may hold only lower-case letters without accents, digits and hyphens, and starts with a letter or digit (63 characters at most).",
    ),
    (
        "err.slug_taken",
        "Cet identifiant court est déjà pris.",
        "This short identifier is already taken.",
    ),
    (
        "err.slug_locked",
        "Cet identifiant court est déjà utilisé et ne peut plus changer.",
        "This short identifier is in use and can no longer change.",
    ),
    (
        "err.category_locked",
        "Des ressources sont de ce type : la catégorie et l'identifiant ne peuvent plus changer.",
        "Resources are of this type: the category and identifier can no longer change.",
    ),
    ("err.category", "Choisissez une catégorie.", "Choose a category."),
    (
        "err.organisation",
        "Choisissez une organisation.",
        "Choose an organisation.",
    ),
    (
        "err.address",
        "L'adresse fait au plus 500 caractères.",
        "The address holds at most 500 characters.",
    ),
    (
        "err.time_zone",
        "Fuseau horaire inconnu : indiquez un nom IANA comme Europe/Paris.",
        "Unknown time zone: give an IANA name such as Europe/Paris.",
    ),
    (
        "err.time",
        "Heure invalide : utilisez le format HH:MM.",
        "Invalid time: use the HH:MM format.",
    ),
    (
        "err.half",
        "Indiquez l'heure d'ouverture et l'heure de fermeture de la plage.",
        "Give both the opening and the closing time of the range.",
    ),
    (
        "err.order",
        "L'heure de fermeture doit venir après l'heure d'ouverture.",
        "The closing time must come after the opening time.",
    ),
    (
        "err.overlap",
        "Cette plage chevauche une autre plage du même jour.",
        "This range overlaps another range of the same day.",
    ),
    (
        "err.day",
        "Date invalide : utilisez le format AAAA-MM-JJ.",
        "Invalid date: use the YYYY-MM-DD format.",
    ),
    (
        "err.holiday_name",
        "Indiquez un libellé de 1 à 200 caractères, sans < ni >.",
        "Give a label of 1 to 200 characters, without < or >.",
    ),
    (
        "err.org_in_use",
        "Cette organisation a encore des sites : supprimez-les d'abord.",
        "This organisation still has sites: delete them first.",
    ),
    (
        "err.site_in_use",
        "Ce site a encore des ressources : déplacez-les ou supprimez-les d'abord.",
        "This site still has resources: move or delete them first.",
    ),
    (
        "err.type_in_use",
        "Des ressources sont encore de ce type : changez-les de type ou supprimez-les d'abord.",
        "Resources are still of this type: change their type or delete them first.",
    ),
    (
        "err.referenced",
        "Des données y font encore référence (annuaire, véhicules, réservations ou attributs) : suppression impossible.",
        "Other data still refers to it (directory, vehicles, bookings or attributes): it cannot be deleted.",
    ),
    ("count", "Nombre", "Count"),
    ("msg.created", "Créé.", "Created."),
    ("msg.saved", "Modifications enregistrées.", "Changes saved."),
    ("msg.deleted", "Supprimé.", "Deleted."),
    ("msg.hours", "Heures d'ouverture enregistrées.", "Opening hours saved."),
    ("msg.holiday_added", "Jour férié ajouté.", "Holiday added."),
    ("msg.holiday_removed", "Jour férié retiré.", "Holiday removed."),
    ("policy", "Politique de ce site", "This site's policy"),
    (
        "back.organisation",
        "Retour à l'organisation",
        "Back to the organisation",
    ),
];

const FLASHES: &[&str] = &[
    "msg.created",
    "msg.saved",
    "msg.deleted",
    "msg.hours",
    "msg.holiday_added",
    "msg.holiday_removed",
];

fn t(lang: Lang, key: &str) -> &'static str {
    match TEXTS.iter().find(|(k, _, _)| *k == key) {
        Some((_, fr, en)) => match lang {
            Lang::Fr => fr,
            Lang::En => en,
        },
        None => {
            tracing::warn!(i18n.key = key, "web: missing text");
            "?"
        }
    }
}

fn base(ctx: &Ctx, key: &str, flash: Option<&str>) -> Base {
    let mut b = Base::new(ctx, "home.title");
    b.title = t(ctx.lang, key).to_owned();
    b.flash = flash.filter(|k| FLASHES.contains(k)).map(|k| t(ctx.lang, k));
    b
}

#[derive(Debug, Default, Deserialize)]
pub struct MsgQuery {
    msg: Option<String>,
}

/// The messages of a refused form, each tied to the id of its field.
#[derive(Debug, Default)]
struct Errors(Vec<(String, &'static str)>);

impl Errors {
    fn add(&mut self, field: &str, message: &'static str) {
        self.0.push((field.to_owned(), message));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message of one field, for the template.
    fn of(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|(f, _)| f == field).map(|(_, m)| *m)
    }

    fn iter(&self) -> impl Iterator<Item = &(String, &'static str)> {
        self.0.iter()
    }
}

fn change<'a>(
    user: &User,
    at: chrono::DateTime<chrono::Utc>,
    action: &'a str,
    details: serde_json::Value,
) -> Change<'a> {
    Change {
        at,
        actor: user.person_id.to_string(),
        action,
        details,
    }
}

/// The slug made from a name: accents dropped, anything else a hyphen.
fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'œ' => {
                out.push('o');
                'e'
            }
            'æ' => {
                out.push('a');
                'e'
            }
            c if c.is_ascii_alphanumeric() => c,
            _ => '-',
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    let trimmed = out.trim_end_matches('-');
    trimmed
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

fn valid_slug(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks a name field; the trimmed name when it is acceptable.
fn check_name(errors: &mut Errors, field: &str, value: &str, empty_message: &'static str, lang: Lang) -> String {
    let name = value.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.add(field, t(lang, empty_message));
    } else if name.contains(['<', '>']) {
        errors.add(field, t(lang, "err.markup"));
    } else if name.chars().any(char::is_control) {
        errors.add(field, t(lang, empty_message));
    }
    name.to_owned()
}

/// Checks a slug field (empty: made from `name`); the slug to store.
fn check_slug(errors: &mut Errors, field: &str, value: &str, name: &str, lang: Lang) -> String {
    let slug = match value.trim() {
        "" => slugify(name),
        s => s.to_owned(),
    };
    if !valid_slug(&slug) {
        errors.add(field, t(lang, "err.slug"));
    }
    slug
}

fn in_use_message(lang: Lang, d: Deletion, key: &str) -> &'static str {
    match d {
        Deletion::InUse(0) => t(lang, "err.referenced"),
        _ => t(lang, key),
    }
}

fn category_name(lang: Lang, category: &str) -> &'static str {
    t(
        lang,
        match category {
            "room" => "category.room",
            "vehicle" => "category.vehicle",
            _ => "category.equipment",
        },
    )
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

// ---------------------------------------------------------------- organisations

struct OrgLine {
    id: Uuid,
    name: String,
    slug: String,
    sites: i64,
    resources: i64,
}

#[derive(Template)]
#[template(path = "org_list.html")]
struct OrganisationsPage {
    base: Base,
    lines: Vec<OrgLine>,
    errors: Errors,
    name: String,
    slug: String,
}

impl OrganisationsPage {
    fn t(&self, key: &str) -> &'static str {
        t(self.base.lang, key)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct OrganisationForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
}

async fn organisations_page(
    state: &WebState,
    ctx: &Ctx,
    form: &OrganisationForm,
    errors: Errors,
    flash: Option<&str>,
) -> Result<OrganisationsPage> {
    let lines = state
        .store
        .organisation_summaries()
        .await?
        .into_iter()
        .map(|o| OrgLine {
            id: o.id,
            name: o.name,
            slug: o.slug,
            sites: o.sites,
            resources: o.resources,
        })
        .collect();
    Ok(OrganisationsPage {
        base: base(ctx, "title.organisations", flash),
        lines,
        errors,
        name: form.name.clone(),
        slug: form.slug.clone(),
    })
}

pub async fn organisations(State(state): State<WebState>, ctx: Ctx, Query(q): Query<MsgQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let page = organisations_page(
        &state,
        &ctx,
        &OrganisationForm::default(),
        Errors::default(),
        q.msg.as_deref(),
    )
    .await?;
    render(&page)
}

fn refused(status: StatusCode, page: &impl Template) -> Result<Response> {
    Ok((status, render(page)?).into_response())
}

pub async fn create_organisation(
    State(state): State<WebState>,
    ctx: Ctx,
    Form(form): Form<OrganisationForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let mut errors = Errors::default();
    let name = check_name(&mut errors, "org_name", &form.name, "err.name", lang);
    let slug = check_slug(&mut errors, "org_slug", &form.slug, &name, lang);
    if !errors.is_empty() {
        let page = organisations_page(&state, &ctx, &form, errors, None).await?;
        return refused(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let details = serde_json::json!({ "slug": slug, "name": name });
    let c = change(user, state.clock.now(), "organisation.create", details);
    match state.store.admin_create_organisation(&slug, &name, &c).await {
        Ok(id) => Ok(see_other(&format!("/admin/organisations/{id}?msg=msg.created"))),
        Err(StoreError::Duplicate(_)) => {
            errors.add("org_slug", t(lang, "err.slug_taken"));
            let page = organisations_page(&state, &ctx, &form, errors, None).await?;
            refused(StatusCode::CONFLICT, &page)
        }
        Err(e) => Err(e.into()),
    }
}

struct SiteLine {
    id: Uuid,
    name: String,
    slug: String,
    time_zone: String,
    resources: i64,
}

#[derive(Template)]
#[template(path = "org_edit.html")]
struct OrganisationPage {
    base: Base,
    id: Uuid,
    errors: Errors,
    name: String,
    slug: String,
    slug_locked: bool,
    sites: Vec<SiteLine>,
    delete_error: Option<&'static str>,
}

impl OrganisationPage {
    fn t(&self, key: &str) -> &'static str {
        t(self.base.lang, key)
    }
}

async fn organisation_page(
    state: &WebState,
    ctx: &Ctx,
    id: Uuid,
    form: Option<&OrganisationForm>,
    errors: Errors,
    flash: Option<&str>,
) -> Result<OrganisationPage> {
    let Some(org) = state.store.organisation_summary(id).await? else {
        return Err(WebError::NotFound);
    };
    let sites = state
        .store
        .site_details(Some(id))
        .await?
        .into_iter()
        .map(|s| SiteLine {
            id: s.id,
            name: s.name,
            slug: s.slug,
            time_zone: s.time_zone,
            resources: s.resources,
        })
        .collect();
    let mut b = base(ctx, "title.organisation", flash);
    b.title = format!("{} « {} »", b.title, org.name);
    Ok(OrganisationPage {
        base: b,
        id,
        errors,
        name: form.map(|f| f.name.clone()).unwrap_or(org.name),
        slug: form.map(|f| f.slug.clone()).unwrap_or(org.slug),
        slug_locked: org.sites > 0,
        sites,
        delete_error: None,
    })
}

pub async fn organisation(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Query(q): Query<MsgQuery>,
) -> Result<Response> {
    ctx.require(Role::Admin)?;
    render(&organisation_page(&state, &ctx, id, None, Errors::default(), q.msg.as_deref()).await?)
}

pub async fn update_organisation(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<OrganisationForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let mut errors = Errors::default();
    let name = check_name(&mut errors, "org_name", &form.name, "err.name", lang);
    let slug = check_slug(&mut errors, "org_slug", &form.slug, &name, lang);
    if errors.is_empty() {
        let details = serde_json::json!({ "slug": slug, "name": name });
        let c = change(user, state.clock.now(), "organisation.update", details);
        match state.store.update_organisation(id, &slug, &name, &c).await {
            Ok(true) => return Ok(see_other(&format!("/admin/organisations/{id}?msg=msg.saved"))),
            Ok(false) => return Err(WebError::NotFound),
            Err(StoreError::Duplicate(_)) => errors.add("org_slug", t(lang, "err.slug_taken")),
            Err(StoreError::Invalid(_)) => errors.add("org_slug", t(lang, "err.slug_locked")),
            Err(e) => return Err(e.into()),
        }
    }
    let page = organisation_page(&state, &ctx, id, Some(&form), errors, None).await?;
    refused(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn delete_organisation(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let c = change(user, state.clock.now(), "organisation.delete", serde_json::json!({}));
    let Some(org) = state.store.organisation_summary(id).await? else {
        return Err(WebError::NotFound);
    };
    let c = Change {
        details: serde_json::json!({ "slug": org.slug, "name": org.name }),
        ..c
    };
    match state.store.delete_organisation(id, &c).await? {
        Deletion::Deleted => Ok(see_other("/admin/organisations?msg=msg.deleted")),
        Deletion::NotFound => Err(WebError::NotFound),
        d @ Deletion::InUse(_) => {
            let mut page = organisation_page(&state, &ctx, id, None, Errors::default(), None).await?;
            page.delete_error = Some(in_use_message(ctx.lang, d, "err.org_in_use"));
            refused(StatusCode::CONFLICT, &page)
        }
    }
}

// ---------------------------------------------------------------- sites

/// Zones offered in the time-zone field's list: metropolitan France first,
/// then the overseas departments and a few neighbours. Any IANA name is
/// accepted.
const COMMON_ZONES: &[&str] = &[
    "Europe/Paris",
    "America/Guadeloupe",
    "America/Martinique",
    "America/Cayenne",
    "Indian/Reunion",
    "Indian/Mayotte",
    "America/Miquelon",
    "Pacific/Noumea",
    "Pacific/Tahiti",
    "Europe/Brussels",
    "Europe/Luxembourg",
    "Europe/Zurich",
    "Europe/London",
    "UTC",
];

const WEEKDAYS: [(u8, Weekday, &str, &str); 7] = [
    (1, Weekday::Mon, "Lundi", "Monday"),
    (2, Weekday::Tue, "Mardi", "Tuesday"),
    (3, Weekday::Wed, "Mercredi", "Wednesday"),
    (4, Weekday::Thu, "Jeudi", "Thursday"),
    (5, Weekday::Fri, "Vendredi", "Friday"),
    (6, Weekday::Sat, "Samedi", "Saturday"),
    (7, Weekday::Sun, "Dimanche", "Sunday"),
];

/// At most this many ranges a day (the form shows one empty line more than
/// the ranges set, up to this).
const MAX_RANGES: usize = 6;

struct HourRow {
    /// `h_<weekday>_<n>`: the prefix of the row's two field ids.
    id: String,
    n: usize,
    opens: String,
    closes: String,
    opens_error: Option<&'static str>,
    closes_error: Option<&'static str>,
}

struct DayRows {
    name: String,
    rows: Vec<HourRow>,
}

struct HolidayLine {
    id: Uuid,
    day: String,
    name: String,
}

#[derive(Template)]
#[template(path = "site_edit.html")]
struct SitePage {
    base: Base,
    /// `None` for a new site.
    id: Option<Uuid>,
    organisation_id: Uuid,
    organisation_name: String,
    organisations: Vec<Choice>,
    errors: Errors,
    name: String,
    slug: String,
    address: String,
    time_zone: String,
    zones: &'static [&'static str],
    slug_locked: bool,
    own_hours: bool,
    /// The hours the site follows when it has none of its own, in words.
    inherited: String,
    days: Vec<DayRows>,
    holidays: Vec<HolidayLine>,
    holiday_day: String,
    holiday_name: String,
    delete_error: Option<&'static str>,
}

impl SitePage {
    fn t(&self, key: &str) -> &'static str {
        t(self.base.lang, key)
    }

    fn err(&self, field: &str) -> Option<&'static str> {
        self.errors.of(field)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SiteForm {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    time_zone: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct HolidayForm {
    #[serde(default)]
    day: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewSiteQuery {
    organisation: Option<Uuid>,
}

/// The ranges of a stored week, as the form's text.
fn hours_text(hours: Option<&WeeklyHours>) -> Vec<Vec<(String, String)>> {
    WEEKDAYS
        .iter()
        .map(|(_, d, _, _)| {
            hours
                .map(|h| h.day(*d))
                .unwrap_or_default()
                .iter()
                .map(|r| (r.start.format("%H:%M").to_string(), r.end.format("%H:%M").to_string()))
                .collect()
        })
        .collect()
}

/// The form's rows from the ranges typed or stored, with their errors.
fn day_rows(lang: Lang, typed: &[Vec<(String, String)>], errors: &Errors) -> Vec<DayRows> {
    WEEKDAYS
        .iter()
        .zip(typed)
        .map(|((n, _, fr, en), ranges)| {
            let shown = (ranges.len() + 1).clamp(2, MAX_RANGES).max(ranges.len());
            let rows = (0..shown)
                .map(|i| {
                    let (opens, closes) = ranges.get(i).cloned().unwrap_or_default();
                    let id = format!("h_{n}_{i}");
                    HourRow {
                        opens_error: errors.of(&format!("{id}_opens")),
                        closes_error: errors.of(&format!("{id}_closes")),
                        id,
                        n: i + 1,
                        opens,
                        closes,
                    }
                })
                .collect();
            DayRows {
                name: match lang {
                    Lang::Fr => (*fr).to_owned(),
                    Lang::En => (*en).to_owned(),
                },
                rows,
            }
        })
        .collect()
}

/// A time typed in the form: `HH:MM` (or `HH:MM:SS`, as some browsers send).
fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .ok()
}

/// The typed ranges of every weekday, in the order of the form's rows.
fn typed_hours(fields: &[(String, String)]) -> Vec<Vec<(String, String)>> {
    WEEKDAYS
        .iter()
        .map(|(n, _, _, _)| {
            let value = |name: String| {
                fields
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default()
            };
            let mut rows: Vec<(String, String)> = (0..MAX_RANGES)
                .map(|i| (value(format!("h_{n}_{i}_opens")), value(format!("h_{n}_{i}_closes"))))
                .collect();
            // Empty lines are dropped from the end only, so the rows keep
            // their ids and their errors point at what was typed.
            while rows.last().is_some_and(|(o, c)| o.is_empty() && c.is_empty()) {
                rows.pop();
            }
            rows
        })
        .collect()
}

/// Checks the typed week: each range complete and in order, no two ranges
/// of a day overlapping. `None` when no range at all is given (the site then
/// inherits its hours).
fn check_hours(lang: Lang, typed: &[Vec<(String, String)>], errors: &mut Errors) -> Option<WeeklyHours> {
    let mut week = WeeklyHours::default();
    let mut any = false;
    for ((n, day, _, _), ranges) in WEEKDAYS.iter().zip(typed) {
        let mut good: Vec<(usize, TimeRange)> = Vec::new();
        for (i, (opens, closes)) in ranges.iter().enumerate() {
            let id = format!("h_{n}_{i}");
            if opens.is_empty() && closes.is_empty() {
                continue;
            }
            any = true;
            if opens.is_empty() || closes.is_empty() {
                let field = if opens.is_empty() { "opens" } else { "closes" };
                errors.add(&format!("{id}_{field}"), t(lang, "err.half"));
                continue;
            }
            let (o, c) = (parse_time(opens), parse_time(closes));
            if o.is_none() {
                errors.add(&format!("{id}_opens"), t(lang, "err.time"));
            }
            if c.is_none() {
                errors.add(&format!("{id}_closes"), t(lang, "err.time"));
            }
            let (Some(start), Some(end)) = (o, c) else {
                continue;
            };
            let range = TimeRange { start, end };
            let (s, e) = range.seconds();
            if s >= e {
                errors.add(&format!("{id}_closes"), t(lang, "err.order"));
                continue;
            }
            good.push((i, range));
        }
        let mut sorted = good.clone();
        sorted.sort_by_key(|(_, r)| r.seconds());
        for pair in sorted.windows(2) {
            if pair[1].1.seconds().0 < pair[0].1.seconds().1 {
                errors.add(&format!("h_{n}_{}_opens", pair[1].0), t(lang, "err.overlap"));
            }
        }
        for (_, r) in good {
            push_range(&mut week, *day, r);
        }
    }
    any.then_some(week)
}

fn push_range(week: &mut WeeklyHours, day: Weekday, r: TimeRange) {
    let list = match day {
        Weekday::Mon => &mut week.monday,
        Weekday::Tue => &mut week.tuesday,
        Weekday::Wed => &mut week.wednesday,
        Weekday::Thu => &mut week.thursday,
        Weekday::Fri => &mut week.friday,
        Weekday::Sat => &mut week.saturday,
        Weekday::Sun => &mut week.sunday,
    };
    list.push(r);
    list.sort_by_key(TimeRange::seconds);
}

/// The opening hours set at the site itself, if any.
async fn own_hours(state: &WebState, site: Uuid) -> Result<Option<WeeklyHours>> {
    let Some(body) = state.store.policy_at(Scope::Site(site)).await? else {
        return Ok(None);
    };
    let policy: Policy = serde_json::from_value(body).map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(policy.opening_hours)
}

/// The hours a site without its own would follow: its organisation's, else
/// the global policy's, else the engine's default (always open).
async fn inherited_hours(state: &WebState, organisation: Uuid) -> Result<WeeklyHours> {
    for scope in [Scope::Organisation(organisation), Scope::Global] {
        if let Some(body) = state.store.policy_at(scope).await? {
            let policy: Policy = serde_json::from_value(body).map_err(|e| WebError::Internal(e.to_string()))?;
            if let Some(hours) = policy.opening_hours {
                return Ok(hours);
            }
        }
    }
    Ok(WeeklyHours::always())
}

/// "Lundi 08:00–12:00, 14:00–18:00 ; … ; Dimanche fermé".
fn week_text(lang: Lang, week: &WeeklyHours) -> String {
    WEEKDAYS
        .iter()
        .map(|(_, d, fr, en)| {
            let name = match lang {
                Lang::Fr => fr,
                Lang::En => en,
            };
            let ranges: Vec<String> = week
                .day(*d)
                .iter()
                .map(|r| {
                    if *r == TimeRange::ALL_DAY {
                        t(lang, "hours.all_day").to_owned()
                    } else {
                        format!("{}–{}", r.start.format("%H:%M"), r.end.format("%H:%M"))
                    }
                })
                .collect();
            if ranges.is_empty() {
                format!("{name} {}", t(lang, "hours.closed"))
            } else {
                format!("{name} {}", ranges.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(" ; ")
}

/// What a site page shows besides the fields of the main form.
struct SiteExtras {
    typed_hours: Option<Vec<Vec<(String, String)>>>,
    holiday: HolidayForm,
    flash: Option<String>,
}

async fn site_page(
    state: &WebState,
    ctx: &Ctx,
    id: Uuid,
    form: Option<&SiteForm>,
    errors: Errors,
    extras: SiteExtras,
) -> Result<SitePage> {
    let lang = ctx.lang;
    let Some(site) = state.store.site_detail(id).await? else {
        return Err(WebError::NotFound);
    };
    let stored = own_hours(state, id).await?;
    let own = stored.is_some();
    let inherited = if own {
        String::new()
    } else {
        week_text(lang, &inherited_hours(state, site.organisation_id).await?)
    };
    let typed = extras.typed_hours.unwrap_or_else(|| hours_text(stored.as_ref()));
    let holidays = state
        .store
        .site_holidays(id)
        .await?
        .into_iter()
        .map(|h| HolidayLine {
            id: h.id,
            day: h.day.format("%d/%m/%Y").to_string(),
            name: h.name,
        })
        .collect();
    let mut b = base(ctx, "title.site", extras.flash.as_deref());
    b.title = format!("{} « {} »", b.title, site.name);
    Ok(SitePage {
        base: b,
        id: Some(id),
        organisation_id: site.organisation_id,
        organisation_name: site.organisation_name,
        organisations: Vec::new(),
        name: form.map(|f| f.name.clone()).unwrap_or(site.name),
        slug: form.map(|f| f.slug.clone()).unwrap_or(site.slug),
        address: form
            .map(|f| f.address.clone())
            .unwrap_or(site.address.unwrap_or_default()),
        time_zone: form.map(|f| f.time_zone.clone()).unwrap_or(site.time_zone),
        zones: COMMON_ZONES,
        slug_locked: site.resources > 0,
        own_hours: own,
        inherited,
        days: day_rows(lang, &typed, &errors),
        holidays,
        holiday_day: extras.holiday.day,
        holiday_name: extras.holiday.name,
        errors,
        delete_error: None,
    })
}

fn no_extras(flash: Option<&str>) -> SiteExtras {
    SiteExtras {
        typed_hours: None,
        holiday: HolidayForm::default(),
        flash: flash.map(str::to_owned),
    }
}

async fn new_site_page(state: &WebState, ctx: &Ctx, form: &SiteForm, errors: Errors) -> Result<SitePage> {
    let orgs = state.store.list_organisations().await?;
    let selected = form.organisation.parse::<Uuid>().ok();
    let organisations = orgs
        .iter()
        .map(|o| Choice {
            value: o.id.to_string(),
            label: o.name.clone(),
            selected: Some(o.id) == selected,
        })
        .collect();
    let org = orgs.iter().find(|o| Some(o.id) == selected);
    Ok(SitePage {
        base: base(ctx, "title.new_site", None),
        id: None,
        organisation_id: org.map(|o| o.id).unwrap_or_default(),
        organisation_name: org.map(|o| o.name.clone()).unwrap_or_default(),
        organisations,
        name: form.name.clone(),
        slug: form.slug.clone(),
        address: form.address.clone(),
        time_zone: if form.time_zone.is_empty() {
            "Europe/Paris".into()
        } else {
            form.time_zone.clone()
        },
        zones: COMMON_ZONES,
        slug_locked: false,
        own_hours: false,
        inherited: String::new(),
        days: Vec::new(),
        holidays: Vec::new(),
        holiday_day: String::new(),
        holiday_name: String::new(),
        errors,
        delete_error: None,
    })
}

/// Sites are listed per organisation: the bare address leads there.
pub async fn sites_index(ctx: Ctx) -> Result<Response> {
    ctx.require(Role::Admin)?;
    Ok(see_other("/admin/organisations"))
}

pub async fn new_site(State(state): State<WebState>, ctx: Ctx, Query(q): Query<NewSiteQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let form = SiteForm {
        organisation: q.organisation.map(|o| o.to_string()).unwrap_or_default(),
        ..SiteForm::default()
    };
    render(&new_site_page(&state, &ctx, &form, Errors::default()).await?)
}

/// Checks the main site form; the fields to store when all are good.
fn check_site(lang: Lang, form: &SiteForm, errors: &mut Errors) -> (String, String, Option<String>, String) {
    let name = check_name(errors, "site_name", &form.name, "err.name", lang);
    let slug = check_slug(errors, "site_slug", &form.slug, &name, lang);
    let address = form.address.trim();
    if address.chars().count() > 500 || address.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        errors.add("site_address", t(lang, "err.address"));
    }
    let zone = form.time_zone.trim();
    if zone.parse::<chrono_tz::Tz>().is_err() {
        errors.add("site_time_zone", t(lang, "err.time_zone"));
    }
    let address = (!address.is_empty()).then(|| address.to_owned());
    (name, slug, address, zone.to_owned())
}

pub async fn create_site(State(state): State<WebState>, ctx: Ctx, Form(form): Form<SiteForm>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let mut errors = Errors::default();
    let organisation = form.organisation.parse::<Uuid>().ok();
    if organisation.is_none() {
        errors.add("site_organisation", t(lang, "err.organisation"));
    }
    let (name, slug, address, zone) = check_site(lang, &form, &mut errors);
    if let (Some(org), true) = (organisation, errors.is_empty()) {
        let fields = SiteFields {
            slug: &slug,
            name: &name,
            address: address.as_deref(),
            time_zone: &zone,
        };
        let details = serde_json::json!({ "organisation": org, "slug": slug, "name": name, "address": address, "time_zone": zone });
        let c = change(user, state.clock.now(), "site.create", details);
        match state.store.admin_create_site(org, &fields, &c).await {
            Ok(id) => return Ok(see_other(&format!("/admin/sites/{id}?msg=msg.created"))),
            Err(StoreError::Duplicate(_)) => errors.add("site_slug", t(lang, "err.slug_taken")),
            Err(StoreError::NotFound(_)) => errors.add("site_organisation", t(lang, "err.organisation")),
            Err(e) => return Err(e.into()),
        }
    }
    let page = new_site_page(&state, &ctx, &form, errors).await?;
    refused(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn site(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Query(q): Query<MsgQuery>,
) -> Result<Response> {
    ctx.require(Role::Admin)?;
    render(&site_page(&state, &ctx, id, None, Errors::default(), no_extras(q.msg.as_deref())).await?)
}

pub async fn update_site(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<SiteForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let mut errors = Errors::default();
    let (name, slug, address, zone) = check_site(lang, &form, &mut errors);
    if errors.is_empty() {
        let fields = SiteFields {
            slug: &slug,
            name: &name,
            address: address.as_deref(),
            time_zone: &zone,
        };
        let details = serde_json::json!({ "slug": slug, "name": name, "address": address, "time_zone": zone });
        let c = change(user, state.clock.now(), "site.update", details);
        match state.store.update_site(id, &fields, &c).await {
            Ok(true) => return Ok(see_other(&format!("/admin/sites/{id}?msg=msg.saved"))),
            Ok(false) => return Err(WebError::NotFound),
            Err(StoreError::Duplicate(_)) => errors.add("site_slug", t(lang, "err.slug_taken")),
            Err(StoreError::Invalid(_)) => errors.add("site_slug", t(lang, "err.slug_locked")),
            Err(e) => return Err(e.into()),
        }
    }
    let page = site_page(&state, &ctx, id, Some(&form), errors, no_extras(None)).await?;
    refused(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn save_hours(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let typed = typed_hours(&fields);
    let mut errors = Errors::default();
    let week = check_hours(ctx.lang, &typed, &mut errors);
    if errors.is_empty() {
        let details = serde_json::json!({ "opening_hours": week });
        let c = change(user, state.clock.now(), "site.opening_hours", details);
        if !state.store.set_site_opening_hours(id, week.as_ref(), &c).await? {
            return Err(WebError::NotFound);
        }
        return Ok(see_other(&format!("/admin/sites/{id}?msg=msg.hours#hours")));
    }
    let extras = SiteExtras {
        typed_hours: Some(typed),
        ..no_extras(None)
    };
    let page = site_page(&state, &ctx, id, None, errors, extras).await?;
    refused(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn add_holiday(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<HolidayForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let mut errors = Errors::default();
    let day = NaiveDate::parse_from_str(form.day.trim(), "%Y-%m-%d").ok();
    if day.is_none() {
        errors.add("holiday_day", t(lang, "err.day"));
    }
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains(['<', '>']) || name.chars().any(char::is_control)
    {
        errors.add("holiday_name", t(lang, "err.holiday_name"));
    }
    if let (Some(day), true) = (day, errors.is_empty()) {
        let details = serde_json::json!({ "day": day, "name": name });
        let c = change(user, state.clock.now(), "site.holiday_add", details);
        if state.store.add_site_holiday(id, day, name, &c).await?.is_none() {
            return Err(WebError::NotFound);
        }
        return Ok(see_other(&format!("/admin/sites/{id}?msg=msg.holiday_added#holidays")));
    }
    let extras = SiteExtras {
        holiday: form,
        ..no_extras(None)
    };
    let page = site_page(&state, &ctx, id, None, errors, extras).await?;
    refused(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn remove_holiday(
    State(state): State<WebState>,
    ctx: Ctx,
    Path((id, holiday)): Path<(Uuid, Uuid)>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let c = change(user, state.clock.now(), "site.holiday_remove", serde_json::json!({}));
    if !state.store.remove_site_holiday(id, holiday, &c).await? {
        return Err(WebError::NotFound);
    }
    Ok(see_other(&format!(
        "/admin/sites/{id}?msg=msg.holiday_removed#holidays"
    )))
}

pub async fn delete_site(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let Some(site) = state.store.site_detail(id).await? else {
        return Err(WebError::NotFound);
    };
    let details = serde_json::json!({ "organisation": site.organisation_id, "slug": site.slug, "name": site.name });
    let c = change(user, state.clock.now(), "site.delete", details);
    match state.store.delete_site(id, &c).await? {
        Deletion::Deleted => Ok(see_other(&format!(
            "/admin/organisations/{}?msg=msg.deleted",
            site.organisation_id
        ))),
        Deletion::NotFound => Err(WebError::NotFound),
        d @ Deletion::InUse(_) => {
            let mut page = site_page(&state, &ctx, id, None, Errors::default(), no_extras(None)).await?;
            page.delete_error = Some(in_use_message(ctx.lang, d, "err.site_in_use"));
            refused(StatusCode::CONFLICT, &page)
        }
    }
}

// ---------------------------------------------------------------- resource types

struct TypeLine {
    id: Uuid,
    slug: String,
    category: &'static str,
    name_fr: String,
    name_en: String,
    resources: i64,
}

#[derive(Template)]
#[template(path = "type_list.html")]
struct TypesPage {
    base: Base,
    lines: Vec<TypeLine>,
    errors: Errors,
    form: TypeForm,
    categories: Vec<Choice>,
}

impl TypesPage {
    fn t(&self, key: &str) -> &'static str {
        t(self.base.lang, key)
    }
}

#[derive(Template)]
#[template(path = "type_edit.html")]
struct TypePage {
    base: Base,
    id: Uuid,
    errors: Errors,
    form: TypeForm,
    categories: Vec<Choice>,
    locked: bool,
    delete_error: Option<&'static str>,
}

impl TypePage {
    fn t(&self, key: &str) -> &'static str {
        t(self.base.lang, key)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TypeForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    name_fr: String,
    #[serde(default)]
    name_en: String,
}

fn category_choices(lang: Lang, selected: &str) -> Vec<Choice> {
    ["room", "vehicle", "equipment"]
        .iter()
        .map(|c| Choice {
            value: (*c).to_owned(),
            label: category_name(lang, c).to_owned(),
            selected: *c == selected,
        })
        .collect()
}

async fn types_page(
    state: &WebState,
    ctx: &Ctx,
    form: TypeForm,
    errors: Errors,
    flash: Option<&str>,
) -> Result<TypesPage> {
    let lang = ctx.lang;
    let lines = state
        .store
        .type_summaries()
        .await?
        .into_iter()
        .map(|t| TypeLine {
            id: t.id,
            slug: t.slug,
            category: category_name(lang, &t.category),
            name_fr: t.name_fr,
            name_en: t.name_en,
            resources: t.resources,
        })
        .collect();
    Ok(TypesPage {
        base: base(ctx, "title.types", flash),
        lines,
        errors,
        categories: category_choices(lang, &form.category),
        form,
    })
}

pub async fn types(State(state): State<WebState>, ctx: Ctx, Query(q): Query<MsgQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let form = TypeForm {
        category: "room".into(),
        ..TypeForm::default()
    };
    render(&types_page(&state, &ctx, form, Errors::default(), q.msg.as_deref()).await?)
}

/// Checks a type form; the fields to store when all are good.
fn check_type(lang: Lang, form: &TypeForm, errors: &mut Errors) -> Option<(String, Category, String, String)> {
    let name_fr = check_name(errors, "type_name_fr", &form.name_fr, "err.name", lang);
    let name_en = check_name(errors, "type_name_en", &form.name_en, "err.name", lang);
    let slug = check_slug(errors, "type_slug", &form.slug, &name_fr, lang);
    let category = Category::parse(&form.category);
    if category.is_none() {
        errors.add("type_category", t(lang, "err.category"));
    }
    category
        .filter(|_| errors.is_empty())
        .map(|c| (slug, c, name_fr, name_en))
}

pub async fn create_type(State(state): State<WebState>, ctx: Ctx, Form(form): Form<TypeForm>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let mut errors = Errors::default();
    if let Some((slug, category, name_fr, name_en)) = check_type(lang, &form, &mut errors) {
        let fields = TypeFields {
            slug: &slug,
            category,
            name_fr: &name_fr,
            name_en: &name_en,
        };
        let details =
            serde_json::json!({ "slug": slug, "category": category.as_str(), "name_fr": name_fr, "name_en": name_en });
        let c = change(user, state.clock.now(), "resource_type.create", details);
        match state.store.admin_create_type(&fields, &c).await {
            Ok(_) => return Ok(see_other("/admin/types?msg=msg.created")),
            Err(StoreError::Duplicate(_)) => errors.add("type_slug", t(lang, "err.slug_taken")),
            Err(e) => return Err(e.into()),
        }
    }
    let page = types_page(&state, &ctx, form, errors, None).await?;
    refused(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

async fn type_page(state: &WebState, ctx: &Ctx, id: Uuid, form: Option<TypeForm>, errors: Errors) -> Result<TypePage> {
    let Some(row) = state.store.type_summary(id).await? else {
        return Err(WebError::NotFound);
    };
    let mut b = base(ctx, "title.type", None);
    b.title = format!("{} « {} »", b.title, row.name_fr);
    let form = form.unwrap_or(TypeForm {
        slug: row.slug,
        category: row.category,
        name_fr: row.name_fr,
        name_en: row.name_en,
    });
    Ok(TypePage {
        base: b,
        id,
        errors,
        categories: category_choices(ctx.lang, &form.category),
        form,
        locked: row.resources > 0,
        delete_error: None,
    })
}

pub async fn resource_type(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Query(q): Query<MsgQuery>,
) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let mut page = type_page(&state, &ctx, id, None, Errors::default()).await?;
    page.base.flash = q.msg.as_deref().filter(|k| FLASHES.contains(k)).map(|k| t(ctx.lang, k));
    render(&page)
}

pub async fn update_type(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(form): Form<TypeForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let mut errors = Errors::default();
    if let Some((slug, category, name_fr, name_en)) = check_type(lang, &form, &mut errors) {
        let fields = TypeFields {
            slug: &slug,
            category,
            name_fr: &name_fr,
            name_en: &name_en,
        };
        let details =
            serde_json::json!({ "slug": slug, "category": category.as_str(), "name_fr": name_fr, "name_en": name_en });
        let c = change(user, state.clock.now(), "resource_type.update", details);
        match state.store.update_type(id, &fields, &c).await {
            Ok(true) => return Ok(see_other(&format!("/admin/types/{id}?msg=msg.saved"))),
            Ok(false) => return Err(WebError::NotFound),
            Err(StoreError::Duplicate(_)) => errors.add("type_slug", t(lang, "err.slug_taken")),
            Err(StoreError::Invalid(_)) => errors.add("type_category", t(lang, "err.category_locked")),
            Err(e) => return Err(e.into()),
        }
    }
    let page = type_page(&state, &ctx, id, Some(form), errors).await?;
    refused(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn delete_type(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let Some(row) = state.store.type_summary(id).await? else {
        return Err(WebError::NotFound);
    };
    let details = serde_json::json!({ "slug": row.slug, "name_fr": row.name_fr });
    let c = change(user, state.clock.now(), "resource_type.delete", details);
    match state.store.delete_type(id, &c).await? {
        Deletion::Deleted => Ok(see_other("/admin/types?msg=msg.deleted")),
        Deletion::NotFound => Err(WebError::NotFound),
        d @ Deletion::InUse(_) => {
            let mut page = type_page(&state, &ctx, id, None, Errors::default()).await?;
            page.delete_error = Some(in_use_message(ctx.lang, d, "err.type_in_use"));
            refused(StatusCode::CONFLICT, &page)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_made_from_french_names() {
        assert_eq!(slugify("Hôtel de ville — Saint-Denis"), "hotel-de-ville-saint-denis");
        assert_eq!(slugify("  Cœur  "), "coeur");
        assert_eq!(slugify("<script>"), "script");
        assert_eq!(slugify("!!!"), "");
        assert!(valid_slug("mairie-2"));
        assert!(!valid_slug("-mairie"));
        assert!(!valid_slug("Mairie"));
        assert!(!valid_slug(""));
    }

    fn week(monday: &[(&str, &str)]) -> Vec<Vec<(String, String)>> {
        let mut typed = vec![Vec::new(); 7];
        typed[0] = monday.iter().map(|(o, c)| ((*o).to_owned(), (*c).to_owned())).collect();
        typed
    }

    fn check(monday: &[(&str, &str)]) -> (Option<WeeklyHours>, Vec<(String, &'static str)>) {
        let mut errors = Errors::default();
        let hours = check_hours(Lang::Fr, &week(monday), &mut errors);
        (hours, errors.0)
    }

    #[test]
    fn opening_hours_are_checked_range_by_range() {
        let (hours, errors) = check(&[("08:00", "12:00"), ("14:00", "18:00")]);
        assert!(errors.is_empty(), "{errors:?}");
        let hours = hours.expect("own hours");
        assert_eq!(hours.monday.len(), 2);
        assert!(hours.tuesday.is_empty());

        // Back to back is allowed; midnight closes the day.
        let (_, errors) = check(&[("08:00", "12:00"), ("12:00", "00:00")]);
        assert!(errors.is_empty(), "{errors:?}");

        let (_, errors) = check(&[("18:00", "08:00")]);
        assert_eq!(errors, vec![("h_1_0_closes".to_owned(), t(Lang::Fr, "err.order"))]);

        let (_, errors) = check(&[("08:00", "12:00"), ("11:00", "14:00")]);
        assert_eq!(errors, vec![("h_1_1_opens".to_owned(), t(Lang::Fr, "err.overlap"))]);

        let (_, errors) = check(&[("08:00", "")]);
        assert_eq!(errors, vec![("h_1_0_closes".to_owned(), t(Lang::Fr, "err.half"))]);

        let (_, errors) = check(&[("8h", "12:00")]);
        assert_eq!(errors, vec![("h_1_0_opens".to_owned(), t(Lang::Fr, "err.time"))]);

        // Nothing typed: the site inherits its hours.
        let (hours, errors) = check(&[]);
        assert!(hours.is_none() && errors.is_empty());
    }

    /// Every `t("key")` of these pages' templates names a text of the table.
    #[test]
    fn every_template_key_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut missing = Vec::new();
        for name in [
            "org_list.html",
            "org_edit.html",
            "org_errors.html",
            "site_edit.html",
            "type_list.html",
            "type_edit.html",
            "type_fields.html",
        ] {
            let text = std::fs::read_to_string(root.join(name)).unwrap_or_default();
            assert!(!text.is_empty(), "{name} is missing");
            for part in text.split("t(\"").skip(1) {
                let key = part.split('"').next().unwrap_or_default();
                if !TEXTS.iter().any(|(k, _, _)| *k == key) {
                    missing.push(format!("{name}: {key}"));
                }
            }
        }
        assert!(missing.is_empty(), "missing texts: {missing:?}");
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<&str> = TEXTS.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len());
    }
}
