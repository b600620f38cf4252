//! Reports for resource managers: the figures of `store::reports` turned into
//! sections, each with its charts (SVG drawn here), its table and its CSV.
//!
//! A [`Report`] is built once per page from the store; everything after that
//! is pure: the occupancy rate (booked hours against the opening hours the
//! rule engine uses, French public holidays left out where the resource is
//! closed then), the most and least used resources, the tables in the page's
//! language and the CSV files (`;` and decimal comma in French, `,` and
//! decimal point in English, UTF-8 with a byte order mark for spreadsheets).
//!
//! Map: [`format`] writes numbers, [`svg`] draws charts, [`text`] holds the
//! French and English texts.

pub mod format;
pub mod svg;
pub mod text;

use crate::domain::Lang;
use crate::domain::holidays::french_public_holiday;
use crate::domain::policy::WeeklyHours;
use crate::store::reports::{
    ApprovalStats, CapacityOfResource, DeclinesOfResource, LeadTime, OrganisationUsage, ReasonCount, ReportFilter,
    ResourceUsage,
};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use svg::{Bar, Svg};
use text::t;

/// How many resources the "most used" and "least used" charts show.
pub const TOP: usize = 10;

/// A resource's use with the hours it was open.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupancy {
    pub usage: ResourceUsage,
    pub open_seconds: f64,
}

impl Occupancy {
    /// Booked over open hours; `None` when the resource was never open.
    pub fn rate(&self) -> Option<f64> {
        (self.open_seconds > 0.0).then(|| self.usage.booked_seconds / self.open_seconds)
    }
}

/// Every figure of the reports for one filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub usage: Vec<Occupancy>,
    /// Booked seconds, `[ISO weekday - 1][hour]`.
    pub heat: [[f64; 24]; 7],
    pub reasons: Vec<ReasonCount>,
    pub declines: Vec<DeclinesOfResource>,
    pub approvals: ApprovalStats,
    pub capacity: Vec<CapacityOfResource>,
    pub lead: LeadTime,
    pub organisations: Vec<OrganisationUsage>,
}

/// Reads every figure for `filter`.
pub async fn build(store: &Store, filter: &ReportFilter) -> Result<Report, StoreError> {
    let mut usage = Vec::new();
    for u in store.report_usage(filter).await? {
        let policy = store.effective_policy_of(u.resource_id).await?;
        let tz: Tz = u.time_zone.parse().unwrap_or(chrono_tz::Europe::Paris);
        let open_seconds = open_seconds(
            &policy.opening_hours.value,
            policy.closed_on_public_holidays.value,
            tz,
            filter.from,
            filter.to,
        );
        usage.push(Occupancy { usage: u, open_seconds });
    }
    let mut heat = [[0.0; 24]; 7];
    for c in store.report_heat_map(filter).await? {
        if let (Some(row), true) = (heat.get_mut((c.weekday as usize).wrapping_sub(1)), c.hour < 24) {
            row[c.hour as usize] += c.booked_seconds;
        }
    }
    Ok(Report {
        usage,
        heat,
        reasons: store.report_decline_reasons(filter).await?,
        declines: store.report_declines_by_resource(filter).await?,
        approvals: store.report_approvals(filter).await?,
        capacity: store.report_capacity(filter).await?,
        lead: store.report_lead_time(filter).await?,
        organisations: store.report_organisations(filter).await?,
    })
}

/// The instant a local wall-clock time of day `d` happens in `tz` (the
/// earlier one when the clock goes back, the first instant after the gap
/// when it jumps forward).
fn local_instant(tz: Tz, d: NaiveDate, seconds: u32) -> Option<DateTime<Utc>> {
    let naive = d.and_hms_opt(0, 0, 0)? + Duration::seconds(i64::from(seconds));
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            let later = naive + Duration::hours(1);
            tz.from_local_datetime(&later).earliest().map(|t| t.with_timezone(&Utc))
        }
    }
}

/// Seconds a resource with these opening hours is open within `[from, to)`.
pub fn open_seconds(
    hours: &WeeklyHours,
    closed_on_holidays: bool,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> f64 {
    if to <= from {
        return 0.0;
    }
    let first = from.with_timezone(&tz).date_naive();
    let last = to.with_timezone(&tz).date_naive();
    let mut total = 0.0;
    let mut day = first;
    while day <= last {
        if !(closed_on_holidays && french_public_holiday(day).is_some()) {
            for r in hours.day(day.weekday()) {
                let (s, e) = r.seconds();
                if let (Some(start), Some(end)) = (local_instant(tz, day, s), local_instant(tz, day, e)) {
                    let (start, end) = (start.max(from), end.min(to));
                    if end > start {
                        total += (end - start).num_seconds() as f64;
                    }
                }
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    total
}

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A number with this many decimals.
    Num(f64, usize),
    /// A ratio shown as a percentage; empty when unknown.
    Pct(Option<f64>),
}

impl Cell {
    /// As shown in the page.
    pub fn show(&self, lang: Lang) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => format::count(lang, *n),
            Cell::Num(v, d) => format::number(lang, *v, *d),
            Cell::Pct(Some(r)) => format::percent(lang, *r),
            Cell::Pct(None) => "—".into(),
        }
    }

    /// As written in a CSV file: numbers plain, percentages as numbers.
    pub fn csv(&self, lang: Lang) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(v, d) => format::csv_number(lang, *v, *d),
            Cell::Pct(Some(r)) => format::csv_number(lang, r * 100.0, 1),
            Cell::Pct(None) => String::new(),
        }
    }

    pub fn is_number(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }
}

/// A table: column headers, then rows; the first column heads each row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The CSV file of this table: a byte order mark, the headers, the rows.
    pub fn csv(&self, lang: Lang) -> Vec<u8> {
        let delimiter = match lang {
            Lang::Fr => b';',
            Lang::En => b',',
        };
        let mut out = "\u{FEFF}".as_bytes().to_vec();
        {
            let mut w = ::csv::WriterBuilder::new().delimiter(delimiter).from_writer(&mut out);
            // Writing to a Vec cannot fail.
            let _ = w.write_record(&self.headers);
            for row in &self.rows {
                let _ = w.write_record(row.iter().map(|c| c.csv(lang)));
            }
            let _ = w.flush();
        }
        out
    }
}

/// One report of the page: a title, what it counts, charts, a table, and the
/// name of its CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Anchor and CSV name: `occupancy`, `heat-map`, ….
    pub key: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    /// A one-line summary (median delays, …).
    pub summary: Option<String>,
    pub charts: Vec<Svg>,
    pub table: Table,
}

/// The names of the sections, in page order (also the CSV names).
pub const SECTIONS: &[&str] = &[
    "occupancy",
    "heat-map",
    "decline-reasons",
    "unmet-demand",
    "approvals",
    "capacity",
    "lead-time",
    "cancellations",
    "organisations",
];

fn headers(lang: Lang, keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| t(lang, k).to_owned()).collect()
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Report {
    /// Every section, in page order.
    pub fn sections(&self, lang: Lang) -> Vec<Section> {
        SECTIONS.iter().filter_map(|k| self.section(lang, k)).collect()
    }

    /// The section named `key`, if there is one.
    pub fn section(&self, lang: Lang, key: &str) -> Option<Section> {
        Some(match key {
            "occupancy" => self.occupancy(lang),
            "heat-map" => self.heat_map(lang),
            "decline-reasons" => self.decline_reasons(lang),
            "unmet-demand" => self.unmet_demand(lang),
            "approvals" => self.approvals(lang),
            "capacity" => self.capacity(lang),
            "lead-time" => self.lead_time(lang),
            "cancellations" => self.cancellations(lang),
            "organisations" => self.organisations(lang),
            _ => return None,
        })
    }

    /// Resources by occupancy, most used first (unknown rates last), then by name.
    pub fn by_occupancy(&self) -> Vec<&Occupancy> {
        let mut v: Vec<&Occupancy> = self.usage.iter().collect();
        v.sort_by(|a, b| {
            b.rate()
                .unwrap_or(-1.0)
                .total_cmp(&a.rate().unwrap_or(-1.0))
                .then_with(|| a.usage.name.cmp(&b.usage.name))
        });
        v
    }

    fn occupancy(&self, lang: Lang) -> Section {
        let ranked = self.by_occupancy();
        let bar = |o: &&Occupancy| Bar {
            label: o.usage.name.clone(),
            value: o.rate().unwrap_or(0.0),
            shown: Cell::Pct(o.rate()).show(lang),
        };
        let most: Vec<Bar> = ranked.iter().take(TOP).map(bar).collect();
        let mut least: Vec<Bar> = ranked.iter().rev().take(TOP).map(bar).collect();
        least.reverse();
        let max = ranked.iter().filter_map(|o| o.rate()).fold(1.0_f64, f64::max);
        let desc = t(lang, "occupancy.chart_desc");
        // The least used are a chart of their own only when the most used
        // chart cannot show every resource already.
        let mut charts = Vec::new();
        if !ranked.is_empty() {
            charts.push(svg::bar_chart(
                "occupancy-most",
                t(lang, "occupancy.most"),
                desc,
                &most,
                Some(max),
            ));
        }
        if ranked.len() > TOP {
            charts.push(svg::bar_chart(
                "occupancy-least",
                t(lang, "occupancy.least"),
                desc,
                &least,
                Some(max),
            ));
        }
        let rows = ranked
            .iter()
            .map(|o| {
                vec![
                    Cell::Text(o.usage.name.clone()),
                    Cell::Text(o.usage.site.clone()),
                    Cell::Text(o.usage.organisation.clone()),
                    Cell::Text(match lang {
                        Lang::Fr => o.usage.type_fr.clone(),
                        Lang::En => o.usage.type_en.clone(),
                    }),
                    Cell::Int(o.usage.accepted),
                    Cell::Num(o.usage.booked_seconds / 3600.0, 1),
                    Cell::Num(o.open_seconds / 3600.0, 1),
                    Cell::Pct(o.rate()),
                ]
            })
            .collect();
        Section {
            key: "occupancy",
            title: t(lang, "occupancy.title"),
            intro: t(lang, "occupancy.intro"),
            summary: None,
            charts,
            table: Table {
                headers: headers(
                    lang,
                    &[
                        "col.resource",
                        "col.site",
                        "col.organisation",
                        "col.type",
                        "col.occurrences",
                        "col.booked_hours",
                        "col.open_hours",
                        "col.occupancy",
                    ],
                ),
                rows,
            },
        }
    }

    fn heat_map(&self, lang: Lang) -> Section {
        let days: [&str; 7] = [
            t(lang, "day.1"),
            t(lang, "day.2"),
            t(lang, "day.3"),
            t(lang, "day.4"),
            t(lang, "day.5"),
            t(lang, "day.6"),
            t(lang, "day.7"),
        ];
        let any = self.heat.iter().flatten().any(|v| *v > 0.0);
        let charts = if any {
            vec![svg::heat_map(
                "heat-map",
                t(lang, "heat.title"),
                t(lang, "heat.chart_desc"),
                &days,
                &self.heat,
                |v| format!("{} h", format::hours(lang, v)),
            )]
        } else {
            Vec::new()
        };
        let mut head = vec![t(lang, "col.weekday").to_owned()];
        head.extend((0..24).map(|h| format!("{h} h")));
        let rows = self
            .heat
            .iter()
            .enumerate()
            .map(|(d, row)| {
                let mut cells = vec![Cell::Text(days[d].to_owned())];
                cells.extend(row.iter().map(|v| Cell::Num(v / 3600.0, 1)));
                cells
            })
            .collect();
        Section {
            key: "heat-map",
            title: t(lang, "heat.title"),
            intro: t(lang, "heat.intro"),
            summary: None,
            charts,
            table: Table { headers: head, rows },
        }
    }

    fn decline_reasons(&self, lang: Lang) -> Section {
        let bars: Vec<Bar> = self
            .reasons
            .iter()
            .map(|r| Bar {
                label: text::reason(lang, &r.code),
                value: r.requests as f64,
                shown: format::count(lang, r.requests),
            })
            .collect();
        Section {
            key: "decline-reasons",
            title: t(lang, "reasons.title"),
            intro: t(lang, "reasons.intro"),
            summary: None,
            charts: chart_if(!bars.is_empty(), || {
                svg::bar_chart(
                    "decline-reasons",
                    t(lang, "reasons.title"),
                    t(lang, "reasons.chart_desc"),
                    &bars,
                    None,
                )
            }),
            table: Table {
                headers: headers(lang, &["col.reason", "col.code", "col.requests"]),
                rows: self
                    .reasons
                    .iter()
                    .map(|r| {
                        vec![
                            Cell::Text(text::reason(lang, &r.code)),
                            Cell::Text(r.code.clone()),
                            Cell::Int(r.requests),
                        ]
                    })
                    .collect(),
            },
        }
    }

    fn unmet_demand(&self, lang: Lang) -> Section {
        let total = |d: &DeclinesOfResource| d.declined + d.partially + d.refused;
        let bars: Vec<Bar> = self
            .declines
            .iter()
            .take(2 * TOP)
            .map(|d| Bar {
                label: d.name.clone(),
                value: total(d) as f64,
                shown: format::count(lang, total(d)),
            })
            .collect();
        Section {
            key: "unmet-demand",
            title: t(lang, "declines.title"),
            intro: t(lang, "declines.intro"),
            summary: None,
            charts: chart_if(!bars.is_empty(), || {
                svg::bar_chart(
                    "unmet-demand",
                    t(lang, "declines.title"),
                    t(lang, "declines.chart_desc"),
                    &bars,
                    None,
                )
            }),
            table: Table {
                headers: headers(
                    lang,
                    &[
                        "col.resource",
                        "col.declined",
                        "col.partially",
                        "col.refused",
                        "col.total",
                    ],
                ),
                rows: self
                    .declines
                    .iter()
                    .map(|d| {
                        vec![
                            Cell::Text(d.name.clone()),
                            Cell::Int(d.declined),
                            Cell::Int(d.partially),
                            Cell::Int(d.refused),
                            Cell::Int(total(d)),
                        ]
                    })
                    .collect(),
            },
        }
    }

    fn approvals(&self, lang: Lang) -> Section {
        let a = &self.approvals;
        let hours = |s: Option<f64>| match s {
            Some(s) => Cell::Num(s / 3600.0, 1),
            None => Cell::Text(String::new()),
        };
        let bars = vec![
            Bar {
                label: t(lang, "col.approved").into(),
                value: a.approved as f64,
                shown: format::count(lang, a.approved),
            },
            Bar {
                label: t(lang, "col.refused").into(),
                value: a.refused as f64,
                shown: format::count(lang, a.refused),
            },
            Bar {
                label: t(lang, "col.undecided").into(),
                value: a.undecided as f64,
                shown: format::count(lang, a.undecided),
            },
        ];
        Section {
            key: "approvals",
            title: t(lang, "approvals.title"),
            intro: t(lang, "approvals.intro"),
            summary: None,
            charts: chart_if(a.held > 0, || {
                svg::bar_chart(
                    "approvals",
                    t(lang, "approvals.title"),
                    t(lang, "approvals.chart_desc"),
                    &bars,
                    None,
                )
            }),
            table: Table {
                headers: headers(
                    lang,
                    &[
                        "col.held",
                        "col.approved",
                        "col.refused",
                        "col.undecided",
                        "col.mean_hours",
                        "col.median_hours",
                        "col.max_hours",
                    ],
                ),
                rows: vec![vec![
                    Cell::Int(a.held),
                    Cell::Int(a.approved),
                    Cell::Int(a.refused),
                    Cell::Int(a.undecided),
                    hours(a.mean_seconds),
                    hours(a.median_seconds),
                    hours(a.max_seconds),
                ]],
            },
        }
    }

    fn capacity(&self, lang: Lang) -> Section {
        let keys = [
            "col.fill_25",
            "col.fill_50",
            "col.fill_75",
            "col.fill_100",
            "col.fill_over",
        ];
        let mut sums = [0i64; 5];
        for c in &self.capacity {
            for (s, b) in sums.iter_mut().zip(c.buckets) {
                *s += b;
            }
        }
        let bars: Vec<Bar> = keys
            .iter()
            .zip(sums)
            .map(|(k, n)| Bar {
                label: t(lang, k).into(),
                value: n as f64,
                shown: format::count(lang, n),
            })
            .collect();
        let mut head = headers(
            lang,
            &[
                "col.resource",
                "col.capacity",
                "col.occurrences",
                "col.mean_attendees",
                "col.fill",
            ],
        );
        head.extend(headers(lang, &keys));
        Section {
            key: "capacity",
            title: t(lang, "capacity.title"),
            intro: t(lang, "capacity.intro"),
            summary: None,
            charts: chart_if(!self.capacity.is_empty(), || {
                svg::bar_chart(
                    "capacity",
                    t(lang, "capacity.title"),
                    t(lang, "capacity.chart_desc"),
                    &bars,
                    None,
                )
            }),
            table: Table {
                headers: head,
                rows: self
                    .capacity
                    .iter()
                    .map(|c| {
                        let mut row = vec![
                            Cell::Text(c.name.clone()),
                            Cell::Int(i64::from(c.capacity)),
                            Cell::Int(c.occurrences),
                            Cell::Num(c.mean_attendees, 1),
                            Cell::Pct((c.capacity > 0).then(|| c.mean_attendees / f64::from(c.capacity))),
                        ];
                        row.extend(c.buckets.iter().map(|n| Cell::Int(*n)));
                        row
                    })
                    .collect(),
            },
        }
    }

    fn lead_time(&self, lang: Lang) -> Section {
        let l = &self.lead;
        let keys = ["col.lead_1", "col.lead_7", "col.lead_30", "col.lead_more"];
        let bars: Vec<Bar> = keys
            .iter()
            .zip(l.buckets)
            .map(|(k, n)| Bar {
                label: t(lang, k).into(),
                value: n as f64,
                shown: format::count(lang, n),
            })
            .collect();
        let summary = l.median_seconds.map(|m| {
            format!(
                "{} : {}",
                t(lang, "col.median_days"),
                format::number(lang, m / 86400.0, 1)
            )
        });
        Section {
            key: "lead-time",
            title: t(lang, "lead.title"),
            intro: t(lang, "lead.intro"),
            summary,
            charts: chart_if(l.occurrences > 0, || {
                svg::bar_chart(
                    "lead-time",
                    t(lang, "lead.title"),
                    t(lang, "lead.chart_desc"),
                    &bars,
                    None,
                )
            }),
            table: Table {
                headers: headers(lang, &["col.lead", "col.occurrences", "col.share"]),
                rows: keys
                    .iter()
                    .zip(l.buckets)
                    .map(|(k, n)| {
                        vec![
                            Cell::Text(t(lang, k).into()),
                            Cell::Int(n),
                            Cell::Pct(ratio(n, l.occurrences)),
                        ]
                    })
                    .collect(),
            },
        }
    }

    fn cancellations(&self, lang: Lang) -> Section {
        let mut rows: Vec<&Occupancy> = self
            .usage
            .iter()
            .filter(|o| o.usage.accepted + o.usage.cancelled + o.usage.released > 0)
            .collect();
        let all = |o: &Occupancy| o.usage.accepted + o.usage.cancelled + o.usage.released;
        rows.sort_by(|a, b| {
            ratio(b.usage.cancelled, all(b))
                .unwrap_or(0.0)
                .total_cmp(&ratio(a.usage.cancelled, all(a)).unwrap_or(0.0))
                .then_with(|| a.usage.name.cmp(&b.usage.name))
        });
        let bars: Vec<Bar> = rows
            .iter()
            .filter(|o| o.usage.cancelled > 0)
            .take(2 * TOP)
            .map(|o| {
                let r = ratio(o.usage.cancelled, all(o));
                Bar {
                    label: o.usage.name.clone(),
                    value: r.unwrap_or(0.0),
                    shown: Cell::Pct(r).show(lang),
                }
            })
            .collect();
        Section {
            key: "cancellations",
            title: t(lang, "cancellations.title"),
            intro: t(lang, "cancellations.intro"),
            summary: None,
            charts: chart_if(!bars.is_empty(), || {
                svg::bar_chart(
                    "cancellations",
                    t(lang, "cancellations.title"),
                    t(lang, "cancellations.chart_desc"),
                    &bars,
                    None,
                )
            }),
            table: Table {
                headers: headers(
                    lang,
                    &[
                        "col.resource",
                        "col.accepted",
                        "col.cancelled",
                        "col.released",
                        "col.cancel_rate",
                        "col.noshow_rate",
                    ],
                ),
                rows: rows
                    .iter()
                    .map(|o| {
                        vec![
                            Cell::Text(o.usage.name.clone()),
                            Cell::Int(o.usage.accepted),
                            Cell::Int(o.usage.cancelled),
                            Cell::Int(o.usage.released),
                            Cell::Pct(ratio(o.usage.cancelled, all(o))),
                            Cell::Pct(ratio(o.usage.released, all(o))),
                        ]
                    })
                    .collect(),
            },
        }
    }

    fn organisations(&self, lang: Lang) -> Section {
        let total: f64 = self.organisations.iter().map(|o| o.booked_seconds).sum();
        let share = |o: &OrganisationUsage| (total > 0.0).then(|| o.booked_seconds / total);
        let name = |o: &OrganisationUsage| {
            o.name
                .clone()
                .unwrap_or_else(|| t(lang, "organisations.outside").to_owned())
        };
        let bars: Vec<Bar> = self
            .organisations
            .iter()
            .map(|o| Bar {
                label: name(o),
                value: share(o).unwrap_or(0.0),
                shown: Cell::Pct(share(o)).show(lang),
            })
            .collect();
        Section {
            key: "organisations",
            title: t(lang, "organisations.title"),
            intro: t(lang, "organisations.intro"),
            summary: None,
            charts: chart_if(!bars.is_empty(), || {
                svg::bar_chart(
                    "organisations",
                    t(lang, "organisations.title"),
                    t(lang, "organisations.chart_desc"),
                    &bars,
                    Some(1.0),
                )
            }),
            table: Table {
                headers: headers(
                    lang,
                    &[
                        "col.organisation",
                        "col.booked_hours",
                        "col.share",
                        "col.occurrences",
                        "col.bookings",
                        "col.kilometres",
                    ],
                ),
                rows: self
                    .organisations
                    .iter()
                    .map(|o| {
                        vec![
                            Cell::Text(name(o)),
                            Cell::Num(o.booked_seconds / 3600.0, 1),
                            Cell::Pct(share(o)),
                            Cell::Int(o.occurrences),
                            Cell::Int(o.bookings),
                            Cell::Int(o.kilometres),
                        ]
                    })
                    .collect(),
            },
        }
    }
}

fn chart_if(cond: bool, draw: impl FnOnce() -> Svg) -> Vec<Svg> {
    if cond { vec![draw()] } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::TimeRange;
    use chrono::Weekday;

    fn paris(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Paris
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
    }

    #[test]
    fn open_hours_over_a_week_with_a_holiday_and_clipped_ends() {
        let office = WeeklyHours::office();
        let tz = chrono_tz::Europe::Paris;
        // Monday 30 November to Monday 7 December 2026: five days of ten hours.
        assert_eq!(
            open_seconds(&office, false, tz, paris(2026, 11, 30, 0), paris(2026, 12, 7, 0)),
            50.0 * 3600.0
        );
        // Starting Monday at noon leaves six hours of Monday.
        assert_eq!(
            open_seconds(&office, false, tz, paris(2026, 11, 30, 12), paris(2026, 12, 1, 0)),
            6.0 * 3600.0
        );
        // Christmas 2026 is a Friday: closed when the resource closes on holidays.
        let week = (paris(2026, 12, 21, 0), paris(2026, 12, 28, 0));
        assert_eq!(open_seconds(&office, false, tz, week.0, week.1), 50.0 * 3600.0);
        assert_eq!(open_seconds(&office, true, tz, week.0, week.1), 40.0 * 3600.0);
        // Always open, over the night the clocks go back (25 hours).
        let always = WeeklyHours::always();
        assert_eq!(
            open_seconds(&always, false, tz, paris(2026, 10, 25, 0), paris(2026, 10, 26, 0)),
            25.0 * 3600.0
        );
        let mornings = WeeklyHours::uniform(&[Weekday::Sat], TimeRange::hm((9, 0), (12, 0)).expect("valid"));
        assert_eq!(
            open_seconds(&mornings, false, tz, paris(2026, 11, 30, 0), paris(2026, 12, 7, 0)),
            3.0 * 3600.0
        );
        assert_eq!(
            open_seconds(&office, false, tz, paris(2026, 12, 7, 0), paris(2026, 11, 30, 0)),
            0.0
        );
    }

    fn usage(name: &str, booked_hours: f64, accepted: i64, cancelled: i64) -> Occupancy {
        Occupancy {
            usage: ResourceUsage {
                resource_id: uuid::Uuid::nil(),
                name: name.into(),
                site: "Siège".into(),
                organisation: "Plaine Commune".into(),
                type_fr: "Salle".into(),
                type_en: "Room".into(),
                category: "room".into(),
                capacity: Some(10),
                time_zone: "Europe/Paris".into(),
                booked_seconds: booked_hours * 3600.0,
                accepted,
                cancelled,
                released: 0,
            },
            open_seconds: 100.0 * 3600.0,
        }
    }

    fn report() -> Report {
        Report {
            usage: vec![usage("Salle A", 25.0, 10, 0), usage("Salle B", 50.0, 20, 5)],
            heat: [[0.0; 24]; 7],
            reasons: vec![ReasonCount {
                code: "conflict".into(),
                requests: 3,
            }],
            declines: Vec::new(),
            approvals: ApprovalStats {
                held: 0,
                approved: 0,
                refused: 0,
                undecided: 0,
                mean_seconds: None,
                median_seconds: None,
                max_seconds: None,
            },
            capacity: Vec::new(),
            lead: LeadTime {
                occurrences: 0,
                buckets: [0; 4],
                median_seconds: None,
                mean_seconds: None,
            },
            organisations: Vec::new(),
        }
    }

    #[test]
    fn sections_rank_resources_and_speak_the_page_language() {
        let r = report();
        let fr = r.section(Lang::Fr, "occupancy").expect("section");
        assert_eq!(fr.table.rows[0][0], Cell::Text("Salle B".into()));
        assert_eq!(fr.table.rows[0][7].show(Lang::Fr), "50,0\u{202F}%");
        assert_eq!(fr.table.rows[1][7].show(Lang::En), "25.0%");
        assert_eq!(fr.charts.len(), 1, "two resources fit in the most used chart");
        let csv = String::from_utf8(fr.table.csv(Lang::Fr)).expect("utf-8");
        assert!(csv.starts_with("\u{FEFF}Ressource;Site;"), "{csv}");
        assert!(
            csv.contains("Salle B;Siège;Plaine Commune;Salle;20;50,0;100,0;50,0\n"),
            "{csv}"
        );
        let en = String::from_utf8(r.section(Lang::En, "occupancy").expect("s").table.csv(Lang::En)).expect("utf-8");
        assert!(
            en.contains("Salle B,Siège,Plaine Commune,Room,20,50.0,100.0,50.0\n"),
            "{en}"
        );
        let reasons = r.section(Lang::Fr, "decline-reasons").expect("section");
        assert_eq!(reasons.table.rows[0][0], Cell::Text("Créneau déjà pris".into()));
        // Empty reports draw no chart but keep their (empty) table.
        assert!(r.section(Lang::Fr, "approvals").expect("s").charts.is_empty());
        assert!(r.section(Lang::Fr, "nothing").is_none());
        assert_eq!(r.sections(Lang::En).len(), SECTIONS.len());
        let cancel = r.section(Lang::Fr, "cancellations").expect("s");
        assert_eq!(cancel.table.rows[0][4].show(Lang::Fr), "20,0\u{202F}%");
    }
}
