//! The reports page for managers and administrators, and its CSV downloads.
//!
//! One GET form chooses the period (dates in Paris time, both included) and
//! narrows by organisation, site, resource type or resource; the page then
//! shows every report of `crate::reports` with its charts and tables, each
//! table downloadable as CSV with the same filters. A manager sees only the
//! resources they manage; an administrator sees all. A wrong filter shows the
//! form again with what was typed and a message, never an empty report.

use super::{Base, render};
use crate::reports::text::t;
use crate::reports::{self, Section};
use crate::store::reports::{FilterChoice, ReportFilter};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role, User};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// The longest period a report covers.
const MAX_DAYS: i64 = 3660;
/// The period shown when none is chosen: the last 30 days.
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    organisation: Option<String>,
    site: Option<String>,
    #[serde(rename = "type")]
    resource_type: Option<String>,
    resource: Option<String>,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// The labels the template needs, in the page's language.
struct Texts(crate::domain::Lang);

impl Texts {
    fn t(&self, key: &str) -> &'static str {
        t(self.0, key)
    }
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    base: Base,
    l: Texts,
    from: String,
    to: String,
    organisations: Vec<Choice>,
    sites: Vec<Choice>,
    types: Vec<Choice>,
    resources: Vec<Choice>,
    error: Option<&'static str>,
    sections: Vec<SectionView>,
    /// The filters as a query string, for the CSV links.
    query: String,
}

struct SectionView {
    key: &'static str,
    title: &'static str,
    intro: &'static str,
    summary: Option<String>,
    charts: Vec<reports::svg::Svg>,
    headers: Vec<String>,
    rows: Vec<Vec<CellView>>,
}

struct CellView {
    text: String,
    number: bool,
}

impl SectionView {
    fn new(s: Section, lang: crate::domain::Lang) -> SectionView {
        SectionView {
            key: s.key,
            title: s.title,
            intro: s.intro,
            summary: s.summary,
            charts: s.charts,
            headers: s.table.headers,
            rows: s
                .table
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|c| CellView {
                            text: c.show(lang),
                            number: c.is_number(),
                        })
                        .collect()
                })
                .collect(),
        }
    }
}

/// The resources a manager may see; `None` for an administrator (all).
async fn visible(state: &WebState, user: &User) -> Result<Option<Vec<Uuid>>> {
    if user.role >= Role::Admin {
        return Ok(None);
    }
    Ok(Some(
        state
            .store
            .list_resources()
            .await?
            .iter()
            .filter(|r| user.manages(r))
            .map(|r| r.id)
            .collect(),
    ))
}

fn paris_midnight(d: NaiveDate) -> Option<DateTime<Utc>> {
    chrono_tz::Europe::Paris
        .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn uuid_of(s: &Option<String>) -> std::result::Result<Option<Uuid>, ()> {
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ()),
    }
}

/// The filter the query asks for, or the reason it cannot be used.
fn filter_of(q: &ReportQuery, today: NaiveDate, visible: Option<Vec<Uuid>>) -> std::result::Result<ReportFilter, ()> {
    let date = |s: &Option<String>, default: NaiveDate| match s.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| ()),
    };
    let to = date(&q.to, today)?;
    let from = date(&q.from, to - Duration::days(DEFAULT_DAYS - 1))?;
    let days = (to - from).num_days();
    if !(0..MAX_DAYS).contains(&days) {
        return Err(());
    }
    Ok(ReportFilter {
        from: paris_midnight(from).ok_or(())?,
        to: paris_midnight(to + Duration::days(1)).ok_or(())?,
        organisation_id: uuid_of(&q.organisation)?,
        site_id: uuid_of(&q.site)?,
        resource_type_id: uuid_of(&q.resource_type)?,
        resource_id: uuid_of(&q.resource)?,
        visible,
    })
}

fn choices(list: &[FilterChoice], selected: &Option<String>) -> Vec<Choice> {
    let selected = selected.as_deref().map(str::trim).unwrap_or_default();
    list.iter()
        .map(|c| Choice {
            value: c.id.to_string(),
            label: c.name.clone(),
            selected: c.id.to_string() == selected,
        })
        .collect()
}

fn query_string(filter: &ReportFilter) -> String {
    let paris = |t: DateTime<Utc>| t.with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let mut parts = vec![
        format!("from={}", paris(filter.from)),
        format!("to={}", paris(filter.to) - Duration::days(1)),
    ];
    for (name, id) in [
        ("organisation", filter.organisation_id),
        ("site", filter.site_id),
        ("type", filter.resource_type_id),
        ("resource", filter.resource_id),
    ] {
        if let Some(id) = id {
            parts.push(format!("{name}={id}"));
        }
    }
    parts.join("&")
}

pub async fn page(State(state): State<WebState>, ctx: Ctx, Query(q): Query<ReportQuery>) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let lang = ctx.lang.domain();
    let today = state.clock.now().with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let visible = visible(&state, user).await?;
    let options = state.store.report_filter_choices(visible.as_deref()).await?;
    let filter = filter_of(&q, today, visible);
    let (sections, error, query, from, to) = match &filter {
        Ok(f) => {
            let report = reports::build(&state.store, f).await?;
            let sections = report
                .sections(lang)
                .into_iter()
                .map(|s| SectionView::new(s, lang))
                .collect();
            let paris = |t: DateTime<Utc>| t.with_timezone(&chrono_tz::Europe::Paris).date_naive();
            (
                sections,
                None,
                query_string(f),
                paris(f.from).to_string(),
                (paris(f.to) - Duration::days(1)).to_string(),
            )
        }
        Err(()) => (
            Vec::new(),
            Some(t(lang, "reports.bad_range")),
            String::new(),
            q.from.clone().unwrap_or_default(),
            q.to.clone().unwrap_or_default(),
        ),
    };
    let types = match ctx.lang {
        Lang::Fr => &options.types_fr,
        Lang::En => &options.types_en,
    };
    let mut base = Base::new(&ctx, "nav.reports");
    base.title = t(lang, "reports.title").to_owned();
    let page = ReportsPage {
        base,
        l: Texts(lang),
        from,
        to,
        organisations: choices(&options.organisations, &q.organisation),
        sites: choices(&options.sites, &q.site),
        types: choices(types, &q.resource_type),
        resources: choices(&options.resources, &q.resource),
        error,
        sections,
        query,
    };
    let mut response = render(&page)?;
    if filter.is_err() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// `GET /reports/{name}.csv`: one report's table as CSV, same filters.
pub async fn csv(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(file): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response> {
    let user = ctx.require(Role::Manager)?;
    let lang = ctx.lang.domain();
    let Some(name) = file.strip_suffix(".csv").filter(|n| reports::SECTIONS.contains(n)) else {
        return Err(WebError::NotFound);
    };
    let today = state.clock.now().with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let visible = visible(&state, user).await?;
    let filter =
        filter_of(&q, today, visible).map_err(|()| WebError::BadRequest(t(lang, "reports.bad_range").to_owned()))?;
    let report = reports::build(&state.store, &filter).await?;
    let Some(section) = report.section(lang, name) else {
        return Err(WebError::NotFound);
    };
    let paris = |t: DateTime<Utc>| t.with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let download = format!(
        "attachment; filename=\"resa-{name}-{}-{}.csv\"",
        paris(filter.from),
        paris(filter.to) - Duration::days(1)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, download),
        ],
        section.table.csv(lang),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: &str, to: &str) -> ReportQuery {
        ReportQuery {
            from: Some(from.into()),
            to: Some(to.into()),
            ..ReportQuery::default()
        }
    }

    #[test]
    fn the_period_is_read_in_paris_time_with_both_days_included() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 15).expect("date");
        let f = filter_of(&q("2026-12-01", "2026-12-07"), today, None).expect("valid");
        assert_eq!(f.from.to_rfc3339(), "2026-11-30T23:00:00+00:00");
        assert_eq!(f.to.to_rfc3339(), "2026-12-07T23:00:00+00:00");
        let f = filter_of(&ReportQuery::default(), today, None).expect("default");
        assert_eq!(f.from.to_rfc3339(), "2026-11-15T23:00:00+00:00");
        assert!(filter_of(&q("2026-12-08", "2026-12-07"), today, None).is_err());
        assert!(filter_of(&q("1er décembre", "2026-12-07"), today, None).is_err());
        assert!(filter_of(&q("2000-01-01", "2026-12-07"), today, None).is_err());
        let bad_site = ReportQuery {
            site: Some("nope".into()),
            ..ReportQuery::default()
        };
        assert!(filter_of(&bad_site, today, None).is_err());
    }
}
