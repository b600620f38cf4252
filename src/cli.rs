//! The command line: parses arguments and runs one subcommand.
//!
//! Each subcommand that is not built yet says so and exits with status 2; none
//! pretends to work.

use crate::config::{self, Language};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "resa",
    version,
    about = "Réservation de salles, véhicules et matériel depuis Outlook (Exchange)"
)]
pub struct Cli {
    /// Language of the messages printed: fr (default) or en.
    #[arg(long, global = true, value_enum, env = "RESA_LANG", default_value = "fr")]
    pub lang: Lang,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Lang {
    Fr,
    En,
}

impl From<Lang> for Language {
    fn from(l: Lang) -> Self {
        match l {
            Lang::Fr => Language::Fr,
            Lang::En => Language::En,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: mailbox workers, outbox, directory sync, web site.
    Serve {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
    },
    /// Apply the database migrations (forward only).
    Migrate {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and report every problem with its line.
    CheckConfig {
        file: PathBuf,
        /// Also try to reach PostgreSQL, the Exchange servers and the directories.
        #[arg(long)]
        connect: bool,
    },
    /// Run the Exchange simulator (EWS on loopback) for tests and demos.
    Sim {
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        #[arg(long)]
        seed: Option<PathBuf>,
        #[arg(long, default_value = "2010_SP2")]
        version: String,
    },
    /// Run everything on loopback: a private PostgreSQL, the simulator seeded
    /// with the customer's inventory, the daemon and the web site.
    Demo {
        /// Where the demo keeps its database and simulator state.
        #[arg(long, default_value = "resa-demo")]
        data_dir: PathBuf,
    },
    /// Write the whole state in open formats (JSON, CSV, iCalendar).
    Export {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Load an export into an empty database.
    Import {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
        input: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let lang: Language = cli.lang.into();
    match cli.command {
        Command::CheckConfig { file, connect } => check_config(&file, connect, lang),
        Command::Migrate { config } => migrate(&config, lang),
        Command::Serve { .. } => not_built("serve", lang),
        Command::Sim { .. } => not_built("sim", lang),
        Command::Demo { .. } => not_built("demo", lang),
        Command::Export { .. } => not_built("export", lang),
        Command::Import { .. } => not_built("import", lang),
    }
}

fn say(lang: Language, fr: &str, en: &str) -> String {
    match lang {
        Language::Fr => fr.to_owned(),
        Language::En => en.to_owned(),
    }
}

fn not_built(name: &str, lang: Language) -> ExitCode {
    eprintln!(
        "{}",
        say(
            lang,
            &format!(
                "resa {name} : pas encore disponible dans cette version (voir l'état des fonctions dans le README)."
            ),
            &format!("resa {name}: not available in this version yet (see the status table in the README)."),
        )
    );
    ExitCode::from(2)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

fn check_config(file: &std::path::Path, connect: bool, lang: Language) -> ExitCode {
    let cfg = match config::load(file) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems.0 {
                eprintln!("{}", p.render(file, lang));
            }
            eprintln!(
                "{}",
                say(
                    lang,
                    &format!("{} problème(s) trouvé(s).", problems.0.len()),
                    &format!("{} problem(s) found.", problems.0.len()),
                )
            );
            return ExitCode::FAILURE;
        }
    };
    if connect {
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let failures = rt.block_on(reach_everything(file, &cfg, lang));
        if failures > 0 {
            return ExitCode::FAILURE;
        }
    }
    println!("{}", say(lang, "Configuration valide.", "Configuration is valid."));
    ExitCode::SUCCESS
}

/// Tries each server named by the configuration; prints one line per server
/// and returns how many could not be reached.
async fn reach_everything(file: &std::path::Path, cfg: &config::Config, lang: Language) -> usize {
    let mut failures = 0;
    let base = file.parent().map(PathBuf::from).unwrap_or_default();
    match database_url(cfg, &base) {
        Ok(url) => match tokio::time::timeout(Duration::from_secs(10), crate::store::Store::connect(&url, 1)).await {
            Ok(Ok(_)) => println!("PostgreSQL : ok"),
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("PostgreSQL : {e}");
            }
            Err(_) => {
                failures += 1;
                eprintln!("PostgreSQL : {}", say(lang, "délai dépassé", "timed out"));
            }
        },
        Err(e) => {
            failures += 1;
            eprintln!("PostgreSQL : {e}");
        }
    }
    let servers = cfg
        .exchange
        .iter()
        .map(|e| (format!("Exchange {}", e.name), e.url.clone()))
        .chain(
            cfg.directory
                .iter()
                .map(|d| (format!("LDAP {}", d.name), d.url.clone())),
        );
    for (name, url) in servers {
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(match url.scheme() {
            "ldaps" => 636,
            _ => 389,
        });
        match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => println!("{name} ({host}:{port}) : ok"),
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("{name} ({host}:{port}) : {e}");
            }
            Err(_) => {
                failures += 1;
                eprintln!("{name} ({host}:{port}) : {}", say(lang, "délai dépassé", "timed out"));
            }
        }
    }
    failures
}

/// The database URL with its password, read from the configured secret.
pub fn database_url(cfg: &config::Config, config_dir: &std::path::Path) -> Result<String, String> {
    let db = &cfg.database;
    let mut url = url::Url::parse(&db.url).map_err(|e| e.to_string())?;
    if db.password_file.is_some() || db.password_env.is_some() {
        let secret = config::SecretSource::system(config_dir.to_path_buf())
            .read(db.password_file.as_deref(), db.password_env.as_deref())
            .map_err(|(_, en)| en)?;
        url.set_password(Some(secret.expose()))
            .map_err(|_| "the database URL cannot hold a password".to_owned())?;
    }
    Ok(url.to_string())
}

fn migrate(file: &std::path::Path, lang: Language) -> ExitCode {
    let cfg = match config::load(file) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems.0 {
                eprintln!("{}", p.render(file, lang));
            }
            return ExitCode::FAILURE;
        }
    };
    let base = file.parent().map(PathBuf::from).unwrap_or_default();
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let url = database_url(&cfg, &base)?;
            let store = crate::store::Store::connect(&url, 2).await.map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())
        })
    });
    match result {
        Ok(()) => {
            println!("{}", say(lang, "Base de données à jour.", "Database is up to date."));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", say(lang, "Échec de la migration", "Migration failed"));
            ExitCode::FAILURE
        }
    }
}
