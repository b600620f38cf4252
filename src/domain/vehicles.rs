//! Vehicles and loaned equipment: licence classes and the licence check, the
//! choice of a pool member, the charging buffer of an electric vehicle, the
//! key instructions of an acceptance, and the check-in deadline.
//!
//! Pure like the rest of the domain: the store gathers the candidates, the
//! driver's licence and the clock's `now`, and these functions decide.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::decision::{Decision, Outcome};
use super::policy::Scope;
use super::reason::{Lang, Reason, ReasonKind};

/// A French driving licence category (permis de conduire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LicenceClass {
    AM,
    A1,
    A2,
    A,
    B,
    BE,
    C1,
    C,
    D1,
    D,
}

impl LicenceClass {
    pub const ALL: [LicenceClass; 10] = [
        LicenceClass::AM,
        LicenceClass::A1,
        LicenceClass::A2,
        LicenceClass::A,
        LicenceClass::B,
        LicenceClass::BE,
        LicenceClass::C1,
        LicenceClass::C,
        LicenceClass::D1,
        LicenceClass::D,
    ];

    /// Reads "B", "be", " C1 "; `None` for anything else.
    pub fn parse(s: &str) -> Option<LicenceClass> {
        let s = s.trim().to_ascii_uppercase();
        LicenceClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            LicenceClass::AM => "AM",
            LicenceClass::A1 => "A1",
            LicenceClass::A2 => "A2",
            LicenceClass::A => "A",
            LicenceClass::B => "B",
            LicenceClass::BE => "BE",
            LicenceClass::C1 => "C1",
            LicenceClass::C => "C",
            LicenceClass::D1 => "D1",
            LicenceClass::D => "D",
        }
    }

    /// Whether holding `self` lets one drive what needs `required`, by the
    /// French equivalences: A covers A2, A1 and AM; A2 covers A1 and AM; A1
    /// and B cover AM; BE covers B; C covers C1; D covers D1.
    pub fn covers(&self, required: LicenceClass) -> bool {
        use LicenceClass::*;
        *self == required
            || matches!(
                (self, required),
                (A, A2 | A1 | AM) | (A2, A1 | AM) | (A1, AM) | (B | BE, AM) | (BE, B) | (C, C1) | (D, D1)
            )
    }
}

/// What the directory or a manager says of a driver's licence.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DriverLicence {
    pub classes: Vec<LicenceClass>,
    /// The last day the licence is valid; `None` when not recorded (a
    /// French licence issued before 2013 has no end date).
    pub expires_on: Option<NaiveDate>,
}

/// How a directory attribute writes a driver's licence, from the
/// configuration's pattern: `CLASSES` alone (no end date), or `CLASSES`, a
/// separator and the end date written `YYYY-MM-DD` or `DD/MM/YYYY`, e.g.
/// `CLASSES;YYYY-MM-DD` for `B;2031-05-01` or `CLASSES YYYY-MM-DD` for
/// `B,BE 2031-05-01`. Classes are separated by commas, `+`, `/`, spaces or
/// semicolons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceFormat {
    /// Between the classes and the date; `None` when no date is written.
    separator: Option<String>,
    /// The date's `chrono` format.
    date_format: &'static str,
}

impl Default for LicenceFormat {
    fn default() -> Self {
        LicenceFormat {
            separator: None,
            date_format: "%Y-%m-%d",
        }
    }
}

/// Why a directory's licence value cannot be read (in French, the language
/// of the operator's status page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceValueError {
    NoClass,
    UnknownClass(String),
    NoDate,
    BadDate(String),
}

impl std::fmt::Display for LicenceValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LicenceValueError::NoClass => write!(f, "aucune catégorie de permis"),
            LicenceValueError::UnknownClass(c) => write!(f, "catégorie inconnue « {c} »"),
            LicenceValueError::NoDate => write!(f, "pas de date de fin de validité"),
            LicenceValueError::BadDate(d) => write!(f, "date illisible « {d} »"),
        }
    }
}

impl LicenceFormat {
    /// Reads a pattern such as `CLASSES;YYYY-MM-DD`; the error says what is wrong.
    pub fn parse(pattern: &str) -> Result<LicenceFormat, String> {
        let Some(rest) = pattern.strip_prefix("CLASSES") else {
            return Err(format!("licence_format {pattern:?} must start with CLASSES"));
        };
        if rest.is_empty() {
            return Ok(LicenceFormat::default());
        }
        for (token, date_format) in [("YYYY-MM-DD", "%Y-%m-%d"), ("DD/MM/YYYY", "%d/%m/%Y")] {
            if let Some(separator) = rest.strip_suffix(token) {
                if separator.is_empty() {
                    return Err(format!(
                        "licence_format {pattern:?} needs a separator between CLASSES and the date"
                    ));
                }
                return Ok(LicenceFormat {
                    separator: Some(separator.to_owned()),
                    date_format,
                });
            }
        }
        Err(format!(
            "licence_format {pattern:?}: after CLASSES, a separator then YYYY-MM-DD or DD/MM/YYYY"
        ))
    }

    /// The one value to read from an attribute's values: without a date,
    /// the classes of every value (one class per value is common); with a
    /// date, the first value. `None` when there is none.
    pub fn join(&self, values: &[String]) -> Option<String> {
        match (&self.separator, values) {
            (_, []) => None,
            (None, _) => Some(values.join(",")),
            (Some(_), [first, ..]) => Some(first.clone()),
        }
    }

    /// Reads one attribute value.
    pub fn read(&self, value: &str) -> Result<DriverLicence, LicenceValueError> {
        let value = value.trim();
        let (classes, expires_on) = match &self.separator {
            None => (value, None),
            Some(sep) => {
                // The date is the last field: split at the last separator (a
                // space separator matches any run of blanks).
                let split = if sep.trim().is_empty() {
                    value.rsplit_once(char::is_whitespace)
                } else {
                    value.rsplit_once(sep.as_str())
                };
                let (classes, date) = split.ok_or(LicenceValueError::NoDate)?;
                let date = date.trim();
                let day = NaiveDate::parse_from_str(date, self.date_format)
                    .map_err(|_| LicenceValueError::BadDate(date.to_owned()))?;
                (classes, Some(day))
            }
        };
        let mut out: Vec<LicenceClass> = Vec::new();
        for word in classes
            .split([',', ';', '+', '/', ' ', '\t'])
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            let class = LicenceClass::parse(word).ok_or_else(|| LicenceValueError::UnknownClass(word.to_owned()))?;
            if !out.contains(&class) {
                out.push(class);
            }
        }
        if out.is_empty() {
            return Err(LicenceValueError::NoClass);
        }
        Ok(DriverLicence {
            classes: out,
            expires_on,
        })
    }
}

/// The licence check of one request for a vehicle that needs a licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceCheck {
    pub required: LicenceClass,
    /// `None` when nothing is recorded for the organiser.
    pub driver: Option<DriverLicence>,
}

/// The reason a driver may not take a vehicle needing `check.required` until
/// `last_day` (the local date the booking ends), if any.
pub fn licence(check: &LicenceCheck, last_day: NaiveDate) -> Option<ReasonKind> {
    let required = check.required.as_str().to_owned();
    let Some(driver) = &check.driver else {
        return Some(ReasonKind::LicenceMissing { required });
    };
    if !driver.classes.iter().any(|c| c.covers(check.required)) {
        if driver.classes.is_empty() {
            return Some(ReasonKind::LicenceMissing { required });
        }
        return Some(ReasonKind::LicenceClass {
            required,
            held: driver.classes.iter().map(|c| c.as_str().to_owned()).collect(),
        });
    }
    match driver.expires_on {
        Some(expired_on) if expired_on < last_day => Some(ReasonKind::LicenceExpired { expired_on }),
        _ => None,
    }
}

/// How a vehicle moves, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Energy {
    Petrol,
    Diesel,
    Hybrid,
    Electric,
    /// A bicycle.
    Human,
    /// An electrically assisted bicycle.
    Assisted,
}

impl Energy {
    pub const ALL: [Energy; 6] = [
        Energy::Petrol,
        Energy::Diesel,
        Energy::Hybrid,
        Energy::Electric,
        Energy::Human,
        Energy::Assisted,
    ];

    pub fn parse(s: &str) -> Option<Energy> {
        Energy::ALL.into_iter().find(|e| e.as_str() == s)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Energy::Petrol => "petrol",
            Energy::Diesel => "diesel",
            Energy::Hybrid => "hybrid",
            Energy::Electric => "electric",
            Energy::Human => "human",
            Energy::Assisted => "assisted",
        }
    }

    pub fn label(&self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Energy::Petrol, Lang::Fr) => "essence",
            (Energy::Diesel, Lang::Fr) => "diesel",
            (Energy::Hybrid, Lang::Fr) => "hybride",
            (Energy::Electric, Lang::Fr) => "électrique",
            (Energy::Human, Lang::Fr) => "musculaire",
            (Energy::Assisted, Lang::Fr) => "à assistance électrique",
            (Energy::Petrol, Lang::En) => "petrol",
            (Energy::Diesel, Lang::En) => "diesel",
            (Energy::Hybrid, Lang::En) => "hybrid",
            (Energy::Electric, Lang::En) => "electric",
            (Energy::Human, Lang::En) => "pedal",
            (Energy::Assisted, Lang::En) => "electrically assisted",
        }
    }

    /// Whether the range limits the trips (a battery that must be charged).
    pub fn is_electric(&self) -> bool {
        matches!(self, Energy::Electric)
    }
}

/// A member of a pool as the choice sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub resource: Uuid,
    pub name: String,
    pub energy: Energy,
    pub range_km: Option<u32>,
    /// Whether nothing holds the slot (buffers included).
    pub free: bool,
    /// Whether the organiser's licence allows this vehicle.
    pub licence_ok: bool,
    /// Minutes booked over the recent past: the least used goes first.
    pub used_minutes: i64,
}

impl Candidate {
    /// Whether an electric vehicle can make the trip on one charge. An
    /// undeclared distance is taken as a local trip, which any range covers.
    fn range_covers(&self, distance_km: Option<u32>) -> bool {
        match (distance_km, self.range_km) {
            (Some(d), Some(r)) => r >= d,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

/// Picks the member of a pool to book, `None` when none can be booked.
///
/// Only free members are considered, and an electric one only when its range
/// covers the declared distance. Among them: members the organiser may drive
/// first (so that a refusal for the licence happens only when no member fits),
/// then electric ones, then the least used, then by name for a stable answer.
pub fn choose(candidates: &[Candidate], distance_km: Option<u32>) -> Option<Uuid> {
    candidates
        .iter()
        .filter(|c| c.free && (!c.energy.is_electric() || c.range_covers(distance_km)))
        .min_by(|a, b| {
            let key = |c: &Candidate| (!c.licence_ok, !c.energy.is_electric(), c.used_minutes);
            key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
        })
        .map(|c| c.resource)
}

/// The charging time kept after an electric vehicle's booking: the share of
/// a full charge the declared distance uses, rounded up to 5 minutes.
pub fn charging_buffer_minutes(distance_km: u32, range_km: u32, full_charge_minutes: u32) -> u32 {
    if range_km == 0 || distance_km == 0 {
        return 0;
    }
    let share = u64::from(distance_km.min(range_km)) * u64::from(full_charge_minutes);
    let minutes = share.div_ceil(u64::from(range_km));
    u32::try_from(minutes.div_ceil(5) * 5).unwrap_or(u32::MAX)
}

/// A distance stated in a meeting's subject or location ("Bobigny 35 km",
/// "120km"): the first number followed by "km".
pub fn distance_in_text(text: &str) -> Option<u32> {
    let lower = text.to_lowercase();
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let number = &lower[start..i];
            let rest = lower[i..].trim_start();
            let word_ends = rest
                .strip_prefix("km")
                .is_some_and(|after| after.chars().next().is_none_or(|c| !c.is_alphanumeric()));
            if word_ends {
                return number.parse().ok();
            }
        } else {
            i += 1;
        }
    }
    None
}

/// What the acceptance tells the organiser of the vehicle or item booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub name: String,
    pub plate: Option<String>,
    pub key_location: Option<String>,
    /// Where the trip details are given, when resa knows its own address.
    pub trip_link: Option<String>,
    /// Whether a policy wants the trip details before pickup.
    pub trip_required: bool,
}

impl Handover {
    /// The lines appended to the acceptance text.
    pub fn render(&self, lang: Lang) -> String {
        let mut lines = Vec::new();
        let plate = self.plate.as_deref().map(|p| match lang {
            Lang::Fr => format!(" (immatriculation {p})"),
            Lang::En => format!(" (plate {p})"),
        });
        lines.push(match lang {
            Lang::Fr => format!("Attribué : {}{}", self.name, plate.unwrap_or_default()),
            Lang::En => format!("Assigned: {}{}", self.name, plate.unwrap_or_default()),
        });
        if let Some(k) = &self.key_location {
            lines.push(match lang {
                Lang::Fr => format!("Clés : {k}"),
                Lang::En => format!("Keys: {k}"),
            });
        }
        if let Some(link) = &self.trip_link {
            lines.push(match (lang, self.trip_required) {
                (Lang::Fr, true) => format!("Détails du trajet à renseigner avant le départ : {link}"),
                (Lang::Fr, false) => format!("Détails du trajet (destination, distance, passagers) : {link}"),
                (Lang::En, true) => format!("Trip details to give before pickup: {link}"),
                (Lang::En, false) => format!("Trip details (destination, distance, passengers): {link}"),
            });
        }
        lines.join("\n")
    }
}

/// Whether an occurrence that asks for a check-in within `minutes` of its
/// start and has none is to be released at `now`.
pub fn check_in_missed(start: DateTime<Utc>, checked_in: bool, minutes: u32, now: DateTime<Utc>) -> bool {
    minutes > 0 && !checked_in && now >= start + Duration::minutes(i64::from(minutes))
}

/// Whether a checked-out item whose booking ended at `end` is overdue.
pub fn overdue(end: DateTime<Utc>, returned: bool, grace_minutes: u32, now: DateTime<Utc>) -> bool {
    !returned && now > end + Duration::minutes(i64::from(grace_minutes))
}

/// Repeated no-shows of one series are reported to the manager from this count.
pub const REPEATED_NO_SHOWS: i64 = 2;

/// Turns a decision on a pool whose members are all taken into a refusal
/// saying so (a refusal for another reason stands as it is).
pub fn no_free_member(decision: &mut Decision, pool: Uuid) {
    if matches!(decision.outcome, Outcome::Decline { .. }) {
        return;
    }
    decision.outcome = Outcome::Decline {
        reasons: vec![Reason::new(ReasonKind::NoFreeMember, Scope::Resource(pool))],
        declined: Vec::new(),
    };
    decision.occurrences.clear();
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_directory_licence_is_read_in_the_configured_format() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        let semi = LicenceFormat::parse("CLASSES;YYYY-MM-DD").expect("format");
        let b = |expires_on| DriverLicence {
            classes: vec![LicenceClass::B],
            expires_on,
        };
        assert_eq!(semi.read("B;2031-05-01"), Ok(b(day(2031, 5, 1))));
        assert_eq!(
            semi.read(" b, be ;2031-05-01"),
            Ok(DriverLicence {
                classes: vec![LicenceClass::B, LicenceClass::BE],
                expires_on: day(2031, 5, 1)
            })
        );
        assert_eq!(
            semi.read("B;2031-13-45"),
            Err(LicenceValueError::BadDate("2031-13-45".into()))
        );
        assert_eq!(semi.read("B"), Err(LicenceValueError::NoDate));
        assert_eq!(
            semi.read("Z;2031-05-01"),
            Err(LicenceValueError::UnknownClass("Z".into()))
        );
        assert_eq!(semi.read(";2031-05-01"), Err(LicenceValueError::NoClass));
        let space = LicenceFormat::parse("CLASSES YYYY-MM-DD").expect("format");
        assert_eq!(
            space.read("B,BE  2031-05-01"),
            Ok(DriverLicence {
                classes: vec![LicenceClass::B, LicenceClass::BE],
                expires_on: day(2031, 5, 1)
            })
        );
        let french = LicenceFormat::parse("CLASSES - DD/MM/YYYY").expect("format");
        assert_eq!(french.read("B - 01/05/2031"), Ok(b(day(2031, 5, 1))));
        let bare = LicenceFormat::parse("CLASSES").expect("format");
        assert_eq!(bare.read("B"), Ok(b(None)));
        let values = ["B".to_owned(), "be".to_owned()];
        assert_eq!(bare.join(&values).as_deref(), Some("B,be"));
        assert_eq!(semi.join(&values).as_deref(), Some("B"));
        assert_eq!(semi.join(&[]), None);
        assert!(LicenceFormat::parse("YYYY-MM-DD;CLASSES").is_err());
        assert!(LicenceFormat::parse("CLASSESYYYY-MM-DD").is_err());
        assert!(LicenceFormat::parse("CLASSES;MM/DD/YYYY").is_err());
        assert_eq!(
            LicenceValueError::BadDate("x".into()).to_string(),
            "date illisible « x »"
        );
    }

    use super::*;
    use chrono::TimeZone;

    fn car(n: u128, name: &str, energy: Energy, range: Option<u32>, used: i64) -> Candidate {
        Candidate {
            resource: Uuid::from_u128(n),
            name: name.into(),
            energy,
            range_km: range,
            free: true,
            licence_ok: true,
            used_minutes: used,
        }
    }

    #[test]
    fn licence_classes_follow_the_french_equivalences() {
        use LicenceClass::*;
        assert!(B.covers(B));
        assert!(BE.covers(B));
        assert!(B.covers(AM));
        assert!(A.covers(A1));
        assert!(!B.covers(BE));
        assert!(!B.covers(A1));
        assert!(!C1.covers(C));
        assert_eq!(LicenceClass::parse(" be "), Some(BE));
        assert_eq!(LicenceClass::parse("Z"), None);
    }

    #[test]
    fn the_licence_check_names_what_is_wrong() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default();
        let check = |classes: Vec<LicenceClass>, expires: Option<NaiveDate>| LicenceCheck {
            required: LicenceClass::B,
            driver: Some(DriverLicence {
                classes,
                expires_on: expires,
            }),
        };
        assert_eq!(licence(&check(vec![LicenceClass::B], None), day), None);
        assert_eq!(licence(&check(vec![LicenceClass::B], Some(day)), day), None);
        let yesterday = day.pred_opt().unwrap_or_default();
        assert_eq!(
            licence(&check(vec![LicenceClass::B], Some(yesterday)), day),
            Some(ReasonKind::LicenceExpired { expired_on: yesterday })
        );
        assert_eq!(
            licence(&check(vec![LicenceClass::A], None), day),
            Some(ReasonKind::LicenceClass {
                required: "B".into(),
                held: vec!["A".into()]
            })
        );
        let nothing = LicenceCheck {
            required: LicenceClass::B,
            driver: None,
        };
        assert_eq!(
            licence(&nothing, day),
            Some(ReasonKind::LicenceMissing { required: "B".into() })
        );
    }

    #[test]
    fn an_electric_car_goes_first_when_its_range_covers_the_trip() {
        let cars = [
            car(1, "Clio", Energy::Petrol, Some(700), 0),
            car(2, "Zoé", Energy::Electric, Some(200), 600),
        ];
        assert_eq!(choose(&cars, Some(120)), Some(Uuid::from_u128(2)));
        assert_eq!(choose(&cars, None), Some(Uuid::from_u128(2)));
        // Too far for the battery: the electric car is skipped.
        assert_eq!(choose(&cars, Some(250)), Some(Uuid::from_u128(1)));
        // Only the electric car, too far: nothing to give.
        assert_eq!(choose(&cars[1..], Some(250)), None);
    }

    #[test]
    fn otherwise_the_least_used_free_member_goes_first() {
        let mut cars = vec![
            car(1, "Clio", Energy::Petrol, None, 300),
            car(2, "Berlingo", Energy::Diesel, None, 100),
            car(3, "Partner", Energy::Diesel, None, 50),
        ];
        cars[2].free = false;
        assert_eq!(choose(&cars, Some(10)), Some(Uuid::from_u128(2)));
        // A car the driver may drive beats a less used one they may not.
        cars[1].licence_ok = false;
        assert_eq!(choose(&cars, Some(10)), Some(Uuid::from_u128(1)));
        for c in &mut cars {
            c.free = false;
        }
        assert_eq!(choose(&cars, Some(10)), None);
    }

    #[test]
    fn the_charging_buffer_follows_the_declared_distance() {
        assert_eq!(charging_buffer_minutes(100, 200, 480), 240);
        assert_eq!(charging_buffer_minutes(7, 300, 480), 15);
        assert_eq!(charging_buffer_minutes(900, 300, 480), 480);
        assert_eq!(charging_buffer_minutes(0, 300, 480), 0);
    }

    #[test]
    fn a_distance_is_read_from_the_subject() {
        assert_eq!(distance_in_text("Visite chantier Bobigny 35 km"), Some(35));
        assert_eq!(distance_in_text("Réunion à Lille (240km aller-retour)"), Some(240));
        assert_eq!(distance_in_text("Salle 12, 3 kmh"), None);
        assert_eq!(distance_in_text("Comité"), None);
    }

    #[test]
    fn check_in_and_overdue_deadlines() {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).single().unwrap_or_default();
        assert!(!check_in_missed(start, false, 15, start + Duration::minutes(14)));
        assert!(check_in_missed(start, false, 15, start + Duration::minutes(15)));
        assert!(!check_in_missed(start, true, 15, start + Duration::minutes(60)));
        assert!(!check_in_missed(start, false, 0, start + Duration::minutes(60)));
        assert!(overdue(start, false, 0, start + Duration::minutes(1)));
        assert!(!overdue(start, true, 0, start + Duration::minutes(1)));
    }

    #[test]
    fn the_handover_names_the_car_and_its_keys() {
        let h = Handover {
            name: "Renault Zoé".into(),
            plate: Some("GA-123-BC".into()),
            key_location: Some("armoire à clés de l'accueil".into()),
            trip_link: Some("https://resa.example/vehicules/trajets/1".into()),
            trip_required: true,
        };
        assert_eq!(
            h.render(Lang::Fr),
            "Attribué : Renault Zoé (immatriculation GA-123-BC)\nClés : armoire à clés de l'accueil\n\
             Détails du trajet à renseigner avant le départ : https://resa.example/vehicules/trajets/1"
        );
        assert!(
            h.render(Lang::En)
                .starts_with("Assigned: Renault Zoé (plate GA-123-BC)\nKeys: ")
        );
    }
}
