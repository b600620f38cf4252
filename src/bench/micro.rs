//! Micro-measurements of what a decision is made of: parsing a full
//! SyncFolderItems page (512 changes), deciding on a policy, expanding a
//! weekly series over two years, the conflict check on a resource that holds
//! 10,000 bookings, and the report queries over a million bookings. Then the
//! same SyncFolderItems page parsed by exchangelib, as a reference point.

use super::report::{Micro, Timing};
use super::{BenchResult, err};
use crate::domain::decision::{BookingRequest, DecisionInput, Organiser, ResourceInfo, When, decide};
use crate::domain::policy::{DefaultRight, EffectivePolicy, Policy, Scope, ScopeChain, TimeRange, WeeklyHours};
use crate::domain::reason::ResourceKind;
use crate::domain::recurrence::{Pattern, Recurrence, RecurrenceRange, local_to_utc};
use crate::domain::rights::{Grant, Role, Subject};
use crate::domain::rules::Occupied;
use crate::ews::item::{BaseShape, Shape};
use crate::ews::ops::sync_folder_items::{Change, SyncFolderItems, SyncFolderItemsResponse, SyncFolderItemsResult};
use crate::ews::soap::{ResponseMessage, ResponseMessages, ServerVersion, ServerVersionInfo};
use crate::sim::state::{FolderKind, MailboxInfo, MailboxKind, MeetingInput, Routing, World};
use crate::store::Store;
use crate::store::bookings::{BookingStatus, NewBooking, NewOccurrence, OccurrenceStatus, Source};
use crate::store::requests::IncomingRequest;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use std::future::Future;
use std::path::Path;
use uuid::Uuid;

/// Median and fastest of `iterations` runs of `f`, each run being `batch`
/// calls (for operations too short to time one by one).
fn time_sync(name: &str, note: &str, iterations: usize, batch: usize, mut f: impl FnMut()) -> Timing {
    let mut ms = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = crate::clock::monotonic();
        for _ in 0..batch {
            f();
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0 / batch as f64);
    }
    summarise(name, note, iterations, ms)
}

async fn time_async<F, Fut>(name: &str, note: &str, iterations: usize, mut f: F) -> BenchResult<Timing>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = BenchResult<()>>,
{
    let mut ms = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let t = crate::clock::monotonic();
        f(i).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(summarise(name, note, iterations, ms))
}

fn summarise(name: &str, note: &str, iterations: usize, mut ms: Vec<f64>) -> Timing {
    ms.sort_by(f64::total_cmp);
    Timing {
        name: name.to_owned(),
        iterations,
        median_ms: ms.get(ms.len() / 2).copied().unwrap_or(0.0),
        min_ms: ms.first().copied().unwrap_or(0.0),
        note: note.to_owned(),
    }
}

const ROOM: &str = "salle.bench@bench.resa.test";
const ORGANISER: &str = "agent.bench@bench.resa.test";

/// A SyncFolderItems response with 512 new meeting requests in a room's
/// Inbox, as the simulator renders it for `shape` (the EWS writer and the
/// simulator's renderer are the project's own, checked against the schema
/// by the EWS tests).
pub fn sync_response_512(shape: BaseShape) -> BenchResult<Vec<u8>> {
    let mut world = World::new(1);
    for (smtp, kind) in [(ROOM, MailboxKind::Room), (ORGANISER, MailboxKind::User)] {
        world
            .add_mailbox(MailboxInfo {
                smtp: smtp.into(),
                name: smtp.split('@').next().unwrap_or(smtp).into(),
                kind,
                legacy_dn: String::new(),
                routing: Routing::default(),
            })
            .map_err(err("simulator"))?;
    }
    let now = local_to_utc(
        chrono_tz::Europe::Paris,
        NaiveDate::from_ymd_opt(2026, 11, 2)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .unwrap_or_default(),
    );
    for i in 0..512i64 {
        let start = now + Duration::days(1 + i / 8) + Duration::hours(i % 8);
        world
            .invite(
                ORGANISER,
                MeetingInput {
                    subject: format!("Comité de pilotage n° {i}"),
                    body: "Ordre du jour : budget, calendrier, questions diverses.".into(),
                    location: Some("Salle Bench".into()),
                    start,
                    end: start + Duration::hours(1),
                    time_zone: "Europe/Paris".into(),
                    required: vec!["collegue@bench.resa.test".into()],
                    resources: vec![ROOM.into()],
                    recurrence: (i % 10 == 0).then(|| "FREQ=WEEKLY;BYDAY=MO;COUNT=20".to_owned()),
                    ..MeetingInput::default()
                },
                now,
            )
            .map_err(err("simulator"))?;
    }
    let version = ServerVersion::Exchange2016;
    let shape = Shape::new(shape);
    let mb = world.mailbox(ROOM).map_err(err("simulator"))?;
    let sync = world.sync(ROOM, FolderKind::Inbox, 0, 512).map_err(err("simulator"))?;
    let mut changes = Vec::new();
    for c in sync.changes {
        if let crate::sim::state::SyncChange::Create(no) = c
            && let Some(stored) = mb.items.get(&no)
        {
            changes.push(Change::Create(crate::sim::render::item(
                &world, &mb.info, stored, None, &shape, version,
            )));
        }
    }
    let response = SyncFolderItemsResponse(ResponseMessages {
        messages: vec![ResponseMessage::success(SyncFolderItemsResult {
            sync_state: crate::sim::render::sync_state(world.epoch, ROOM, FolderKind::Inbox, sync.seq),
            includes_last_item_in_range: sync.includes_last,
            changes,
        })],
    });
    let info = ServerVersionInfo {
        major_version: 15,
        minor_version: 1,
        major_build_number: 2507,
        minor_build_number: 6,
        version: Some("V2017_07_11".into()),
    };
    crate::ews::soap::write_response(&response, Some(&info), version).map_err(err("EWS writer"))
}

fn parse_512(bytes: &[u8]) -> BenchResult<usize> {
    let (_, resp) = crate::ews::soap::read_response::<SyncFolderItems>(bytes, bytes.len() * 2)
        .map_err(err("parsing SyncFolderItems"))?;
    let result = resp.0.into_single().map_err(err("SyncFolderItems"))?;
    Ok(result.changes.len())
}

const ORG: Uuid = Uuid::from_u128(0xb0);
const SITE: Uuid = Uuid::from_u128(0xb1);
const TYPE: Uuid = Uuid::from_u128(0xb2);
const RESOURCE: Uuid = Uuid::from_u128(0xb3);
const GROUP: Uuid = Uuid::from_u128(0xb4);
const PERSON: Uuid = Uuid::from_u128(0xb5);

fn paris(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    local_to_utc(chrono_tz::Europe::Paris, date.and_hms_opt(h, m, 0).unwrap_or_default())
}

/// The bench's policies (those of `load`), an organiser with the right to
/// book, and a busy day around the request: what one decision weighs.
fn decision_input(when: When, day: NaiveDate, now: DateTime<Utc>) -> DecisionInput {
    let chain = ScopeChain {
        organisation: Some(ORG),
        site: Some(SITE),
        resource_type: Some(TYPE),
        resource: RESOURCE,
    };
    let weekdays = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
    let global = Policy {
        default_right: Some(DefaultRight::None),
        booking_window_days: Some(400),
        closed_on_public_holidays: Some(true),
        conflict_max_count: Some(3),
        conflict_max_percent: Some(20),
        ..Policy::default()
    };
    let rooms = Policy {
        opening_hours: TimeRange::hm((8, 0), (20, 0)).map(|h| WeeklyHours::uniform(&weekdays, h)),
        max_duration_minutes: Some(240),
        enforce_capacity: Some(true),
        ..Policy::default()
    };
    let policy = EffectivePolicy::resolve(&chain, [(Scope::Global, &global), (Scope::ResourceType(TYPE), &rooms)]);
    let occupancy = [8u32, 9, 11, 14, 16]
        .iter()
        .map(|h| Occupied {
            booking: Uuid::from_u128(0xc0 + u128::from(*h)),
            start: paris(day, *h, 0),
            end: paris(day, *h, 45),
            buffer_before: Duration::zero(),
            buffer_after: Duration::zero(),
            organiser_name: Some("Agent".into()),
        })
        .collect();
    DecisionInput {
        now,
        request: BookingRequest {
            organiser: Organiser::Known {
                person: PERSON,
                groups: vec![GROUP],
            },
            attendees: 6,
            when,
            replaces: None,
        },
        resource: ResourceInfo {
            chain,
            kind: ResourceKind::Room,
            capacity: Some(12),
            tz: chrono_tz::Europe::Paris,
        },
        policy,
        grants: vec![Grant {
            id: Uuid::from_u128(0xd0),
            subject: Subject::Group(GROUP),
            scope: Scope::Site(SITE),
            role: Role::Book,
        }],
        occupancy,
        quota_bookings: Vec::new(),
        blackouts: Vec::new(),
        licence: None,
    }
}

fn weekly(start: NaiveDate, range: RecurrenceRange) -> Recurrence {
    Recurrence {
        pattern: Pattern::Weekly {
            interval: 1,
            days: vec![Weekday::Tue],
            first_day_of_week: Weekday::Mon,
        },
        range,
        start_date: start,
        start_time: NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default(),
        duration: Duration::hours(1),
        tz: chrono_tz::Europe::Paris,
        deleted: Default::default(),
        modified: Vec::new(),
    }
}

/// One room of the bench's site 1 (where agents may book) holding 10,000
/// accepted one-hour bookings, every hour from `from` on; returns the room.
async fn busy_resource(store: &Store, from: DateTime<Utc>, now: DateTime<Utc>) -> BenchResult<Uuid> {
    let site = store
        .site_by_slugs("bench", "site-1")
        .await
        .map_err(err("PostgreSQL"))?
        .ok_or("the bench site is missing")?;
    let room_type = store
        .resource_type_by_slug("salle")
        .await
        .map_err(err("PostgreSQL"))?
        .ok_or("the room type is missing")?;
    let r = store
        .create_resource(&crate::store::catalogue::NewResource {
            site_id: site,
            resource_type_id: room_type,
            name: "Salle très demandée",
            mailbox_smtp: ROOM,
            exchange_endpoint: "sim",
            capacity: Some(12),
        })
        .await
        .map_err(err("PostgreSQL"))?;
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 8i64;
    for w in 0..workers {
        let store = store.clone();
        let resource = r.id;
        tasks.spawn(async move {
            for i in (w..10_000).step_by(workers as usize) {
                let start = from + Duration::hours(i);
                let uid = format!("bench-busy-{i}");
                store
                    .insert_booking(
                        &NewBooking {
                            resource_id: resource,
                            uid: &uid,
                            source: Source::Exchange,
                            organiser_person_id: None,
                            organiser_address: "occupant@bench.resa.test",
                            organiser_name: Some("Occupant"),
                            subject: Some("Réunion"),
                            attendee_count: Some(4),
                            sequence: 0,
                            time_zone: "Europe/Paris",
                            status: BookingStatus::Accepted,
                            requested_at: now,
                        },
                        &[NewOccurrence::plain(
                            start,
                            start + Duration::hours(1),
                            OccurrenceStatus::Accepted,
                        )],
                    )
                    .await
                    .map_err(err("PostgreSQL"))?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(err("setup"))??;
    }
    Ok(r.id)
}

pub async fn run(
    store: &Store,
    cluster: &crate::devdb::Cluster,
    report_bookings: u64,
    work: &Path,
    exchangelib_python: Option<&Path>,
    progress: &(dyn Fn(&str) + Sync),
) -> BenchResult<Micro> {
    let mut timings = Vec::new();

    // Parsing a full SyncFolderItems page.
    let ids = sync_response_512(BaseShape::IdOnly)?;
    let full = sync_response_512(BaseShape::AllProperties)?;
    for (bytes, label) in [(&ids, "IdOnly"), (&full, "AllProperties")] {
        let changes = parse_512(bytes)?;
        if changes != 512 {
            return Err(format!("the {label} response holds {changes} changes, not 512"));
        }
        let mut failed = None;
        timings.push(time_sync(
            &format!("SyncFolderItems 512 changements ({label}, {} Ko)", bytes.len() / 1024),
            "read_response: XML, SOAP envelope, typed items",
            30,
            1,
            || {
                if let Err(e) = parse_512(bytes) {
                    failed = Some(e);
                }
            },
        ));
        if let Some(e) = failed {
            return Err(e);
        }
    }

    // Deciding.
    let now = local_to_utc(
        chrono_tz::Europe::Paris,
        NaiveDate::from_ymd_opt(2026, 11, 2)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .unwrap_or_default(),
    );
    let day = NaiveDate::from_ymd_opt(2026, 11, 10).unwrap_or_default();
    let single = decision_input(
        When::Single {
            start: paris(day, 10, 0),
            end: paris(day, 11, 0),
        },
        day,
        now,
    );
    timings.push(time_sync(
        "décision, réunion simple / policy, single meeting",
        "domain::decide: rights, 20 rules, 5 slots held that day",
        30,
        200,
        || {
            std::hint::black_box(decide(std::hint::black_box(&single)));
        },
    ));
    let series = decision_input(
        When::Series(Box::new(weekly(day, RecurrenceRange::Numbered(52)))),
        day,
        now,
    );
    timings.push(time_sync(
        "décision, série hebdomadaire 1 an / weekly series, 1 year",
        "domain::decide over 52 occurrences",
        30,
        20,
        || {
            std::hint::black_box(decide(std::hint::black_box(&series)));
        },
    ));
    let two_years = weekly(day, RecurrenceRange::NoEnd);
    let until = paris(day, 0, 0) + Duration::days(730);
    let expanded = two_years.expand(until).map(|e| e.occurrences.len()).unwrap_or(0);
    timings.push(time_sync(
        &format!("série hebdomadaire sur 2 ans ({expanded} occurrences)"),
        "Recurrence::expand, Europe/Paris with its DST changes",
        30,
        50,
        || {
            std::hint::black_box(two_years.expand(until).ok());
        },
    ));

    // The conflict check against 10,000 bookings.
    progress("  10 000 réservations sur une ressource / bookings on one resource…");
    super::load::populate(store, 2, now).await?;
    let organiser = super::load::user_smtp(1);
    let from = paris(day, 0, 0);
    let resource = busy_resource(store, from, now).await?;
    let probe = from + Duration::hours(2_000);
    timings.push(
        time_async(
            "créneaux occupés sur 1 jour, 10 000 réservations",
            "held_slots: the exclusion index, one day",
            50,
            |_| async {
                store
                    .held_slots(resource, probe, probe + Duration::days(1))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
        .await?,
    );
    let request = |i: usize, when: When| IncomingRequest {
        resource_id: resource,
        uid: format!("bench-probe-{i}-{}", Uuid::new_v4().simple()),
        sequence: 0,
        source: Source::Exchange,
        organiser_address: organiser.clone(),
        organiser_name: Some("Agent 001".into()),
        subject: Some("Sonde".into()),
        attendees: 4,
        when,
        exchange_item_id: None,
        requested_at: now,
    };
    timings.push(
        time_async(
            "décision enregistrée en conflit, 10 000 réservations",
            "record_request: organiser, policy, grants, occupancy, decide, write (one transaction)",
            50,
            |i| {
                let req = request(
                    i,
                    When::Single {
                        start: probe + Duration::minutes(15),
                        end: probe + Duration::minutes(75),
                    },
                );
                async move {
                    store
                        .record_request(&req, now)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await?,
    );
    let series_start = (probe + Duration::days(1))
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive();
    timings.push(
        time_async(
            "série d'un an enregistrée, 10 000 réservations",
            "record_request of a 52-week series against the busy resource",
            20,
            |i| {
                let req = request(
                    i,
                    When::Series(Box::new(weekly(series_start, RecurrenceRange::Numbered(52)))),
                );
                async move {
                    store
                        .record_request(&req, now)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await?,
    );

    // The report queries over a million bookings.
    let (reports, reports_missing) = match reports(cluster, report_bookings, progress).await {
        Ok((setup, r)) => {
            timings.extend(setup);
            (r, None)
        }
        Err(e) => (Vec::new(), Some(e)),
    };

    // exchangelib on the same page.
    let (exchangelib, exchangelib_missing) = match exchangelib_python {
        None => (
            None,
            Some("pas d'interpréteur exchangelib / no exchangelib interpreter (RESA_EXCHANGELIB_PYTHON)".to_owned()),
        ),
        Some(python) => match exchangelib_parse(python, work, &full, &ids).await {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e)),
        },
    };
    let mut exchangelib_timings = exchangelib.unwrap_or_default();
    let exchangelib = if exchangelib_timings.is_empty() {
        None
    } else {
        Some(exchangelib_timings.remove(0))
    };
    timings.extend(exchangelib_timings);
    Ok(Micro {
        timings,
        reports,
        reports_missing,
        exchangelib,
        exchangelib_missing,
    })
}

/// The report queries, each timed over the generated data set (a million
/// bookings by default) in a database of its own, over its whole span; also
/// returns, apart, the one-off costs: generating the set (with the rollup's
/// triggers marking its days) and computing the rollup of all its days, then
/// the refresh a report pays after one booking changed.
pub(crate) async fn reports(
    cluster: &crate::devdb::Cluster,
    bookings: u64,
    progress: &(dyn Fn(&str) + Sync),
) -> BenchResult<(Vec<Timing>, Vec<Timing>)> {
    use crate::store::reports::ReportFilter;
    progress(&format!(
        "  {bookings} réservations pour les rapports / bookings for the reports…"
    ));
    let db = super::fresh_database(cluster, "bench_reports").await?;
    let store = Store::connect(&cluster.url(&db), 2).await.map_err(err("PostgreSQL"))?;
    store.migrate().await.map_err(err("migration"))?;
    let first_day = NaiveDate::from_ymd_opt(2025, 1, 6).unwrap_or_default();
    let started = crate::clock::monotonic();
    let set = store
        .generate_dataset(bookings, first_day)
        .await
        .map_err(err("report data set"))?;
    let generated_ms = started.elapsed().as_secs_f64() * 1000.0;
    progress("  cumul des rapports / report rollup…");
    let started = crate::clock::monotonic();
    let days = store.report_refresh().await.map_err(err("report rollup"))?;
    let rollup_ms = started.elapsed().as_secs_f64() * 1000.0;
    store.analyze_reports().await.map_err(err("report rollup"))?;
    let from = paris(first_day, 0, 0);
    let f = ReportFilter::range(from, from + Duration::days(4 * 366));
    let note = format!(
        "{} bookings, {} decisions, {} resources",
        set.bookings, set.decisions, set.resources
    );
    let setup_note = format!("{note}, {days} (resource, day) pairs");
    let mut setup = vec![
        summarise(
            "rapports : jeu de données / generating the data set",
            &setup_note,
            1,
            vec![generated_ms],
        ),
        summarise(
            "rapports : calcul du cumul / computing the rollup",
            &setup_note,
            1,
            vec![rollup_ms],
        ),
    ];
    let e = |e: crate::store::StoreError| e.to_string();
    // One booking changes (its occurrence cancelled, then accepted again):
    // the next report recomputes that day first.
    setup.push(
        time_async(
            "rapports : un changement puis occupation / one change then usage",
            &note,
            5,
            |i| {
                let (store, f) = (&store, &f);
                async move {
                    store.touch_generated_booking(i % 2 == 0).await.map_err(e)?;
                    store.report_usage(f).await.map(|_| ()).map_err(e)
                }
            },
        )
        .await?,
    );
    let mut out = Vec::new();
    let n = 5;
    out.push(
        time_async("rapport : occupation / usage", &note, n, |_| async {
            store.report_usage(&f).await.map(|_| ()).map_err(e)
        })
        .await?,
    );
    out.push(
        time_async("rapport : carte jour × heure / heat map", &note, n, |_| async {
            store.report_heat_map(&f).await.map(|_| ()).map_err(e)
        })
        .await?,
    );
    out.push(
        time_async("rapport : motifs de refus / decline reasons", &note, n, |_| async {
            store.report_decline_reasons(&f).await.map(|_| ()).map_err(e)
        })
        .await?,
    );
    out.push(
        time_async(
            "rapport : refus par ressource / declines by resource",
            &note,
            n,
            |_| async { store.report_declines_by_resource(&f).await.map(|_| ()).map_err(e) },
        )
        .await?,
    );
    out.push(
        time_async("rapport : approbations / approvals", &note, n, |_| async {
            store.report_approvals(&f).await.map(|_| ()).map_err(e)
        })
        .await?,
    );
    out.push(
        time_async("rapport : capacité / capacity fit", &note, n, |_| async {
            store.report_capacity(&f).await.map(|_| ()).map_err(e)
        })
        .await?,
    );
    out.push(
        time_async("rapport : délai de réservation / lead time", &note, n, |_| async {
            store.report_lead_time(&f).await.map(|_| ()).map_err(e)
        })
        .await?,
    );
    out.push(
        time_async("rapport : par organisation / organisations", &note, n, |_| async {
            store.report_organisations(&f).await.map(|_| ()).map_err(e)
        })
        .await?,
    );
    store.pool().close().await;
    Ok((setup, out))
}

/// Runs the reference script on both pages; the AllProperties timing first.
async fn exchangelib_parse(python: &Path, work: &Path, full: &[u8], ids: &[u8]) -> BenchResult<Vec<Timing>> {
    let script = work.join("exchangelib_parse.py");
    std::fs::write(&script, include_str!("../../bench/exchangelib_parse.py")).map_err(err("exchangelib script"))?;
    let mut out = Vec::new();
    for (bytes, label) in [(full, "AllProperties"), (ids, "IdOnly")] {
        let file = work.join(format!("sync-512-{label}.xml"));
        std::fs::write(&file, bytes).map_err(err("exchangelib input"))?;
        let output = tokio::process::Command::new(python)
            .arg(&script)
            .arg(&file)
            .arg("10")
            .output()
            .await
            .map_err(err(&python.display().to_string()))?;
        if !output.status.success() {
            return Err(format!(
                "exchangelib: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("failed")
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(err("exchangelib output"))?;
        let changes = v["changes"].as_u64().unwrap_or(0);
        if changes != 512 {
            return Err(format!("exchangelib read {changes} changes, not 512"));
        }
        out.push(Timing {
            name: format!(
                "exchangelib {} : SyncFolderItems 512 changements ({label})",
                v["exchangelib"].as_str().unwrap_or("?")
            ),
            iterations: 10,
            median_ms: v["median_ms"].as_f64().unwrap_or(0.0),
            min_ms: v["min_ms"].as_f64().unwrap_or(0.0),
            note: "SyncFolderItems.parse: SOAP envelope and one item object per change (Python)".into(),
        });
    }
    Ok(out)
}
