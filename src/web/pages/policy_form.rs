//! The policy editor of one scope: one control per rule, left empty to
//! inherit (the control says what would be inherited and from where) or
//! filled to set the rule here. Works without JavaScript; the JSON editor
//! stays available, folded, for bulk changes.

use super::bookings::{PolicyRow, policy_field_label, policy_rows, scope_label};
use super::{Base, render, see_other, tr};
use crate::domain::policy::{TimeRange, WeeklyHours};
use crate::domain::{EffectivePolicy, Policy, Scope, ScopeChain};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveTime, Weekday};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// How a rule is entered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Number { max: u64 },
    Bool,
    Choice(&'static [(&'static str, &'static str, &'static str)]),
    Hours,
    Quotas,
    Circuit,
}

const HORIZON: &[(&str, &str, &str)] = &[
    ("decline", "Refuser toute la série", "Decline the whole series"),
    (
        "truncate",
        "Accepter jusqu'à l'horizon, ignorer la suite",
        "Accept up to the horizon, drop the rest",
    ),
];
const UNKNOWN: &[(&str, &str, &str)] = &[
    ("decline", "Refuser", "Decline"),
    ("hold", "Mettre en attente de validation", "Hold for approval"),
    (
        "default_right",
        "Appliquer le droit par défaut",
        "Apply the default right",
    ),
];
const RIGHT: &[(&str, &str, &str)] = &[
    ("book", "Réserver", "Book"),
    ("request", "Demander (avec validation)", "Request (with approval)"),
    ("none", "Aucun", "None"),
];

fn kind_of(key: &str) -> Kind {
    match key {
        "horizon_mode" => Kind::Choice(HORIZON),
        "unknown_organiser" => Kind::Choice(UNKNOWN),
        "default_right" => Kind::Choice(RIGHT),
        "opening_hours" | "work_hours" => Kind::Hours,
        "quotas" => Kind::Quotas,
        "approval_circuit" => Kind::Circuit,
        "conflict_max_percent" => Kind::Number { max: 100 },
        k if k.ends_with("_minutes") || k.ends_with("_days") || k.ends_with("_count") || k == "max_occurrences" => {
            Kind::Number {
                max: u64::from(u32::MAX),
            }
        }
        _ => Kind::Bool,
    }
}

/// Labels the shared table does not have yet.
const MORE_LABELS: &[(&str, &str, &str)] = &[
    (
        "check_in_minutes",
        "Présence à confirmer dans les (minutes ; 0 : non)",
        "Check-in required within (minutes; 0: no)",
    ),
    (
        "require_trip_details",
        "Détails du trajet exigés avant le départ",
        "Trip details required before pickup",
    ),
    (
        "return_grace_minutes",
        "Retard de retour toléré (minutes)",
        "Late return tolerated (minutes)",
    ),
];

fn label(key: &str, lang: Lang) -> String {
    let shared = policy_field_label(key, lang);
    if shared != key {
        return shared;
    }
    MORE_LABELS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, fr, en)| tr(lang, fr, en))
        .unwrap_or(shared)
}

const DAYS: [(Weekday, &str, &str, &str); 7] = [
    (Weekday::Mon, "monday", "Lundi", "Monday"),
    (Weekday::Tue, "tuesday", "Mardi", "Tuesday"),
    (Weekday::Wed, "wednesday", "Mercredi", "Wednesday"),
    (Weekday::Thu, "thursday", "Jeudi", "Thursday"),
    (Weekday::Fri, "friday", "Vendredi", "Friday"),
    (Weekday::Sat, "saturday", "Samedi", "Saturday"),
    (Weekday::Sun, "sunday", "Dimanche", "Sunday"),
];

/// "08:00-12:00, 14:00-18:00"; the whole day is "00:00-24:00".
fn ranges_text(ranges: &[TimeRange], lang: Lang) -> String {
    if ranges.is_empty() {
        return tr(lang, "fermé", "closed");
    }
    ranges
        .iter()
        .map(|r| {
            let end = if r.end == NaiveTime::MIN {
                "24:00".to_owned()
            } else {
                r.end.format("%H:%M").to_string()
            };
            format!("{}-{end}", r.start.format("%H:%M"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A time as people write it: "8", "8h", "08h30", "8:30", "24:00".
fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim().to_lowercase();
    let (h, m) = match s.split_once([':', 'h']) {
        Some((h, m)) => (h.trim(), if m.trim().is_empty() { "0" } else { m.trim() }),
        None => (s.as_str(), "0"),
    };
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if (h, m) == (24, 0) {
        return Some(NaiveTime::MIN);
    }
    NaiveTime::from_hms_opt(h, m, 0)
}

/// One day's ranges; `Err` names what could not be read.
fn parse_ranges(s: &str) -> std::result::Result<Vec<TimeRange>, String> {
    let t = s.trim().to_lowercase();
    if t.is_empty() || ["fermé", "ferme", "closed"].contains(&t.as_str()) {
        return Ok(Vec::new());
    }
    t.split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (a, b) = part.split_once(['-', '–']).ok_or_else(|| part.to_owned())?;
            match (parse_time(a), parse_time(b)) {
                (Some(start), Some(end)) => Ok(TimeRange { start, end }),
                _ => Err(part.to_owned()),
            }
        })
        .collect()
}

/// One day's input of an hours rule.
struct DayInput {
    name: String,
    label: String,
    value: String,
}

/// One rule of the form.
struct FieldInput {
    key: String,
    label: String,
    /// "number", "bool", "choice", "hours", "quotas", "circuit".
    kind: &'static str,
    /// The inherited value and where it comes from, readable.
    inherited: String,
    /// What is set here (or what the user typed), as text.
    value: String,
    options: Vec<(String, String)>,
    days: Vec<DayInput>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    base: Base,
    scope_name: String,
    action: String,
    body: String,
    error: Option<String>,
    rows: Vec<PolicyRow>,
    fields: Vec<FieldInput>,
    /// Errors of the form, each linking to its field.
    summary: Vec<(String, String)>,
    t: Texts,
}

/// The page's own texts.
struct Texts {
    form_title: String,
    form_help: String,
    inherit: String,
    empty_inherits: String,
    hours_help: String,
    quotas_help: String,
    errors_title: String,
    advanced: String,
    save: String,
}

impl Texts {
    fn new(lang: Lang) -> Self {
        Texts {
            form_title: tr(lang, "Règles fixées à ce niveau", "Rules set at this level"),
            form_help: tr(
                lang,
                "Laissez une règle vide pour hériter de la valeur indiquée ; remplissez-la pour la fixer ici.",
                "Leave a rule empty to inherit the value shown; fill it in to set it here.",
            ),
            inherit: tr(lang, "Hériter", "Inherit"),
            empty_inherits: tr(lang, "Vide : hérite", "Empty: inherits"),
            hours_help: tr(
                lang,
                "Par jour, des plages comme « 08:00-12:00, 14:00-18:00 », « fermé », ou « 00:00-24:00 » pour toute la journée. Tous les jours vides : hérite",
                "Per day, ranges such as \"08:00-12:00, 14:00-18:00\", \"closed\", or \"00:00-24:00\" for the whole day. Every day empty: inherits",
            ),
            quotas_help: tr(
                lang,
                "Liste JSON, par exemple [{\"subject\": \"person\", \"period\": \"week\", \"limit\": {\"hours\": 10}}] ; [] : aucun quota ici. Vide : hérite",
                "JSON list, for example [{\"subject\": \"person\", \"period\": \"week\", \"limit\": {\"hours\": 10}}]; []: no quota here. Empty: inherits",
            ),
            errors_title: tr(lang, "Le formulaire contient des erreurs", "The form has errors"),
            advanced: tr(lang, "Édition avancée (JSON)", "Advanced editing (JSON)"),
            save: tr(lang, "Enregistrer les règles", "Save the rules"),
        }
    }
}

/// The scope named by a URL's kind and id.
fn parse_scope(kind: &str, id: &str) -> Result<Scope> {
    let uuid = || id.parse::<Uuid>().map_err(|_| WebError::NotFound);
    Ok(match kind {
        "global" => Scope::Global,
        "organisation" => Scope::Organisation(uuid()?),
        "site" => Scope::Site(uuid()?),
        "resource_type" => Scope::ResourceType(uuid()?),
        "resource" => Scope::Resource(uuid()?),
        _ => return Err(WebError::NotFound),
    })
}

/// The effective policy at a scope (what a resource placed there, with
/// nothing more specific set, would get); without the scope's own layer
/// when `inherited` is set, which is what the scope inherits.
async fn effective_at(state: &WebState, scope: Scope, inherited: bool) -> Result<EffectivePolicy> {
    let chain = match scope {
        Scope::Resource(id) => state.store.policy_chain_of(id).await?,
        Scope::Organisation(o) => ScopeChain {
            organisation: Some(o),
            ..ScopeChain::resource_only(Uuid::nil())
        },
        Scope::Site(s) => {
            let org = state
                .store
                .list_sites()
                .await?
                .into_iter()
                .find(|x| x.id == s)
                .map(|x| x.organisation_id);
            ScopeChain {
                organisation: org,
                site: Some(s),
                ..ScopeChain::resource_only(Uuid::nil())
            }
        }
        Scope::ResourceType(t) => ScopeChain {
            resource_type: Some(t),
            ..ScopeChain::resource_only(Uuid::nil())
        },
        Scope::Global => ScopeChain::resource_only(Uuid::nil()),
    };
    let mut layers = Vec::new();
    for s in chain.scopes() {
        if s == Scope::Resource(Uuid::nil()) || (inherited && s == scope) {
            continue;
        }
        if let Some(body) = state.store.policy_at(s).await? {
            let p: Policy = serde_json::from_value(body).map_err(|e| WebError::Internal(e.to_string()))?;
            layers.push((s, p));
        }
    }
    Ok(EffectivePolicy::resolve(&chain, layers.iter().map(|(s, p)| (*s, p))))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| WebError::Internal(e.to_string()))
}

/// A value set here, as the text its control shows.
fn value_text(kind: Kind, v: &Value, lang: Lang) -> String {
    match (kind, v) {
        (_, Value::Null) => String::new(),
        (Kind::Hours, v) => serde_json::from_value::<WeeklyHours>(v.clone())
            .map(|h| {
                DAYS.iter()
                    .map(|(d, ..)| ranges_text(h.day(*d), lang))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        (Kind::Quotas, v) => serde_json::to_string(v).unwrap_or_default(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// What the user typed, kept when the form comes back with errors.
type Typed = HashMap<String, String>;

async fn page(
    state: &WebState,
    ctx: &Ctx,
    (kind, id): (&str, &str),
    typed: Option<&Typed>,
    errors: &HashMap<String, String>,
    json_error: Option<String>,
) -> Result<PolicyPage> {
    let lang = ctx.lang;
    let scope = parse_scope(kind, id)?;
    let names = state.store.object_names().await?;
    let scope_json = to_json(&scope)?;
    if let Some(sid) = scope_json
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Uuid>().ok())
        && !names.contains_key(&sid)
    {
        return Err(WebError::NotFound);
    }
    let stored = state.store.policy_at(scope).await?.unwrap_or_else(|| json!({}));
    let effective = to_json(&effective_at(state, scope, false).await?)?;
    let parent = to_json(&effective_at(state, scope, true).await?)?;
    let parent_rows = policy_rows(&parent, &scope_json, &names, lang);
    let circuits = state.store.circuits().await?;
    let fields = parent_rows
        .iter()
        .map(|row| {
            let k = kind_of(&row.key);
            let here = stored.get(&row.key).cloned().unwrap_or(Value::Null);
            let shown = |name: &str, fallback: String| typed.and_then(|t| t.get(name).cloned()).unwrap_or(fallback);
            let days = if k == Kind::Hours {
                let set: Option<WeeklyHours> = serde_json::from_value(here.clone()).ok().filter(|_| !here.is_null());
                DAYS.iter()
                    .map(|(d, name, fr, en)| {
                        let input = format!("hours.{}.{name}", row.key);
                        let value = set.as_ref().map(|h| ranges_text(h.day(*d), lang)).unwrap_or_default();
                        DayInput {
                            value: shown(&input, value),
                            name: input,
                            label: tr(lang, fr, en),
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let options = match k {
                Kind::Bool => vec![
                    ("true".to_owned(), lang.text("yes").to_owned()),
                    ("false".to_owned(), lang.text("no").to_owned()),
                ],
                Kind::Choice(list) => list
                    .iter()
                    .map(|(v, fr, en)| ((*v).to_owned(), tr(lang, fr, en)))
                    .collect(),
                Kind::Circuit => circuits
                    .iter()
                    .map(|c| {
                        let name = match lang {
                            Lang::Fr => c.def.label_fr.clone(),
                            Lang::En => c.def.label_en.clone(),
                        };
                        (c.id.to_string(), name.unwrap_or_else(|| c.def.name.clone()))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            FieldInput {
                label: label(&row.key, lang),
                kind: match k {
                    Kind::Number { .. } => "number",
                    Kind::Bool => "bool",
                    Kind::Choice(_) => "choice",
                    Kind::Hours => "hours",
                    Kind::Quotas => "quotas",
                    Kind::Circuit => "circuit",
                },
                inherited: format!("{} ({})", row.value, row.origin),
                value: shown(&format!("value.{}", row.key), value_text(k, &here, lang)),
                options,
                days,
                error: errors.get(&row.key).cloned(),
                key: row.key.clone(),
            }
        })
        .collect::<Vec<_>>();
    let summary = fields
        .iter()
        .filter_map(|f| {
            f.error.as_ref().map(|e| {
                let anchor = if f.kind == "hours" {
                    format!("hours.{}.monday", f.key)
                } else {
                    format!("value.{}", f.key)
                };
                (anchor, format!("{} : {e}", f.label))
            })
        })
        .chain(errors.get("").map(|e| ("policy-form".to_owned(), e.clone())))
        .collect();
    Ok(PolicyPage {
        base: Base::new(ctx, "policies.scope_title"),
        scope_name: scope_label(&scope_json, &names, lang),
        action: format!("/admin/policies/{kind}/{id}"),
        body: typed
            .and_then(|t| t.get("body").cloned())
            .unwrap_or_else(|| serde_json::to_string_pretty(&stored).unwrap_or_else(|_| "{}".into())),
        error: json_error,
        rows: policy_rows(&effective, &scope_json, &names, lang),
        fields,
        summary,
        t: Texts::new(lang),
    })
}

pub async fn show(state: &WebState, ctx: &Ctx, kind: &str, id: &str, flash: Option<&str>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let mut p = page(state, ctx, (kind, id), None, &HashMap::new(), None).await?;
    p.base = p.base.with_flash(flash);
    render(&p)
}

/// Reads the per-rule form into a policy, or the errors of each rule
/// (keyed by rule; "" for the policy as a whole).
fn read_fields(form: &Typed, lang: Lang) -> std::result::Result<Policy, HashMap<String, String>> {
    let mut set = Map::new();
    let mut errors = HashMap::new();
    let keys: Vec<String> = to_json(&EffectivePolicy::builtin())
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default();
    for key in keys {
        let kind = kind_of(&key);
        let raw = form.get(&format!("value.{key}")).map(|s| s.trim()).unwrap_or_default();
        let value = match kind {
            Kind::Hours => {
                let days: Vec<(Weekday, &str)> = DAYS
                    .iter()
                    .map(|(d, name, ..)| {
                        let v = form
                            .get(&format!("hours.{key}.{name}"))
                            .map(|s| s.trim())
                            .unwrap_or_default();
                        (*d, v)
                    })
                    .collect();
                if days.iter().all(|(_, v)| v.is_empty()) {
                    continue;
                }
                let mut hours = json!({});
                let mut bad = Vec::new();
                for ((_, text), (_, name, fr, en)) in days.iter().zip(DAYS.iter()) {
                    match parse_ranges(text) {
                        Ok(r) => hours[*name] = json!(r),
                        Err(part) => bad.push(format!("{} « {part} »", tr(lang, fr, en))),
                    }
                }
                if !bad.is_empty() {
                    errors.insert(
                        key.clone(),
                        format!(
                            "{} {}",
                            tr(
                                lang,
                                "plage illisible, écrivez par exemple 08:00-12:00 :",
                                "unreadable range, write for example 08:00-12:00:"
                            ),
                            bad.join(", ")
                        ),
                    );
                    continue;
                }
                match serde_json::from_value::<WeeklyHours>(hours.clone()).map(|h| h.validate().map(|()| h)) {
                    Ok(Ok(_)) => hours,
                    Ok(Err(e)) => {
                        errors.insert(key.clone(), e.to_string());
                        continue;
                    }
                    Err(e) => {
                        errors.insert(key.clone(), e.to_string());
                        continue;
                    }
                }
            }
            _ if raw.is_empty() => continue,
            Kind::Number { max } => match raw.parse::<u64>() {
                Ok(n) if n <= max => json!(n),
                _ => {
                    errors.insert(
                        key.clone(),
                        match lang {
                            Lang::Fr => format!("un nombre entier entre 0 et {max} est attendu"),
                            Lang::En => format!("a whole number between 0 and {max} is expected"),
                        },
                    );
                    continue;
                }
            },
            Kind::Bool => match raw {
                "true" => json!(true),
                "false" => json!(false),
                _ => {
                    errors.insert(key.clone(), tr(lang, "choix inconnu", "unknown choice"));
                    continue;
                }
            },
            Kind::Choice(list) => match list.iter().find(|(v, ..)| *v == raw) {
                Some((v, ..)) => json!(v),
                None => {
                    errors.insert(key.clone(), tr(lang, "choix inconnu", "unknown choice"));
                    continue;
                }
            },
            Kind::Circuit => match raw.parse::<Uuid>() {
                Ok(id) => json!(id),
                Err(_) => {
                    errors.insert(key.clone(), tr(lang, "circuit inconnu", "unknown circuit"));
                    continue;
                }
            },
            Kind::Quotas => match serde_json::from_str::<Value>(raw) {
                Ok(v) if v.is_array() => v,
                _ => {
                    errors.insert(
                        key.clone(),
                        tr(
                            lang,
                            "une liste JSON est attendue, par exemple []",
                            "a JSON list is expected, for example []",
                        ),
                    );
                    continue;
                }
            },
        };
        set.insert(key, value);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let policy = serde_json::from_value::<Policy>(Value::Object(set))
        .map_err(|e| e.to_string())
        .and_then(|p| p.validate().map(|()| p).map_err(|e| e.to_string()));
    policy.map_err(|e| {
        HashMap::from([(
            String::new(),
            format!("{} {e}", tr(lang, "Règles incohérentes :", "Inconsistent rules:")),
        )])
    })
}

/// Saves either the per-rule form or, when it carries `body`, the JSON
/// editor's text.
pub async fn save(state: &WebState, ctx: &Ctx, kind: &str, id: &str, form: Typed) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let scope = parse_scope(kind, id)?;
    let lang = ctx.lang;
    let parsed = match form.get("body") {
        Some(body) => serde_json::from_str::<Policy>(body)
            .map_err(|e| e.to_string())
            .and_then(|p| p.validate().map(|()| p).map_err(|e| e.to_string()))
            .map_err(|e| (HashMap::new(), Some(format!("{} {e}", lang.text("policies.invalid"))))),
        None => read_fields(&form, lang).map_err(|errors| (errors, None)),
    };
    let policy = match parsed {
        Ok(p) => p,
        Err((errors, json_error)) => {
            let p = page(state, ctx, (kind, id), Some(&form), &errors, json_error).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&p)?).into_response());
        }
    };
    let now = state.clock.now();
    state.store.set_policy(scope, &policy, now).await?;
    state
        .store
        .record_audit(
            now,
            &user.person_id.to_string(),
            "policy.set",
            "policy",
            Some(&format!("{kind}/{id}")),
            serde_json::to_value(&policy).unwrap_or_default(),
        )
        .await?;
    Ok(see_other(&format!("/admin/policies/{kind}/{id}?msg=policies.saved")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Typed {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn empty_rules_inherit_and_filled_ones_are_set() {
        let p = read_fields(
            &form(&[
                ("value.min_notice_minutes", " 30 "),
                ("value.allow_recurring", "false"),
                ("value.default_right", "request"),
                ("value.max_duration_minutes", ""),
            ]),
            Lang::Fr,
        )
        .expect("valid");
        assert_eq!(
            p,
            Policy {
                min_notice_minutes: Some(30),
                allow_recurring: Some(false),
                default_right: Some(crate::domain::policy::DefaultRight::Request),
                ..Policy::default()
            }
        );
        assert_eq!(read_fields(&form(&[]), Lang::Fr).expect("valid"), Policy::default());
    }

    #[test]
    fn hours_are_read_as_people_write_them() {
        let p = read_fields(
            &form(&[
                ("hours.opening_hours.monday", "8h-12h, 14:00-18h30"),
                ("hours.opening_hours.tuesday", "00:00-24:00"),
                ("hours.opening_hours.sunday", "fermé"),
            ]),
            Lang::Fr,
        )
        .expect("valid");
        let h = p.opening_hours.expect("set");
        assert_eq!(
            h.day(Weekday::Mon),
            &[
                TimeRange::hm((8, 0), (12, 0)).expect("t"),
                TimeRange::hm((14, 0), (18, 30)).expect("t")
            ]
        );
        assert_eq!(h.day(Weekday::Tue), &[TimeRange::ALL_DAY]);
        // Days left empty next to filled ones are closed.
        assert!(h.day(Weekday::Wed).is_empty() && h.day(Weekday::Sun).is_empty());
        assert_eq!(ranges_text(h.day(Weekday::Tue), Lang::Fr), "00:00-24:00");
        assert_eq!(ranges_text(h.day(Weekday::Mon), Lang::En), "08:00-12:00, 14:00-18:30");
    }

    #[test]
    fn each_bad_rule_gets_its_own_error_and_nothing_is_saved() {
        let errors = read_fields(
            &form(&[
                ("value.min_notice_minutes", "-5"),
                ("value.conflict_max_percent", "150"),
                ("value.default_right", "<script>"),
                ("value.quotas", "{not json"),
                ("hours.work_hours.monday", "huit heures"),
            ]),
            Lang::Fr,
        )
        .expect_err("invalid");
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors["conflict_max_percent"].contains("entre 0 et 100"));
        assert!(errors["work_hours"].contains("Lundi « huit heures »"), "{errors:?}");
        // Rules valid one by one but not together are refused as a whole.
        let whole = read_fields(
            &form(&[
                ("value.min_duration_minutes", "90"),
                ("value.max_duration_minutes", "60"),
            ]),
            Lang::En,
        )
        .expect_err("inconsistent");
        assert!(whole[""].starts_with("Inconsistent rules:"), "{whole:?}");
    }
}
