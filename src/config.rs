//! The typed configuration file (TOML), and its checker.
//!
//! Loading never stops at the first mistake: syntax errors are all collected
//! by the recovering parser, then each section is read on its own and every
//! wrong key is reported and set aside before reading the section again, and
//! finally the meaning of the values is checked (addresses, time zones,
//! secrets, names that must be unique). Every problem carries the line it was
//! found on, and a French and an English text.
//!
//! Secrets never appear in the file: each one is named by a `*_file` key (a
//! path, relative to `$CREDENTIALS_DIRECTORY` when systemd provides one, else
//! to the configuration file) or a `*_env` key (an environment variable).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use url::Url;

/// The configuration format this build understands.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    #[default]
    Fr,
    En,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub version: u32,
    /// Language of messages sent to users who state no preference.
    pub language: Language,
    /// Time zone of sites that state none.
    pub time_zone: String,
    pub database: Database,
    pub web: Web,
    pub exchange: Vec<Exchange>,
    pub directory: Vec<Directory>,
    pub log: Log,
    pub daemon: Daemon,
}

fn default_time_zone() -> String {
    "Europe/Paris".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `postgres://user@host:port/db`, without the password.
    pub url: String,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Web {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The address users type, used in links sent by e-mail.
    pub public_url: Option<Url>,
    /// Key that signs approval links and cookies.
    pub secret_key_file: Option<PathBuf>,
    pub secret_key_env: Option<String>,
    /// Directory groups whose members administer resa, as `directory:group`.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    #[serde(default = "default_true")]
    pub secure_cookies: bool,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            listen: default_listen(),
            public_url: None,
            secret_key_file: None,
            secret_key_env: None,
            admin_groups: Vec::new(),
            secure_cookies: true,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_true() -> bool {
    true
}

/// The EWS schema version requested from an Exchange endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ExchangeVersion {
    #[serde(rename = "Exchange2007_SP1")]
    Exchange2007Sp1,
    #[serde(rename = "Exchange2010_SP2")]
    Exchange2010Sp2,
    #[serde(rename = "Exchange2013_SP1")]
    Exchange2013Sp1,
    #[serde(rename = "Exchange2016")]
    Exchange2016,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeAuth {
    Ntlm,
    Basic,
    Oauth2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChangeDetection {
    /// Streaming on 2010 SP1 and later, pull on 2007.
    #[default]
    Auto,
    Streaming,
    Pull,
    Poll,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The name resources refer to.
    pub name: String,
    /// `https://host/EWS/Exchange.asmx`.
    pub url: Url,
    pub version: ExchangeVersion,
    pub auth: ExchangeAuth,
    pub username: Option<String>,
    /// NTLM domain (NetBIOS name).
    pub domain: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// OAuth2 client credentials (Exchange Online).
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_secret_env: Option<String>,
    /// Act as each resource mailbox through ExchangeImpersonation.
    #[serde(default = "default_true")]
    pub impersonation: bool,
    /// Extra certificate authority (PEM) to trust for this endpoint.
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_exchange_concurrency")]
    pub max_concurrency: u32,
    #[serde(default = "default_exchange_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub change_detection: ChangeDetection,
    #[serde(default = "default_poll_interval")]
    pub poll_interval_seconds: u64,
}

fn default_exchange_concurrency() -> u32 {
    8
}
fn default_exchange_timeout() -> u64 {
    60
}
fn default_poll_interval() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// The name used in admin group references and in the database.
    pub name: String,
    /// Slug of the organisation whose people this directory holds.
    pub organisation: String,
    /// `ldaps://host` or `ldap://host` (then `starttls = true`).
    pub url: Url,
    #[serde(default)]
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    pub bind_password_file: Option<PathBuf>,
    pub bind_password_env: Option<String>,
    pub user_base_dn: String,
    pub group_base_dn: String,
    pub user_filter: Option<String>,
    pub group_filter: Option<String>,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default = "default_ldap_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_incremental_minutes")]
    pub incremental_sync_minutes: u64,
    #[serde(default = "default_full_sync_hours")]
    pub full_sync_hours: u64,
    /// Attribute holding a driver's licence classes, when the directory has one.
    pub licence_attribute: Option<String>,
    /// How that attribute writes the licence, e.g. `CLASSES;YYYY-MM-DD`
    /// (classes only when absent).
    pub licence_format: Option<String>,
    /// Whether the directory's licence replaces one a manager entered.
    #[serde(default)]
    pub licence_overrides_manager: bool,
    /// NetBIOS domain name, so that a login as `DOMAIN\\user` reaches this directory.
    pub netbios_domain: Option<String>,
}

impl Directory {
    /// The settings the directory module works with, secrets read.
    pub fn settings(&self, secrets: &SecretSource) -> Result<crate::directory::DirectorySettings, String> {
        let password = secrets
            .read(self.bind_password_file.as_deref(), self.bind_password_env.as_deref())
            .map_err(|(_, en)| en)?;
        let mut s = crate::directory::DirectorySettings::new(
            self.name.clone(),
            self.url.to_string(),
            self.bind_dn.clone(),
            crate::directory::Secret::new(password.expose()),
            self.user_base_dn.clone(),
            self.group_base_dn.clone(),
        );
        s.organisation = Some(self.organisation.clone());
        s.starttls = self.starttls;
        s.ca_file = self.ca_file.as_ref().map(|f| secrets.base_dir.join(f));
        if let Some(f) = &self.user_filter {
            s.user_filter = f.clone();
        }
        if let Some(f) = &self.group_filter {
            s.group_filter = f.clone();
        }
        s.netbios_domain = self.netbios_domain.clone();
        s.attributes.licence_classes = self.licence_attribute.clone();
        if let Some(f) = &self.licence_format {
            s.licence_format = crate::domain::vehicles::LicenceFormat::parse(f)?;
        }
        s.licence_overrides_manager = self.licence_overrides_manager;
        s.page_size = self.page_size;
        s.timeout = std::time::Duration::from_secs(self.timeout_seconds);
        s.full_sync_interval = std::time::Duration::from_secs(self.full_sync_hours * 3600);
        Ok(s)
    }
}

fn default_page_size() -> u32 {
    500
}
fn default_ldap_timeout() -> u64 {
    10
}
fn default_incremental_minutes() -> u64 {
    5
}
fn default_full_sync_hours() -> u64 {
    24
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
    Journald,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,resa::sync=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Text,
            level: default_log_level(),
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Daemon {
    /// How long a mailbox or outbox lease lasts without renewal.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// Days after which subjects and other personal data are anonymised; none = keep.
    pub retention_days: Option<u32>,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            lease_seconds: default_lease_seconds(),
            retention_days: None,
        }
    }
}

fn default_lease_seconds() -> u64 {
    60
}

/// A secret value read from a file or the environment. It never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted path of the key, e.g. `exchange[1].url`.
    pub key: String,
    pub fr: String,
    pub en: String,
}

impl Problem {
    pub fn text(&self, lang: Language) -> &str {
        match lang {
            Language::Fr => &self.fr,
            Language::En => &self.en,
        }
    }

    /// `file:line: key: text`, the way compilers print diagnostics.
    pub fn render(&self, file: &Path, lang: Language) -> String {
        let place = match self.line {
            Some(l) => format!("{}:{l}", file.display()),
            None => file.display().to_string(),
        };
        if self.key.is_empty() {
            format!("{place}: {}", self.text(lang))
        } else {
            format!("{place}: {}: {}", self.key, self.text(lang))
        }
    }
}

/// Every problem found in a configuration file, in file order.
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "{}: {}", p.key, p.en)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Reads and checks a configuration file; on failure, every problem found.
pub fn load(path: &Path) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem {
            line: None,
            key: String::new(),
            fr: format!("impossible de lire le fichier : {}", io_fr(&e)),
            en: format!("cannot read the file: {e}"),
        }])
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &SecretSource::system(base))
}

/// Where relative secret files and environment variables are looked up.
#[derive(Debug, Clone)]
pub struct SecretSource {
    /// Directory that relative `*_file` paths are relative to.
    pub base_dir: PathBuf,
    env: fn(&str) -> Option<String>,
}

impl SecretSource {
    /// `$CREDENTIALS_DIRECTORY` when systemd provides it, else `config_dir`.
    pub fn system(config_dir: PathBuf) -> Self {
        let base_dir = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or(config_dir);
        SecretSource {
            base_dir,
            env: |name| std::env::var(name).ok(),
        }
    }

    /// Reads the secret named by a `*_file` / `*_env` pair.
    pub fn read(&self, file: Option<&Path>, env: Option<&str>) -> Result<Secret, (String, String)> {
        match (file, env) {
            (Some(f), None) => {
                let path = self.base_dir.join(f);
                match std::fs::read_to_string(&path) {
                    Ok(s) if s.trim().is_empty() => Err((
                        format!("le fichier secret {} est vide", path.display()),
                        format!("the secret file {} is empty", path.display()),
                    )),
                    // A trailing newline is an editor's habit, not part of the secret.
                    Ok(s) => Ok(Secret(s.trim_end_matches(['\n', '\r']).to_owned())),
                    Err(e) => Err((
                        format!(
                            "impossible de lire le fichier secret {} : {}",
                            path.display(),
                            io_fr(&e)
                        ),
                        format!("cannot read the secret file {}: {e}", path.display()),
                    )),
                }
            }
            (None, Some(var)) => match (self.env)(var) {
                Some(v) if !v.is_empty() => Ok(Secret(v)),
                _ => Err((
                    format!("la variable d'environnement {var} n'est pas définie"),
                    format!("the environment variable {var} is not set"),
                )),
            },
            (Some(_), Some(_)) => Err((
                "donnez le secret par un fichier ou par une variable d'environnement, pas les deux".into(),
                "give the secret through a file or an environment variable, not both".into(),
            )),
            (None, None) => Err((
                "secret manquant : indiquez un fichier (clé *_file) ou une variable d'environnement (clé *_env)".into(),
                "missing secret: name a file (*_file key) or an environment variable (*_env key)".into(),
            )),
        }
    }
}

fn io_fr(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "fichier introuvable".into(),
        std::io::ErrorKind::PermissionDenied => "accès refusé".into(),
        _ => e.to_string(),
    }
}

/// Parses and checks configuration text.
pub fn parse(text: &str, secrets: &SecretSource) -> Result<Config, Problems> {
    let lines = LineIndex::new(text);
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        let problems = syntax_errors
            .iter()
            .map(|e| Problem {
                line: e.span().map(|s| lines.line(s.start)),
                key: String::new(),
                fr: format!("erreur de syntaxe TOML : {}", e.message()),
                en: format!("TOML syntax error: {}", e.message()),
            })
            .collect();
        return Err(Problems(problems));
    }
    let mut problems = Vec::new();
    let root = DeValue::Table(doc.into_inner());
    let partial = read_sections(&root, &lines, &mut problems);
    check_meaning(&partial, &root, &lines, secrets, &mut problems);
    problems.sort_by_key(|p| p.line.unwrap_or(0));
    match partial.complete() {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(Problems(problems)),
    }
}

/// What could be read of each part of the file: a part with a problem is
/// `None`, so the meaning of every other part can still be checked.
#[derive(Default)]
struct Partial {
    version: Option<u32>,
    language: Option<Language>,
    time_zone: Option<String>,
    database: Option<Database>,
    web: Option<Web>,
    exchange: Vec<Option<Exchange>>,
    directory: Vec<Option<Directory>>,
    log: Option<Log>,
    daemon: Option<Daemon>,
    unreadable: bool,
}

impl Partial {
    fn complete(self) -> Option<Config> {
        if self.unreadable {
            return None;
        }
        Some(Config {
            version: self.version?,
            language: self.language.unwrap_or_default(),
            time_zone: self.time_zone.unwrap_or_else(default_time_zone),
            database: self.database?,
            web: self.web.unwrap_or_default(),
            exchange: self.exchange.into_iter().collect::<Option<Vec<_>>>()?,
            directory: self.directory.into_iter().collect::<Option<Vec<_>>>()?,
            log: self.log.unwrap_or_default(),
            daemon: self.daemon.unwrap_or_default(),
        })
    }
}

const TOP_KEYS: &[&str] = &[
    "version",
    "language",
    "time_zone",
    "database",
    "web",
    "exchange",
    "directory",
    "log",
    "daemon",
];

fn read_sections(root: &DeValue<'_>, lines: &LineIndex, problems: &mut Vec<Problem>) -> Partial {
    let mut p = Partial::default();
    let DeValue::Table(table) = root else {
        p.unreadable = true;
        return p;
    };
    let mut unreadable = false;
    for (k, v) in table.iter() {
        let name = k.get_ref().as_ref();
        let mut one = |problems: &mut Vec<Problem>| -> bool {
            match name {
                "version" => {
                    p.version = read_collecting(v.clone(), name, lines, problems);
                    p.version.is_some()
                }
                "language" => {
                    p.language = read_collecting(v.clone(), name, lines, problems);
                    p.language.is_some()
                }
                "time_zone" => {
                    p.time_zone = read_collecting(v.clone(), name, lines, problems);
                    p.time_zone.is_some()
                }
                "database" => {
                    p.database = read_collecting(v.clone(), name, lines, problems);
                    p.database.is_some()
                }
                "web" => {
                    p.web = read_collecting(v.clone(), name, lines, problems);
                    p.web.is_some()
                }
                "log" => {
                    p.log = read_collecting(v.clone(), name, lines, problems);
                    p.log.is_some()
                }
                "daemon" => {
                    p.daemon = read_collecting(v.clone(), name, lines, problems);
                    p.daemon.is_some()
                }
                "exchange" | "directory" => {
                    let DeValue::Array(items) = v.get_ref() else {
                        problems.push(Problem {
                            line: Some(lines.line(k.span().start)),
                            key: name.to_owned(),
                            fr: format!("« {name} » s'écrit en sections [[{name}]], une par serveur"),
                            en: format!("`{name}` is written as [[{name}]] sections, one per server"),
                        });
                        return false;
                    };
                    for (i, item) in items.iter().enumerate() {
                        let prefix = format!("{name}[{i}]");
                        if name == "exchange" {
                            p.exchange.push(read_collecting(item.clone(), &prefix, lines, problems));
                        } else {
                            p.directory
                                .push(read_collecting(item.clone(), &prefix, lines, problems));
                        }
                    }
                    true
                }
                other => {
                    problems.push(Problem {
                        line: Some(lines.line(k.span().start)),
                        key: other.to_owned(),
                        fr: format!("clé inconnue « {other} » ; clés possibles : {}", TOP_KEYS.join(", ")),
                        en: format!("unknown key `{other}`; known keys: {}", TOP_KEYS.join(", ")),
                    });
                    false
                }
            }
        };
        if !one(problems) {
            unreadable = true;
        }
    }
    for required in ["version", "database"] {
        if !table.keys().any(|k| k.get_ref().as_ref() == required) {
            unreadable = true;
            let (fr, en) = explain_serde(&format!("missing field `{required}`"));
            problems.push(Problem {
                line: None,
                key: required.to_owned(),
                fr,
                en,
            });
        }
    }
    p.unreadable = unreadable;
    p
}

type Spanned<T> = toml::Spanned<T>;

/// Byte offset → line number.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(starts)
    }

    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// Deserialises `value`, and when that fails, records the problem, removes the
/// key it points at and tries again, so that one run reports every wrong key.
fn read_collecting<T: DeserializeOwned>(
    mut value: Spanned<DeValue<'_>>,
    prefix: &str,
    lines: &LineIndex,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut reported_missing = Vec::new();
    // Each round removes one key, so the number of keys bounds the rounds.
    for _ in 0..256 {
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => return Some(v),
            Err(e) => {
                let span = e.span();
                let path = span
                    .clone()
                    .and_then(|s| path_at(value.get_ref(), &s))
                    .unwrap_or_default();
                let (fr, en) = explain_serde(e.message());
                let key = join_key(prefix, &path);
                if let Some(missing) = missing_field(e.message()) {
                    // A key removed earlier because its value was wrong comes
                    // back as missing: it was reported already.
                    let missing_key = join_key(&key, &[Seg::Key(missing.clone())]);
                    if !problems.iter().any(|p| p.key == missing_key) && !reported_missing.contains(&missing_key) {
                        problems.push(Problem {
                            line: span.map(|s| lines.line(s.start)),
                            key: missing_key.clone(),
                            fr,
                            en,
                        });
                    }
                    reported_missing.push(missing_key);
                    return None;
                }
                problems.push(Problem {
                    line: span.map(|s| lines.line(s.start)),
                    key,
                    fr,
                    en,
                });
                if path.is_empty() || !remove_path(value.get_mut(), &path) {
                    return None;
                }
            }
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn join_key(prefix: &str, path: &[Seg]) -> String {
    let mut s = prefix.to_owned();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The path of the innermost key whose key or value covers `span`. Tables
/// opened by a `[header]` are spanned by their header only, so every child is
/// searched whatever its parent's span.
fn path_at(value: &DeValue<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    let covers = |r: Range<usize>| r.start <= span.start && span.end <= r.end.max(r.start + 1);
    type Child<'a, 'i> = (Seg, Option<Range<usize>>, &'a Spanned<DeValue<'i>>);
    let children: Vec<Child<'_, '_>> = match value {
        DeValue::Table(t) => t
            .iter()
            .map(|(k, v)| (Seg::Key(k.get_ref().to_string()), Some(k.span()), v))
            .collect(),
        DeValue::Array(a) => a.iter().enumerate().map(|(i, v)| (Seg::Index(i), None, v)).collect(),
        _ => return None,
    };
    for (seg, key_span, v) in children {
        if key_span.is_some_and(covers) {
            return Some(vec![seg]);
        }
        if let Some(rest) = path_at(v.get_ref(), span) {
            let mut p = vec![seg];
            p.extend(rest);
            return Some(p);
        }
        if covers(v.span()) {
            return Some(vec![seg]);
        }
    }
    None
}

fn remove_path(value: &mut DeValue<'_>, path: &[Seg]) -> bool {
    match (value, path) {
        (DeValue::Table(t), [Seg::Key(k)]) => {
            let found = t.keys().find(|key| key.get_ref().as_ref() == k.as_str()).cloned();
            found.map(|key| t.remove(&key).is_some()).unwrap_or(false)
        }
        (DeValue::Array(a), [Seg::Index(i)]) if *i < a.len() => {
            let mut kept = toml::de::DeArray::new();
            for (j, v) in a.iter().enumerate() {
                if j != *i {
                    kept.push(v.clone());
                }
            }
            *a = kept;
            true
        }
        (DeValue::Table(t), [Seg::Key(k), rest @ ..]) => t
            .iter_mut()
            .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
            .map(|(_, v)| remove_path(v.get_mut(), rest))
            .unwrap_or(false),
        (DeValue::Array(a), [Seg::Index(i), rest @ ..]) => {
            a.get_mut(*i).map(|v| remove_path(v.get_mut(), rest)).unwrap_or(false)
        }
        _ => false,
    }
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Turns serde's English wording into plain French and English.
fn explain_serde(message: &str) -> (String, String) {
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        let expected = quoted.get(1..).map(|q| q.join(", ")).unwrap_or_default();
        let (fr_hint, en_hint) = if expected.is_empty() {
            (String::new(), String::new())
        } else {
            (
                format!(" ; clés possibles : {expected}"),
                format!("; known keys: {expected}"),
            )
        };
        return (
            format!("clé inconnue « {field} »{fr_hint}"),
            format!("unknown key `{field}`{en_hint}"),
        );
    }
    if let Some(field) = missing_field(message) {
        return (
            format!("clé obligatoire « {field} » absente"),
            format!("required key `{field}` is missing"),
        );
    }
    if let Some(variant) = message
        .strip_prefix("unknown variant `")
        .and_then(|r| r.split('`').next())
    {
        let expected = quoted.get(1..).map(|q| q.join(", ")).unwrap_or_default();
        return (
            format!("valeur inconnue « {variant} » ; valeurs possibles : {expected}"),
            format!("unknown value `{variant}`; expected one of: {expected}"),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        return (
            format!(
                "type de valeur incorrect : {} au lieu de {}",
                kind_fr(found),
                kind_fr(expected)
            ),
            format!("wrong type of value: {found} where {expected} was expected"),
        );
    }
    let trimmed = message.trim();
    (
        format!("valeur refusée : {trimmed}"),
        format!("value refused: {trimmed}"),
    )
}

fn kind_fr(s: &str) -> String {
    let s = s.trim();
    let word = |w: &str| s.starts_with(w) || s.contains(w);
    if word("string") {
        "un texte".into()
    } else if word("integer") || word("u32") || word("u64") || word("i32") || word("i64") || word("u16") {
        "un nombre entier".into()
    } else if word("boolean") || word("bool") {
        "un booléen (true ou false)".into()
    } else if word("sequence") || word("array") {
        "une liste".into()
    } else if word("map") || word("table") || word("struct") {
        "une table".into()
    } else if word("float") {
        "un nombre décimal".into()
    } else {
        s.into()
    }
}

/// Finds the line of a dotted path such as `exchange[1].url`; falls back to
/// the enclosing table when the key itself is absent.
fn line_of(root: &DeValue<'_>, path: &[Seg], lines: &LineIndex) -> Option<usize> {
    let mut current = root;
    let mut best = None;
    for seg in path {
        let next = match (current, seg) {
            (DeValue::Table(t), Seg::Key(k)) => t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(key, v)| (key.span(), v)),
            (DeValue::Array(a), Seg::Index(i)) => a.get(*i).map(|v| (v.span(), v)),
            _ => None,
        };
        match next {
            Some((span, v)) => {
                best = Some(lines.line(span.start));
                current = v.get_ref();
            }
            None => break,
        }
    }
    best
}

struct Checker<'a, 'i> {
    root: &'a DeValue<'i>,
    lines: &'a LineIndex,
    problems: &'a mut Vec<Problem>,
}

impl Checker<'_, '_> {
    fn report(&mut self, path: Vec<Seg>, fr: impl Into<String>, en: impl Into<String>) {
        self.problems.push(Problem {
            line: line_of(self.root, &path, self.lines),
            key: join_key("", &path),
            fr: fr.into(),
            en: en.into(),
        });
    }

    fn secret(&mut self, secrets: &SecretSource, at: Vec<Seg>, file: Option<&Path>, env: Option<&str>) {
        if let Err((fr, en)) = secrets.read(file, env) {
            self.report(at, fr, en);
        }
    }
}

fn key(parts: &[&str]) -> Vec<Seg> {
    parts.iter().map(|p| Seg::Key((*p).to_owned())).collect()
}

fn item(section: &str, i: usize, field: &str) -> Vec<Seg> {
    vec![Seg::Key(section.into()), Seg::Index(i), Seg::Key(field.into())]
}

fn check_meaning(
    config: &Partial,
    root: &DeValue<'_>,
    lines: &LineIndex,
    secrets: &SecretSource,
    problems: &mut Vec<Problem>,
) {
    let mut c = Checker { root, lines, problems };
    if let Some(version) = config.version
        && version != CONFIG_VERSION
    {
        c.report(
            key(&["version"]),
            format!("version {version} non prise en charge ; cette version de resa lit la version {CONFIG_VERSION}"),
            format!("version {version} is not supported; this resa reads version {CONFIG_VERSION}"),
        );
    }
    if let Some(tz) = &config.time_zone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        c.report(
            key(&["time_zone"]),
            format!("fuseau horaire inconnu « {tz} » (exemple : Europe/Paris)"),
            format!("unknown time zone `{tz}` (for example Europe/Paris)"),
        );
    }
    let directory_names: Vec<&str> = config.directory.iter().flatten().map(|d| d.name.as_str()).collect();
    if let Some(db) = &config.database {
        check_database(&mut c, db, secrets);
    }
    if let Some(web) = &config.web {
        check_web(&mut c, web, &directory_names, secrets);
    }
    check_exchanges(&mut c, &config.exchange, secrets);
    check_directories(&mut c, &config.directory, secrets);
    if let Some(log) = &config.log {
        check_log(&mut c, log);
    }
    if let Some(daemon) = &config.daemon {
        check_daemon(&mut c, daemon);
    }
}

fn check_database(c: &mut Checker<'_, '_>, db: &Database, secrets: &SecretSource) {
    // Database.
    match Url::parse(&db.url) {
        Ok(u) if u.scheme() == "postgres" || u.scheme() == "postgresql" => {
            if u.password().is_some() {
                c.report(
                    key(&["database", "url"]),
                    "l'adresse contient un mot de passe : mettez-le dans password_file ou password_env",
                    "the URL holds a password: put it in password_file or password_env",
                );
            }
        }
        Ok(u) => c.report(
            key(&["database", "url"]),
            format!("l'adresse doit commencer par postgres://, pas {}://", u.scheme()),
            format!("the URL must start with postgres://, not {}://", u.scheme()),
        ),
        Err(e) => c.report(
            key(&["database", "url"]),
            format!("adresse invalide : {e}"),
            format!("invalid URL: {e}"),
        ),
    }
    if db.password_file.is_some() || db.password_env.is_some() {
        c.secret(
            secrets,
            key(&["database", "password_file"]),
            db.password_file.as_deref(),
            db.password_env.as_deref(),
        );
    }
    if db.max_connections == 0 {
        c.report(
            key(&["database", "max_connections"]),
            "au moins une connexion est nécessaire",
            "at least one connection is needed",
        );
    }
}

fn check_web(c: &mut Checker<'_, '_>, web: &Web, directory_names: &[&str], secrets: &SecretSource) {
    if web.secret_key_file.is_some() || web.secret_key_env.is_some() {
        c.secret(
            secrets,
            key(&["web", "secret_key_file"]),
            web.secret_key_file.as_deref(),
            web.secret_key_env.as_deref(),
        );
    }
    if let Some(u) = &web.public_url
        && u.scheme() != "https"
        && u.scheme() != "http"
    {
        c.report(
            key(&["web", "public_url"]),
            "l'adresse publique doit commencer par https://",
            "the public URL must start with https://",
        );
    }
    for (i, g) in web.admin_groups.iter().enumerate() {
        let ok = g
            .split_once(':')
            .is_some_and(|(d, name)| !name.is_empty() && directory_names.contains(&d));
        if !ok {
            c.report(
                vec![Seg::Key("web".into()), Seg::Key("admin_groups".into()), Seg::Index(i)],
                format!("« {g} » doit s'écrire annuaire:groupe, avec un annuaire déclaré dans [[directory]]"),
                format!("`{g}` must read directory:group, naming a directory declared in [[directory]]"),
            );
        }
    }
}

fn check_exchanges(c: &mut Checker<'_, '_>, exchanges: &[Option<Exchange>], secrets: &SecretSource) {
    let mut names = Vec::new();
    for (i, ex) in exchanges.iter().enumerate() {
        let Some(ex) = ex else { continue };
        if names.contains(&ex.name.as_str()) {
            c.report(
                item("exchange", i, "name"),
                format!("le nom « {} » est déjà pris par un autre [[exchange]]", ex.name),
                format!("the name `{}` is already used by another [[exchange]]", ex.name),
            );
        }
        names.push(&ex.name);
        let loopback = ex
            .url
            .host_str()
            .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
        if ex.url.scheme() != "https" && !(ex.url.scheme() == "http" && loopback) {
            c.report(
                item("exchange", i, "url"),
                "l'adresse EWS doit être en https:// (http:// n'est admis que sur la boucle locale)",
                "the EWS URL must use https:// (http:// only on loopback)",
            );
        }
        match ex.auth {
            ExchangeAuth::Ntlm | ExchangeAuth::Basic => {
                if ex.username.as_deref().is_none_or(str::is_empty) {
                    c.report(
                        item("exchange", i, "username"),
                        "le compte de service (username) est obligatoire pour cette authentification",
                        "the service account (username) is required for this authentication",
                    );
                }
                c.secret(
                    secrets,
                    item("exchange", i, "password_file"),
                    ex.password_file.as_deref(),
                    ex.password_env.as_deref(),
                );
            }
            ExchangeAuth::Oauth2 => {
                for (field, v) in [("tenant_id", &ex.tenant_id), ("client_id", &ex.client_id)] {
                    if v.as_deref().is_none_or(str::is_empty) {
                        c.report(
                            item("exchange", i, field),
                            format!("« {field} » est obligatoire avec auth = \"oauth2\""),
                            format!("`{field}` is required with auth = \"oauth2\""),
                        );
                    }
                }
                c.secret(
                    secrets,
                    item("exchange", i, "client_secret_file"),
                    ex.client_secret_file.as_deref(),
                    ex.client_secret_env.as_deref(),
                );
            }
        }
        if let Some(ca) = &ex.ca_file {
            let p = secrets.base_dir.join(ca);
            if !p.is_file() {
                c.report(
                    item("exchange", i, "ca_file"),
                    format!("fichier d'autorité de certification introuvable : {}", p.display()),
                    format!("certificate authority file not found: {}", p.display()),
                );
            }
        }
        if ex.version == ExchangeVersion::Exchange2007Sp1 && ex.change_detection == ChangeDetection::Streaming {
            c.report(
                item("exchange", i, "change_detection"),
                "Exchange 2007 ne connaît pas les abonnements en flux (streaming) : utilisez pull ou auto",
                "Exchange 2007 has no streaming subscriptions: use pull or auto",
            );
        }
        if ex.max_concurrency == 0 {
            c.report(
                item("exchange", i, "max_concurrency"),
                "au moins une requête simultanée est nécessaire",
                "at least one concurrent request is needed",
            );
        }
    }
}

fn check_directories(c: &mut Checker<'_, '_>, directories: &[Option<Directory>], secrets: &SecretSource) {
    let mut names = Vec::new();
    for (i, d) in directories.iter().enumerate() {
        let Some(d) = d else { continue };
        if names.contains(&d.name.as_str()) {
            c.report(
                item("directory", i, "name"),
                format!("le nom « {} » est déjà pris par un autre [[directory]]", d.name),
                format!("the name `{}` is already used by another [[directory]]", d.name),
            );
        }
        names.push(&d.name);
        match (d.url.scheme(), d.starttls) {
            ("ldaps", false) | ("ldap", true) => {}
            ("ldaps", true) => c.report(
                item("directory", i, "starttls"),
                "starttls ne s'emploie qu'avec une adresse ldap:// (ldaps:// chiffre déjà)",
                "starttls goes with an ldap:// URL only (ldaps:// is already encrypted)",
            ),
            ("ldap", false) => c.report(
                item("directory", i, "url"),
                "connexion non chiffrée refusée : utilisez ldaps:// ou starttls = true",
                "unencrypted connection refused: use ldaps:// or starttls = true",
            ),
            (other, _) => c.report(
                item("directory", i, "url"),
                format!("l'adresse doit commencer par ldaps:// ou ldap://, pas {other}://"),
                format!("the URL must start with ldaps:// or ldap://, not {other}://"),
            ),
        }
        c.secret(
            secrets,
            item("directory", i, "bind_password_file"),
            d.bind_password_file.as_deref(),
            d.bind_password_env.as_deref(),
        );
        if let Some(ca) = &d.ca_file {
            let p = secrets.base_dir.join(ca);
            if !p.is_file() {
                c.report(
                    item("directory", i, "ca_file"),
                    format!("fichier d'autorité de certification introuvable : {}", p.display()),
                    format!("certificate authority file not found: {}", p.display()),
                );
            }
        }
        for (field, dn) in [
            ("user_base_dn", &d.user_base_dn),
            ("group_base_dn", &d.group_base_dn),
            ("bind_dn", &d.bind_dn),
        ] {
            // A bind account may also be named by its user principal name.
            let upn = field == "bind_dn" && dn.contains('@');
            if !dn.contains('=') && !upn {
                c.report(
                    item("directory", i, field),
                    format!("« {dn} » n'est pas un nom distingué (exemple : OU=Agents,DC=exemple,DC=fr)"),
                    format!("`{dn}` is not a distinguished name (for example OU=Staff,DC=example,DC=org)"),
                );
            }
        }
        if d.page_size == 0 || d.page_size > 5000 {
            c.report(
                item("directory", i, "page_size"),
                "la taille de page doit être entre 1 et 5000",
                "the page size must be between 1 and 5000",
            );
        }
    }
}

fn check_log(c: &mut Checker<'_, '_>, log: &Log) {
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        c.report(
            key(&["log", "level"]),
            format!("niveau de journal illisible « {} » (exemple : info)", log.level),
            format!("unreadable log level `{}` (for example info)", log.level),
        );
    }
}

fn check_daemon(c: &mut Checker<'_, '_>, daemon: &Daemon) {
    if daemon.lease_seconds < 10 {
        c.report(
            key(&["daemon", "lease_seconds"]),
            "un bail de moins de 10 secondes se perdrait à la moindre pause",
            "a lease shorter than 10 seconds would be lost at the slightest pause",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &Path) -> SecretSource {
        SecretSource {
            base_dir: dir.to_path_buf(),
            env: |name| (name == "RESA_TEST_SECRET").then(|| "s3cret".to_owned()),
        }
    }

    fn with_secret_file() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ews.pwd"), "pa55word\n").expect("write");
        dir
    }

    const GOOD: &str = r#"
version = 1

[database]
url = "postgres://resa@127.0.0.1:5432/resa"

[[exchange]]
name = "plaine-commune"
url = "https://mail.plainecommune.fr/EWS/Exchange.asmx"
version = "Exchange2007_SP1"
auth = "ntlm"
username = "svc-resa"
domain = "PLAINECOMMUNE"
password_file = "ews.pwd"

[[directory]]
name = "pc"
organisation = "plaine-commune"
url = "ldaps://dc1.plainecommune.local"
bind_dn = "CN=svc-resa,OU=Services,DC=plainecommune,DC=local"
bind_password_env = "RESA_TEST_SECRET"
user_base_dn = "OU=Agents,DC=plainecommune,DC=local"
group_base_dn = "OU=Groupes,DC=plainecommune,DC=local"
"#;

    #[test]
    fn a_good_file_loads_with_defaults() {
        let dir = with_secret_file();
        let c = parse(GOOD, &source(dir.path())).expect("valid");
        assert_eq!(c.time_zone, "Europe/Paris");
        assert_eq!(c.language, Language::Fr);
        assert_eq!(c.exchange[0].version, ExchangeVersion::Exchange2007Sp1);
        assert_eq!(c.web.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.directory[0].page_size, 500);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_line() {
        let dir = with_secret_file();
        let text = r#"version = 2
colour = "blue"

[database]
url = "mysql://resa@db/resa"
max_connections = "ten"

[[exchange]]
name = "a"
url = "http://mail.example.fr/EWS/Exchange.asmx"
version = "Exchange2010_SP2"
auth = "ntlm"
password_file = "missing.pwd"

[[exchange]]
name = "b"
url = "https://mail.example.fr/EWS/Exchange.asmx"
version = "Exchange2003"
auth = "kerberos"
"#;
        let problems = parse(text, &source(dir.path())).expect_err("invalid").0;
        let got: Vec<(Option<usize>, &str)> = problems.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some(1), "version"),
                (Some(2), "colour"),
                (Some(5), "database.url"),
                (Some(6), "database.max_connections"),
                (Some(8), "exchange[0].username"),
                (Some(10), "exchange[0].url"),
                (Some(13), "exchange[0].password_file"),
                (Some(18), "exchange[1].version"),
                (Some(19), "exchange[1].auth"),
            ],
            "{problems:#?}"
        );
        let version = problems
            .iter()
            .find(|p| p.key == "exchange[1].version")
            .expect("reported");
        assert!(
            version.fr.contains("Exchange2003") && version.fr.contains("Exchange2010_SP2"),
            "{}",
            version.fr
        );
        let colour = problems.iter().find(|p| p.key == "colour").expect("reported");
        assert!(colour.fr.starts_with("clé inconnue « colour »"), "{}", colour.fr);
    }

    #[test]
    fn syntax_errors_are_all_reported_with_lines() {
        let dir = with_secret_file();
        let text = "version = 1\n[database\nurl = \"x\"\nfoo = = 3\n";
        let problems = parse(text, &source(dir.path())).expect_err("invalid").0;
        assert!(problems.len() >= 2, "{problems:#?}");
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].fr.starts_with("erreur de syntaxe TOML"));
    }

    #[test]
    fn secrets_never_print_and_come_from_files_or_environment() {
        let dir = with_secret_file();
        let s = source(dir.path());
        let secret = s.read(Some(Path::new("ews.pwd")), None).expect("file");
        assert_eq!(secret.expose(), "pa55word");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(s.read(None, Some("RESA_TEST_SECRET")).expect("env").expose(), "s3cret");
        assert!(s.read(None, Some("RESA_UNSET")).is_err());
        assert!(s.read(None, None).is_err());
    }

    #[test]
    fn a_password_in_the_database_url_is_refused() {
        let dir = with_secret_file();
        let text = GOOD.replace("postgres://resa@", "postgres://resa:hunter2@");
        let problems = parse(&text, &source(dir.path())).expect_err("invalid").0;
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].key, "database.url");
        assert_eq!(problems[0].line, Some(5));
    }

    #[test]
    fn unencrypted_ldap_and_duplicate_names_are_refused() {
        let dir = with_secret_file();
        let mut text = GOOD.replace("ldaps://dc1", "ldap://dc1");
        text.push_str(
            r#"
[[exchange]]
name = "plaine-commune"
url = "https://mail2.plainecommune.fr/EWS/Exchange.asmx"
version = "Exchange2016"
auth = "basic"
username = "svc"
password_env = "RESA_TEST_SECRET"
"#,
        );
        let problems = parse(&text, &source(dir.path())).expect_err("invalid").0;
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["directory[0].url", "exchange[1].name"], "{problems:#?}");
    }
}
