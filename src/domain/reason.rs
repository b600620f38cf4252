//! Reasons: why a request or an occurrence was declined or held.
//!
//! Each [`Reason`] has a stable code (stored in the decision log and used by
//! reports), typed parameters, the [`Scope`] of the rule, and renders to
//! French (the default) and English. Times are shown in the resource's time
//! zone with French conventions ("14 h 30", "mardi 3 mars 2026").

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::holidays::PublicHoliday;
use super::policy::{QuotaPeriod, Scope};

/// The language of rendered texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    Fr,
    En,
}

/// What kind of thing is booked, for the wording ("la salle", "le véhicule").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    #[default]
    Room,
    Vehicle,
    Equipment,
}

/// What is needed to render a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderContext {
    pub lang: Lang,
    pub tz: Tz,
    pub kind: ResourceKind,
}

impl Default for RenderContext {
    fn default() -> Self {
        Self {
            lang: Lang::Fr,
            tz: chrono_tz::Europe::Paris,
            kind: ResourceKind::Room,
        }
    }
}

/// What was wrong with a request that could not be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidRequest {
    EndNotAfterStart,
    Recurrence,
}

/// A reason with its typed parameters; the serde tag is the stable code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ReasonKind {
    InvalidRequest {
        problem: InvalidRequest,
    },
    /// Another booking occupies the slot. `organiser` is filled only when
    /// the policy allows showing it.
    Conflict {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        organiser: Option<String>,
    },
    SeriesConflicts {
        conflicts: u32,
        occurrences: u32,
        max_count: u32,
        max_percent: u8,
    },
    MinDuration {
        min_minutes: u32,
        actual_minutes: i64,
    },
    MaxDuration {
        max_minutes: u32,
        actual_minutes: i64,
    },
    /// `min_minutes` 0 means the occurrence is already over.
    MinNotice {
        min_minutes: u32,
        start: DateTime<Utc>,
    },
    BookingWindow {
        days: u32,
        start: DateTime<Utc>,
    },
    Horizon {
        days: u32,
    },
    OutsideOpeningHours {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    OutsideWorkHours {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    PublicHoliday {
        date: NaiveDate,
        holiday: PublicHoliday,
    },
    Blackout {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        reason: String,
    },
    Capacity {
        capacity: u32,
        attendees: u32,
    },
    RecurringNotAllowed,
    MaxOccurrences {
        max: u32,
        requested: u32,
    },
    QuotaHours {
        limit_hours: u32,
        period: QuotaPeriod,
        booked_minutes: i64,
        requested_minutes: i64,
    },
    QuotaCount {
        limit: u32,
        period: QuotaPeriod,
        booked: u32,
        requested: u32,
    },
    QuotaConcurrent {
        limit: u32,
        overlapping: u32,
    },
    ExternalNotAllowed,
    UnknownOrganiser,
    NoRight,
    Denied,
    NeedsApproval,
    /// A vehicle trip to a destination outside the territory, which a
    /// validation circuit asks to approve.
    OutsideTerritory {
        destination: String,
    },
    /// No driving licence recorded for the organiser.
    LicenceMissing {
        required: String,
    },
    /// The organiser's licence is not of the class the vehicle needs.
    LicenceClass {
        required: String,
        held: Vec<String>,
    },
    /// The organiser's licence ends before the booking does.
    LicenceExpired {
        expired_on: NaiveDate,
    },
    /// Every member of the pool is taken (or cannot make the trip).
    NoFreeMember,
}

/// One reason and the scope of the rule that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reason {
    #[serde(flatten)]
    pub kind: ReasonKind,
    pub scope: Scope,
}

impl Reason {
    pub fn new(kind: ReasonKind, scope: Scope) -> Self {
        Self { kind, scope }
    }

    /// The stable code, as stored in the decision log.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The text shown to the organiser.
    pub fn render(&self, ctx: &RenderContext) -> String {
        self.kind.render(ctx)
    }
}

impl ReasonKind {
    /// The stable code, as stored in the decision log.
    pub fn code(&self) -> &'static str {
        match self {
            ReasonKind::InvalidRequest { .. } => "invalid_request",
            ReasonKind::Conflict { .. } => "conflict",
            ReasonKind::SeriesConflicts { .. } => "series_conflicts",
            ReasonKind::MinDuration { .. } => "min_duration",
            ReasonKind::MaxDuration { .. } => "max_duration",
            ReasonKind::MinNotice { .. } => "min_notice",
            ReasonKind::BookingWindow { .. } => "booking_window",
            ReasonKind::Horizon { .. } => "horizon",
            ReasonKind::OutsideOpeningHours { .. } => "outside_opening_hours",
            ReasonKind::OutsideWorkHours { .. } => "outside_work_hours",
            ReasonKind::PublicHoliday { .. } => "public_holiday",
            ReasonKind::Blackout { .. } => "blackout",
            ReasonKind::Capacity { .. } => "capacity",
            ReasonKind::RecurringNotAllowed => "recurring_not_allowed",
            ReasonKind::MaxOccurrences { .. } => "max_occurrences",
            ReasonKind::QuotaHours { .. } => "quota_hours",
            ReasonKind::QuotaCount { .. } => "quota_count",
            ReasonKind::QuotaConcurrent { .. } => "quota_concurrent",
            ReasonKind::ExternalNotAllowed => "external_not_allowed",
            ReasonKind::UnknownOrganiser => "unknown_organiser",
            ReasonKind::NoRight => "no_right",
            ReasonKind::Denied => "denied",
            ReasonKind::NeedsApproval => "needs_approval",
            ReasonKind::OutsideTerritory { .. } => "outside_territory",
            ReasonKind::LicenceMissing { .. } => "licence_missing",
            ReasonKind::LicenceClass { .. } => "licence_class",
            ReasonKind::LicenceExpired { .. } => "licence_expired",
            ReasonKind::NoFreeMember => "no_free_member",
        }
    }

    /// The text shown to the organiser.
    pub fn render(&self, ctx: &RenderContext) -> String {
        match ctx.lang {
            Lang::Fr => self.render_fr(ctx),
            Lang::En => self.render_en(ctx),
        }
    }

    fn render_fr(&self, ctx: &RenderContext) -> String {
        let tz = ctx.tz;
        let (subject, this, booked) = match ctx.kind {
            ResourceKind::Room => ("La salle", "cette salle", "réservée"),
            ResourceKind::Vehicle => ("Le véhicule", "ce véhicule", "réservé"),
            ResourceKind::Equipment => ("Le matériel", "ce matériel", "réservé"),
        };
        let lang = Lang::Fr;
        match self {
            ReasonKind::InvalidRequest { problem } => match problem {
                InvalidRequest::EndNotAfterStart => "Demande invalide : la fin précède le début".into(),
                InvalidRequest::Recurrence => "Demande invalide : périodicité non prise en charge".into(),
            },
            ReasonKind::Conflict {
                start,
                end,
                organiser: Some(who),
            } => format!(
                "{subject} est {booked} {} par {who}",
                span(lang, tz, *start, *end, false)
            ),
            ReasonKind::Conflict {
                start,
                end,
                organiser: None,
            } => format!("{subject} est déjà {booked} {}", span(lang, tz, *start, *end, false)),
            ReasonKind::SeriesConflicts {
                conflicts,
                occurrences,
                max_count,
                max_percent,
            } => format!(
                "Trop d'occurrences en conflit : {conflicts} sur {occurrences} (maximum : {max_count} et {max_percent} %)"
            ),
            ReasonKind::MinDuration { min_minutes, .. } => {
                format!("Durée minimale : {}", format_minutes(lang, i64::from(*min_minutes)))
            }
            ReasonKind::MaxDuration { max_minutes, .. } => {
                format!("Durée maximale : {}", format_minutes(lang, i64::from(*max_minutes)))
            }
            ReasonKind::MinNotice { min_minutes: 0, .. } => "Le créneau est déjà passé".into(),
            ReasonKind::MinNotice { min_minutes, .. } => format!(
                "Réservation à faire au moins {} à l'avance",
                format_minutes(lang, i64::from(*min_minutes))
            ),
            ReasonKind::BookingWindow { days, .. } => {
                format!("Réservation possible au plus {days} jours à l'avance")
            }
            ReasonKind::Horizon { days } => {
                format!("Une réunion périodique ne peut pas dépasser {days} jours à partir d'aujourd'hui")
            }
            ReasonKind::OutsideOpeningHours { start, end } => {
                format!(
                    "En dehors des heures d'ouverture : {}",
                    span(lang, tz, *start, *end, true)
                )
            }
            ReasonKind::OutsideWorkHours { start, end } => {
                format!(
                    "En dehors des heures de travail : {}",
                    span(lang, tz, *start, *end, true)
                )
            }
            ReasonKind::PublicHoliday { date, holiday } => format!(
                "Fermé le jour férié du {} ({})",
                format_date(lang, *date),
                holiday.name_fr()
            ),
            ReasonKind::Blackout { start, end, reason } => {
                format!(
                    "{subject} est indisponible {} : {reason}",
                    span(lang, tz, *start, *end, true)
                )
            }
            ReasonKind::Capacity { capacity, attendees } => {
                format!("Capacité : {capacity} personnes ({attendees} invitées)")
            }
            ReasonKind::RecurringNotAllowed => {
                format!("Les réunions périodiques ne sont pas acceptées pour {this}")
            }
            ReasonKind::MaxOccurrences { max, requested } => {
                format!("Nombre maximal d'occurrences : {max} (demandées : {requested})")
            }
            ReasonKind::QuotaHours {
                limit_hours,
                period,
                booked_minutes,
                requested_minutes,
            } => format!(
                "Quota dépassé : {limit_hours} h par {} (déjà réservées : {}, demandées : {})",
                period_fr(*period),
                format_minutes(lang, *booked_minutes),
                format_minutes(lang, *requested_minutes)
            ),
            ReasonKind::QuotaCount {
                limit,
                period,
                booked,
                requested,
            } => format!(
                "Quota dépassé : {limit} réservations par {} (déjà réservées : {booked}, demandées : {requested})",
                period_fr(*period)
            ),
            ReasonKind::QuotaConcurrent { limit, .. } => {
                format!("Quota dépassé : au plus {limit} réservations simultanées")
            }
            ReasonKind::ExternalNotAllowed => {
                format!("Les organisateurs externes ne peuvent pas réserver {this}")
            }
            ReasonKind::UnknownOrganiser => "Organisateur inconnu de l'annuaire".into(),
            ReasonKind::NoRight => format!("Vous n'avez pas le droit de réserver {this}"),
            ReasonKind::Denied => format!("La réservation de {this} vous est interdite"),
            ReasonKind::NeedsApproval => "La demande doit être approuvée".into(),
            ReasonKind::OutsideTerritory { destination } => {
                format!("Le déplacement vers « {destination} » sort du territoire et doit être approuvé")
            }
            ReasonKind::LicenceMissing { required } => {
                format!("Aucun permis de conduire enregistré pour vous ; {this} demande le permis {required}")
            }
            ReasonKind::LicenceClass { required, held } => format!(
                "{subject} demande le permis {required} ; votre permis : {}",
                held.join(", ")
            ),
            ReasonKind::LicenceExpired { expired_on } => format!(
                "Votre permis de conduire a expiré le {}",
                format_date(lang, *expired_on)
            ),
            ReasonKind::NoFreeMember => "Aucun véhicule ou matériel du groupe n'est libre sur ce créneau".into(),
        }
    }

    fn render_en(&self, ctx: &RenderContext) -> String {
        let tz = ctx.tz;
        let (subject, this) = match ctx.kind {
            ResourceKind::Room => ("The room", "this room"),
            ResourceKind::Vehicle => ("The vehicle", "this vehicle"),
            ResourceKind::Equipment => ("The equipment", "this equipment"),
        };
        let lang = Lang::En;
        match self {
            ReasonKind::InvalidRequest { problem } => match problem {
                InvalidRequest::EndNotAfterStart => "Invalid request: the end is not after the start".into(),
                InvalidRequest::Recurrence => "Invalid request: unsupported recurrence".into(),
            },
            ReasonKind::Conflict {
                start,
                end,
                organiser: Some(who),
            } => format!("{subject} is booked {} by {who}", span(lang, tz, *start, *end, false)),
            ReasonKind::Conflict {
                start,
                end,
                organiser: None,
            } => format!("{subject} is already booked {}", span(lang, tz, *start, *end, false)),
            ReasonKind::SeriesConflicts {
                conflicts,
                occurrences,
                max_count,
                max_percent,
            } => format!(
                "Too many conflicting occurrences: {conflicts} of {occurrences} (maximum: {max_count} and {max_percent} %)"
            ),
            ReasonKind::MinDuration { min_minutes, .. } => {
                format!("Minimum duration: {}", format_minutes(lang, i64::from(*min_minutes)))
            }
            ReasonKind::MaxDuration { max_minutes, .. } => {
                format!("Maximum duration: {}", format_minutes(lang, i64::from(*max_minutes)))
            }
            ReasonKind::MinNotice { min_minutes: 0, .. } => "The slot is already in the past".into(),
            ReasonKind::MinNotice { min_minutes, .. } => format!(
                "Bookings must be made at least {} in advance",
                format_minutes(lang, i64::from(*min_minutes))
            ),
            ReasonKind::BookingWindow { days, .. } => {
                format!("Bookings can be made at most {days} days ahead")
            }
            ReasonKind::Horizon { days } => {
                format!("A recurring meeting cannot extend more than {days} days from today")
            }
            ReasonKind::OutsideOpeningHours { start, end } => {
                format!("Outside opening hours: {}", span(lang, tz, *start, *end, true))
            }
            ReasonKind::OutsideWorkHours { start, end } => {
                format!("Outside working hours: {}", span(lang, tz, *start, *end, true))
            }
            ReasonKind::PublicHoliday { date, holiday } => format!(
                "Closed on the public holiday of {} ({})",
                format_date(lang, *date),
                holiday.name_en()
            ),
            ReasonKind::Blackout { start, end, reason } => {
                format!(
                    "{subject} is unavailable {}: {reason}",
                    span(lang, tz, *start, *end, true)
                )
            }
            ReasonKind::Capacity { capacity, attendees } => {
                format!("Capacity: {capacity} people ({attendees} invited)")
            }
            ReasonKind::RecurringNotAllowed => {
                format!("Recurring meetings are not accepted for {this}")
            }
            ReasonKind::MaxOccurrences { max, requested } => {
                format!("Maximum number of occurrences: {max} (requested: {requested})")
            }
            ReasonKind::QuotaHours {
                limit_hours,
                period,
                booked_minutes,
                requested_minutes,
            } => format!(
                "Quota exceeded: {limit_hours} h per {} (already booked: {}, requested: {})",
                period_en(*period),
                format_minutes(lang, *booked_minutes),
                format_minutes(lang, *requested_minutes)
            ),
            ReasonKind::QuotaCount {
                limit,
                period,
                booked,
                requested,
            } => format!(
                "Quota exceeded: {limit} bookings per {} (already booked: {booked}, requested: {requested})",
                period_en(*period)
            ),
            ReasonKind::QuotaConcurrent { limit, .. } => {
                format!("Quota exceeded: at most {limit} simultaneous bookings")
            }
            ReasonKind::ExternalNotAllowed => format!("External organisers cannot book {this}"),
            ReasonKind::UnknownOrganiser => "Organiser not found in the directory".into(),
            ReasonKind::NoRight => format!("You are not allowed to book {this}"),
            ReasonKind::Denied => format!("Booking {this} is denied to you"),
            ReasonKind::NeedsApproval => "The request needs approval".into(),
            ReasonKind::OutsideTerritory { destination } => {
                format!("The trip to \"{destination}\" leaves the territory and needs approval")
            }
            ReasonKind::LicenceMissing { required } => {
                format!("No driving licence is recorded for you; {this} needs a {required} licence")
            }
            ReasonKind::LicenceClass { required, held } => format!(
                "{subject} needs a {required} licence; your licence: {}",
                held.join(", ")
            ),
            ReasonKind::LicenceExpired { expired_on } => {
                format!("Your driving licence expired on {}", format_date(lang, *expired_on))
            }
            ReasonKind::NoFreeMember => "No vehicle or item of the pool is free for this slot".into(),
        }
    }
}

fn period_fr(p: QuotaPeriod) -> &'static str {
    match p {
        QuotaPeriod::Day => "jour",
        QuotaPeriod::Week => "semaine",
        QuotaPeriod::Month => "mois",
    }
}

fn period_en(p: QuotaPeriod) -> &'static str {
    match p {
        QuotaPeriod::Day => "day",
        QuotaPeriod::Week => "week",
        QuotaPeriod::Month => "month",
    }
}

/// "14 h", "14 h 30" in French; "14:00" in English.
pub fn format_time(lang: Lang, t: NaiveTime) -> String {
    match (lang, t.minute()) {
        (Lang::Fr, 0) => format!("{} h", t.hour()),
        (Lang::Fr, m) => format!("{} h {m:02}", t.hour()),
        (Lang::En, m) => format!("{:02}:{m:02}", t.hour()),
    }
}

/// "mardi 3 mars 2026", "dimanche 1er mars 2026"; "Tuesday 3 March 2026".
pub fn format_date(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::Fr => {
            let wd = match d.weekday() {
                Weekday::Mon => "lundi",
                Weekday::Tue => "mardi",
                Weekday::Wed => "mercredi",
                Weekday::Thu => "jeudi",
                Weekday::Fri => "vendredi",
                Weekday::Sat => "samedi",
                Weekday::Sun => "dimanche",
            };
            const MONTHS: [&str; 12] = [
                "janvier",
                "février",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "août",
                "septembre",
                "octobre",
                "novembre",
                "décembre",
            ];
            let month = MONTHS.get(d.month0() as usize).copied().unwrap_or_default();
            let day = if d.day() == 1 {
                "1er".to_owned()
            } else {
                d.day().to_string()
            };
            format!("{wd} {day} {month} {}", d.year())
        }
        Lang::En => d.format("%A %-d %B %Y").to_string(),
    }
}

/// A duration in minutes: "4 h", "1 h 30" ("1 h 30 min" in English), "45 min".
pub fn format_minutes(lang: Lang, minutes: i64) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    match (lang, h, m) {
        (_, 0, m) => format!("{m} min"),
        (_, h, 0) => format!("{h} h"),
        (Lang::Fr, h, m) => format!("{h} h {m:02}"),
        (Lang::En, h, m) => format!("{h} h {m} min"),
    }
}

/// A local date and time: "mardi 3 mars 2026 à 14 h"; "Tuesday 3 March 2026 at 14:00".
pub fn format_instant(lang: Lang, tz: Tz, t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&tz).naive_local();
    let at = match lang {
        Lang::Fr => "à",
        Lang::En => "at",
    };
    format!(
        "{} {at} {}",
        format_date(lang, local.date()),
        format_time(lang, local.time())
    )
}

/// An interval in local time: "de 14 h à 15 h" (with the date first if
/// `with_date`), "du … à … au … à …" when it spans several days, and
/// dates alone ("le mardi 3 mars 2026") when it covers whole days.
pub fn span(lang: Lang, tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>, with_date: bool) -> String {
    let (s, e) = (
        start.with_timezone(&tz).naive_local(),
        end.with_timezone(&tz).naive_local(),
    );
    // Whole days (a blackout, a car lent for days) read as dates only.
    if s.time() == NaiveTime::MIN && e.time() == NaiveTime::MIN && s.date() < e.date() {
        let last = e.date().pred_opt().unwrap_or(s.date());
        return match (lang, s.date() == last) {
            (Lang::Fr, true) => format!("le {}", format_date(lang, last)),
            (Lang::Fr, false) => format!("du {} au {}", format_date(lang, s.date()), format_date(lang, last)),
            (Lang::En, true) => format!("on {}", format_date(lang, last)),
            (Lang::En, false) => format!("from {} to {}", format_date(lang, s.date()), format_date(lang, last)),
        };
    }
    // An interval ending at midnight stays on its day ("de 22 h à 0 h").
    let same_day = s.date() == e.date() || (e.time() == NaiveTime::MIN && s.date().succ_opt() == Some(e.date()));
    match (lang, same_day, with_date) {
        (Lang::Fr, true, false) => format!("de {} à {}", format_time(lang, s.time()), format_time(lang, e.time())),
        (Lang::Fr, true, true) => format!(
            "le {} de {} à {}",
            format_date(lang, s.date()),
            format_time(lang, s.time()),
            format_time(lang, e.time())
        ),
        (Lang::Fr, false, _) => format!(
            "du {} au {}",
            format_instant(lang, tz, start),
            format_instant(lang, tz, end)
        ),
        (Lang::En, true, false) => format!(
            "from {} to {}",
            format_time(lang, s.time()),
            format_time(lang, e.time())
        ),
        (Lang::En, true, true) => format!(
            "on {} from {} to {}",
            format_date(lang, s.date()),
            format_time(lang, s.time()),
            format_time(lang, e.time())
        ),
        (Lang::En, false, _) => format!(
            "from {} to {}",
            format_instant(lang, tz, start),
            format_instant(lang, tz, end)
        ),
    }
}
