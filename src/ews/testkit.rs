//! Test helpers: the official schemas and the shared samples, found through
//! environment variables. Missing data fails the test with a message saying
//! what to set; it never turns into a silent pass.

use std::path::PathBuf;
use std::process::Command;

use super::soap::ServerVersion;

/// `RESA_EWS_SCHEMAS`: the directory holding one schema set per version.
pub fn schemas_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("RESA_EWS_SCHEMAS") else {
        panic!(
            "RESA_EWS_SCHEMAS is not set: point it at the EWS schema sets \
             (e.g. ../shared/ews-schemas)"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("exchange2007_sp1/messages.xsd").is_file(),
        "RESA_EWS_SCHEMAS={} has no exchange2007_sp1/messages.xsd",
        dir.display()
    );
    dir
}

/// `RESA_EWS_SAMPLES`: the directory of captured EWS samples (MANIFEST.md).
pub fn samples_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("RESA_EWS_SAMPLES") else {
        panic!(
            "RESA_EWS_SAMPLES is not set: point it at the EWS samples \
             (e.g. ../shared/ews-samples)"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("MANIFEST.md").is_file(),
        "RESA_EWS_SAMPLES={} has no MANIFEST.md",
        dir.display()
    );
    dir
}

/// Reads one sample by file name, failing loudly when absent.
pub fn sample(name: &str) -> Vec<u8> {
    let path = samples_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("sample {}: {e}", path.display()))
}

pub fn schema_set(version: ServerVersion) -> &'static str {
    match version {
        ServerVersion::Exchange2007_SP1 => "exchange2007_sp1",
        ServerVersion::Exchange2010_SP2 => "exchange2010_sp2",
        ServerVersion::Exchange2013_SP1 => "exchange2013_sp1",
        ServerVersion::Exchange2016 => "exchange-online-2016",
    }
}

/// Validates standalone payload documents against `messages.xsd` of the
/// version with xmllint, in one run per version, and returns the failures
/// as (label, xmllint output).
pub fn validate(version: ServerVersion, docs: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    let schema = schemas_dir().join(schema_set(version)).join("messages.xsd");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut paths = Vec::new();
    for (i, (label, bytes)) in docs.iter().enumerate() {
        let p = tmp.path().join(format!("{i:03}.xml"));
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {label}: {e}"));
        paths.push(p);
    }
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .args(&paths)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint ({e}): apt-get install -y libxml2-utils"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut failures = Vec::new();
    for ((label, bytes), p) in docs.iter().zip(&paths) {
        let ps = p.display().to_string();
        if !stderr.contains(&format!("{ps} validates")) {
            let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&ps)).collect();
            failures.push((
                label.clone(),
                format!("{}\n{}", lines.join("\n"), String::from_utf8_lossy(bytes)),
            ));
        }
    }
    failures
}
