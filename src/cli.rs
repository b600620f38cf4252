//! The command line: parses arguments and runs one subcommand.

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
        /// Address of the web site and of /metrics.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Address of the Exchange simulator.
        #[arg(long, default_value = "127.0.0.1:8443")]
        sim_listen: String,
        /// Simulated invitations per minute (0 for none).
        #[arg(long, default_value_t = 20)]
        activity: u32,
    },
    /// Write the whole state in open formats (JSON, CSV, iCalendar).
    Export {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Resources: import from CSV, discover from Exchange room lists.
    Resources {
        #[command(subcommand)]
        command: ResourcesCommand,
    },
    /// Directory (Active Directory) tasks.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Load an export into an empty database.
    Import {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
        input: PathBuf,
    },
    /// Measure decision latency, throughput, CPU, memory and EWS calls
    /// against the simulator on a private PostgreSQL (see BENCHMARKS.md).
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Resource mailbox counts, one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    pub mailboxes: Vec<usize>,
    /// Seconds of steady load per run.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seconds of idleness measured per run.
    #[arg(long, default_value_t = 30)]
    pub idle: u64,
    /// Requests per second during the steady load.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Requests sent at once to measure the saturation throughput.
    #[arg(long, default_value_t = 1000)]
    pub burst: usize,
    /// The daemon's poll_interval_seconds (when it polls).
    #[arg(long, default_value_t = 300)]
    pub poll_interval: u64,
    /// Skip the micro-measurements.
    #[arg(long)]
    pub no_micro: bool,
    /// Run only the report queries over the generated bookings (no load, no
    /// other micro-measurement): `--only reports`.
    #[arg(long, value_parser = ["reports"])]
    pub only: Option<String>,
    /// Bookings generated to time the report queries on.
    #[arg(long, default_value_t = 1_000_000)]
    pub report_bookings: u64,
    /// Python with exchangelib, for the reference parse.
    #[arg(long, env = "RESA_EXCHANGELIB_PYTHON")]
    pub exchangelib_python: Option<PathBuf>,
    /// Where to keep the cluster and the logs (removed at the end unless --keep).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    #[arg(long)]
    pub keep: bool,
    /// Print the results as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ResourcesCommand {
    /// Create or update resources from a CSV file (name,mailbox,site,type,capacity,exchange);
    /// a file with any bad line imports nothing and every bad line is reported.
    Import {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
        file: PathBuf,
    },
    /// List the rooms of an Exchange server's room lists as an import CSV to review.
    Discover {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
        /// The [[exchange]] block to ask.
        #[arg(long)]
        exchange: String,
        /// Where to write the CSV (standard output by default).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Read people and groups from the configured directories into the database.
    Sync {
        #[arg(short, long, env = "RESA_CONFIG", default_value = "/etc/resa/resa.toml")]
        config: PathBuf,
        /// Run one pass and exit (the daemon syncs on its own schedule).
        #[arg(long, required = true)]
        once: bool,
        /// Read everything, not only what changed since the last sync.
        #[arg(long)]
        full: bool,
        /// Only this directory (by its name in the configuration).
        #[arg(long)]
        name: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let lang: Language = cli.lang.into();
    match cli.command {
        Command::CheckConfig { file, connect } => check_config(&file, connect, lang),
        Command::Migrate { config } => migrate(&config, lang),
        Command::Serve { config } => serve(&config, lang),
        Command::Sim { listen, seed, version } => run_sim(&listen, seed.as_deref(), &version, lang),
        Command::Demo {
            data_dir,
            listen,
            sim_listen,
            activity,
        } => demo(crate::demo::DemoOptions {
            data_dir,
            listen,
            sim_listen,
            activity_per_minute: activity,
        }),
        Command::Export { config, output } => export(&config, &output, lang),
        Command::Import { config, input } => import(&config, &input, lang),
        Command::Bench(args) => bench(args),
        Command::Resources {
            command: ResourcesCommand::Import { config, file },
        } => resources_import(&config, &file, lang),
        Command::Resources {
            command:
                ResourcesCommand::Discover {
                    config,
                    exchange,
                    output,
                },
        } => resources_discover(&config, &exchange, output.as_deref(), lang),
        Command::Directory {
            command: DirectoryCommand::Sync { config, full, name, .. },
        } => directory_sync(&config, full, name.as_deref(), lang),
    }
}

fn say(lang: Language, fr: &str, en: &str) -> String {
    match lang {
        Language::Fr => fr.to_owned(),
        Language::En => en.to_owned(),
    }
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
    let cfg = match load_or_report(file, lang) {
        Ok(c) => c,
        Err(code) => return code,
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

/// Loads the configuration or prints every problem and gives the exit code.
fn load_or_report(file: &std::path::Path, lang: Language) -> Result<config::Config, ExitCode> {
    config::load(file).map_err(|problems| {
        for p in &problems.0 {
            eprintln!("{}", p.render(file, lang));
        }
        ExitCode::FAILURE
    })
}

fn directory_sync(file: &std::path::Path, full: bool, only: Option<&str>, lang: Language) -> ExitCode {
    let cfg = match load_or_report(file, lang) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let base = file.parent().map(PathBuf::from).unwrap_or_default();
    let secrets = config::SecretSource::system(base.clone());
    let directories: Vec<&config::Directory> = cfg
        .directory
        .iter()
        .filter(|d| only.is_none_or(|n| d.name == n))
        .collect();
    if directories.is_empty() {
        eprintln!(
            "{}",
            say(
                lang,
                "Aucun annuaire à synchroniser dans la configuration.",
                "No directory to sync in the configuration."
            )
        );
        return ExitCode::FAILURE;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let url = match database_url(&cfg, &base) {
            Ok(u) => u,
            Err(e) => {
                eprintln!("PostgreSQL : {e}");
                return ExitCode::FAILURE;
            }
        };
        let store = match crate::store::Store::connect(&url, 4).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("PostgreSQL : {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut failed = false;
        for d in directories {
            let settings = match d.settings(&secrets) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{} : {e}", d.name);
                    failed = true;
                    continue;
                }
            };
            let name = d.name.clone();
            let result = crate::directory::sync_once(&store, &settings, full, |p| println!("{name} : {p}")).await;
            match result {
                Ok(report) => println!(
                    "{}",
                    say(
                        lang,
                        &format!(
                            "{} : terminé — {} personnes et {} groupes lus.",
                            report.directory, report.people_read, report.groups_read
                        ),
                        &format!(
                            "{}: done — {} people and {} groups read.",
                            report.directory, report.people_read, report.groups_read
                        ),
                    )
                ),
                Err(e) => {
                    eprintln!("{} : {e}", d.name);
                    failed = true;
                }
            }
        }
        if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
    })
}

/// `resa sim`: serves the simulator until Ctrl-C or SIGTERM.
fn run_sim(listen: &str, seed: Option<&std::path::Path>, version: &str, lang: Language) -> ExitCode {
    let Some(version) = crate::sim::version::parse_cli_version(version) else {
        eprintln!(
            "{}",
            say(
                lang,
                &format!("Version inconnue {version:?} : 2007_SP1, 2010_SP2, 2013 ou 2016."),
                &format!("Unknown version {version:?}: 2007_SP1, 2010_SP2, 2013 or 2016."),
            )
        );
        return ExitCode::from(2);
    };
    let seed = match seed.map(crate::sim::Seed::load).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime().map_err(crate::sim::SimError::from).and_then(|rt| {
        rt.block_on(async {
            let handle = crate::sim::Simulator::start(crate::sim::SimOptions::new(listen, seed, version)).await?;
            println!("EWS {}", handle.ews_url());
            println!("control {}", handle.control_url());
            handle.run_until_signal().await;
            Ok(())
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Connects to the configured database, or says why not.
async fn connect(cfg: &config::Config, file: &std::path::Path) -> Result<crate::store::Store, String> {
    let base = file.parent().map(PathBuf::from).unwrap_or_default();
    let url = database_url(cfg, &base)?;
    crate::store::Store::connect(&url, 4).await.map_err(|e| e.to_string())
}

fn print_progress(lang: Language) -> impl FnMut(crate::reversibility::Progress) {
    use crate::reversibility::Progress;
    move |p| match p {
        Progress::Table { table, rows } => eprintln!("{table} : {rows}"),
        Progress::Calendar { resource, events } => eprintln!(
            "{}",
            say(
                lang,
                &format!("agenda {resource} : {events} créneaux"),
                &format!("calendar {resource}: {events} slots")
            )
        ),
        Progress::Done { rows } => eprintln!(
            "{}",
            say(lang, &format!("terminé : {rows} lignes"), &format!("done: {rows} rows"))
        ),
    }
}

fn export(file: &std::path::Path, output: &std::path::Path, lang: Language) -> ExitCode {
    let cfg = match load_or_report(file, lang) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let store = connect(&cfg, file).await?;
            crate::reversibility::export(&store, output, print_progress(lang))
                .await
                .map_err(|e| e.to_string())
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e}", say(lang, "Échec de l'export", "Export failed"));
            ExitCode::FAILURE
        }
    }
}

fn import(file: &std::path::Path, input: &std::path::Path, lang: Language) -> ExitCode {
    let cfg = match load_or_report(file, lang) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let store = connect(&cfg, file).await?;
            store.migrate().await.map_err(|e| e.to_string())?;
            crate::reversibility::import(&store, input, print_progress(lang))
                .await
                .map_err(|e| e.to_string())
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e}", say(lang, "Échec de l'import", "Import failed"));
            ExitCode::FAILURE
        }
    }
}

fn serve(file: &std::path::Path, lang: Language) -> ExitCode {
    let cfg = match load_or_report(file, lang) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = runtime()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(crate::runtime::serve(cfg, file)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resa serve : {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    let resa_bin = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("resa bench : {e}");
            return ExitCode::FAILURE;
        }
    };
    let exchangelib_python = args.exchangelib_python.or_else(|| {
        let venv = PathBuf::from("target/exchangelib-venv/bin/python");
        venv.exists().then_some(venv)
    });
    let opts = crate::bench::BenchOptions {
        mailboxes: args.mailboxes,
        duration_secs: args.duration,
        idle_secs: args.idle,
        rate: args.rate,
        burst: args.burst,
        poll_interval_secs: args.poll_interval,
        resa_bin,
        micro: !args.no_micro,
        only_reports: args.only.as_deref() == Some("reports"),
        report_bookings: args.report_bookings,
        exchangelib_python,
        work_dir: args
            .work_dir
            .unwrap_or_else(|| std::env::temp_dir().join(format!("resa-bench-{}", std::process::id()))),
        keep: args.keep,
    };
    let progress = |line: &str| eprintln!("{line}");
    match runtime()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(crate::bench::run(&opts, &progress)))
    {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("resa bench : {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("resa bench : {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo(opts: crate::demo::DemoOptions) -> ExitCode {
    match runtime()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(crate::demo::run(opts)))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resa demo : {e}");
            ExitCode::FAILURE
        }
    }
}

fn resources_import(file: &std::path::Path, csv: &std::path::Path, lang: Language) -> ExitCode {
    let cfg = match load_or_report(file, lang) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let input = match std::fs::File::open(csv) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: {e}", csv.display());
            return ExitCode::FAILURE;
        }
    };
    let endpoints: Vec<String> = cfg.exchange.iter().map(|e| e.name.clone()).collect();
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let store = connect(&cfg, file).await?;
            crate::resources::import_csv(&store, input, &endpoints)
                .await
                .map_err(|e| e.to_string())
        })
    });
    match result {
        Ok(report) if report.errors.is_empty() => {
            println!(
                "{}",
                say(
                    lang,
                    &format!(
                        "{} créée(s), {} mise(s) à jour, {} inchangée(s).",
                        report.created, report.updated, report.unchanged
                    ),
                    &format!(
                        "{} created, {} updated, {} unchanged.",
                        report.created, report.updated, report.unchanged
                    ),
                )
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            for e in &report.errors {
                let text = match lang {
                    Language::Fr => &e.fr,
                    Language::En => &e.en,
                };
                eprintln!("{}:{}: {text}", csv.display(), e.line);
            }
            eprintln!(
                "{}",
                say(
                    lang,
                    &format!("{} erreur(s) : rien n'a été importé.", report.errors.len()),
                    &format!("{} error(s): nothing was imported.", report.errors.len()),
                )
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn resources_discover(
    file: &std::path::Path,
    exchange: &str,
    output: Option<&std::path::Path>,
    lang: Language,
) -> ExitCode {
    let cfg = match load_or_report(file, lang) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let base = file.parent().map(PathBuf::from).unwrap_or_default();
    let secrets = config::SecretSource::system(base);
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let exchanges = crate::runtime::exchanges(&cfg, &secrets, crate::clock::system())?;
            let ex = exchanges.get(exchange).ok_or_else(|| {
                say(
                    lang,
                    &format!("aucun [[exchange]] nommé {exchange}"),
                    &format!("no [[exchange]] named {exchange}"),
                )
            })?;
            crate::resources::discover_csv(ex.client(), exchange)
                .await
                .map_err(|e| e.to_string())
        })
    });
    match result {
        Ok(csv) => {
            let written = match output {
                Some(path) => std::fs::write(path, &csv).map_err(|e| format!("{}: {e}", path.display())),
                None => {
                    print!("{csv}");
                    Ok(())
                }
            };
            match written {
                Ok(()) => {
                    eprintln!(
                        "{}",
                        say(
                            lang,
                            &format!(
                                "{} salle(s) trouvée(s) : remplacez la colonne site par organisation/site, puis lancez resa resources import.",
                                csv.lines().count().saturating_sub(1)
                            ),
                            &format!(
                                "{} room(s) found: replace the site column with organisation/site, then run resa resources import.",
                                csv.lines().count().saturating_sub(1)
                            ),
                        )
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
