//! Reversibility: the whole state written in open formats, and read back.
//!
//! An export is a directory:
//!
//! ```text
//! manifest.json              format, schema version, row count per table
//! schema/<table>.schema.json JSON Schema (draft 2020-12) of one row of each table
//! json/<table>.json          every row, as a JSON array with one row per line
//! csv/<table>.csv            the main tables again, as CSV with a header
//! ical/<mailbox>.ics         one iCalendar file per resource: its held slots
//! ```
//!
//! Nothing in it depends on when or where it was made, so an export imported
//! into an empty database and exported again gives identical files.

use crate::store::export::{Column, TABLES};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Tables also written as CSV, for spreadsheets.
pub const CSV_TABLES: &[&str] = &[
    "organisations",
    "sites",
    "resource_types",
    "resources",
    "people",
    "groups",
    "grants",
    "bookings",
    "occurrences",
    "decisions",
    "approvals",
];

pub const FORMAT: &str = "resa-export";
pub const FORMAT_VERSION: u32 = 1;

/// Rows per statement when importing.
const IMPORT_BATCH: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ReversibilityError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("the database is not empty (table {0} has rows): an import needs an empty database")]
    NotEmpty(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReversibilityError + '_ {
    move |source| ReversibilityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a long run reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Table { table: String, rows: u64 },
    Calendar { resource: String, events: usize },
    Done { rows: u64 },
}

/// Writes the whole state under `dir` (created if needed).
pub async fn export(store: &Store, dir: &Path, mut progress: impl FnMut(Progress)) -> Result<(), ReversibilityError> {
    for sub in ["schema", "json", "csv", "ical"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    let mut counts = BTreeMap::new();
    let mut total = 0;
    for table in TABLES {
        let columns = store.columns(table).await?;
        let schema_path = dir.join("schema").join(format!("{table}.schema.json"));
        write_json(&schema_path, &json_schema(table, &columns))?;

        let path = dir.join("json").join(format!("{table}.json"));
        let file = std::fs::File::create(&path).map_err(io(&path))?;
        let mut w = BufWriter::new(file);
        w.write_all(b"[").map_err(io(&path))?;
        let mut first = true;
        let rows = store
            .for_each_row_json(table, |line| {
                w.write_all(if first { b"\n" } else { b",\n" })?;
                first = false;
                w.write_all(line.as_bytes())
            })
            .await?;
        w.write_all(b"\n]\n").map_err(io(&path))?;
        w.flush().map_err(io(&path))?;
        counts.insert((*table).to_owned(), rows);
        total += rows;
        progress(Progress::Table {
            table: (*table).to_owned(),
            rows,
        });
        if CSV_TABLES.contains(table) {
            let path = dir.join("csv").join(format!("{table}.csv"));
            std::fs::write(&path, store.table_csv(table).await?).map_err(io(&path))?;
        }
    }
    for cal in store.calendars().await? {
        let path = dir.join("ical").join(format!("{}.ics", file_name(&cal.mailbox)));
        std::fs::write(&path, ical(&cal)).map_err(io(&path))?;
        progress(Progress::Calendar {
            resource: cal.mailbox.clone(),
            events: cal.events.len(),
        });
    }
    let manifest = json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_version": crate::store::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0),
        "tables": counts,
    });
    write_json(&dir.join("manifest.json"), &manifest)?;
    progress(Progress::Done { rows: total });
    Ok(())
}

/// Loads an export into an empty, migrated database, in one transaction.
pub async fn import(store: &Store, dir: &Path, mut progress: impl FnMut(Progress)) -> Result<(), ReversibilityError> {
    let manifest_path = dir.join("manifest.json");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).map_err(io(&manifest_path))?).map_err(|e| {
            ReversibilityError::Format {
                path: manifest_path.clone(),
                reason: e.to_string(),
            }
        })?;
    if manifest["format"] != FORMAT || manifest["format_version"] != FORMAT_VERSION {
        return Err(ReversibilityError::Format {
            path: manifest_path,
            reason: format!("not a {FORMAT} version {FORMAT_VERSION} export"),
        });
    }
    let ours = crate::store::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    if manifest["schema_version"].as_i64() != Some(ours) {
        return Err(ReversibilityError::Format {
            path: manifest_path,
            reason: format!(
                "made with schema version {}, this resa has {ours}: import it with the same version",
                manifest["schema_version"]
            ),
        });
    }
    if let Some(table) = store.is_empty_for_import().await? {
        return Err(ReversibilityError::NotEmpty(table));
    }
    let mut tx = store.pool().begin().await.map_err(StoreError::from)?;
    let mut total = 0;
    for table in TABLES {
        let path = dir.join("json").join(format!("{table}.json"));
        let file = std::fs::File::open(&path).map_err(io(&path))?;
        store.clear_seeded(&mut tx, table).await?;
        let mut batch: Vec<String> = Vec::with_capacity(IMPORT_BATCH);
        let mut rows = 0u64;
        let mut people = Vec::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io(&path))?;
            let row = line.trim_end_matches(',');
            if row == "[" || row == "]" || row.is_empty() {
                continue;
            }
            if !row.starts_with('{') {
                return Err(ReversibilityError::Format {
                    path: path.clone(),
                    reason: format!("line {}: a row must be a JSON object", n + 1),
                });
            }
            batch.push(row.to_owned());
            if batch.len() == IMPORT_BATCH {
                rows += flush(store, &mut tx, table, &mut batch, &mut people).await?;
                progress(Progress::Table {
                    table: (*table).to_owned(),
                    rows,
                });
            }
        }
        rows += flush(store, &mut tx, table, &mut batch, &mut people).await?;
        for chunk in people.chunks(IMPORT_BATCH) {
            store
                .import_people_managers(&mut tx, &format!("[{}]", chunk.join(",")))
                .await?;
        }
        if manifest["tables"][table]
            .as_u64()
            .is_some_and(|expected| expected != rows)
        {
            return Err(ReversibilityError::Format {
                path,
                reason: format!("{rows} rows read, the manifest announces {}", manifest["tables"][table]),
            });
        }
        total += rows;
        progress(Progress::Table {
            table: (*table).to_owned(),
            rows,
        });
    }
    store.reset_sequences(&mut tx).await?;
    // The reports' rollup is not exported: computed again from what came in.
    store.report_rebuild(&mut tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    progress(Progress::Done { rows: total });
    Ok(())
}

async fn flush(
    store: &Store,
    tx: &mut sqlx::PgConnection,
    table: &str,
    batch: &mut Vec<String>,
    people: &mut Vec<String>,
) -> Result<u64, ReversibilityError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let json = format!("[{}]", batch.join(","));
    let n = store.import_rows(tx, table, &json).await?;
    if table == "people" {
        people.append(batch);
    }
    batch.clear();
    Ok(n)
}

fn write_json(path: &Path, value: &Value) -> Result<(), ReversibilityError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| ReversibilityError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(io(path))
}

/// Writes every file under `dir` into a tar archive (POSIX ustar) on `out`,
/// under the folder `root`, in name order, with neutral owners and dates: the
/// same export always gives the same archive. This is how the web site hands
/// an export to an administrator as one download.
pub fn write_tar(dir: &Path, root: &str, out: &mut impl Write) -> Result<(), ReversibilityError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let path = entry.map_err(io(&d))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for path in files {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let name = format!("{root}/{rel}");
        let size = std::fs::metadata(&path).map_err(io(&path))?.len();
        let header = tar_header(&name, size).ok_or_else(|| ReversibilityError::Format {
            path: path.clone(),
            reason: "name too long, or file over 8 GiB, for a tar archive".into(),
        })?;
        out.write_all(&header).map_err(io(&path))?;
        let mut file = std::fs::File::open(&path).map_err(io(&path))?;
        let copied = std::io::copy(&mut file, out).map_err(io(&path))?;
        if copied != size {
            return Err(ReversibilityError::Format {
                path,
                reason: "the file changed while being archived".into(),
            });
        }
        let pad = (512 - (size % 512) as usize) % 512;
        out.write_all(&[0u8; 512][..pad]).map_err(io(&path))?;
    }
    // Two empty blocks end the archive.
    out.write_all(&[0u8; 1024]).map_err(io(dir))?;
    out.flush().map_err(io(dir))
}

/// The 512-byte ustar header of a regular file; `None` when the name cannot
/// be stored (over 100 bytes after the last usable split into prefix/name).
fn tar_header(name: &str, size: u64) -> Option<[u8; 512]> {
    // Eleven octal digits: up to 8 GiB per file.
    if size >= 1 << 33 {
        return None;
    }
    let (prefix, short) = if name.len() <= 100 {
        ("", name)
    } else {
        let cut = name
            .char_indices()
            .filter(|(i, c)| *c == '/' && *i <= 155 && name.len() - i - 1 <= 100)
            .map(|(i, _)| i)
            .next()?;
        (&name[..cut], &name[cut + 1..])
    };
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(&mut h, 0, short.as_bytes());
    put(&mut h, 100, b"0000644\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, b"00000000000\0");
    put(&mut h, 148, b"        ");
    h[156] = b'0';
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    put(&mut h, 265, b"resa");
    put(&mut h, 297, b"resa");
    put(&mut h, 345, prefix.as_bytes());
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    Some(h)
}

/// A mailbox address made safe as a file name.
fn file_name(mailbox: &str) -> String {
    mailbox
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The JSON Schema of one row, from the table's columns.
pub fn json_schema(table: &str, columns: &[Column]) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for c in columns {
        let mut t = column_schema(&c.udt_name);
        if c.nullable
            && let Some(o) = t.as_object_mut()
        {
            let inner = Value::Object(o.clone());
            t = json!({ "anyOf": [inner, { "type": "null" }] });
        }
        properties.insert(c.name.clone(), t);
        required.push(Value::String(c.name.clone()));
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://resa.invalid/export/v{FORMAT_VERSION}/{table}.schema.json"),
        "title": table,
        "description": format!("One row of the `{table}` table of a resa export."),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn column_schema(udt: &str) -> Value {
    if let Some(element) = udt.strip_prefix('_') {
        return json!({ "type": "array", "items": column_schema(element) });
    }
    match udt {
        "uuid" => json!({ "type": "string", "format": "uuid" }),
        "text" | "varchar" | "bpchar" | "name" => json!({ "type": "string" }),
        "int2" | "int4" | "int8" => json!({ "type": "integer" }),
        "numeric" | "float4" | "float8" => json!({ "type": "number" }),
        "bool" => json!({ "type": "boolean" }),
        "timestamptz" => json!({ "type": "string", "format": "date-time" }),
        "date" => json!({ "type": "string", "format": "date" }),
        "time" => json!({ "type": "string", "pattern": "^\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?$" }),
        "tstzrange" => json!({
            "type": "string",
            "description": "half-open range of instants, PostgreSQL notation: [\"start\",\"end\")",
        }),
        "bytea" => json!({ "type": "string", "pattern": "^\\\\x[0-9a-f]*$", "description": "hexadecimal bytes" }),
        "json" | "jsonb" => json!({}),
        other => json!({ "description": format!("PostgreSQL type {other}") }),
    }
}

/// A resource's held slots, for its iCalendar file.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub mailbox: String,
    pub name: String,
    pub events: Vec<CalendarEvent>,
}

#[derive(Debug, Clone)]
pub struct CalendarEvent {
    pub uid: String,
    pub original_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub summary: Option<String>,
    pub organiser: String,
    pub held: bool,
    pub updated: DateTime<Utc>,
}

fn ics_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// RFC 5545 text escaping.
fn ics_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 5545 line folding: lines of at most 75 octets, continued with a space,
/// never cutting a UTF-8 character.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

/// One resource's calendar as iCalendar text.
pub fn ical(cal: &Calendar) -> String {
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//resa//export//FR",
        "CALSCALE:GREGORIAN",
    ] {
        fold(line, &mut out);
    }
    fold(&format!("X-WR-CALNAME:{}", ics_text(&cal.name)), &mut out);
    for e in &cal.events {
        fold("BEGIN:VEVENT", &mut out);
        // One event per occurrence: the meeting's UID with its recurrence id,
        // so a series' occurrences stay tied together.
        fold(&format!("UID:{}", ics_text(&e.uid)), &mut out);
        fold(&format!("RECURRENCE-ID:{}", ics_time(e.original_start)), &mut out);
        fold(&format!("DTSTAMP:{}", ics_time(e.updated)), &mut out);
        fold(&format!("DTSTART:{}", ics_time(e.start)), &mut out);
        fold(&format!("DTEND:{}", ics_time(e.end)), &mut out);
        if let Some(s) = &e.summary {
            fold(&format!("SUMMARY:{}", ics_text(s)), &mut out);
        }
        fold(&format!("ORGANIZER:mailto:{}", e.organiser), &mut out);
        fold(if e.held { "STATUS:TENTATIVE" } else { "STATUS:CONFIRMED" }, &mut out);
        fold("END:VEVENT", &mut out);
    }
    fold("END:VCALENDAR", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ical_escapes_folds_and_ends_lines_with_crlf() {
        let t = |h| Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).single().expect("valid");
        let cal = Calendar {
            mailbox: "salle.cezanne@plainecommune.fr".into(),
            name: "Salle Cézanne".into(),
            events: vec![CalendarEvent {
                uid: "040000008200E00074C5B7101A82E008".into(),
                original_start: t(13),
                start: t(13),
                end: t(14),
                summary: Some("Comité; budget, \"2027\"\nsuite — réunion très longue pour plier la ligne à soixante-quinze octets".into()),
                organiser: "alice@plainecommune.fr".into(),
                held: false,
                updated: t(9),
            }],
        };
        let text = ical(&cal);
        assert!(text.contains("DTSTART:20261201T130000Z\r\n"));
        assert!(text.contains("SUMMARY:Comité\\; budget\\, \"2027\"\\nsuite"));
        assert!(text.lines().all(|l| l.len() <= 76), "{text}");
        assert!(text.contains("\r\n "), "long lines are folded");
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        // Unfolding gives the original text back.
        let unfolded = text.replace("\r\n ", "");
        assert!(unfolded.contains("pour plier la ligne à soixante-quinze octets"));
    }

    #[test]
    fn schemas_type_every_column() {
        let cols = vec![
            Column {
                name: "id".into(),
                udt_name: "uuid".into(),
                nullable: false,
            },
            Column {
                name: "tags".into(),
                udt_name: "_text".into(),
                nullable: true,
            },
        ];
        let s = json_schema("things", &cols);
        assert_eq!(s["properties"]["id"]["format"], "uuid");
        assert_eq!(s["properties"]["tags"]["anyOf"][0]["items"]["type"], "string");
        assert_eq!(s["additionalProperties"], false);
    }
}
