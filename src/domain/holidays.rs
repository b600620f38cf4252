//! The French public holidays and blackout periods.
//!
//! Holidays are computed, not stored: the eleven national public holidays
//! (jours fériés) of metropolitan France, with Easter from the anonymous
//! Gregorian algorithm. Alsace-Moselle's extra days are not included because
//! neither customer is there. Blackouts are given by the caller.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::policy::Scope;

/// A French public holiday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicHoliday {
    NewYear,
    EasterMonday,
    LabourDay,
    VictoryDay,
    Ascension,
    WhitMonday,
    BastilleDay,
    Assumption,
    AllSaints,
    Armistice,
    Christmas,
}

impl PublicHoliday {
    /// The usual French name.
    pub fn name_fr(self) -> &'static str {
        match self {
            PublicHoliday::NewYear => "Jour de l'an",
            PublicHoliday::EasterMonday => "Lundi de Pâques",
            PublicHoliday::LabourDay => "Fête du Travail",
            PublicHoliday::VictoryDay => "Victoire 1945",
            PublicHoliday::Ascension => "Ascension",
            PublicHoliday::WhitMonday => "Lundi de Pentecôte",
            PublicHoliday::BastilleDay => "Fête nationale",
            PublicHoliday::Assumption => "Assomption",
            PublicHoliday::AllSaints => "Toussaint",
            PublicHoliday::Armistice => "Armistice 1918",
            PublicHoliday::Christmas => "Noël",
        }
    }

    /// The usual English name.
    pub fn name_en(self) -> &'static str {
        match self {
            PublicHoliday::NewYear => "New Year's Day",
            PublicHoliday::EasterMonday => "Easter Monday",
            PublicHoliday::LabourDay => "Labour Day",
            PublicHoliday::VictoryDay => "Victory in Europe Day",
            PublicHoliday::Ascension => "Ascension Day",
            PublicHoliday::WhitMonday => "Whit Monday",
            PublicHoliday::BastilleDay => "Bastille Day",
            PublicHoliday::Assumption => "Assumption Day",
            PublicHoliday::AllSaints => "All Saints' Day",
            PublicHoliday::Armistice => "Armistice Day",
            PublicHoliday::Christmas => "Christmas Day",
        }
    }
}

/// Easter Sunday of a Gregorian year (anonymous Gregorian algorithm, also
/// known as Meeus/Jones/Butcher). `None` only outside chrono's date range.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The public holidays of a year, in date order.
pub fn french_public_holidays(year: i32) -> Vec<(NaiveDate, PublicHoliday)> {
    let fixed = [
        (1, 1, PublicHoliday::NewYear),
        (5, 1, PublicHoliday::LabourDay),
        (5, 8, PublicHoliday::VictoryDay),
        (7, 14, PublicHoliday::BastilleDay),
        (8, 15, PublicHoliday::Assumption),
        (11, 1, PublicHoliday::AllSaints),
        (11, 11, PublicHoliday::Armistice),
        (12, 25, PublicHoliday::Christmas),
    ];
    let mut out: Vec<(NaiveDate, PublicHoliday)> = fixed
        .iter()
        .filter_map(|&(m, d, h)| NaiveDate::from_ymd_opt(year, m, d).map(|date| (date, h)))
        .collect();
    if let Some(easter) = easter_sunday(year) {
        out.push((easter + Duration::days(1), PublicHoliday::EasterMonday));
        out.push((easter + Duration::days(39), PublicHoliday::Ascension));
        out.push((easter + Duration::days(50), PublicHoliday::WhitMonday));
    }
    // Ascension can fall on 1 or 8 May; both stay listed, sorted by date.
    out.sort();
    out
}

/// The public holiday on `date`, if any.
pub fn french_public_holiday(date: NaiveDate) -> Option<PublicHoliday> {
    french_public_holidays(date.year())
        .into_iter()
        .find(|(d, _)| *d == date)
        .map(|(_, h)| h)
}

/// A period when a resource cannot be booked (works, elections, closure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blackout {
    /// Start, inclusive.
    pub start: DateTime<Utc>,
    /// End, exclusive.
    pub end: DateTime<Utc>,
    /// The text an admin entered, shown to the organiser as is.
    pub reason: String,
    /// Where it applies; the caller may pass blackouts of other scopes,
    /// they are filtered by the resource's scope chain.
    pub scope: Scope,
}

impl Blackout {
    /// Whether `[start, end)` overlaps the blackout.
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        start < self.end && self.start < end
    }
}
