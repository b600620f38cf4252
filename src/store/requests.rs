//! Booking requests: gathers what the rule engine needs, runs it, and records
//! the booking, its occurrences, the decision and the reply to send, in one
//! transaction.
//!
//! Double booking is prevented twice: the engine sees the slots already held,
//! and the exclusion constraint on occurrences refuses any overlap that a
//! concurrent request slipped in between the read and the write. When the
//! constraint refuses, the transaction is rolled back and the request decided
//! again on the new occupancy, which turns the race into an ordinary conflict
//! decision naming the slot that won.

use super::bookings::Source;
use super::bookings::range;
use super::vehicles;
use super::{Result, Store, StoreError};
use crate::directory::OrganiserAddress;
use crate::domain::decision::DeclinedOccurrence;
use crate::domain::reason::{Lang, ResourceKind};
use crate::domain::recurrence::Occurrence;
use crate::domain::rights::{Grant, Role, Subject};
use crate::domain::rules::{Occupied, QuotaBooking};
use crate::domain::{
    BookingRequest, Decision, DecisionInput, EffectivePolicy, Organiser, Outcome, Policy, Reason, RenderContext,
    ResourceInfo, Scope, ScopeChain, When, decide,
};
use crate::store::directory::{GrantRole, GrantScope, GrantSubject};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::json;
use sqlx::postgres::types::PgRange;
use sqlx::{Postgres, Row, Transaction};
use std::ops::Bound;
use uuid::Uuid;

/// How many times a request is decided again after losing a race.
const RACE_RETRIES: usize = 8;

/// A meeting request for one resource, as read from Exchange or the web site.
#[derive(Debug, Clone)]
pub struct IncomingRequest {
    pub resource_id: Uuid,
    /// The meeting's UID (clean global object id).
    pub uid: String,
    /// The meeting's sequence number; a lower one than recorded is stale.
    pub sequence: i32,
    pub source: Source,
    /// SMTP address or legacy Exchange DN, as Exchange gives it.
    pub organiser_address: String,
    pub organiser_name: Option<String>,
    pub subject: Option<String>,
    /// People invited, resources excluded.
    pub attendees: u32,
    pub when: When,
    /// The meeting request in the resource's mailbox, answered by the reply.
    pub exchange_item_id: Option<String>,
    pub requested_at: DateTime<Utc>,
}

/// What became of a request.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// Decided now.
    Decided {
        booking_id: Uuid,
        decision_id: i64,
        decision: Box<Decision>,
        /// The reply text in the organiser's language.
        message: String,
    },
    /// Already decided at this sequence number (a message seen twice).
    AlreadyDecided { booking_id: Uuid },
    /// Older than what was recorded: nothing to do.
    Stale { booking_id: Uuid, recorded_sequence: i32 },
}

/// The resource and what its scopes say.
pub(super) struct ResourceContext {
    pub(super) chain: ScopeChain,
    pub(super) kind: ResourceKind,
    pub(super) capacity: Option<u32>,
    pub(super) tz: Tz,
}

fn bounds(r: &PgRange<DateTime<Utc>>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match (r.start, r.end) {
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => Some((s, e)),
        _ => None,
    }
}

/// The domain's scope for a stored (kind, ids) pair.
fn scope_of(
    kind: &str,
    organisation: Option<Uuid>,
    site: Option<Uuid>,
    resource_type: Option<Uuid>,
    resource: Option<Uuid>,
) -> Option<Scope> {
    Some(match kind {
        "global" => Scope::Global,
        "organisation" => Scope::Organisation(organisation?),
        "site" => Scope::Site(site?),
        "resource_type" => Scope::ResourceType(resource_type?),
        "resource" => Scope::Resource(resource?),
        _ => return None,
    })
}

/// The scope of a policy or blackout row (`scope_kind` and the ids).
fn scope_in_row(r: &sqlx::postgres::PgRow) -> Result<Option<Scope>> {
    let kind: String = r.try_get("scope_kind")?;
    Ok(scope_of(
        &kind,
        r.try_get("organisation_id")?,
        r.try_get("site_id")?,
        r.try_get("resource_type_id")?,
        r.try_get("resource_id")?,
    ))
}

/// The reasons of an outcome, each with its code, scope, parameters and texts.
pub(super) fn reasons_json(decision: &Decision, ctx: &RenderContext) -> serde_json::Value {
    let render = |r: &Reason| {
        let fr = r.render(&RenderContext { lang: Lang::Fr, ..*ctx });
        let en = r.render(&RenderContext { lang: Lang::En, ..*ctx });
        let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
        if let Some(o) = v.as_object_mut() {
            o.insert("code".into(), json!(r.code()));
            o.insert("fr".into(), json!(fr));
            o.insert("en".into(), json!(en));
        }
        v
    };
    let occ = |d: &DeclinedOccurrence| {
        json!({
            "start": d.start,
            "end": d.end,
            "original_start": d.original_start,
            "reasons": d.reasons.iter().map(render).collect::<Vec<_>>(),
        })
    };
    match &decision.outcome {
        Outcome::Accept => json!([]),
        Outcome::AcceptPartially { declined } => {
            json!([{ "declined_occurrences": declined.iter().map(occ).collect::<Vec<_>>() }])
        }
        Outcome::Decline { reasons, declined } | Outcome::Hold { reasons, declined, .. } => {
            let mut out: Vec<serde_json::Value> = reasons.iter().map(render).collect();
            if !declined.is_empty() {
                out.push(json!({ "declined_occurrences": declined.iter().map(occ).collect::<Vec<_>>() }));
            }
            json!(out)
        }
    }
}

fn when_json(when: &When) -> serde_json::Value {
    match when {
        When::Single { start, end } => json!({ "start": start, "end": end }),
        When::Series(r) => json!({
            "rrule": r.to_rrule(),
            "start_date": r.start_date,
            "start_time": r.start_time,
            "duration_minutes": r.duration.num_minutes(),
            "time_zone": r.tz.name(),
            "deleted": r.deleted,
            "modified": r.modified.iter().map(|m| json!({
                "original_start": m.original_start, "start": m.start, "end": m.end
            })).collect::<Vec<_>>(),
        }),
    }
}

impl Store {
    /// Decides a meeting request and records everything it implies.
    pub async fn record_request(&self, req: &IncomingRequest, now: DateTime<Utc>) -> Result<Recorded> {
        self.record_request_to(req, None, now).await
    }

    /// Records a request that names the destination of a vehicle trip (the
    /// invitation's "Destination :" line): a trip outside the territory goes
    /// through the circuit that asks for it (`store::territory`).
    pub async fn record_request_to(
        &self,
        req: &IncomingRequest,
        destination: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Recorded> {
        let organiser = self.organiser_of(&req.organiser_address).await?;
        let mut last_err = None;
        for attempt in 0..RACE_RETRIES {
            // A request that lost a race (the exclusion constraint refused its
            // slot, or PostgreSQL broke a deadlock between two inserts) takes
            // the resource's lock for its next try, so requests that keep
            // colliding are decided one after the other.
            match self
                .try_record_request(req, &organiser, destination, now, attempt > 0)
                .await
            {
                Err(e @ (StoreError::SlotTaken | StoreError::Contention)) => last_err = Some(e),
                other => return other,
            }
        }
        Err(last_err.unwrap_or(StoreError::SlotTaken))
    }

    /// The organiser as the engine sees them, with their preferred language.
    pub(super) async fn organiser_of(&self, address: &str) -> Result<(Organiser, Lang)> {
        let Some(parsed) = crate::directory::parse_organiser(address) else {
            return Ok((Organiser::External, Lang::Fr));
        };
        if let Some(person) = self.resolve_organiser(&parsed).await?
            && person.deleted_at.is_none()
        {
            let groups = self
                .groups_of_person(person.id)
                .await?
                .into_iter()
                .map(|g| g.id)
                .collect();
            let lang: Option<String> = sqlx::query_scalar("SELECT preferred_language FROM people WHERE id = $1")
                .bind(person.id)
                .fetch_one(self.pool())
                .await?;
            let lang = if lang.as_deref() == Some("en") {
                Lang::En
            } else {
                Lang::Fr
            };
            return Ok((
                Organiser::Known {
                    person: person.id,
                    groups,
                },
                lang,
            ));
        }
        // An address of a domain where the directories know people is a
        // local one: its owner is unknown rather than external.
        let local = match &parsed {
            OrganiserAddress::LegacyDn(_) => true,
            OrganiserAddress::Smtp(a) => match a.rsplit_once('@') {
                Some((_, domain)) => {
                    sqlx::query_scalar::<_, bool>(
                        "SELECT EXISTS (SELECT 1 FROM person_addresses WHERE address LIKE '%@' || $1)",
                    )
                    .bind(domain)
                    .fetch_one(self.pool())
                    .await?
                }
                None => false,
            },
        };
        Ok((if local { Organiser::Unknown } else { Organiser::External }, Lang::Fr))
    }

    async fn try_record_request(
        &self,
        req: &IncomingRequest,
        (organiser, lang): &(Organiser, Lang),
        destination: Option<&str>,
        now: DateTime<Utc>,
        serialise: bool,
    ) -> Result<Recorded> {
        let mut tx = self.pool().begin().await?;
        if serialise {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1::text))")
                .bind(req.resource_id)
                .execute(&mut *tx)
                .await?;
        }
        let existing = sqlx::query("SELECT id, sequence FROM bookings WHERE resource_id = $1 AND uid = $2 FOR UPDATE")
            .bind(req.resource_id)
            .bind(&req.uid)
            .fetch_optional(&mut *tx)
            .await?;
        let existing: Option<(Uuid, i32)> = existing
            .map(|r| Ok::<_, sqlx::Error>((r.try_get("id")?, r.try_get("sequence")?)))
            .transpose()?;
        if let Some((booking_id, recorded_sequence)) = existing {
            if req.sequence < recorded_sequence {
                return Ok(Recorded::Stale {
                    booking_id,
                    recorded_sequence,
                });
            }
            if req.sequence == recorded_sequence {
                return Ok(Recorded::AlreadyDecided { booking_id });
            }
        }
        let replaces = existing.map(|(id, _)| id);

        // A pool mailbox stands for its members: the request is decided for
        // the member chosen, whose slots it holds, while the booking and the
        // reply stay with the pool's mailbox.
        let distance = vehicles::declared_distance(&mut tx, replaces, req.subject.as_deref()).await?;
        let span = request_bounds(&req.when, &EffectivePolicy::builtin(), now);
        let pool = vehicles::pool_choice(&mut tx, req.resource_id, organiser, span, distance, replaces, now).await?;
        let target = match pool {
            vehicles::PoolChoice::Member(m) => m,
            vehicles::PoolChoice::NotPool | vehicles::PoolChoice::NoneFree => req.resource_id,
        };

        let ctx = resource_context(&mut tx, target).await?;
        let mut policy = effective_policy(&mut tx, &ctx.chain).await?;
        vehicles::adjust_policy(&mut tx, target, distance, &mut policy).await?;
        let (lo, hi) = request_bounds(&req.when, &policy, now);
        let before = Duration::minutes(i64::from(policy.buffer_before_minutes.value));
        let after = Duration::minutes(i64::from(policy.buffer_after_minutes.value));
        let occupancy = occupancy(&mut tx, target, lo - before, hi + after, replaces).await?;
        let grants = match organiser {
            Organiser::Known { person, groups } => grants_for(&mut tx, *person, groups, &ctx.chain).await?,
            _ => Vec::new(),
        };
        let quota_bookings = if policy.quotas.value.is_empty() {
            Vec::new()
        } else {
            match organiser {
                Organiser::Known { person, groups } => {
                    quota_bookings(
                        &mut tx,
                        *person,
                        groups,
                        lo - Duration::days(32),
                        hi + Duration::days(32),
                        replaces,
                    )
                    .await?
                }
                _ => Vec::new(),
            }
        };
        let blackouts = blackouts(&mut tx, lo, hi).await?;
        let licence = vehicles::licence_check(&mut tx, target, organiser).await?;

        let input = DecisionInput {
            now,
            request: BookingRequest {
                organiser: organiser.clone(),
                attendees: req.attendees,
                when: req.when.clone(),
                replaces,
            },
            resource: ResourceInfo {
                chain: ctx.chain.clone(),
                kind: ctx.kind,
                capacity: ctx.capacity,
                tz: ctx.tz,
            },
            policy: policy.clone(),
            grants,
            occupancy,
            quota_bookings,
            blackouts,
            licence,
        };
        let mut decision = decide(&input);
        if pool == vehicles::PoolChoice::NoneFree {
            crate::domain::vehicles::no_free_member(&mut decision, req.resource_id);
        }
        if let Some(previous) = replaces {
            keep_unchanged(&mut decision, &held_before(&mut tx, previous).await?);
        }
        // A vehicle trip outside the territory goes through the circuit that
        // asks to approve such trips.
        let outside = super::territory::trip_outside(&mut tx, ctx.kind, replaces, destination).await?;
        if let Some(d) = &outside {
            super::territory::hold_for_trip(&mut tx, &input, &mut decision, d).await?;
        }
        let render = RenderContext {
            lang: *lang,
            tz: ctx.tz,
            kind: ctx.kind,
        };
        let mut message = decision.message(&render);
        let (booking_status, occurrence_status) = match &decision.outcome {
            Outcome::Accept => ("accepted", "accepted"),
            Outcome::AcceptPartially { .. } => ("partially_accepted", "accepted"),
            Outcome::Decline { .. } => ("declined", "declined"),
            Outcome::Hold { .. } => ("held", "held"),
        };
        let organiser_person = match organiser {
            Organiser::Known { person, .. } => Some(*person),
            _ => None,
        };
        let recurrence = match &req.when {
            When::Series(_) => Some(when_json(&req.when)),
            When::Single { .. } => None,
        };
        let booking_id: Uuid = match replaces {
            None => {
                sqlx::query_scalar(
                    "INSERT INTO bookings (resource_id, uid, source, organiser_person_id, organiser_address, organiser_name,
                                           subject, attendee_count, sequence, time_zone, recurrence, status,
                                           exchange_item_id, requested_at)
                     VALUES ($1, $2, $3, $4, lower($5), $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
                )
                .bind(req.resource_id)
                .bind(&req.uid)
                .bind(match req.source {
                    Source::Exchange => "exchange",
                    Source::Web => "web",
                })
                .bind(organiser_person)
                .bind(&req.organiser_address)
                .bind(&req.organiser_name)
                .bind(&req.subject)
                .bind(i32::try_from(req.attendees).unwrap_or(i32::MAX))
                .bind(req.sequence)
                .bind(ctx.tz.name())
                .bind(&recurrence)
                .bind(booking_status)
                .bind(&req.exchange_item_id)
                .bind(req.requested_at)
                .fetch_one(&mut *tx)
                .await?
            }
            Some(id) => {
                sqlx::query(
                    "UPDATE bookings SET sequence = $2, organiser_person_id = $3, organiser_name = $4, subject = $5,
                            attendee_count = $6, recurrence = $7, status = $8, exchange_item_id = coalesce($9, exchange_item_id),
                            updated_at = $10
                     WHERE id = $1",
                )
                .bind(id)
                .bind(req.sequence)
                .bind(organiser_person)
                .bind(&req.organiser_name)
                .bind(&req.subject)
                .bind(i32::try_from(req.attendees).unwrap_or(i32::MAX))
                .bind(&recurrence)
                .bind(booking_status)
                .bind(&req.exchange_item_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // The previous version's slots are given back; the new
                // decision says which ones are held again.
                sqlx::query(
                    "UPDATE occurrences SET status = 'cancelled' WHERE booking_id = $1 AND status IN ('accepted', 'held')",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        let pool_member = match pool {
            vehicles::PoolChoice::Member(m) if !matches!(decision.outcome, Outcome::Decline { .. }) => {
                Some((req.resource_id, m))
            }
            _ => None,
        };
        vehicles::record_vehicle_booking(&mut tx, booking_id, pool_member, distance, now).await?;
        if matches!(decision.outcome, Outcome::Accept | Outcome::AcceptPartially { .. })
            && let Some(h) = vehicles::handover(&mut tx, target, booking_id, &policy).await?
        {
            message = format!("{message}\n\n{}", vehicles::handover_text(&h, *lang));
        }
        let held: Vec<(Occurrence, &str)> = decision.occurrences.iter().map(|o| (*o, occurrence_status)).collect();
        let declined: Vec<&DeclinedOccurrence> = match &decision.outcome {
            Outcome::Accept => Vec::new(),
            Outcome::AcceptPartially { declined }
            | Outcome::Decline { declined, .. }
            | Outcome::Hold { declined, .. } => declined.iter().collect(),
        };
        for (o, status) in &held {
            upsert_occurrence(
                &mut tx,
                booking_id,
                target,
                (o.original_start, o.start, o.end),
                (o.start - before, o.end + after),
                status,
            )
            .await?;
        }
        // Declined occurrences are kept, not holding, for the record and the
        // reports of unmet demand.
        for d in &declined {
            upsert_occurrence(
                &mut tx,
                booking_id,
                target,
                (d.original_start, d.start, d.end),
                (d.start, d.end),
                "declined",
            )
            .await?;
        }
        if held.is_empty()
            && declined.is_empty()
            && let When::Single { start, end } = &req.when
            && end > start
        {
            upsert_occurrence(
                &mut tx,
                booking_id,
                target,
                (*start, *start, *end),
                (*start, *end),
                "declined",
            )
            .await?;
        }

        let reasons = reasons_json(&decision, &render);
        let inputs = json!({
            "organiser_address": req.organiser_address.to_lowercase(),
            "organiser": match organiser {
                Organiser::Known { person, groups } => json!({ "kind": "known", "person": person, "groups": groups }),
                Organiser::Unknown => json!({ "kind": "unknown" }),
                Organiser::External => json!({ "kind": "external" }),
            },
            "attendees": req.attendees,
            "when": when_json(&req.when),
            "source": match req.source { Source::Exchange => "exchange", Source::Web => "web" },
            "right": decision.right,
            "policy": policy,
            "replaces": replaces,
        });
        let explanation = serde_json::to_value(&decision.checks).unwrap_or_else(|_| json!([]));
        let decision_id: i64 = sqlx::query_scalar(
            "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, reasons, inputs,
                                    explanation, decided_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'engine') RETURNING id",
        )
        .bind(booking_id)
        .bind(req.resource_id)
        .bind(&req.uid)
        .bind(req.sequence)
        .bind(now)
        .bind(decision.kind())
        .bind(&reasons)
        .bind(&inputs)
        .bind(&explanation)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(d) = destination.map(str::trim).filter(|d| !d.is_empty()) {
            super::territory::record_destination(&mut tx, booking_id, d, outside.is_some(), now).await?;
        }
        // The reply's text comes from the event's message template; a held
        // booking starts its validation circuit here, in this transaction.
        let message = super::circuits::after_decision(
            &mut tx,
            self.link_signer(),
            super::circuits::Decided {
                booking_id,
                decision: &decision,
                input: &input,
                lang: *lang,
                message,
                outside_territory: outside.is_some(),
                now,
            },
        )
        .await?;

        if let Some(item_id) = &req.exchange_item_id {
            let kind = match &decision.outcome {
                Outcome::Accept | Outcome::AcceptPartially { .. } => "accept",
                Outcome::Decline { .. } => "decline",
                Outcome::Hold { .. } => "tentative",
            };
            sqlx::query(
                "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(req.resource_id)
            .bind(booking_id)
            .bind(kind)
            .bind(format!("reply:{booking_id}:{}", req.sequence))
            .bind(json!({
                "reference_item_id": item_id,
                "body": message,
                "language": match lang { Lang::Fr => "fr", Lang::En => "en" },
                "decision_id": decision_id,
            }))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        // A booking made on the web site becomes a meeting in the resource
        // calendar, its organiser invited, through the outbox: created once,
        // whether Exchange is away now or this process stops before it is.
        if req.source == Source::Web
            && req.exchange_item_id.is_none()
            && !matches!(decision.outcome, Outcome::Decline { .. })
        {
            queue_web_meeting(&mut tx, req, booking_id, &decision, &message, now).await?;
        }
        tx.commit().await?;
        Ok(Recorded::Decided {
            booking_id,
            decision_id,
            decision: Box::new(decision),
            message,
        })
    }

    /// Cancels a booking at the organiser's request: its slots become free
    /// and the cancellation is logged.
    pub async fn cancel_request(
        &self,
        resource_id: Uuid,
        uid: &str,
        sequence: i32,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let Some(booking_id) = sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM bookings WHERE resource_id = $1 AND uid = $2 AND status <> 'cancelled' FOR UPDATE",
        )
        .bind(resource_id)
        .bind(uid)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        sqlx::query("UPDATE bookings SET status = 'cancelled', sequence = greatest(sequence, $2), updated_at = $3 WHERE id = $1")
            .bind(booking_id)
            .bind(sequence)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE occurrences SET status = 'cancelled' WHERE booking_id = $1 AND status IN ('accepted', 'held')",
        )
        .bind(booking_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, decided_by)
             VALUES ($1, $2, $3, $4, $5, 'cancel', 'engine')",
        )
        .bind(booking_id)
        .bind(resource_id)
        .bind(uid)
        .bind(sequence)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets the policy of one scope (replacing the one there).
    pub async fn set_policy(&self, scope: Scope, policy: &Policy, now: DateTime<Utc>) -> Result<()> {
        let body = serde_json::to_value(policy).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let (kind, org, site, rtype, res) = match scope {
            Scope::Global => ("global", None, None, None, None),
            Scope::Organisation(id) => ("organisation", Some(id), None, None, None),
            Scope::Site(id) => ("site", None, Some(id), None, None),
            Scope::ResourceType(id) => ("resource_type", None, None, Some(id), None),
            Scope::Resource(id) => ("resource", None, None, None, Some(id)),
        };
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM policies WHERE scope_kind = $1 AND organisation_id IS NOT DISTINCT FROM $2
               AND site_id IS NOT DISTINCT FROM $3 AND resource_type_id IS NOT DISTINCT FROM $4
               AND resource_id IS NOT DISTINCT FROM $5",
        )
        .bind(kind)
        .bind(org)
        .bind(site)
        .bind(rtype)
        .bind(res)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO policies (scope_kind, organisation_id, site_id, resource_type_id, resource_id, body, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(kind)
        .bind(org)
        .bind(site)
        .bind(rtype)
        .bind(res)
        .bind(body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The effective policy of a resource, each field with the scope that set it.
    /// The scopes whose policies apply to a resource, general to specific.
    pub async fn policy_chain_of(&self, resource_id: Uuid) -> Result<ScopeChain> {
        let mut tx = self.pool().begin().await?;
        let ctx = resource_context(&mut tx, resource_id).await?;
        tx.commit().await?;
        Ok(ctx.chain)
    }

    pub async fn effective_policy_of(&self, resource_id: Uuid) -> Result<EffectivePolicy> {
        let mut tx = self.pool().begin().await?;
        let ctx = resource_context(&mut tx, resource_id).await?;
        let policy = effective_policy(&mut tx, &ctx.chain).await?;
        tx.commit().await?;
        Ok(policy)
    }
}

/// The slots a booking holds, as (original start, start, end).
async fn held_before(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: Uuid,
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>> {
    let rows = sqlx::query(
        "SELECT original_start, lower(period) AS s, upper(period) AS e FROM occurrences
         WHERE booking_id = $1 AND status IN ('accepted', 'held')",
    )
    .bind(booking_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| Ok((r.try_get("original_start")?, r.try_get("s")?, r.try_get("e")?)))
        .collect()
}

/// An update re-decides only what changed: an occurrence that keeps its
/// times and was accepted before stays accepted, even if a rule would now
/// refuse it (minimum notice on a running series, a policy tightened since).
/// Only a partial acceptance is adjusted; a request-level refusal stands.
fn keep_unchanged(decision: &mut Decision, before: &[(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)]) {
    let Outcome::AcceptPartially { declined } = &mut decision.outcome else {
        return;
    };
    let unchanged = |d: &DeclinedOccurrence| before.contains(&(d.original_start, d.start, d.end));
    let (kept, still_declined): (Vec<DeclinedOccurrence>, Vec<DeclinedOccurrence>) =
        std::mem::take(declined).into_iter().partition(unchanged);
    *declined = still_declined;
    for d in kept {
        decision.occurrences.push(Occurrence {
            // The position in the pattern is not carried by a declined
            // occurrence, and nothing downstream reads it.
            index: 0,
            original_start: d.original_start,
            start: d.start,
            end: d.end,
            modified: d.start != d.original_start,
        });
    }
    decision.occurrences.sort_by_key(|o| o.start);
    if declined.is_empty() {
        decision.outcome = Outcome::Accept;
    }
}

pub(super) async fn resource_context(tx: &mut Transaction<'_, Postgres>, resource_id: Uuid) -> Result<ResourceContext> {
    let row = sqlx::query(
        "SELECT r.capacity, r.resource_type_id, r.site_id, s.organisation_id, s.time_zone, t.category
         FROM resources r JOIN sites s ON s.id = r.site_id JOIN resource_types t ON t.id = r.resource_type_id
         WHERE r.id = $1",
    )
    .bind(resource_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("resource {resource_id}")))?;
    let tz_name: String = row.try_get("time_zone")?;
    let tz: Tz = tz_name
        .parse()
        .map_err(|_| StoreError::Invalid(format!("unknown time zone {tz_name}")))?;
    let category: String = row.try_get("category")?;
    let capacity: Option<i32> = row.try_get("capacity")?;
    Ok(ResourceContext {
        chain: ScopeChain {
            organisation: Some(row.try_get("organisation_id")?),
            site: Some(row.try_get("site_id")?),
            resource_type: Some(row.try_get("resource_type_id")?),
            resource: resource_id,
        },
        kind: match category.as_str() {
            "vehicle" => ResourceKind::Vehicle,
            "equipment" => ResourceKind::Equipment,
            _ => ResourceKind::Room,
        },
        capacity: capacity.and_then(|c| u32::try_from(c).ok()),
        tz,
    })
}

pub(super) async fn effective_policy(
    tx: &mut Transaction<'_, Postgres>,
    chain: &ScopeChain,
) -> Result<EffectivePolicy> {
    let rows = sqlx::query(
        "SELECT scope_kind, organisation_id, site_id, resource_type_id, resource_id, body FROM policies
         WHERE scope_kind = 'global' OR organisation_id = $1 OR site_id = $2 OR resource_type_id = $3 OR resource_id = $4",
    )
    .bind(chain.organisation)
    .bind(chain.site)
    .bind(chain.resource_type)
    .bind(chain.resource)
    .fetch_all(&mut **tx)
    .await?;
    let mut layers = Vec::new();
    for r in rows {
        let Some(scope) = scope_in_row(&r)? else {
            continue;
        };
        let body: serde_json::Value = r.try_get("body")?;
        let policy: Policy = serde_json::from_value(body)
            .map_err(|e| StoreError::Invalid(format!("policy at {} scope: {e}", scope.level())))?;
        layers.push((scope, policy));
    }
    Ok(EffectivePolicy::resolve(chain, layers.iter().map(|(s, p)| (*s, p))))
}

/// The span the request may touch: its first start to its last end within
/// the horizon, to bound the occupancy read.
fn request_bounds(when: &When, policy: &EffectivePolicy, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    match when {
        When::Single { start, end } => (*start, (*end).max(*start)),
        When::Series(r) => {
            let horizon = now + Duration::days(i64::from(policy.series_horizon_days.value) + 1);
            match r.expand_window(now, horizon) {
                Ok(exp) if !exp.occurrences.is_empty() => {
                    let lo = exp.occurrences.iter().map(|o| o.start).min().unwrap_or(now);
                    let hi = exp.occurrences.iter().map(|o| o.end).max().unwrap_or(horizon);
                    (lo, hi)
                }
                _ => (now, horizon),
            }
        }
    }
}

pub(super) async fn occupancy(
    tx: &mut Transaction<'_, Postgres>,
    resource_id: Uuid,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    exclude: Option<Uuid>,
) -> Result<Vec<Occupied>> {
    let rows = sqlx::query(
        "SELECT o.booking_id, o.period, o.blocked, b.organiser_name
         FROM occurrences o JOIN bookings b ON b.id = o.booking_id
         WHERE o.resource_id = $1 AND o.status IN ('accepted', 'held') AND o.blocked && $2
           AND o.booking_id IS DISTINCT FROM $3
         ORDER BY lower(o.period)",
    )
    .bind(resource_id)
    .bind(range(lo, hi.max(lo + Duration::seconds(1))))
    .bind(exclude)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let period: PgRange<DateTime<Utc>> = r.try_get("period")?;
        let blocked: PgRange<DateTime<Utc>> = r.try_get("blocked")?;
        let (Some((start, end)), Some((bstart, bend))) = (bounds(&period), bounds(&blocked)) else {
            continue;
        };
        out.push(Occupied {
            booking: r.try_get("booking_id")?,
            start,
            end,
            buffer_before: start - bstart,
            buffer_after: bend - end,
            organiser_name: r.try_get("organiser_name")?,
        });
    }
    Ok(out)
}

/// The grants of the organiser (in person or through a group) that apply to
/// the resource. A grant on "a type at a site" applies as the resource-type
/// scope, narrowed to that site.
pub(super) async fn grants_for(
    tx: &mut Transaction<'_, Postgres>,
    person: Uuid,
    groups: &[Uuid],
    chain: &ScopeChain,
) -> Result<Vec<Grant>> {
    let rows = sqlx::query(
        "SELECT id, subject_person_id, subject_group_id, scope_kind, organisation_id, site_id, resource_type_id,
                resource_id, role
         FROM grants WHERE subject_person_id = $1 OR subject_group_id = ANY($2)",
    )
    .bind(person)
    .bind(groups)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let subject = match (
            r.try_get::<Option<Uuid>, _>("subject_person_id")?,
            r.try_get::<Option<Uuid>, _>("subject_group_id")?,
        ) {
            (Some(p), _) => GrantSubject::Person(p),
            (None, Some(g)) => GrantSubject::Group(g),
            _ => continue,
        };
        let kind: String = r.try_get("scope_kind")?;
        let org: Option<Uuid> = r.try_get("organisation_id")?;
        let site: Option<Uuid> = r.try_get("site_id")?;
        let rtype: Option<Uuid> = r.try_get("resource_type_id")?;
        let res: Option<Uuid> = r.try_get("resource_id")?;
        let scope = match kind.as_str() {
            "site_type" => match (site, rtype) {
                (Some(s), Some(t)) => GrantScope::SiteType {
                    site: s,
                    resource_type: t,
                },
                _ => continue,
            },
            other => match scope_of(other, org, site, rtype, res) {
                Some(Scope::Global) => GrantScope::Global,
                Some(Scope::Organisation(id)) => GrantScope::Organisation(id),
                Some(Scope::Site(id)) => GrantScope::Site(id),
                Some(Scope::ResourceType(id)) => GrantScope::ResourceType(id),
                Some(Scope::Resource(id)) => GrantScope::Resource(id),
                None => continue,
            },
        };
        let domain_scope = match scope {
            GrantScope::SiteType { site, resource_type } => {
                if chain.site != Some(site) || chain.resource_type != Some(resource_type) {
                    continue;
                }
                Scope::ResourceType(resource_type)
            }
            GrantScope::Global => Scope::Global,
            GrantScope::Organisation(id) => Scope::Organisation(id),
            GrantScope::Site(id) => Scope::Site(id),
            GrantScope::ResourceType(id) => Scope::ResourceType(id),
            GrantScope::Resource(id) => Scope::Resource(id),
        };
        let role: String = r.try_get("role")?;
        let Some(role) = GrantRole::parse(&role) else {
            continue;
        };
        out.push(Grant {
            id: r.try_get("id")?,
            subject: match subject {
                GrantSubject::Person(p) => Subject::Person(p),
                GrantSubject::Group(g) => Subject::Group(g),
            },
            scope: domain_scope,
            role: match role {
                GrantRole::Book => Role::Book,
                GrantRole::Request => Role::Request,
                GrantRole::Manage => Role::Manage,
                GrantRole::View => Role::View,
                GrantRole::Deny => Role::Deny,
            },
        });
    }
    Ok(out)
}

/// Bookings counted by quotas: the organiser's and those of people who share
/// a group with them, in a window around the request.
pub(super) async fn quota_bookings(
    tx: &mut Transaction<'_, Postgres>,
    person: Uuid,
    groups: &[Uuid],
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    exclude: Option<Uuid>,
) -> Result<Vec<QuotaBooking>> {
    let rows = sqlx::query(
        "SELECT o.booking_id, b.organiser_person_id, lower(o.period) AS s, upper(o.period) AS e,
                r.id AS resource_id, r.site_id, r.resource_type_id, st.organisation_id,
                coalesce((SELECT array_agg(pg.group_id) FROM person_groups pg WHERE pg.person_id = b.organiser_person_id),
                         '{}') AS groups
         FROM occurrences o
         JOIN bookings b ON b.id = o.booking_id
         JOIN resources r ON r.id = o.resource_id
         JOIN sites st ON st.id = r.site_id
         WHERE o.status IN ('accepted', 'held') AND o.period && $3
           AND o.booking_id IS DISTINCT FROM $4
           AND (b.organiser_person_id = $1
                OR b.organiser_person_id IN (SELECT person_id FROM person_groups WHERE group_id = ANY($2)))",
    )
    .bind(person)
    .bind(groups)
    .bind(range(lo, hi))
    .bind(exclude)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(organiser) = r.try_get::<Option<Uuid>, _>("organiser_person_id")? else {
            continue;
        };
        out.push(QuotaBooking {
            booking: r.try_get("booking_id")?,
            organiser,
            organiser_groups: r.try_get("groups")?,
            resource: ScopeChain {
                organisation: Some(r.try_get("organisation_id")?),
                site: Some(r.try_get("site_id")?),
                resource_type: Some(r.try_get("resource_type_id")?),
                resource: r.try_get("resource_id")?,
            },
            start: r.try_get("s")?,
            end: r.try_get("e")?,
        });
    }
    Ok(out)
}

pub(super) async fn blackouts(
    tx: &mut Transaction<'_, Postgres>,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Result<Vec<crate::domain::holidays::Blackout>> {
    let rows = sqlx::query(
        "SELECT scope_kind, organisation_id, site_id, resource_type_id, resource_id, period, reason
         FROM blackouts WHERE period && $1",
    )
    .bind(range(lo, hi.max(lo + Duration::seconds(1))))
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let Some(scope) = scope_in_row(&r)? else {
            continue;
        };
        let period: PgRange<DateTime<Utc>> = r.try_get("period")?;
        let Some((start, end)) = bounds(&period) else {
            continue;
        };
        out.push(crate::domain::holidays::Blackout {
            scope,
            start,
            end,
            reason: r.try_get("reason")?,
        });
    }
    out.extend(super::admin::holiday_blackouts(tx, lo, hi).await?);
    Ok(out)
}

async fn upsert_occurrence(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: Uuid,
    resource_id: Uuid,
    (original_start, start, end): (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>),
    (blocked_start, blocked_end): (DateTime<Utc>, DateTime<Utc>),
    status: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO occurrences (booking_id, resource_id, original_start, period, blocked, status)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (booking_id, original_start)
         DO UPDATE SET period = EXCLUDED.period, blocked = EXCLUDED.blocked, status = EXCLUDED.status",
    )
    .bind(booking_id)
    .bind(resource_id)
    .bind(original_start)
    .bind(range(start, end))
    .bind(range(blocked_start, blocked_end))
    .bind(status)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The outbox command that creates a web booking in its resource calendar
/// (`sync::outbox`): the first occurrence's times, the pattern of a series,
/// the decision's text as the body; shown tentative while held.
async fn queue_web_meeting(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    req: &IncomingRequest,
    booking_id: Uuid,
    decision: &Decision,
    message: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let (start, end, recurrence) = match &req.when {
        When::Single { start, end } => (*start, *end, None),
        When::Series(r) => {
            let first: Option<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
                "SELECT lower(period), upper(period) FROM occurrences WHERE booking_id = $1
                 ORDER BY original_start LIMIT 1",
            )
            .bind(booking_id)
            .fetch_optional(&mut **tx)
            .await?;
            let Some((start, end)) = first else {
                return Err(StoreError::Invalid("a web series without occurrences".into()));
            };
            (start, end, Some((**r).clone()))
        }
    };
    let meeting = crate::exchange::NewMeeting {
        uid: req.uid.clone(),
        subject: req.subject.clone().unwrap_or_default(),
        body: message.to_owned(),
        start,
        end,
        attendee: req.organiser_address.clone(),
        tentative: matches!(decision.outcome, Outcome::Hold { .. }),
        recurrence,
    };
    let payload = serde_json::to_value(&meeting).map_err(|e| StoreError::Invalid(e.to_string()))?;
    sqlx::query(
        "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
         VALUES ($1, $2, 'create_meeting', $3, $4, $5, $5)",
    )
    .bind(req.resource_id)
    .bind(booking_id)
    .bind(format!("create:{booking_id}"))
    .bind(payload)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
