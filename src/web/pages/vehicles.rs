//! The vehicle and loan pages, sized for a phone: "Mes véhicules et prêts"
//! (check-in, pickup, return), the trip-details form linked from an
//! acceptance, and for managers the alerts, the fleet's data, drivers'
//! licences and the vehicle report figures.
//!
//! Rights are checked here on every route: the organiser of a booking, or a
//! manager of its resource, may act on it.

use super::{Base, instant, render, see_other, span};
use crate::domain::vehicles::{DriverLicence, Energy, LicenceClass};
use crate::store::checkin::{Cleanliness, Loan, MAX_PHOTO_BYTES, MAX_PHOTOS, Photo, ReturnReport};
use crate::store::vehicles::{LicenceSource, TripDetails, VehicleData};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role, User};
use askama::Template;
use axum::extract::{Form, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use uuid::Uuid;

/// (key, French, English): the texts of these pages.
const TEXTS: &[(&str, &str, &str)] = &[
    ("title.list", "Mes véhicules et prêts", "My vehicles and loans"),
    ("title.trip", "Détails du trajet", "Trip details"),
    ("title.loan", "Départ et retour", "Pickup and return"),
    ("title.fleet", "Flotte et permis", "Fleet and licences"),
    ("title.reports", "Rapports véhicules", "Vehicle reports"),
    ("title.damage", "Historique des dommages", "Damage history"),
    (
        "list.empty",
        "Aucune réservation de véhicule ou de matériel en cours.",
        "No vehicle or equipment booking under way.",
    ),
    ("list.when", "Quand", "When"),
    ("list.what", "Quoi", "What"),
    ("list.state", "État", "State"),
    ("list.open", "Ouvrir", "Open"),
    ("list.trip", "Trajet", "Trip"),
    ("state.booked", "Réservé", "Booked"),
    ("state.checked_in", "Présence confirmée", "Checked in"),
    ("state.out", "Emprunté", "Taken"),
    ("state.returned", "Rendu", "Returned"),
    ("state.released", "Libéré faute de présence", "Released (no check-in)"),
    ("action.check_in", "Je suis là", "I am here"),
    ("action.pickup", "Enregistrer le départ", "Record the pickup"),
    ("action.return", "Enregistrer le retour", "Record the return"),
    ("action.save", "Enregistrer", "Save"),
    ("action.dismiss", "Marquer comme vu", "Mark as seen"),
    ("keys", "Clés", "Keys"),
    ("plate", "Immatriculation", "Plate"),
    ("odometer", "Compteur (km)", "Odometer (km)"),
    (
        "energy_level",
        "Niveau de carburant ou de charge (%)",
        "Fuel or charge level (%)",
    ),
    ("cleanliness", "Propreté", "Cleanliness"),
    ("clean", "Propre", "Clean"),
    ("acceptable", "Correct", "Acceptable"),
    ("dirty", "Sale", "Dirty"),
    ("notes", "État, remarques", "Condition, notes"),
    ("damage", "Dommages constatés", "Damage found"),
    ("destination", "Destination", "Destination"),
    ("distance", "Distance prévue (km)", "Declared distance (km)"),
    ("passengers", "Passagers", "Passengers"),
    ("saved", "Enregistré.", "Saved."),
    ("checked_in", "Présence enregistrée.", "Check-in recorded."),
    (
        "not_open",
        "Cette réservation n'est pas ouverte à cette action maintenant.",
        "This booking is not open to this action now.",
    ),
    (
        "invalid",
        "Valeurs invalides : vérifiez les nombres saisis.",
        "Invalid values: check the numbers entered.",
    ),
    (
        "trip_required",
        "Renseignez d'abord les détails du trajet (destination et distance).",
        "Give the trip details first (destination and distance).",
    ),
    (
        "odometer_below",
        "Le compteur au retour est inférieur à celui du départ.",
        "The odometer at return is below the one at pickup.",
    ),
    (
        "photo_too_large",
        "Une photo dépasse 8 Mo : choisissez-en une plus petite. Rien n'a été enregistré ; vos saisies sont conservées ci-dessous, choisissez à nouveau les photos.",
        "A photo is over 8 MB: choose a smaller one. Nothing was saved; what you entered is kept below, choose the photos again.",
    ),
    (
        "photo_type",
        "Une photo n'est pas une image JPEG, PNG ou WebP. Rien n'a été enregistré ; vos saisies sont conservées ci-dessous, choisissez à nouveau les photos.",
        "A photo is not a JPEG, PNG or WebP image. Nothing was saved; what you entered is kept below, choose the photos again.",
    ),
    (
        "photo_many",
        "Cinq photos au plus par retour. Rien n'a été enregistré ; vos saisies sont conservées ci-dessous.",
        "Five photos at most per return. Nothing was saved; what you entered is kept below.",
    ),
    (
        "photos",
        "Photos des dommages (JPEG, PNG ou WebP, 8 Mo au plus chacune, cinq au plus)",
        "Damage photos (JPEG, PNG or WebP, 8 MB at most each, five at most)",
    ),
    ("photo_alt", "Photo des dommages", "Damage photo"),
    ("history", "Historique des dommages", "Damage history"),
    ("history.empty", "Aucun dommage signalé.", "No damage reported."),
    ("history.by", "Rendu par", "Returned by"),
    (
        "ask.title",
        "Un véhicule à ce site, à cette heure",
        "A car at this site at this time",
    ),
    ("ask.pool", "Site et groupe de véhicules", "Site and vehicle pool"),
    ("ask.date", "Date", "Date"),
    ("ask.start", "Départ", "Start"),
    ("ask.end", "Retour", "Back"),
    (
        "ask.hint",
        "resa choisit un véhicule libre : électrique d'abord si son autonomie couvre la distance, puis le moins utilisé.",
        "resa picks a free vehicle: electric first when its range covers the distance, then the least used.",
    ),
    ("ask.submit", "Demander un véhicule", "Ask for a vehicle"),
    ("ask.trip", "Déplacement", "Trip"),
    ("alerts", "Alertes", "Alerts"),
    ("no_alerts", "Aucune alerte.", "No alerts."),
    ("fleet.vehicle", "Véhicule", "Vehicle"),
    ("fleet.seats", "Places", "Seats"),
    ("fleet.energy", "Énergie", "Energy"),
    ("fleet.range", "Autonomie (km)", "Range (km)"),
    ("fleet.licence", "Permis requis", "Licence required"),
    ("fleet.charge", "Recharge complète (minutes)", "Full charge (minutes)"),
    ("fleet.none", "Aucun", "None"),
    ("fleet.no_vehicle", "Aucun véhicule.", "No vehicles."),
    ("licence.title", "Permis d'un conducteur", "A driver's licence"),
    (
        "licence.address",
        "Adresse électronique du conducteur",
        "Driver's e-mail address",
    ),
    (
        "licence.classes",
        "Catégories (séparées par des virgules, ex. B, BE)",
        "Classes (comma-separated, e.g. B, BE)",
    ),
    ("licence.expires", "Fin de validité", "Valid until"),
    (
        "licence.unknown",
        "Personne inconnue de l'annuaire.",
        "Nobody in the directory has this address.",
    ),
    ("report.period", "Trente derniers jours", "Last thirty days"),
    ("report.per_vehicle", "Distance par véhicule", "Distance per vehicle"),
    (
        "report.per_org",
        "Distance par organisation",
        "Distance per organisation",
    ),
    ("report.trips", "Trajets", "Trips"),
    ("report.km", "Kilomètres", "Kilometres"),
    (
        "report.no_shows",
        "Absences (réservations libérées)",
        "No-shows (released bookings)",
    ),
    ("report.damage", "Historique des dommages", "Damage history"),
    ("report.photos", "Photos", "Photos"),
    ("report.pools", "Utilisation par groupe de véhicules", "Use by pool"),
    ("report.members", "Membres", "Members"),
    ("report.hours", "Heures réservées", "Hours booked"),
    ("report.use", "Taux d'utilisation", "Utilisation"),
    ("report.empty", "Rien sur la période.", "Nothing over the period."),
    ("organiser", "Organisateur", "Organiser"),
    ("manage", "Gestion", "Management"),
];

fn t(lang: Lang, key: &str) -> &'static str {
    match TEXTS.iter().find(|(k, _, _)| *k == key) {
        Some((_, fr, en)) => match lang {
            Lang::Fr => fr,
            Lang::En => en,
        },
        None => "?",
    }
}

fn base(ctx: &Ctx, key: &str, flash: Option<&str>) -> Base {
    let mut b = Base::new(ctx, "home.title");
    b.title = t(ctx.lang, key).to_owned();
    b.flash = flash
        .filter(|k| ["saved", "checked_in", "not_open"].contains(k))
        .map(|k| t(ctx.lang, k));
    b
}

#[derive(Debug, Deserialize)]
pub struct FlashQuery {
    msg: Option<String>,
}

/// Whether `user` may act on a booking of `resource` organised by `organiser`.
async fn may_act(state: &WebState, user: &User, organiser: Option<Uuid>, resource: Uuid) -> Result<bool> {
    if organiser == Some(user.person_id) || user.role == Role::Admin {
        return Ok(true);
    }
    Ok(state
        .store
        .resource_row(resource)
        .await?
        .is_some_and(|r| user.manages(&r)))
}

async fn loan_for(state: &WebState, user: &User, occurrence: Uuid) -> Result<Loan> {
    let loan = state.store.loan(occurrence).await?.ok_or(WebError::NotFound)?;
    if !may_act(state, user, loan.organiser_person_id, loan.resource_id).await? {
        return Err(WebError::Forbidden);
    }
    Ok(loan)
}

struct LoanLine {
    occurrence: Uuid,
    booking: Uuid,
    what: String,
    when: String,
    state: &'static str,
    is_vehicle: bool,
    can_check_in: bool,
}

struct PoolChoice {
    id: Uuid,
    label: String,
}

struct AlertLine {
    id: Uuid,
    when: String,
    text: String,
}

#[derive(Template)]
#[template(path = "vehicles.html")]
struct ListPage {
    base: Base,
    lang: Lang,
    lines: Vec<LoanLine>,
    alerts: Vec<AlertLine>,
    pools: Vec<PoolChoice>,
    /// Tomorrow, as the form's default date.
    tomorrow: String,
}

impl ListPage {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}

fn loan_state(l: &Loan) -> &'static str {
    if l.status == "released" {
        "state.released"
    } else if l.returned_at.is_some() {
        "state.returned"
    } else if l.out_at.is_some() {
        "state.out"
    } else if l.checked_in_at.is_some() {
        "state.checked_in"
    } else {
        "state.booked"
    }
}

pub async fn list(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let lang = ctx.lang;
    let now = state.clock.now();
    let lines = state
        .store
        .loans_of(user.person_id, now)
        .await?
        .into_iter()
        .map(|l| LoanLine {
            occurrence: l.occurrence_id,
            booking: l.booking_id,
            what: match &l.plate {
                Some(p) => format!("{} ({p})", l.resource_name),
                None => l.resource_name.clone(),
            },
            when: span(lang, "Europe/Paris", l.start, l.end),
            state: t(lang, loan_state(&l)),
            is_vehicle: l.category == "vehicle",
            can_check_in: l.status == "accepted"
                && l.checked_in_at.is_none()
                && l.start - Duration::minutes(30) <= now
                && now < l.end,
        })
        .collect();
    let alerts = if user.role >= Role::Manager {
        state
            .store
            .open_alerts(50)
            .await?
            .into_iter()
            .filter(|a| a.recipient != "organiser" || a.recipient_address.is_none())
            .map(|a| AlertLine {
                id: a.id,
                when: instant(lang, "Europe/Paris", a.created_at),
                text: a.body(lang.domain()).to_owned(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let pools = state
        .store
        .vehicle_pools()
        .await?
        .into_iter()
        .map(|p| PoolChoice {
            id: p.id,
            label: format!("{} — {}", p.site, p.name),
        })
        .collect();
    let tomorrow = (now.with_timezone(&chrono_tz::Europe::Paris).date_naive() + Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    render(&ListPage {
        base: base(&ctx, "title.list", q.msg.as_deref()),
        lang,
        lines,
        alerts,
        pools,
        tomorrow,
    })
}

#[derive(Debug, Deserialize)]
pub struct CarForm {
    pool: Uuid,
    date: String,
    start: String,
    end: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    distance: String,
}

/// "A car at this site at this time": books the site's pool for the
/// organiser, so the decision picks the member (electric first when its
/// range covers the declared distance, which the subject states as the pool
/// choice reads it) through the site's booking action, which queues the
/// meeting for Exchange, keeps the trip details, and shows the decision
/// naming the car.
pub async fn ask_car(State(state): State<WebState>, ctx: Ctx, Form(form): Form<CarForm>) -> Result<Response> {
    use chrono::TimeZone;
    let user = ctx.require(Role::Agent)?;
    let lang = ctx.lang;
    let invalid = || WebError::BadRequest(t(lang, "invalid").into());
    let day = NaiveDate::parse_from_str(form.date.trim(), "%Y-%m-%d").map_err(|_| invalid())?;
    let at = |hm: &str| {
        chrono::NaiveTime::parse_from_str(hm.trim(), "%H:%M")
            .ok()
            .and_then(|time| {
                chrono_tz::Europe::Paris
                    .from_local_datetime(&day.and_time(time))
                    .single()
            })
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let (Some(start), Some(end)) = (at(&form.start), at(&form.end)) else {
        return Err(invalid());
    };
    let distance = number(&form.distance).map_err(|_| invalid())?;
    if end <= start || distance.is_some_and(|d| d > 5000) {
        return Err(invalid());
    }
    if !state.store.vehicle_pools().await?.iter().any(|p| p.id == form.pool) {
        return Err(WebError::NotFound);
    }
    let destination: String = form.destination.trim().chars().take(200).collect();
    let what = if destination.is_empty() {
        t(lang, "ask.trip").to_owned()
    } else {
        destination.clone()
    };
    let subject = match distance {
        Some(d) => format!("{what} – {d} km"),
        None => what,
    };
    let booked = crate::web::actions::book(
        &state,
        user,
        crate::web::actions::BookInput {
            resource: form.pool,
            start,
            end,
            recurrence: None,
            subject,
            attendees: 1,
        },
    )
    .await?;
    let booking_id = booked.booking_id;
    if booked.queued {
        state
            .store
            .set_trip_details(
                booking_id,
                &TripDetails {
                    destination: (!destination.is_empty()).then_some(destination),
                    declared_distance_km: distance,
                    passengers: None,
                },
                state.clock.now(),
            )
            .await?;
        // A trip outside the territory may have queued more for Exchange.
        state.outbox_queued();
    }
    tracing::info!(booking.id = %booking_id, decision = booked.outcome, "web: car asked for");
    Ok(see_other(&format!("/bookings/{booking_id}")))
}

pub async fn check_in(State(state): State<WebState>, ctx: Ctx, Path(occurrence): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    loan_for(&state, user, occurrence).await?;
    let ok = state.store.check_in(occurrence, state.clock.now()).await?;
    Ok(see_other(if ok {
        "/vehicules?msg=checked_in"
    } else {
        "/vehicules?msg=not_open"
    }))
}

pub async fn dismiss(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Response> {
    ctx.require(Role::Manager)?;
    state.store.dismiss_alert(id, state.clock.now()).await?;
    Ok(see_other("/vehicules?msg=saved"))
}

#[derive(Template)]
#[template(path = "loan.html")]
struct LoanPage {
    base: Base,
    lang: Lang,
    occurrence: Uuid,
    what: String,
    when: String,
    keys: Option<String>,
    is_vehicle: bool,
    /// "pickup", "return" or "done".
    step: &'static str,
    error: Option<&'static str>,
    /// What the return form holds (kept when it is refused).
    values: ReturnForm,
    /// The photos taken at the return, once done.
    photos: Vec<Uuid>,
}

impl LoanPage {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}

fn loan_page(ctx: &Ctx, l: &Loan, error: Option<&'static str>) -> LoanPage {
    loan_page_with(ctx, l, error, ReturnForm::default())
}

fn loan_page_with(ctx: &Ctx, l: &Loan, error: Option<&'static str>, values: ReturnForm) -> LoanPage {
    let lang = ctx.lang;
    LoanPage {
        base: base(ctx, "title.loan", None),
        lang,
        occurrence: l.occurrence_id,
        what: match &l.plate {
            Some(p) => format!("{} ({p})", l.resource_name),
            None => l.resource_name.clone(),
        },
        when: span(lang, "Europe/Paris", l.start, l.end),
        keys: l.key_location.clone(),
        is_vehicle: l.category == "vehicle",
        step: if l.status != "accepted" || l.returned_at.is_some() {
            "done"
        } else if l.out_at.is_some() {
            "return"
        } else {
            "pickup"
        },
        error,
        values,
        photos: Vec::new(),
    }
}

pub async fn loan(State(state): State<WebState>, ctx: Ctx, Path(occurrence): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let l = loan_for(&state, user, occurrence).await?;
    let mut page = loan_page(&ctx, &l, None);
    if let Some(checkout) = l.checkout_id.filter(|_| l.returned_at.is_some()) {
        page.photos = state.store.damage_photo_ids(checkout).await?;
    }
    render(&page)
}

/// An optional whole number from a form field ("" is none).
fn number(s: &str) -> std::result::Result<Option<u32>, ()> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u32>().map(Some).map_err(|_| ())
}

fn unprocessable(page: &LoanPage) -> Result<Response> {
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(page)?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PickupForm {
    #[serde(default)]
    odometer: String,
}

pub async fn pickup(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(occurrence): Path<Uuid>,
    Form(form): Form<PickupForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let l = loan_for(&state, user, occurrence).await?;
    let Ok(odometer) = number(&form.odometer) else {
        return unprocessable(&loan_page(&ctx, &l, Some(t(ctx.lang, "invalid"))));
    };
    match state
        .store
        .check_out(occurrence, Some(user.person_id), odometer, state.clock.now())
        .await
    {
        Ok(_) => Ok(see_other(&format!("/vehicules/prets/{occurrence}?msg=saved"))),
        Err(crate::store::StoreError::Invalid(why)) => {
            let key = if why == "trip_details_required" {
                "trip_required"
            } else {
                "not_open"
            };
            unprocessable(&loan_page(&ctx, &l, Some(t(ctx.lang, key))))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReturnForm {
    #[serde(default)]
    odometer: String,
    #[serde(default)]
    energy_level: String,
    #[serde(default)]
    cleanliness: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    damage: String,
}

/// Longest text kept from one field of the return form.
const MAX_FIELD_BYTES: usize = 16 * 1024;

/// The largest return form with photos: five photos of the largest size and
/// room for the text fields. A larger body is cut off and refused.
pub const MAX_RETURN_BODY: usize = MAX_PHOTOS * MAX_PHOTO_BYTES + 1024 * 1024;

/// Reads the return form sent with photos (`multipart/form-data`). Text
/// fields are kept even when a photo is refused, so the form can be shown
/// again as it was; a photo's type is read from its bytes.
async fn read_return_multipart(mut multipart: Multipart) -> (ReturnForm, Vec<Photo>, Option<&'static str>) {
    let mut form = ReturnForm::default();
    let mut photos = Vec::new();
    let mut error = None;
    let too_large = |e: &axum::extract::multipart::MultipartError| e.status() == StatusCode::PAYLOAD_TOO_LARGE;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                error.get_or_insert(if too_large(&e) { "photo_too_large" } else { "invalid" });
                break;
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let limit = if is_file { MAX_PHOTO_BYTES } else { MAX_FIELD_BYTES };
        let mut bytes: Vec<u8> = Vec::new();
        let mut over = false;
        let mut broken = false;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    // Past the limit the rest is read and dropped, so the
                    // fields after it still arrive.
                    if bytes.len() + chunk.len() > limit {
                        over = true;
                        bytes = Vec::new();
                    } else if !over {
                        bytes.extend_from_slice(&chunk);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error.get_or_insert(if too_large(&e) { "photo_too_large" } else { "invalid" });
                    broken = true;
                    break;
                }
            }
        }
        if broken {
            break;
        }
        if is_file {
            if name != "photos" {
                continue;
            }
            if over {
                error.get_or_insert("photo_too_large");
            } else if bytes.is_empty() {
                // A file input left empty.
            } else if photos.len() >= MAX_PHOTOS {
                error.get_or_insert("photo_many");
            } else {
                match Photo::sniffed(bytes) {
                    Ok(p) => photos.push(p),
                    Err("too_large") => {
                        error.get_or_insert("photo_too_large");
                    }
                    Err(_) => {
                        error.get_or_insert("photo_type");
                    }
                }
            }
            continue;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "odometer" => form.odometer = text,
            "energy_level" => form.energy_level = text,
            "cleanliness" => form.cleanliness = text,
            "notes" => form.notes = text,
            "damage" => form.damage = text,
            _ => {}
        }
    }
    (form, photos, error)
}

/// The return form: the page's form sends `multipart/form-data` (with its
/// photos); a plain urlencoded body (no photo) is read too.
pub async fn give_back(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(occurrence): Path<Uuid>,
    request: Request,
) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let l = loan_for(&state, user, occurrence).await?;
    let lang = ctx.lang;
    let multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let (form, photos) = if multipart {
        let parsed = Multipart::from_request(request, &state)
            .await
            .map_err(|_| WebError::BadRequest(t(lang, "invalid").into()))?;
        let (form, photos, error) = read_return_multipart(parsed).await;
        if let Some(key) = error {
            let status = if key == "photo_too_large" {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let page = loan_page_with(&ctx, &l, Some(t(lang, key)), form);
            tracing::info!(occurrence = %occurrence, error = key, "web: return form refused");
            return Ok((status, render(&page)?).into_response());
        }
        (form, photos)
    } else {
        let Form(form) = Form::<ReturnForm>::from_request(request, &state)
            .await
            .map_err(|_| WebError::BadRequest(t(lang, "invalid").into()))?;
        (form, Vec::new())
    };
    let (Ok(odometer), Ok(level)) = (number(&form.odometer), number(&form.energy_level)) else {
        return unprocessable(&loan_page_with(&ctx, &l, Some(t(lang, "invalid")), form));
    };
    if level.is_some_and(|v| v > 100) {
        return unprocessable(&loan_page_with(&ctx, &l, Some(t(lang, "invalid")), form));
    }
    let clip = |s: &str| -> Option<String> {
        let s: String = s.trim().chars().take(2000).collect();
        (!s.is_empty()).then_some(s)
    };
    let report = ReturnReport {
        odometer_km: odometer,
        energy_level_pct: level,
        cleanliness: Cleanliness::parse(&form.cleanliness),
        condition_notes: clip(&form.notes),
        damage: clip(&form.damage),
    };
    match state
        .store
        .return_item(occurrence, Some(user.person_id), &report, &photos, state.clock.now())
        .await
    {
        Ok(_) => Ok(see_other("/vehicules?msg=saved")),
        Err(crate::store::StoreError::Invalid(why)) => {
            let key = if why == "odometer_below_pickup" {
                "odometer_below"
            } else {
                "not_open"
            };
            unprocessable(&loan_page_with(&ctx, &l, Some(t(lang, key)), form))
        }
        Err(e) => Err(e.into()),
    }
}

/// A damage photo, to the organiser of the booking it was taken on and to
/// the resource's managers; served with the type read from its bytes.
pub async fn photo(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let stored = state.store.damage_photo_by_id(id).await?.ok_or(WebError::NotFound)?;
    if !may_act(&state, user, stored.organiser_person_id, stored.resource_id).await? {
        return Err(WebError::Forbidden);
    }
    let content_type = match crate::store::checkin::sniff_image(&stored.photo.bytes) {
        Some(t) => t,
        None => return Err(WebError::NotFound),
    };
    use axum::http::header;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
            (header::CONTENT_DISPOSITION, "inline"),
        ],
        stored.photo.bytes,
    )
        .into_response())
}

struct DamageLine {
    when: String,
    who: String,
    damage: String,
    notes: String,
    photos: Vec<Uuid>,
}

#[derive(Template)]
#[template(path = "vehicle_damage.html")]
struct DamagePage {
    base: Base,
    lang: Lang,
    vehicle: String,
    lines: Vec<DamageLine>,
}

impl DamagePage {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}

/// A vehicle's (or item's) damage history with its photos, for its managers.
pub async fn damage(State(state): State<WebState>, ctx: Ctx, Path(resource): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let row = state.store.resource_row(resource).await?.ok_or(WebError::NotFound)?;
    if !user.manages(&row) {
        return Err(WebError::Forbidden);
    }
    let lang = ctx.lang;
    let plate = state.store.vehicle(resource).await?.map(|v| v.plate);
    let lines = state
        .store
        .damage_of(resource, 200)
        .await?
        .into_iter()
        .map(|d| DamageLine {
            when: instant(lang, "Europe/Paris", d.returned_at),
            who: d.who.unwrap_or_default(),
            damage: d.damage.unwrap_or_default(),
            notes: d.condition_notes.unwrap_or_default(),
            photos: d.photo_ids,
        })
        .collect();
    render(&DamagePage {
        base: base(&ctx, "title.damage", None),
        lang,
        vehicle: match plate {
            Some(p) => format!("{} ({p})", row.name),
            None => row.name.clone(),
        },
        lines,
    })
}

#[derive(Template)]
#[template(path = "vehicle_trip.html")]
struct TripPage {
    base: Base,
    lang: Lang,
    booking: Uuid,
    vehicle: String,
    destination: String,
    distance: String,
    passengers: String,
    error: Option<&'static str>,
}

impl TripPage {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}

async fn trip_rights(state: &WebState, user: &User, booking: Uuid) -> Result<String> {
    let (organiser, resource, name) = state.store.trip_owner(booking).await?.ok_or(WebError::NotFound)?;
    if !may_act(state, user, organiser, resource).await? {
        return Err(WebError::Forbidden);
    }
    Ok(name)
}

pub async fn trip(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(booking): Path<Uuid>,
    Query(q): Query<FlashQuery>,
) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let vehicle = trip_rights(&state, user, booking).await?;
    let d = state.store.trip_details(booking).await?.unwrap_or_default();
    let show = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
    render(&TripPage {
        base: base(&ctx, "title.trip", q.msg.as_deref()),
        lang: ctx.lang,
        booking,
        vehicle,
        destination: d.destination.unwrap_or_default(),
        distance: show(d.declared_distance_km),
        passengers: show(d.passengers),
        error: None,
    })
}

#[derive(Debug, Deserialize)]
pub struct TripForm {
    #[serde(default)]
    destination: String,
    #[serde(default)]
    distance: String,
    #[serde(default)]
    passengers: String,
}

pub async fn save_trip(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(booking): Path<Uuid>,
    Form(form): Form<TripForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let vehicle = trip_rights(&state, user, booking).await?;
    let destination: String = form.destination.trim().chars().take(300).collect();
    match (number(&form.distance), number(&form.passengers)) {
        (Ok(distance), Ok(passengers)) if distance.is_none_or(|d| d <= 5000) && passengers.is_none_or(|p| p <= 100) => {
            let details = TripDetails {
                destination: (!destination.is_empty()).then_some(destination),
                declared_distance_km: distance,
                passengers,
            };
            state
                .store
                .set_trip_details(booking, &details, state.clock.now())
                .await?;
            Ok(see_other(&format!("/vehicules/trajets/{booking}?msg=saved")))
        }
        _ => {
            let page = TripPage {
                base: base(&ctx, "title.trip", None),
                lang: ctx.lang,
                booking,
                vehicle,
                destination: form.destination.clone(),
                distance: form.distance.clone(),
                passengers: form.passengers.clone(),
                error: Some(t(ctx.lang, "invalid")),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
    }
}

struct FleetLine {
    id: Uuid,
    name: String,
    site: String,
    plate: String,
    seats: u32,
    energy: &'static str,
    range: String,
    licence: String,
    keys: String,
    charge: String,
}

struct Choice {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "vehicle_fleet.html")]
struct FleetPage {
    base: Base,
    lang: Lang,
    lines: Vec<FleetLine>,
    energies: Vec<Choice>,
    classes: Vec<&'static str>,
    error: Option<&'static str>,
}

impl FleetPage {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}

async fn fleet_page(state: &WebState, ctx: &Ctx, user: &User, error: Option<&'static str>) -> Result<FleetPage> {
    let lang = ctx.lang;
    let mut lines = Vec::new();
    for v in state.store.vehicles().await? {
        let Some(row) = state.store.resource_row(v.data.resource_id).await? else {
            continue;
        };
        if !user.manages(&row) {
            continue;
        }
        let show = |x: Option<u32>| x.map(|x| x.to_string()).unwrap_or_default();
        lines.push(FleetLine {
            id: v.data.resource_id,
            name: v.name,
            site: v.site_name,
            plate: v.data.plate,
            seats: v.data.seats,
            energy: v.data.energy.as_str(),
            range: show(v.data.range_km),
            licence: v.data.licence_class.map(|c| c.as_str().to_owned()).unwrap_or_default(),
            keys: v.data.key_location.unwrap_or_default(),
            charge: show(v.data.full_charge_minutes),
        });
    }
    Ok(FleetPage {
        base: base(ctx, "title.fleet", None),
        lang,
        lines,
        energies: Energy::ALL
            .iter()
            .map(|e| Choice {
                value: e.as_str(),
                label: e.label(lang.domain()),
            })
            .collect(),
        classes: LicenceClass::ALL.iter().map(|c| c.as_str()).collect(),
        error,
    })
}

pub async fn fleet(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let mut page = fleet_page(&state, &ctx, user, None).await?;
    page.base.flash = q.msg.filter(|m| m == "saved").map(|_| t(ctx.lang, "saved"));
    render(&page)
}

#[derive(Debug, Deserialize)]
pub struct VehicleForm {
    plate: String,
    seats: String,
    energy: String,
    #[serde(default)]
    range: String,
    #[serde(default)]
    licence: String,
    #[serde(default)]
    keys: String,
    #[serde(default)]
    charge: String,
}

pub async fn save_vehicle(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(resource): Path<Uuid>,
    Form(form): Form<VehicleForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let row = state.store.resource_row(resource).await?.ok_or(WebError::NotFound)?;
    if !user.manages(&row) {
        return Err(WebError::Forbidden);
    }
    let existing = state.store.vehicle(resource).await?;
    let parsed = (
        number(&form.seats),
        Energy::parse(&form.energy),
        number(&form.range),
        number(&form.charge),
    );
    let licence = match form.licence.trim() {
        "" => Ok(None),
        s => LicenceClass::parse(s).map(Some).ok_or(()),
    };
    let (Ok(Some(seats)), Some(energy), Ok(range_km), Ok(full_charge_minutes), Ok(licence_class)) =
        (parsed.0, parsed.1, parsed.2, parsed.3, licence)
    else {
        let page = fleet_page(&state, &ctx, user, Some(t(ctx.lang, "invalid"))).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let plate = form.plate.trim();
    if plate.is_empty() || seats == 0 || range_km == Some(0) || full_charge_minutes == Some(0) {
        let page = fleet_page(&state, &ctx, user, Some(t(ctx.lang, "invalid"))).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let keys: String = form.keys.trim().chars().take(300).collect();
    state
        .store
        .set_vehicle(&VehicleData {
            resource_id: resource,
            plate: plate.to_owned(),
            seats,
            energy,
            range_km,
            licence_class,
            home_site_id: existing.as_ref().and_then(|v| v.home_site_id).or(Some(row.site_id)),
            key_location: (!keys.is_empty()).then_some(keys),
            odometer_km: existing.as_ref().and_then(|v| v.odometer_km),
            full_charge_minutes,
        })
        .await?;
    state
        .store
        .record_audit(
            state.clock.now(),
            &user.person_id.to_string(),
            "vehicle.update",
            "resource",
            Some(&resource.to_string()),
            serde_json::json!({ "plate": plate }),
        )
        .await?;
    Ok(see_other("/vehicules/flotte?msg=saved"))
}

#[derive(Debug, Deserialize)]
pub struct LicenceForm {
    address: String,
    #[serde(default)]
    classes: String,
    #[serde(default)]
    expires: String,
}

pub async fn save_licence(State(state): State<WebState>, ctx: Ctx, Form(form): Form<LicenceForm>) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let classes: std::result::Result<Vec<LicenceClass>, ()> = form
        .classes
        .split([',', ' ', ';'])
        .filter(|s| !s.trim().is_empty())
        .map(|s| LicenceClass::parse(s).ok_or(()))
        .collect();
    let expires = match form.expires.trim() {
        "" => Ok(None),
        s => NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| ()),
    };
    let (Ok(classes), Ok(expires_on)) = (classes, expires) else {
        let page = fleet_page(&state, &ctx, user, Some(t(ctx.lang, "invalid"))).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let Some((person, _)) = state.store.person_by_address(&form.address).await? else {
        let page = fleet_page(&state, &ctx, user, Some(t(ctx.lang, "licence.unknown"))).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let now = state.clock.now();
    state
        .store
        .set_driver_licence(
            person,
            &DriverLicence { classes, expires_on },
            LicenceSource::Manager,
            now,
        )
        .await?;
    state
        .store
        .record_audit(
            now,
            &user.person_id.to_string(),
            "driver_licence.update",
            "person",
            Some(&person.to_string()),
            serde_json::json!({ "classes": form.classes.trim(), "expires": form.expires.trim() }),
        )
        .await?;
    Ok(see_other("/vehicules/flotte?msg=saved"))
}

struct Row3 {
    a: String,
    b: String,
    c: String,
}

#[derive(Template)]
#[template(path = "vehicle_reports.html")]
struct ReportsPage {
    base: Base,
    lang: Lang,
    sections: Vec<Section>,
}

struct Section {
    title: &'static str,
    heads: [&'static str; 3],
    rows: Vec<Row3>,
}

impl ReportsPage {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}

pub async fn reports(State(state): State<WebState>, ctx: Ctx) -> Result<Response> {
    ctx.require(Role::Manager)?;
    let lang = ctx.lang;
    let to = state.clock.now();
    let from = to - Duration::days(30);
    let s = &state.store;
    let distance = |rows: Vec<crate::store::vehicles::DistanceRow>| {
        rows.into_iter()
            .map(|r| Row3 {
                a: r.name,
                b: r.trips.to_string(),
                c: r.distance_km.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let per_vehicle = distance(s.distance_per_vehicle(from, to).await?);
    let per_org = distance(s.distance_per_organisation(from, to).await?);
    let no_shows = s
        .no_shows(from, to)
        .await?
        .into_iter()
        .map(|r| Row3 {
            a: r.resource,
            b: r.organiser,
            c: instant(lang, "Europe/Paris", r.start),
        })
        .collect();
    let damage = s
        .damage_history(from, to)
        .await?
        .into_iter()
        .map(|r| Row3 {
            a: r.resource,
            b: r.damage,
            c: format!(
                "{} — {} : {}",
                instant(lang, "Europe/Paris", r.returned_at),
                t(lang, "report.photos"),
                r.photos
            ),
        })
        .collect();
    let pools = s
        .pool_utilisation(from, to)
        .await?
        .into_iter()
        .map(|r| Row3 {
            a: format!(
                "{} ({} {})",
                r.pool,
                r.members,
                t(lang, "report.members").to_lowercase()
            ),
            b: format!("{:.1}", r.booked_hours),
            c: format!("{:.1} %", r.utilisation_pct),
        })
        .collect();
    let section = |title, heads, rows| Section { title, heads, rows };
    render(&ReportsPage {
        base: base(&ctx, "title.reports", None),
        lang,
        sections: vec![
            section(
                "report.per_vehicle",
                ["fleet.vehicle", "report.trips", "report.km"],
                per_vehicle,
            ),
            section("report.per_org", ["organiser", "report.trips", "report.km"], per_org),
            section("report.no_shows", ["fleet.vehicle", "organiser", "list.when"], no_shows),
            section("report.damage", ["fleet.vehicle", "damage", "list.when"], damage),
            section("report.pools", ["fleet.vehicle", "report.hours", "report.use"], pools),
        ],
    })
}
