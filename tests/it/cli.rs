//! The `resa` binary as an administrator uses it.

use crate::harness::test_db;
use std::path::Path;
use std::process::{Command, Output};

fn resa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resa"))
        .args(args)
        .env_remove("RESA_LANG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run resa")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const SECRETS: &[&str] = &[
    "database.password",
    "web.key",
    "exchange-plaine-commune.password",
    "exchange-saint-denis.password",
    "ldap-plaine-commune.password",
    "ldap-saint-denis.password",
];

/// The shipped example, copied beside the secret files it names.
fn example_in(dir: &Path) -> std::path::PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/resa.example.toml");
    let target = dir.join("resa.toml");
    std::fs::copy(example, &target).expect("copy the example");
    for s in SECRETS {
        std::fs::write(dir.join(s), "not-a-real-secret\n").expect("write a secret");
    }
    target
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = example_in(dir.path());
    let out = resa(&["check-config", file.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "Configuration valide.");
}

#[test]
fn a_broken_configuration_gets_every_problem_with_its_line_in_french() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = example_in(dir.path());
    let original = std::fs::read_to_string(&file).expect("read");
    let broken = original
        .replacen("version = 1", "version = 1\nversion_typo = 3", 1)
        .replace("version = \"Exchange2016\"", "version = \"Exchange2003\"")
        .replace(
            "url = \"ldaps://dc1.plainecommune.local\"",
            "url = \"ldap://dc1.plainecommune.local\"",
        );
    std::fs::write(&file, broken).expect("write");
    std::fs::remove_file(dir.path().join("web.key")).expect("remove a secret");
    let out = resa(&["check-config", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let line_of = |needle: &str| {
        std::fs::read_to_string(&file)
            .expect("read")
            .lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle} not in the file"))
    };
    let f = file.display();
    for expected in [
        format!(
            "{f}:{}: version_typo: clé inconnue « version_typo »",
            line_of("version_typo")
        ),
        format!(
            "{f}:{}: web.secret_key_file: impossible de lire le fichier secret",
            line_of("secret_key_file")
        ),
        format!(
            "{f}:{}: exchange[1].version: valeur inconnue « Exchange2003 »",
            line_of("version = \"Exchange2003\"")
        ),
        format!(
            "{f}:{}: directory[0].url: connexion non chiffrée refusée",
            line_of("url = \"ldap://dc1.plainecommune")
        ),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(&expected)),
            "missing «{expected}» in:\n{err}"
        );
    }
    assert!(err.trim_end().ends_with("4 problème(s) trouvé(s)."), "{err}");
}

#[test]
fn messages_can_be_in_english() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("resa.toml");
    std::fs::write(
        &file,
        "version = 1\n[database]\nurl = \"postgres://resa@db/resa\"\nmax_connections = -1\n",
    )
    .expect("write");
    let out = resa(&["--lang", "en", "check-config", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(":4: database.max_connections: value refused"), "{err}");
    assert!(err.contains("1 problem(s) found."), "{err}");
}

#[test]
fn a_missing_file_is_reported_plainly() {
    let out = resa(&["check-config", "/nonexistent/resa.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("impossible de lire le fichier : fichier introuvable"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn migrate_brings_a_database_up_to_date_and_is_idempotent() {
    let db = test_db().await;
    // A database of its own, empty: the harness's ones are migrated already.
    sqlx::query("CREATE DATABASE migrate_me")
        .execute(db.pool())
        .await
        .expect("create");
    let url = db.url.replace(&format!("/{}", db.name), "/migrate_me");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("resa.toml");
    std::fs::write(&file, format!("version = 1\n[database]\nurl = \"{url}\"\n")).expect("write");
    for _ in 0..2 {
        let out = resa(&["migrate", "--config", file.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "Base de données à jour.");
    }
    let store = resa::store::Store::connect(&url, 1).await.expect("connect");
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'occurrences'")
            .fetch_one(store.pool())
            .await
            .expect("query");
    assert_eq!(tables, 1);
}
