//! Bringing resources in: from a CSV file (`resa resources import`), with a
//! report of every bad line, and from Exchange's room lists
//! (`resa resources discover`), written as a CSV to review and import.
//!
//! The CSV columns are `name,mailbox,site,type,capacity,exchange`, where
//! `site` is `organisation/site` (slugs), `type` a resource type's slug and
//! `exchange` the name of an `[[exchange]]` block. A file with any bad line
//! imports nothing: the administrator fixes it and runs it again, and a
//! second run of the same file changes nothing (resources are matched by
//! mailbox address).
//!
//! Optional `attr:KEY` columns give the values of the attributes the
//! resource's type defines (`attr:visio` = `oui`, `attr:connectique` =
//! `HDMI`); an empty cell clears the value.

use crate::store::Store;
use crate::store::catalogue::NewResource;
use crate::store::equipment::{AttrValue, AttributeDef, parse_value};
use std::collections::{HashMap, HashSet};
use std::io::Read;

pub const COLUMNS: [&str; 6] = ["name", "mailbox", "site", "type", "capacity", "exchange"];

/// One bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line of the file (the header is line 1).
    pub line: u64,
    pub fr: String,
    pub en: String,
}

/// What an import did, or would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub errors: Vec<LineError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("CSV: {0}")]
    Csv(String),
}

struct Row {
    line: u64,
    name: String,
    mailbox: String,
    site_id: uuid::Uuid,
    type_id: uuid::Uuid,
    capacity: Option<i32>,
    exchange: String,
    attributes: Vec<(String, Option<AttrValue>)>,
}

/// Reads, checks every line, and writes only when no line is wrong.
pub async fn import_csv(store: &Store, input: impl Read, endpoints: &[String]) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::Csv(e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let mut report = ImportReport::default();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let missing: Vec<&str> = COLUMNS.iter().copied().filter(|c| col(c).is_none()).collect();
    if !missing.is_empty() {
        report.errors.push(LineError {
            line: 1,
            fr: format!(
                "colonnes manquantes : {} (attendues : {})",
                missing.join(", "),
                COLUMNS.join(",")
            ),
            en: format!(
                "missing columns: {} (expected: {})",
                missing.join(", "),
                COLUMNS.join(",")
            ),
        });
        return Ok(report);
    }
    let idx = |name: &str| col(name).unwrap_or(0);
    // (column, attribute key) of the `attr:KEY` columns.
    let attr_columns: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix("attr:").map(|k| (i, k.trim().to_owned())))
        .collect();
    let mut definitions: HashMap<uuid::Uuid, Vec<AttributeDef>> = HashMap::new();
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                report.errors.push(LineError {
                    line,
                    fr: format!("ligne illisible : {e}"),
                    en: format!("unreadable line: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |name: &str| record.get(idx(name)).unwrap_or_default().to_owned();
        let mut problems: Vec<(String, String)> = Vec::new();
        let name = field("name");
        if name.is_empty() || name.chars().count() > 200 {
            problems.push((
                "le nom est vide ou trop long".into(),
                "the name is empty or too long".into(),
            ));
        }
        let mailbox = field("mailbox").to_lowercase();
        let valid_mail = mailbox
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.') && !mailbox.contains(' '));
        if !valid_mail {
            problems.push((
                format!("adresse de boîte aux lettres invalide « {mailbox} »"),
                format!("invalid mailbox address `{mailbox}`"),
            ));
        } else if !seen.insert(mailbox.clone()) {
            problems.push((
                format!("la boîte « {mailbox} » apparaît deux fois dans le fichier"),
                format!("mailbox `{mailbox}` appears twice in the file"),
            ));
        }
        let site = field("site");
        let site_id = match site.split_once('/') {
            Some((org, s)) => store.site_by_slugs(org, s).await?,
            None => None,
        };
        if site_id.is_none() {
            problems.push((
                format!("site inconnu « {site} » (forme attendue : organisation/site)"),
                format!("unknown site `{site}` (expected organisation/site)"),
            ));
        }
        let kind = field("type");
        let type_id = store.resource_type_by_slug(&kind).await?;
        if type_id.is_none() {
            problems.push((
                format!("type de ressource inconnu « {kind} »"),
                format!("unknown resource type `{kind}`"),
            ));
        }
        let capacity_text = field("capacity");
        let capacity = if capacity_text.is_empty() {
            None
        } else {
            match capacity_text.parse::<i32>() {
                Ok(c) if c >= 0 => Some(c),
                _ => {
                    problems.push((
                        format!("capacité invalide « {capacity_text} » (un nombre entier positif)"),
                        format!("invalid capacity `{capacity_text}` (a whole number, 0 or more)"),
                    ));
                    None
                }
            }
        };
        let exchange = field("exchange");
        if !endpoints.contains(&exchange) {
            problems.push((
                format!(
                    "serveur Exchange inconnu « {exchange} » (déclarés : {})",
                    endpoints.join(", ")
                ),
                format!(
                    "unknown Exchange server `{exchange}` (declared: {})",
                    endpoints.join(", ")
                ),
            ));
        }
        let mut attributes = Vec::new();
        if let Some(type_id) = type_id
            && !attr_columns.is_empty()
        {
            if let std::collections::hash_map::Entry::Vacant(slot) = definitions.entry(type_id) {
                slot.insert(store.attribute_definitions(type_id).await?);
            }
            let defs = definitions.get(&type_id).map(Vec::as_slice).unwrap_or_default();
            for (i, key) in &attr_columns {
                let cell = record.get(*i).unwrap_or_default();
                match defs.iter().find(|d| &d.key == key) {
                    None if cell.is_empty() => {}
                    None => problems.push((
                        format!("le type « {kind} » n'a pas d'attribut « {key} »"),
                        format!("type `{kind}` has no attribute `{key}`"),
                    )),
                    Some(d) => match parse_value(d, cell) {
                        Ok(v) => attributes.push((key.clone(), v)),
                        Err(p) => problems.push(p),
                    },
                }
            }
        }
        if problems.is_empty()
            && let (Some(site_id), Some(type_id)) = (site_id, type_id)
        {
            rows.push(Row {
                line,
                name,
                mailbox,
                site_id,
                type_id,
                capacity,
                exchange,
                attributes,
            });
        } else {
            for (fr, en) in problems {
                report.errors.push(LineError { line, fr, en });
            }
        }
    }
    if !report.errors.is_empty() {
        return Ok(report);
    }
    for r in rows {
        let new = NewResource {
            site_id: r.site_id,
            resource_type_id: r.type_id,
            name: &r.name,
            mailbox_smtp: &r.mailbox,
            exchange_endpoint: &r.exchange,
            capacity: r.capacity,
        };
        let upserted = store.upsert_resource(&new).await;
        let attributes_changed = match (&upserted, r.attributes.is_empty()) {
            (Ok(_), false) => set_attributes(store, &r.mailbox, &r.attributes).await,
            _ => Ok(false),
        };
        match (upserted, attributes_changed) {
            (Ok(crate::store::catalogue::Upsert::Created), Ok(_)) => report.created += 1,
            (Ok(crate::store::catalogue::Upsert::Updated), Ok(_)) | (Ok(_), Ok(true)) => report.updated += 1,
            (Ok(crate::store::catalogue::Upsert::Unchanged), Ok(false)) => report.unchanged += 1,
            (Err(e), _) | (_, Err(e)) => report.errors.push(LineError {
                line: r.line,
                fr: format!("refusé par la base : {e}"),
                en: format!("refused by the database: {e}"),
            }),
        }
    }
    Ok(report)
}

/// Writes a resource's attributes from the file; true when a value changed.
async fn set_attributes(
    store: &Store,
    mailbox: &str,
    values: &[(String, Option<AttrValue>)],
) -> Result<bool, crate::store::StoreError> {
    let Some(resource) = store.resource_by_mailbox(mailbox).await? else {
        return Err(crate::store::StoreError::NotFound(mailbox.to_owned()));
    };
    let before: HashMap<String, Option<AttrValue>> = store
        .resource_attributes(resource.id)
        .await?
        .into_iter()
        .map(|(d, v)| (d.key, v))
        .collect();
    if values.iter().all(|(k, v)| before.get(k).is_some_and(|b| b == v)) {
        return Ok(false);
    }
    store.set_resource_attributes(resource.id, values).await?;
    Ok(true)
}

/// The rooms of every room list of one Exchange endpoint, as import CSV
/// lines whose `site` column holds the room list's name, to be replaced by
/// the right `organisation/site` before importing.
pub async fn discover_csv(client: &crate::ews::client::Client, endpoint: &str) -> Result<String, crate::ews::EwsError> {
    use crate::ews::client::CallOptions;
    use crate::ews::ops::rooms::{GetRoomLists, GetRooms};
    let opts = CallOptions::default();
    let lists = client.call(&GetRoomLists, &opts).await?.into_result()?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(COLUMNS);
    for list in lists {
        let Some(list_address) = list.email_address.clone() else {
            continue;
        };
        let rooms = client
            .call(
                &GetRooms {
                    room_list: list_address.clone(),
                },
                &opts,
            )
            .await?
            .into_result()?;
        let list_name = list.name.clone().unwrap_or(list_address);
        for room in rooms {
            let Some(address) = room.email_address else { continue };
            let name = room.name.unwrap_or_else(|| address.clone());
            let _ = w.write_record([
                name.as_str(),
                address.as_str(),
                list_name.as_str(),
                "salle",
                "",
                endpoint,
            ]);
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| crate::ews::EwsError::Config(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
