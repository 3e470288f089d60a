//! The `agency-node` command line: serve a node, verify and export its audit
//! log offline, print the subgraph SDL, and development helpers (a local
//! identity provider that mints tokens).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use exchange_schema::{AgencyId, Role};

use crate::app::{Application, shutdown_signal};
use crate::audit::read::AuditFilter;
use crate::audit::verify;
use crate::config::NodeConfig;
use crate::store::Db;

/// An agency node of the survivor data exchange: it owns its agency's
/// records, enforces survivors' consent on every disclosure and keeps a
/// tamper-evident audit log.
#[derive(Parser, Debug)]
#[command(name = "agency-node", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables `AGENCY_NODE__*`
    /// override it; see deploy/agency-node.toml for every field.
    #[arg(long, short, global = true, env = "AGENCY_NODE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the node and serve GraphQL until SIGTERM or Ctrl-C.
    Serve,
    /// Verify or export an audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print the GraphQL SDL this node serves (the federation contract).
    Schema,
    /// Development helpers: a local identity provider for trying a node.
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check a log offline: every hash link and every signed checkpoint.
    /// Names the first entry that was edited, deleted or reordered and exits
    /// non-zero.
    Verify(VerifyArgs),
    /// Export the log (or a filtered part) with the checkpoints that verify it.
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct Source {
    /// A database URL (`sqlite://...` or `postgres://...`).
    #[arg(long, conflicts_with_all = ["data_dir", "export"])]
    pub database: Option<String>,
    /// A node data directory (its SQLite database is used).
    #[arg(long, conflicts_with = "export")]
    pub data_dir: Option<PathBuf>,
    /// A JSON Lines export made by `audit export`.
    #[arg(long)]
    pub export: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: Source,
    /// The log keeper's Ed25519 public key (hex) that must have signed every
    /// checkpoint. Without it the first checkpoint's key is trusted.
    #[arg(long)]
    pub public_key: Option<String>,
    /// Checkpoints collected earlier (JSON Lines): a log that disagrees with
    /// any of them was rewritten (a fork).
    #[arg(long)]
    pub checkpoints: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines with checkpoints: verifiable with `audit verify --export`.
    Jsonl,
    /// CSV for spreadsheets (not verifiable on its own).
    Csv,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: Source,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only entries about this survivor (global ID).
    #[arg(long)]
    pub survivor: Option<String>,
    /// Only entries by this agency.
    #[arg(long)]
    pub agency: Option<String>,
    /// Only break-glass entries.
    #[arg(long)]
    pub break_glass: bool,
}

#[derive(Subcommand, Debug)]
pub enum DevCommand {
    /// Mint a bearer token from the development identity provider's key (in
    /// the node's data directory, generated on first use).
    Token(TokenArgs),
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The agency the user works for (defaults to the node's own).
    #[arg(long)]
    pub agency: Option<String>,
    /// The user's ID at that agency.
    #[arg(long, default_value = "dev-caseworker")]
    pub user: String,
    /// Roles, repeatable: CASEWORKER, SUPERVISOR, AUDITOR, DATA_PROTECTION_OFFICER.
    #[arg(long = "role", default_value = "CASEWORKER")]
    pub roles: Vec<String>,
    /// Lifetime in minutes.
    #[arg(long, default_value_t = 480)]
    pub ttl_minutes: i64,
}

/// Runs the command line; the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => {
            let config = NodeConfig::load(cli.config.as_deref())?;
            crate::telemetry::init(&config.log_format);
            let app = Application::build(config).await?;
            app.run(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            print!("{}", crate::graphql::subgraph_sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            audit_verify(cli.config.as_deref(), args).await
        }
        Command::Audit(AuditCommand::Export(args)) => {
            audit_export(cli.config.as_deref(), args).await
        }
        Command::Dev(DevCommand::Token(args)) => {
            let config = NodeConfig::load(cli.config.as_deref())?;
            let agency = AgencyId::parse(args.agency.as_deref().unwrap_or(&config.agency))?;
            let roles = args
                .roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()?;
            let federation = exchange_trust::Federation::load(&config.federation)?;
            let idp = exchange_trust::DevIdentityProvider::load_or_generate(
                &config.data_dir.join("dev-idp"),
                &agency,
            )?;
            let mut request =
                exchange_trust::MintRequest::new(agency, args.user, roles, federation.audience());
            request.ttl =
                std::time::Duration::from_secs(args.ttl_minutes.clamp(1, 24 * 60) as u64 * 60);
            let token = idp.mint(&request)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open_source(config: Option<&std::path::Path>, source: &Source) -> anyhow::Result<Db> {
    let url = match (&source.database, &source.data_dir) {
        (Some(url), _) => url.clone(),
        (None, Some(dir)) => crate::store::sqlite_url(dir),
        (None, None) => NodeConfig::load(config)
            .context("no --database, --data-dir or --export given, and no node configuration")?
            .database_url(),
    };
    Db::connect(&url).await
}

async fn audit_verify(
    config: Option<&std::path::Path>,
    args: VerifyArgs,
) -> anyhow::Result<ExitCode> {
    let collected = match &args.checkpoints {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            verify::load_checkpoints(std::io::BufReader::new(file))?
        }
        None => Vec::new(),
    };
    let options = verify::VerifyOptions {
        expected_key: args.public_key.clone(),
        collected_checkpoints: collected,
        log_id: None,
    };
    let outcome = match &args.source.export {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            verify::verify_export(std::io::BufReader::new(file), &options)
        }
        None => {
            let db = open_source(config, &args.source).await?;
            verify::verify_database(&db, &options).await
        }
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn audit_export(
    config: Option<&std::path::Path>,
    args: ExportArgs,
) -> anyhow::Result<ExitCode> {
    let db = open_source(config, &args.source).await?;
    let log_id =
        match crate::audit::export::stored_log_id(&db).await? {
            Some(id) => id,
            None => NodeConfig::load(config)
                .context(
                    "the log has no checkpoint naming it yet, and no node configuration was given",
                )?
                .agency,
        };
    let filter = AuditFilter {
        actor_agency: args.agency.as_deref().map(AgencyId::parse).transpose()?,
        survivor: args.survivor.clone(),
        break_glass: args.break_glass.then_some(true),
        ..AuditFilter::default()
    };
    let mut out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let summary = match args.format {
        ExportFormat::Jsonl => {
            crate::audit::export::export_jsonl(&db, &log_id, &filter, &mut out).await?
        }
        ExportFormat::Csv => crate::audit::export::export_csv(&db, &filter, &mut out).await?,
    };
    out.flush()?;
    eprintln!(
        "exported {} entries ({} elided, through seq {}) and {} checkpoints",
        summary.entries, summary.elided, summary.last_seq, summary.checkpoints
    );
    Ok(ExitCode::SUCCESS)
}
