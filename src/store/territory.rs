//! The territory (`territory_communes`) and what a vehicle trip's destination
//! does to a booking: a trip outside the territory goes through the
//! validation circuit whose conditions name "outside the territory", even
//! when its organiser may book the vehicle directly.
//!
//! At decision time (`Store::record_request`) the destination is the one the
//! invitation gives ("Destination :" line) or the trip details already
//! recorded for the booking; the decision is turned into a hold for that
//! circuit. Trip details given later, on an accepted booking
//! (`after_trip_details`, called where they are saved), hold the booking the
//! same way: its slots stay its own but held, the pickup refuses it until the
//! circuit approves, and the organiser is told (the meeting turns tentative in
//! the resource's calendar, or a message for a booking made on the site).

use super::circuits::{Decided, after_decision, candidates};
use super::notify::{OutgoingMail, booking_facts, queue_mail, render_in};
use super::requests::{effective_policy, reasons_json, resource_context};
use super::{Result, Store};
use crate::domain::circuit::{CircuitContext, Condition, choose_circuit};
use crate::domain::reason::{Lang, Reason, ReasonKind, RenderContext, ResourceKind};
use crate::domain::territory::{Commune, Territory};
use crate::domain::{BookingRequest, Decision, DecisionInput, Organiser, Outcome, ResourceInfo, Scope, When};
use crate::notify::Event;
use crate::notify::links::LinkSigner;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

/// The territory as stored.
pub(super) async fn load(tx: &mut Transaction<'_, Postgres>) -> Result<Territory> {
    let rows = sqlx::query("SELECT name, insee_code, postcodes, aliases FROM territory_communes ORDER BY name")
        .fetch_all(&mut **tx)
        .await?;
    let mut communes = Vec::with_capacity(rows.len());
    for r in rows {
        communes.push(Commune {
            name: r.try_get("name")?,
            insee: r.try_get("insee_code")?,
            postcodes: r.try_get("postcodes")?,
            aliases: r.try_get("aliases")?,
        });
    }
    Ok(Territory::new(communes))
}

impl Store {
    /// The communes of the territory.
    pub async fn territory(&self) -> Result<Territory> {
        let mut tx = self.pool().begin().await?;
        let t = load(&mut tx).await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Replaces the communes of the territory.
    pub async fn set_territory(&self, communes: &[Commune]) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM territory_communes").execute(&mut *tx).await?;
        for c in communes {
            sqlx::query(
                "INSERT INTO territory_communes (name, insee_code, postcodes, aliases) VALUES ($1, $2, $3, $4)",
            )
            .bind(c.name.trim())
            .bind(c.insee.as_deref())
            .bind(&c.postcodes)
            .bind(&c.aliases)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The destination of a vehicle trip being decided, when it lies outside the
/// territory: the one the request gives, else the trip details of the
/// booking it replaces.
pub(super) async fn trip_outside(
    tx: &mut Transaction<'_, Postgres>,
    kind: ResourceKind,
    replaces: Option<Uuid>,
    given: Option<&str>,
) -> Result<Option<String>> {
    if kind != ResourceKind::Vehicle {
        return Ok(None);
    }
    let destination = match given.map(str::trim).filter(|s| !s.is_empty()) {
        Some(d) => Some(d.to_owned()),
        None => match replaces {
            Some(b) => {
                sqlx::query_scalar::<_, Option<String>>("SELECT destination FROM trip_details WHERE booking_id = $1")
                    .bind(b)
                    .fetch_optional(&mut **tx)
                    .await?
                    .flatten()
            }
            None => None,
        },
    };
    let Some(destination) = destination else {
        return Ok(None);
    };
    let territory = load(tx).await?;
    Ok((territory.outside(&destination) == Some(true)).then_some(destination))
}

/// Turns an accepted trip outside the territory into a hold for the circuit
/// that asks to approve such trips (the active one of highest priority whose
/// conditions, "outside the territory" among them, match). Nothing changes
/// when no such circuit exists or the decision is not an acceptance.
pub(super) async fn hold_for_trip(
    tx: &mut Transaction<'_, Postgres>,
    input: &DecisionInput,
    decision: &mut Decision,
    destination: &str,
) -> Result<bool> {
    let declined = match &decision.outcome {
        Outcome::Accept => Vec::new(),
        Outcome::AcceptPartially { declined } => declined.clone(),
        Outcome::Decline { .. } | Outcome::Hold { .. } => return Ok(false),
    };
    let (all, by_circuit) = candidates(tx).await?;
    let territorial: Vec<_> = all
        .into_iter()
        .filter(|c| c.conditions.contains(&Condition::OutsideTerritory))
        .collect();
    let mut context = CircuitContext::of(input, &decision.occurrences);
    context.outside_territory = true;
    let Some(version) = choose_circuit(&territorial, &context) else {
        return Ok(false);
    };
    let circuit = by_circuit.iter().find(|(_, v)| **v == version).map(|(c, _)| *c);
    decision.outcome = Outcome::Hold {
        reasons: vec![Reason::new(
            ReasonKind::OutsideTerritory {
                destination: destination.chars().take(200).collect(),
            },
            Scope::Global,
        )],
        circuit,
        declined,
    };
    Ok(true)
}

/// Records the destination a request gave, and whether it is outside.
pub(super) async fn record_destination(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: Uuid,
    destination: &str,
    outside: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO trip_details (booking_id, destination, outside_territory, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (booking_id) DO UPDATE SET destination = EXCLUDED.destination,
             outside_territory = EXCLUDED.outside_territory, updated_at = EXCLUDED.updated_at",
    )
    .bind(booking_id)
    .bind(destination.trim())
    .bind(outside)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Trip details were just saved for a booking (in `tx`): records whether the
/// destination is outside the territory and, for an accepted vehicle booking
/// going outside with a circuit that asks for it, holds the booking and
/// starts that circuit (see the module's documentation). `true` when held.
pub(super) async fn after_trip_details(
    tx: &mut Transaction<'_, Postgres>,
    signer: Option<&LinkSigner>,
    booking_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some((Some(destination), judged_outside)) = sqlx::query_as::<_, (Option<String>, Option<bool>)>(
        "SELECT destination, outside_territory FROM trip_details WHERE booking_id = $1",
    )
    .bind(booking_id)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(false);
    };
    let territory = load(tx).await?;
    let outside = territory.outside(&destination) == Some(true);
    sqlx::query("UPDATE trip_details SET outside_territory = $2 WHERE booking_id = $1")
        .bind(booking_id)
        .bind(outside)
        .execute(&mut **tx)
        .await?;
    // A trip already known to leave the territory went through its circuit
    // then (or no circuit asked for it): saving its details again, or a new
    // destination outside, does not start another.
    if !outside || judged_outside == Some(true) {
        return Ok(false);
    }
    let Some(b) = sqlx::query(
        "SELECT b.resource_id, b.uid, b.sequence, b.organiser_person_id, b.attendee_count, p.preferred_language
         FROM bookings b LEFT JOIN people p ON p.id = b.organiser_person_id
         WHERE b.id = $1 AND b.status IN ('accepted', 'partially_accepted') FOR UPDATE OF b",
    )
    .bind(booking_id)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(false);
    };
    // The occurrences still to come hold the slot of the vehicle itself (a
    // pool's member), whose scopes the circuit is chosen by.
    let occurrences = sqlx::query(
        "SELECT resource_id, original_start, lower(period) AS s, upper(period) AS e FROM occurrences
         WHERE booking_id = $1 AND status = 'accepted' AND upper(period) > $2 ORDER BY lower(period)",
    )
    .bind(booking_id)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    let Some(first) = occurrences.first() else {
        return Ok(false);
    };
    let target: Uuid = first.try_get("resource_id")?;
    let ctx = resource_context(tx, target).await?;
    if ctx.kind != ResourceKind::Vehicle {
        return Ok(false);
    }
    let policy = effective_policy(tx, &ctx.chain).await?;
    let person: Option<Uuid> = b.try_get("organiser_person_id")?;
    let organiser = match person {
        Some(person) => {
            let groups: Vec<Uuid> = sqlx::query_scalar("SELECT group_id FROM person_groups WHERE person_id = $1")
                .bind(person)
                .fetch_all(&mut **tx)
                .await?;
            Organiser::Known { person, groups }
        }
        None => Organiser::Unknown,
    };
    let mut held = Vec::with_capacity(occurrences.len());
    for (i, o) in occurrences.iter().enumerate() {
        held.push(crate::domain::recurrence::Occurrence {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            original_start: o.try_get("original_start")?,
            start: o.try_get("s")?,
            end: o.try_get("e")?,
            modified: false,
        });
    }
    let attendees: Option<i32> = b.try_get("attendee_count")?;
    let input = DecisionInput {
        now,
        request: BookingRequest {
            organiser,
            attendees: attendees.and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
            when: When::Single {
                start: held[0].start,
                end: held[0].end,
            },
            replaces: Some(booking_id),
        },
        resource: ResourceInfo {
            chain: ctx.chain.clone(),
            kind: ctx.kind,
            capacity: ctx.capacity,
            tz: ctx.tz,
        },
        policy,
        grants: Vec::new(),
        occupancy: Vec::new(),
        quota_bookings: Vec::new(),
        blackouts: Vec::new(),
        licence: None,
    };
    let mut decision = Decision {
        outcome: Outcome::Accept,
        occurrences: held,
        right: None,
        checks: Vec::new(),
    };
    if !hold_for_trip(tx, &input, &mut decision, &destination).await? {
        return Ok(false);
    }

    let resource_id: Uuid = b.try_get("resource_id")?;
    let lang_code: Option<String> = b.try_get("preferred_language")?;
    let lang = if lang_code.as_deref() == Some("en") {
        Lang::En
    } else {
        Lang::Fr
    };
    let render = RenderContext {
        lang,
        tz: ctx.tz,
        kind: ctx.kind,
    };
    sqlx::query("UPDATE bookings SET status = 'held', updated_at = $2 WHERE id = $1")
        .bind(booking_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE occurrences SET status = 'held' WHERE booking_id = $1 AND status = 'accepted' AND upper(period) > $2",
    )
    .bind(booking_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, reasons, decided_by)
         VALUES ($1, $2, $3, $4, $5, 'hold', $6, 'system')",
    )
    .bind(booking_id)
    .bind(resource_id)
    .bind(b.try_get::<String, _>("uid")?)
    .bind(b.try_get::<i32, _>("sequence")?)
    .bind(now)
    .bind(reasons_json(&decision, &render))
    .execute(&mut **tx)
    .await?;
    let body = after_decision(
        tx,
        signer,
        Decided {
            booking_id,
            decision: &decision,
            input: &input,
            lang,
            message: decision.message(&render),
            outside_territory: true,
            now,
        },
    )
    .await?;
    // The organiser is told. A meeting from Outlook turns tentative in the
    // resource's calendar (its request was answered long ago, so the answer
    // goes to the meeting, found by UID, as a circuit's final answer does);
    // a booking made on the site gets the message from the resource mailbox.
    let facts = booking_facts(tx, booking_id).await?;
    let key = format!("trip-held:{booking_id}:{}", now.timestamp());
    if facts.exchange_item_id.is_some() {
        let uid = facts.uid.split('#').next().unwrap_or(&facts.uid).to_owned();
        sqlx::query(
            "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
             VALUES ($1, $2, 'tentative', $3, $4, $5, $5) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(resource_id)
        .bind(booking_id)
        .bind(&key)
        .bind(json!({
            "calendar_uid": uid,
            "start": facts.first.map(|f| f.0),
            "end": facts.last_end,
            "body": body,
        }))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    } else if let Some(to) = facts.organiser_smtp.clone() {
        let mut rendered = render_in(tx, Event::Held, lang, &facts.vars(lang)).await?;
        rendered.body = body;
        queue_mail(
            tx,
            resource_id,
            Some(booking_id),
            &key,
            &OutgoingMail {
                to: vec![to],
                rendered,
                lang,
                voting: false,
                event: Event::Held,
            },
            now,
        )
        .await?;
    }
    Ok(true)
}
