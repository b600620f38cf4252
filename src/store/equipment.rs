//! Typed attributes of resources: what each resource type may carry
//! (`attribute_definitions`: a room's video conferencing, projector,
//! whiteboard, step-free access…) and each resource's values
//! (`resource_attributes`). A boolean attribute is a piece of equipment:
//! the availability search filters on it.

use super::{Result, Store, StoreError};
use chrono::NaiveDate;
use sqlx::Row;
use std::collections::HashMap;
use uuid::Uuid;

/// The kinds of value an attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Text,
    Integer,
    Decimal,
    Boolean,
    Date,
    Choice,
}

impl ValueType {
    pub const ALL: [ValueType; 6] = [
        ValueType::Boolean,
        ValueType::Text,
        ValueType::Integer,
        ValueType::Decimal,
        ValueType::Date,
        ValueType::Choice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Integer => "integer",
            ValueType::Decimal => "decimal",
            ValueType::Boolean => "boolean",
            ValueType::Date => "date",
            ValueType::Choice => "choice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What a resource type's attribute is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    pub resource_type_id: Uuid,
    /// Lower case ASCII, digits and `_`, starting with a letter.
    pub key: String,
    pub value_type: ValueType,
    /// The allowed values of a `Choice`; empty otherwise.
    pub choices: Vec<String>,
    pub required: bool,
    pub label_fr: String,
    pub label_en: String,
}

impl AttributeDef {
    pub fn label(&self, english: bool) -> &str {
        if english { &self.label_en } else { &self.label_fr }
    }

    /// Checks a definition before it is stored: (French, English) on error.
    pub fn check(&self) -> std::result::Result<(), (String, String)> {
        let key_ok = self.key.len() <= 40
            && self.key.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            return Err((
                "La clé s'écrit en minuscules sans accent, chiffres et _ (40 caractères au plus), en commençant par une lettre.".into(),
                "The key is lower case without accents, digits and _ (40 characters at most), starting with a letter.".into(),
            ));
        }
        for label in [&self.label_fr, &self.label_en] {
            let n = label.trim().chars().count();
            if n == 0 || n > 200 {
                return Err((
                    "Les libellés français et anglais sont obligatoires (200 caractères au plus).".into(),
                    "The French and English labels are required (200 characters at most).".into(),
                ));
            }
        }
        match (self.value_type, self.choices.is_empty()) {
            (ValueType::Choice, true) => Err((
                "Une liste de choix a besoin d'au moins un choix.".into(),
                "A list of choices needs at least one choice.".into(),
            )),
            (ValueType::Choice, false) | (_, true) => Ok(()),
            (_, false) => Err((
                "Seule une liste de choix a des choix.".into(),
                "Only a list of choices has choices.".into(),
            )),
        }
    }
}

/// One attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Text(String),
    Integer(i64),
    Decimal(f64),
    Boolean(bool),
    Date(NaiveDate),
}

impl AttrValue {
    /// The value as a form or a CSV file shows it.
    pub fn text(&self) -> String {
        match self {
            AttrValue::Text(s) => s.clone(),
            AttrValue::Integer(n) => n.to_string(),
            AttrValue::Decimal(x) => x.to_string(),
            AttrValue::Boolean(true) => "oui".into(),
            AttrValue::Boolean(false) => "non".into(),
            AttrValue::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }
}

/// Reads a value typed by a person (form field, CSV cell) for `def`: `None`
/// for an empty cell, (French, English) when it cannot be read.
pub fn parse_value(def: &AttributeDef, raw: &str) -> std::result::Result<Option<AttrValue>, (String, String)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return if def.required && def.value_type != ValueType::Boolean {
            Err((
                format!("« {} » est obligatoire.", def.label_fr),
                format!("\"{}\" is required.", def.label_en),
            ))
        } else {
            Ok(None)
        };
    }
    let bad = |fr: &str, en: &str| {
        Err((
            format!("« {} » : {fr} (« {raw} »).", def.label_fr),
            format!("\"{}\": {en} (\"{raw}\").", def.label_en),
        ))
    };
    Ok(Some(match def.value_type {
        ValueType::Text if raw.chars().count() > 500 => return bad("500 caractères au plus", "500 characters at most"),
        ValueType::Text => AttrValue::Text(raw.to_owned()),
        ValueType::Integer => match raw.parse() {
            Ok(n) => AttrValue::Integer(n),
            Err(_) => return bad("un nombre entier est attendu", "a whole number is expected"),
        },
        ValueType::Decimal => match raw.replace(',', ".").parse::<f64>() {
            Ok(x) if x.is_finite() => AttrValue::Decimal(x),
            _ => return bad("un nombre est attendu", "a number is expected"),
        },
        ValueType::Boolean => match raw.to_lowercase().as_str() {
            "oui" | "yes" | "true" | "vrai" | "1" | "x" | "on" => AttrValue::Boolean(true),
            "non" | "no" | "false" | "faux" | "0" => AttrValue::Boolean(false),
            _ => return bad("oui ou non est attendu", "yes or no is expected"),
        },
        ValueType::Date => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(d) => AttrValue::Date(d),
            Err(_) => return bad("une date AAAA-MM-JJ est attendue", "a YYYY-MM-DD date is expected"),
        },
        ValueType::Choice => match def.choices.iter().find(|c| c.eq_ignore_ascii_case(raw)) {
            Some(c) => AttrValue::Text(c.clone()),
            None => {
                return bad(
                    &format!("choix possibles : {}", def.choices.join(", ")),
                    &format!("possible choices: {}", def.choices.join(", ")),
                );
            }
        },
    }))
}

/// A piece of equipment the search offers: a boolean attribute of some
/// resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equipment {
    pub key: String,
    pub label_fr: String,
    pub label_en: String,
}

fn def_from_row(r: &sqlx::postgres::PgRow) -> Result<AttributeDef> {
    let kind: String = r.try_get("value_type")?;
    Ok(AttributeDef {
        resource_type_id: r.try_get("resource_type_id")?,
        key: r.try_get("key")?,
        value_type: ValueType::parse(&kind).ok_or_else(|| StoreError::Invalid(format!("attribute type {kind}")))?,
        choices: r.try_get::<Option<Vec<String>>, _>("choices")?.unwrap_or_default(),
        required: r.try_get("required")?,
        label_fr: r.try_get("label_fr")?,
        label_en: r.try_get("label_en")?,
    })
}

const DEF_COLUMNS: &str = "resource_type_id, key, value_type, choices, required, label_fr, label_en";

fn value_from_row(r: &sqlx::postgres::PgRow) -> Result<Option<AttrValue>> {
    if let Some(s) = r.try_get::<Option<String>, _>("value_text")? {
        return Ok(Some(AttrValue::Text(s)));
    }
    if let Some(n) = r.try_get::<Option<i64>, _>("value_integer")? {
        return Ok(Some(AttrValue::Integer(n)));
    }
    if let Some(x) = r.try_get::<Option<f64>, _>("value_decimal")? {
        return Ok(Some(AttrValue::Decimal(x)));
    }
    if let Some(b) = r.try_get::<Option<bool>, _>("value_boolean")? {
        return Ok(Some(AttrValue::Boolean(b)));
    }
    Ok(r.try_get::<Option<NaiveDate>, _>("value_date")?.map(AttrValue::Date))
}

impl Store {
    /// The attributes a resource type defines, by key.
    pub async fn attribute_definitions(&self, resource_type: Uuid) -> Result<Vec<AttributeDef>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEF_COLUMNS} FROM attribute_definitions WHERE resource_type_id = $1 ORDER BY key"
        ))
        .bind(resource_type)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(def_from_row).collect()
    }

    /// Adds an attribute to a type; false when the type already has one
    /// with that key.
    pub async fn add_attribute_definition(&self, def: &AttributeDef) -> Result<bool> {
        def.check().map_err(|(_, en)| StoreError::Invalid(en))?;
        let done = sqlx::query(&format!(
            "INSERT INTO attribute_definitions ({DEF_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT DO NOTHING"
        ))
        .bind(def.resource_type_id)
        .bind(&def.key)
        .bind(def.value_type.as_str())
        .bind((def.value_type == ValueType::Choice).then_some(&def.choices))
        .bind(def.required)
        .bind(def.label_fr.trim())
        .bind(def.label_en.trim())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a type's attribute when no resource has a value for it;
    /// otherwise returns how many do, and removes nothing.
    pub async fn remove_attribute_definition(
        &self,
        resource_type: Uuid,
        key: &str,
    ) -> Result<std::result::Result<bool, i64>> {
        let mut tx = self.pool().begin().await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM resource_attributes a JOIN resources r ON r.id = a.resource_id
             WHERE r.resource_type_id = $1 AND a.key = $2",
        )
        .bind(resource_type)
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        if used > 0 {
            return Ok(Err(used));
        }
        let done = sqlx::query("DELETE FROM attribute_definitions WHERE resource_type_id = $1 AND key = $2")
            .bind(resource_type)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected() == 1))
    }

    /// A resource's attributes: every definition of its type with the
    /// resource's value, if any.
    pub async fn resource_attributes(&self, resource: Uuid) -> Result<Vec<(AttributeDef, Option<AttrValue>)>> {
        let rows = sqlx::query(
            "SELECT d.resource_type_id, d.key, d.value_type, d.choices, d.required, d.label_fr, d.label_en,
                    a.value_text, a.value_integer, a.value_decimal::float8 AS value_decimal, a.value_boolean, a.value_date
             FROM resources r
             JOIN attribute_definitions d ON d.resource_type_id = r.resource_type_id
             LEFT JOIN resource_attributes a ON a.resource_id = r.id AND a.key = d.key
             WHERE r.id = $1 ORDER BY d.key",
        )
        .bind(resource)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((def_from_row(r)?, value_from_row(r)?)))
            .collect()
    }

    /// Replaces a resource's attribute values (a `None` clears one); keys
    /// its type does not define are refused.
    pub async fn set_resource_attributes(&self, resource: Uuid, values: &[(String, Option<AttrValue>)]) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        set_attributes_in(&mut tx, resource, values).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pieces of equipment (boolean attributes) of every type, or of
    /// the given type, one per key.
    pub async fn equipment_choices(&self, resource_type: Option<Uuid>) -> Result<Vec<Equipment>> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (key) key, label_fr, label_en FROM attribute_definitions
             WHERE value_type = 'boolean' AND ($1::uuid IS NULL OR resource_type_id = $1)
             ORDER BY key, label_fr",
        )
        .bind(resource_type)
        .fetch_all(self.pool())
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(Equipment {
                    key: r.try_get("key")?,
                    label_fr: r.try_get("label_fr")?,
                    label_en: r.try_get("label_en")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.label_fr.cmp(&b.label_fr));
        Ok(out)
    }

    /// The equipment each of `resources` has (boolean attributes set to yes).
    pub async fn equipment_of(&self, resources: &[Uuid]) -> Result<HashMap<Uuid, Vec<Equipment>>> {
        let rows = sqlx::query(
            "SELECT a.resource_id, d.key, d.label_fr, d.label_en
             FROM resource_attributes a
             JOIN resources r ON r.id = a.resource_id
             JOIN attribute_definitions d ON d.resource_type_id = r.resource_type_id AND d.key = a.key
             WHERE a.resource_id = ANY($1) AND d.value_type = 'boolean' AND a.value_boolean
             ORDER BY d.label_fr",
        )
        .bind(resources)
        .fetch_all(self.pool())
        .await?;
        let mut out: HashMap<Uuid, Vec<Equipment>> = HashMap::new();
        for r in &rows {
            out.entry(r.try_get("resource_id")?).or_default().push(Equipment {
                key: r.try_get("key")?,
                label_fr: r.try_get("label_fr")?,
                label_en: r.try_get("label_en")?,
            });
        }
        Ok(out)
    }
}

/// Writes a resource's attribute values in a transaction (the CSV import
/// writes them with the resource).
pub(crate) async fn set_attributes_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    resource: Uuid,
    values: &[(String, Option<AttrValue>)],
) -> Result<()> {
    let defined: Vec<String> = sqlx::query_scalar(
        "SELECT d.key FROM attribute_definitions d JOIN resources r ON r.resource_type_id = d.resource_type_id
         WHERE r.id = $1",
    )
    .bind(resource)
    .fetch_all(&mut **tx)
    .await?;
    if let Some((key, _)) = values.iter().find(|(k, _)| !defined.contains(k)) {
        return Err(StoreError::Invalid(format!(
            "attribute {key} is not defined for this resource's type"
        )));
    }
    for (key, value) in values {
        sqlx::query("DELETE FROM resource_attributes WHERE resource_id = $1 AND key = $2")
            .bind(resource)
            .bind(key)
            .execute(&mut **tx)
            .await?;
        let Some(value) = value else { continue };
        let (text, integer, decimal, boolean, date) = match value {
            AttrValue::Text(s) => (Some(s.as_str()), None, None, None, None),
            AttrValue::Integer(n) => (None, Some(*n), None, None, None),
            AttrValue::Decimal(x) => (None, None, Some(*x), None, None),
            AttrValue::Boolean(b) => (None, None, None, Some(*b), None),
            AttrValue::Date(d) => (None, None, None, None, Some(*d)),
        };
        sqlx::query(
            "INSERT INTO resource_attributes (resource_id, key, value_text, value_integer, value_decimal, value_boolean, value_date)
             VALUES ($1, $2, $3, $4, $5::float8::numeric, $6, $7)",
        )
        .bind(resource)
        .bind(key)
        .bind(text)
        .bind(integer)
        .bind(decimal)
        .bind(boolean)
        .bind(date)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(value_type: ValueType, choices: &[&str], required: bool) -> AttributeDef {
        AttributeDef {
            resource_type_id: Uuid::nil(),
            key: "visio".into(),
            value_type,
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
            required,
            label_fr: "Visioconférence".into(),
            label_en: "Video conferencing".into(),
        }
    }

    #[test]
    fn values_are_read_as_people_type_them() {
        let b = def(ValueType::Boolean, &[], false);
        assert_eq!(parse_value(&b, " Oui "), Ok(Some(AttrValue::Boolean(true))));
        assert_eq!(parse_value(&b, "non"), Ok(Some(AttrValue::Boolean(false))));
        assert_eq!(parse_value(&b, ""), Ok(None));
        let err = parse_value(&b, "peut-être").expect_err("not a yes or no");
        assert_eq!(err.0, "« Visioconférence » : oui ou non est attendu (« peut-être »).");
        let d = def(ValueType::Decimal, &[], false);
        assert_eq!(parse_value(&d, "2,5"), Ok(Some(AttrValue::Decimal(2.5))));
        assert!(parse_value(&d, "NaN").is_err());
        let c = def(ValueType::Choice, &["HDMI", "VGA"], true);
        assert_eq!(parse_value(&c, "hdmi"), Ok(Some(AttrValue::Text("HDMI".into()))));
        assert!(
            parse_value(&c, "USB")
                .expect_err("not a choice")
                .0
                .contains("HDMI, VGA")
        );
        assert!(parse_value(&c, " ").expect_err("required").0.contains("obligatoire"));
        let i = def(ValueType::Integer, &[], false);
        assert!(parse_value(&i, "12.5").is_err());
        let t = def(ValueType::Date, &[], false);
        assert_eq!(
            parse_value(&t, "2027-01-31"),
            Ok(Some(AttrValue::Date(
                NaiveDate::from_ymd_opt(2027, 1, 31).expect("date")
            )))
        );
    }

    #[test]
    fn definitions_are_checked_before_they_are_stored() {
        assert!(def(ValueType::Boolean, &[], false).check().is_ok());
        let mut bad = def(ValueType::Boolean, &[], false);
        bad.key = "Visio conf".into();
        assert!(bad.check().is_err());
        assert!(def(ValueType::Choice, &[], false).check().is_err());
        assert!(def(ValueType::Text, &["a"], false).check().is_err());
        let mut unnamed = def(ValueType::Boolean, &[], false);
        unnamed.label_en = " ".into();
        assert!(unnamed.check().is_err());
    }
}
