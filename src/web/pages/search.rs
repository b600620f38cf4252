//! Availability search with a day grid (hour by hour) or a week grid (the
//! requested slot on seven days), and booking from the web (one meeting
//! or a daily, working-day or weekly series with an end date or a count): the
//! same rule engine decides (`Store::record_request` with `Source::Web`), and
//! the meeting waits in the outbox for the daemon to create it in Exchange.

use super::{Base, render, see_other};
use crate::domain::recurrence::{Pattern, Recurrence, RecurrenceRange};
use crate::web::WebState;
use crate::web::actions::{self, BookInput};
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::extract::{Form, Query, RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use serde::Deserialize;
use uuid::Uuid;

/// The hours the grid shows, local time.
const GRID_HOURS: std::ops::Range<u32> = 7..21;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    site: String,
    date: Option<String>,
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    capacity: String,
    /// "week" shows the requested slot on seven days from the date; the day
    /// grid otherwise.
    #[serde(default)]
    view: String,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct Cell {
    label: String,
    busy: bool,
}

struct ResultLine {
    id: Uuid,
    name: String,
    site: String,
    capacity: String,
    /// The resource's equipment, comma separated ("" when none).
    equipment: String,
    cells: Vec<Cell>,
    /// The requested slot on each day of the week view.
    week: Vec<Cell>,
    free: bool,
}

/// The days of the week view, from the searched date.
const WEEK_DAYS: i64 = 7;

/// "lun. 07/12" in the page's language.
fn short_day(lang: Lang, d: NaiveDate) -> String {
    use chrono::Datelike;
    let i = d.weekday().num_days_from_monday() as usize;
    let names = match lang {
        Lang::Fr => ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
        Lang::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    };
    match lang {
        Lang::Fr => format!("{} {}", names[i], d.format("%d/%m")),
        Lang::En => format!("{} {}", names[i], d.format("%m/%d")),
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    base: Base,
    kinds: Vec<Choice>,
    sites: Vec<Choice>,
    date: String,
    start: String,
    end: String,
    capacity: String,
    /// The equipment that can be asked for, ticked when asked.
    equipment: Vec<Choice>,
    hours: Vec<String>,
    /// Column heads of the week view; empty in the day view.
    days: Vec<String>,
    week_view: bool,
    searched: bool,
    error: Option<&'static str>,
    results: Vec<ResultLine>,
}

/// A local date and time in Paris as an instant.
fn paris(date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    chrono_tz::Europe::Paris
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_slot(date: &str, start: &str, end: &str) -> Option<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
    let d = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
    let s = NaiveTime::parse_from_str(start.trim(), "%H:%M").ok()?;
    let e = NaiveTime::parse_from_str(end.trim(), "%H:%M").ok()?;
    let (s, e) = (paris(d, s)?, paris(d, e)?);
    (e > s).then_some((d, s, e))
}

fn uuid_or_none(s: &str) -> Option<Uuid> {
    s.parse().ok()
}

/// The `equipment` keys of a query string (a form's ticked boxes repeat
/// the name, which the typed query cannot hold).
fn wanted_equipment(raw: Option<&str>) -> Vec<String> {
    let mut keys: Vec<String> = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(k, v)| k == "equipment" && !v.is_empty())
        .map(|(_, v)| v.chars().take(40).collect())
        .collect();
    keys.sort();
    keys.dedup();
    keys.truncate(20);
    keys
}

pub async fn search(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<SearchQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    ctx.require(Role::Agent)?;
    let lang = ctx.lang;
    let wanted = wanted_equipment(raw.as_deref());
    let label_of = |e: &crate::store::equipment::Equipment| match lang {
        Lang::Fr => e.label_fr.clone(),
        Lang::En => e.label_en.clone(),
    };
    let today = state.clock.now().with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let date = q.date.clone().unwrap_or_else(|| today.format("%Y-%m-%d").to_string());
    let start = q.start.clone().unwrap_or_else(|| "09:00".into());
    let end = q.end.clone().unwrap_or_else(|| "10:00".into());
    let searched = q.date.is_some();
    let week_view = q.view == "week";
    let mut error = None;
    let mut results = Vec::new();
    let mut days = Vec::new();
    if searched {
        match parse_slot(&date, &start, &end) {
            None => error = Some(lang.text("search.invalid")),
            Some((day, slot_start, slot_end)) => {
                let capacity = q.capacity.trim().parse::<i32>().ok().filter(|c| *c > 0);
                let resources = state
                    .store
                    .search_resources(uuid_or_none(&q.kind), uuid_or_none(&q.site), capacity, &wanted)
                    .await?;
                let ids: Vec<Uuid> = resources.iter().map(|r| r.id).collect();
                let equipped = state.store.equipment_of(&ids).await?;
                let (day_start, day_end) = match (
                    paris(day, NaiveTime::MIN),
                    paris(day + Duration::days(1), NaiveTime::MIN),
                ) {
                    (Some(a), Some(b)) => (a, b),
                    _ => return Err(WebError::BadRequest(lang.text("search.invalid").into())),
                };
                let week: Vec<NaiveDate> = if week_view {
                    (0..WEEK_DAYS).map(|i| day + Duration::days(i)).collect()
                } else {
                    Vec::new()
                };
                days = week.iter().map(|d| short_day(lang, *d)).collect();
                // The slot's times on each day of the week view.
                let week_slots: Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> = week
                    .iter()
                    .filter_map(|d| {
                        let (_, a, b) = parse_slot(&d.format("%Y-%m-%d").to_string(), &start, &end)?;
                        Some((*d, a, b))
                    })
                    .collect();
                let lo = day_start.min(slot_start);
                let hi = week_slots
                    .last()
                    .map_or(day_end, |(_, _, b)| *b)
                    .max(day_end)
                    .max(slot_end);
                let slots = if ids.is_empty() {
                    Vec::new()
                } else {
                    state.store.held_slots_of(&ids, lo, hi).await?
                };
                for r in resources {
                    let mine: Vec<(DateTime<Utc>, DateTime<Utc>)> = slots
                        .iter()
                        .filter(|(id, _, _)| *id == r.id)
                        .map(|(_, s, e)| (*s, *e))
                        .collect();
                    let overlaps = |a: DateTime<Utc>, b: DateTime<Utc>| mine.iter().any(|(s, e)| *s < b && a < *e);
                    let cells = GRID_HOURS
                        .filter_map(|h| {
                            let a = paris(day, NaiveTime::from_hms_opt(h, 0, 0)?)?;
                            let busy = overlaps(a, a + Duration::hours(1));
                            Some(Cell {
                                label: format!(
                                    "{h} h : {}",
                                    lang.text(if busy { "search.busy" } else { "search.free" })
                                ),
                                busy,
                            })
                        })
                        .collect();
                    let week = week_slots
                        .iter()
                        .map(|(d, a, b)| {
                            let busy = overlaps(*a, *b);
                            Cell {
                                label: format!(
                                    "{} : {}",
                                    short_day(lang, *d),
                                    lang.text(if busy { "search.busy" } else { "search.free" })
                                ),
                                busy,
                            }
                        })
                        .collect();
                    results.push(ResultLine {
                        week,
                        equipment: equipped
                            .get(&r.id)
                            .map(|list| list.iter().map(label_of).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default(),
                        id: r.id,
                        site: r.site_name,
                        capacity: r.capacity.map(|c| c.to_string()).unwrap_or_else(|| "—".into()),
                        cells,
                        free: !overlaps(slot_start, slot_end),
                        name: r.name,
                    });
                }
            }
        }
    }
    let kinds = state
        .store
        .list_resource_types()
        .await?
        .into_iter()
        .map(|t| Choice {
            selected: t.id.to_string() == q.kind,
            value: t.id.to_string(),
            label: match lang {
                Lang::Fr => t.name_fr,
                Lang::En => t.name_en,
            },
        })
        .collect();
    let sites = state
        .store
        .list_sites()
        .await?
        .into_iter()
        .map(|s| Choice {
            selected: s.id.to_string() == q.site,
            value: s.id.to_string(),
            label: format!("{} — {}", s.organisation_name, s.name),
        })
        .collect();
    let equipment = state
        .store
        .equipment_choices(uuid_or_none(&q.kind))
        .await?
        .into_iter()
        .map(|e| Choice {
            selected: wanted.contains(&e.key),
            label: label_of(&e),
            value: e.key,
        })
        .collect();
    render(&SearchPage {
        base: Base::new(&ctx, "search.title"),
        kinds,
        sites,
        equipment,
        date,
        start,
        end,
        capacity: q.capacity.clone(),
        hours: GRID_HOURS.map(|h| format!("{h} h")).collect(),
        days,
        week_view,
        searched,
        error,
        results,
    })
}

#[derive(Debug, Deserialize)]
pub struct BookForm {
    resource: Uuid,
    date: String,
    start: String,
    end: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    attendees: String,
    /// "", "daily", "weekdays" or "weekly".
    #[serde(default)]
    repeat: String,
    /// The last date of a series (YYYY-MM-DD), or…
    #[serde(default)]
    until: String,
    /// …its number of occurrences.
    #[serde(default)]
    count: String,
}

/// The most occurrences a series booked on the web may have.
const MAX_SERIES_OCCURRENCES: u32 = 260;

/// A series from the booking form: `None` for a single meeting, an error
/// key when the form's repetition cannot be read.
fn series_of(
    form: &BookForm,
    day: NaiveDate,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> std::result::Result<Option<Recurrence>, &'static str> {
    use chrono::Datelike;
    let pattern = match form.repeat.trim() {
        "" | "none" => return Ok(None),
        "daily" => Pattern::Daily { interval: 1 },
        "weekdays" => Pattern::Weekly {
            interval: 1,
            days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            first_day_of_week: Weekday::Mon,
        },
        "weekly" => Pattern::Weekly {
            interval: 1,
            days: vec![day.weekday()],
            first_day_of_week: Weekday::Mon,
        },
        _ => return Err("book.repeat_invalid"),
    };
    let until = form.until.trim();
    let count = form.count.trim();
    let range = match (until.is_empty(), count.is_empty()) {
        (false, true) => {
            let last = NaiveDate::parse_from_str(until, "%Y-%m-%d").map_err(|_| "book.until_invalid")?;
            if last <= day {
                return Err("book.until_invalid");
            }
            RecurrenceRange::EndDate(last)
        }
        (true, false) => match count.parse::<u32>() {
            Ok(n) if (2..=MAX_SERIES_OCCURRENCES).contains(&n) => RecurrenceRange::Numbered(n),
            _ => return Err("book.count_invalid"),
        },
        _ => return Err("book.range_needed"),
    };
    let paris = chrono_tz::Europe::Paris;
    let r = Recurrence {
        pattern,
        range,
        start_date: day,
        start_time: start.with_timezone(&paris).time(),
        duration: end - start,
        tz: paris,
        deleted: Default::default(),
        modified: Vec::new(),
    };
    // A bounded series: an end date far away must not make thousands of
    // occurrences.
    let horizon = start + Duration::days(3 * 366);
    match r.expand(horizon) {
        Ok(x) if x.beyond || x.occurrences.len() > MAX_SERIES_OCCURRENCES as usize => Err("book.series_too_long"),
        Ok(x) if x.occurrences.len() < 2 => Err("book.until_invalid"),
        Ok(_) => Ok(Some(r)),
        Err(_) => Err("book.repeat_invalid"),
    }
}

pub async fn book(State(state): State<WebState>, ctx: Ctx, Form(form): Form<BookForm>) -> Result<Response> {
    let user = ctx.require(Role::Agent)?;
    let lang = ctx.lang;
    let Some((day, start, end)) = parse_slot(&form.date, &form.start, &form.end) else {
        return Err(WebError::BadRequest(lang.text("search.invalid").into()));
    };
    let recurrence = series_of(&form, day, start, end).map_err(|key| WebError::BadRequest(lang.text(key).into()))?;
    let booked = actions::book(
        &state,
        user,
        BookInput {
            resource: form.resource,
            start,
            end,
            recurrence,
            subject: form.subject.clone(),
            attendees: form.attendees.trim().parse::<u32>().unwrap_or(1),
        },
    )
    .await?;
    Ok(see_other(&format!("/bookings/{}", booked.booking_id)))
}
