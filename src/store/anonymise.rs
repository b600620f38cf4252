//! Retention's part in `decisions`: the personal data a decision quotes.
//!
//! A decision keeps, for the explainer, the organiser's address and their
//! directory references (`inputs`) and, in a conflict reason shown to the
//! organiser when the policy allows it, the name of whoever held the slot
//! (`reasons`, `explanation`). Once the decision's booking is anonymised, these
//! are replaced: the address by the anonymous one, the directory references
//! dropped (only the kind of organiser stays), the holder's name removed from
//! the parameters and the French and English texts. Everything the reports
//! and the explainer count on stays: outcome, rules, scopes, slots, codes.
//!
//! `decisions` refuses updates except this one (migration 0011).

use super::Result;
use super::retention::ANONYMISED_ADDRESS;
use serde_json::{Map, Value, json};
use sqlx::{Postgres, Row, Transaction};

/// Decisions anonymised per statement, so a first run over years of
/// history does not hold them all in memory.
const BATCH: i64 = 2_000;

/// Anonymises the decisions of anonymised bookings that still quote
/// personal data; returns how many were changed.
pub(super) async fn anonymise_decisions(tx: &mut Transaction<'_, Postgres>) -> Result<u64> {
    let mut changed = 0;
    sqlx::query("SET LOCAL resa.anonymising = 'on'")
        .execute(&mut **tx)
        .await?;
    loop {
        let rows = sqlx::query(
            "SELECT d.id, d.inputs, d.reasons, d.explanation
             FROM decisions d JOIN bookings b ON b.id = d.booking_id
             WHERE b.anonymised_at IS NOT NULL AND NOT (d.inputs ? 'anonymised')
             ORDER BY d.id LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&mut **tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut inputs = Vec::with_capacity(rows.len());
        let mut reasons = Vec::with_capacity(rows.len());
        let mut explanations = Vec::with_capacity(rows.len());
        for row in &rows {
            let s = scrub(
                &row.try_get::<Value, _>("inputs")?,
                &row.try_get::<Value, _>("reasons")?,
                &row.try_get::<Value, _>("explanation")?,
            );
            ids.push(row.try_get::<i64, _>("id")?);
            inputs.push(s.inputs);
            reasons.push(s.reasons);
            explanations.push(s.explanation);
        }
        changed += sqlx::query(
            "UPDATE decisions d SET inputs = u.inputs, reasons = u.reasons, explanation = u.explanation
             FROM unnest($1::bigint[], $2::jsonb[], $3::jsonb[], $4::jsonb[]) AS u(id, inputs, reasons, explanation)
             WHERE d.id = u.id",
        )
        .bind(&ids)
        .bind(&inputs)
        .bind(&reasons)
        .bind(&explanations)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    sqlx::query("SET LOCAL resa.anonymising = 'off'")
        .execute(&mut **tx)
        .await?;
    Ok(changed)
}

/// A decision's three documents without personal data.
#[derive(Debug, PartialEq)]
struct Scrubbed {
    inputs: Value,
    reasons: Value,
    explanation: Value,
}

fn scrub(inputs: &Value, reasons: &Value, explanation: &Value) -> Scrubbed {
    let address = inputs
        .get("organiser_address")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty() && *a != ANONYMISED_ADDRESS)
        .map(str::to_owned);
    let mut names = Vec::new();
    let mut reasons = reasons.clone();
    let mut explanation = explanation.clone();
    take_holders(&mut reasons, &mut names);
    take_holders(&mut explanation, &mut names);
    // The longest first, so a name that contains another goes whole.
    names.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    names.dedup();
    let clean = |s: &str| {
        let mut out = s.to_owned();
        for name in &names {
            // "… est réservée de 14 h à 15 h par X" reads right without it.
            out = out
                .replace(&format!(" par {name}"), "")
                .replace(&format!(" by {name}"), "");
            out = out.replace(name.as_str(), "anonyme");
        }
        if let Some(a) = &address {
            out = out.replace(a.as_str(), ANONYMISED_ADDRESS);
        }
        out
    };
    map_strings(&mut reasons, &clean);
    map_strings(&mut explanation, &clean);

    let mut kept = Map::new();
    if let Some(o) = inputs.as_object() {
        for (k, v) in o {
            let v = match k.as_str() {
                "organiser_address" => json!(ANONYMISED_ADDRESS),
                // Directory references: only the kind of organiser stays.
                "organiser" => json!({ "kind": v.get("kind").cloned().unwrap_or(Value::Null) }),
                _ => {
                    let mut v = v.clone();
                    map_strings(&mut v, &clean);
                    v
                }
            };
            kept.insert(k.clone(), v);
        }
    }
    kept.insert("anonymised".into(), json!(true));
    Scrubbed {
        inputs: Value::Object(kept),
        reasons,
        explanation,
    }
}

/// Clears every `organiser` parameter (the holder of a conflicting slot),
/// collecting the names it held.
fn take_holders(v: &mut Value, names: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(holder) = o.get_mut("organiser")
                && let Some(name) = holder.as_str()
            {
                if !name.trim().is_empty() {
                    names.push(name.to_owned());
                }
                *holder = Value::Null;
            }
            o.values_mut().for_each(|v| take_holders(v, names));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| take_holders(v, names)),
        _ => {}
    }
}

fn map_strings(v: &mut Value, f: &dyn Fn(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Object(o) => o.values_mut().for_each(|v| map_strings(v, f)),
        Value::Array(a) => a.iter_mut().for_each(|v| map_strings(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_and_the_organiser_leave_and_the_rules_stay() {
        let inputs = json!({
            "organiser_address": "bob@plainecommune.fr",
            "organiser": { "kind": "known", "person": "0000-1", "groups": ["0000-2"] },
            "attendees": 4,
            "policy": { "show_organiser_on_conflict": true },
        });
        let reasons = json!([{
            "code": "conflict", "scope": "organisation",
            "start": "2026-12-01T13:00:00Z", "end": "2026-12-01T14:00:00Z",
            "organiser": "Service Urbanisme",
            "fr": "La salle est réservée de 14 h à 15 h par Service Urbanisme",
            "en": "The room is booked from 2 pm to 3 pm by Service Urbanisme",
        }]);
        let explanation = json!([{
            "rule": "conflict", "verdict": { "fail": { "code": "conflict", "organiser": "Service Urbanisme" } },
        }, {
            "rule": "note", "text": "asked by bob@plainecommune.fr",
        }]);
        let s = scrub(&inputs, &reasons, &explanation);
        assert_eq!(
            s.inputs,
            json!({
                "organiser_address": ANONYMISED_ADDRESS,
                "organiser": { "kind": "known" },
                "attendees": 4,
                "policy": { "show_organiser_on_conflict": true },
                "anonymised": true,
            })
        );
        assert_eq!(s.reasons[0]["fr"], "La salle est réservée de 14 h à 15 h");
        assert_eq!(s.reasons[0]["en"], "The room is booked from 2 pm to 3 pm");
        assert_eq!(s.reasons[0]["organiser"], Value::Null);
        assert_eq!(s.reasons[0]["code"], "conflict");
        assert_eq!(s.reasons[0]["start"], "2026-12-01T13:00:00Z");
        assert_eq!(s.explanation[0]["verdict"]["fail"]["organiser"], Value::Null);
        assert_eq!(s.explanation[1]["text"], format!("asked by {ANONYMISED_ADDRESS}"));
        let all = format!("{} {} {}", s.inputs, s.reasons, s.explanation);
        assert!(!all.contains("Urbanisme") && !all.contains("bob@"), "{all}");
    }

    #[test]
    fn a_decision_without_personal_data_is_only_marked() {
        let s = scrub(&json!({}), &json!([]), &json!([]));
        assert_eq!(s.inputs, json!({ "anonymised": true }));
        assert_eq!((&s.reasons, &s.explanation), (&json!([]), &json!([])));
        // Anonymising again changes nothing more.
        let again = scrub(&s.inputs, &s.reasons, &s.explanation);
        assert_eq!(again.inputs, s.inputs);
    }
}
