//! The `agency-node` command line: serve a node, verify and export its audit
//! log offline, print the subgraph SDL, and development helpers (a local
//! identity provider that mints tokens).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use exchange_schema::{AgencyId, Role};

use crate::app::{Application, shutdown_signal};
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
    /// Check a consent receipt a survivor downloaded from the portal.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
}

#[derive(Subcommand, Debug)]
pub enum ReceiptCommand {
    /// Verify a receipt's signature offline. Exits 0 when it verifies, 1
    /// when it does not (saying why), 2 when it cannot be read.
    Verify(ReceiptVerifyArgs),
}

#[derive(Args, Debug)]
pub struct ReceiptVerifyArgs {
    /// The receipt (JSON) as downloaded.
    pub file: std::path::PathBuf,
    /// The issuing node's public key (hex) the receipt must be signed with.
    /// Without it (or --data-dir) only the embedded key is checked, which
    /// proves integrity but not who signed.
    #[arg(long, conflicts_with = "data_dir")]
    pub public_key: Option<String>,
    /// The issuing node's data directory: its signing key is the one
    /// expected.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check a log offline: every hash link and every signed checkpoint.
    /// Names the first entry that was edited, deleted or reordered and exits
    /// non-zero. An export file may hold several logs (the gateway's
    /// federated export); each is checked. A database is opened read-only
    /// and never migrated: a missing one is an error, never created.
    ///
    /// Exit status: 0 the log verifies; 1 it does not (the first problem is
    /// named after `FAILED:`); 2 it could not be checked (no such database
    /// or file, not a node's database, unreadable input, bad arguments);
    /// 3 the chain verifies but the append-only triggers of `audit_log` are
    /// missing, so nothing stops an UPDATE or DELETE of the log.
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
    /// A JSON Lines export made by `audit export`, a node's
    /// `/audit/export` or the gateway's (several logs in one file).
    #[arg(long)]
    pub export: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: Source,
    /// The log keeper's Ed25519 public key (hex) that must have signed every
    /// checkpoint, or `LOG_ID=HEX` to pin the key of one log of a file of
    /// several (repeatable). Without it the first checkpoint's key of each
    /// log is trusted.
    #[arg(long, value_name = "[LOG_ID=]HEX")]
    pub public_key: Vec<String>,
    /// Checkpoints collected earlier (JSON Lines, as the gateway's
    /// `GET /audit/checkpoints` serves them): a log that disagrees with any
    /// of them was rewritten (a fork); one that ends, or whose own
    /// checkpoints end, before the newest of them was cut.
    #[arg(long, visible_alias = "collected")]
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
    /// Only entries for this purpose (REFERRAL, AUDIT, ...).
    #[arg(long)]
    pub purpose: Option<String>,
    /// Only PERMIT or only DENY entries.
    #[arg(long)]
    pub decision: Option<String>,
    /// Only entries from this time on (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DevCommand {
    /// Mint a bearer token from a development identity provider's key that
    /// the federation file trusts: the private key beside the public key file
    /// it lists for the agency, else `<data_dir>/dev-idp/` (generated on
    /// first use). Refuses, saying what to add to the federation file, when
    /// the node would not accept the token.
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
            ExitCode::from(VERIFY_UNCHECKED)
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
            write_stdout(&crate::graphql::subgraph_sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            audit_verify(cli.config.as_deref(), args).await
        }
        Command::Audit(AuditCommand::Export(args)) => {
            audit_export(cli.config.as_deref(), args).await
        }
        Command::Receipt(ReceiptCommand::Verify(args)) => receipt_verify(args),
        Command::Dev(DevCommand::Token(args)) => dev_token(cli.config.as_deref(), args),
    }
}

/// `dev token`: mints a token with the development key the node's trust
/// list already trusts, so the token works against the node as it is
/// configured. The key is looked for beside the public key files the
/// federation file lists for the agency (the layout of a development
/// federation: `keys/<agency>-idp.key.pem` next to `<agency>-idp.pub.pem`),
/// then in `<data_dir>/dev-idp/` (generated there on first use). A token
/// the trust list would refuse is never printed: the error says how to
/// trust the key instead.
fn dev_token(config: Option<&std::path::Path>, args: TokenArgs) -> anyhow::Result<ExitCode> {
    use exchange_trust::{DevIdentityProvider, Federation, FederationFile, TokenVerifier};
    let config = NodeConfig::load(config)?;
    let agency = AgencyId::parse(args.agency.as_deref().unwrap_or(&config.agency))?;
    let roles = args
        .roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()?;
    let private_key_name = format!("{agency}-idp.key.pem");

    // Development keys the federation file points at for this agency.
    let federation_dir = config
        .federation
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."));
    let text = std::fs::read_to_string(&config.federation).with_context(|| {
        format!(
            "reading the federation file {}",
            config.federation.display()
        )
    })?;
    let file: FederationFile = toml::from_str(&text).with_context(|| {
        format!(
            "parsing the federation file {}",
            config.federation.display()
        )
    })?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for key in file
        .agencies
        .iter()
        .filter(|a| a.id == agency.as_str())
        .flat_map(|a| &a.keys)
    {
        if let Some(dir) = key
            .pem_file
            .as_deref()
            .and_then(|pem| federation_dir.join(pem).parent().map(|d| d.to_path_buf()))
            && dir.join(&private_key_name).is_file()
            && !dirs.contains(&dir)
        {
            dirs.push(dir);
        }
    }
    let own = config.data_dir.join("dev-idp");
    if !dirs.contains(&own) && (dirs.is_empty() || own.join(&private_key_name).is_file()) {
        dirs.push(own.clone());
    }

    // Loaded (or generated) before the trust list is read: a development
    // federation file may name the public key a first run generates.
    let providers = dirs
        .iter()
        .map(|dir| DevIdentityProvider::load_or_generate(dir, &agency))
        .collect::<Result<Vec<_>, _>>()?;
    let federation = Federation::load(&config.federation).with_context(|| {
        format!(
            "loading the federation file {}",
            config.federation.display()
        )
    })?;
    let verifier = TokenVerifier::new(federation.clone());
    let mut request =
        exchange_trust::MintRequest::new(agency.clone(), args.user, roles, federation.audience());
    request.ttl = std::time::Duration::from_secs(args.ttl_minutes.clamp(1, 24 * 60) as u64 * 60);
    let mut refused = Vec::new();
    for idp in providers {
        let token = idp.mint(&request)?;
        match verifier.verify(&token) {
            Ok(_) => {
                say(&token);
                return Ok(ExitCode::SUCCESS);
            }
            Err(err) => refused.push((idp, err.reason_code())),
        }
    }
    let mut message = format!(
        "the federation file {} does not trust a development key of {agency}, so a token \
         would be refused by the node",
        config.federation.display()
    );
    for (idp, reason) in &refused {
        message.push_str(&format!(
            "\n  {} ({reason})",
            idp.public_key_path().display()
        ));
    }
    if let Some((idp, _)) = refused.last() {
        let public = std::path::absolute(idp.public_key_path())
            .unwrap_or_else(|_| idp.public_key_path().to_path_buf());
        message.push_str(&format!(
            "\nto trust it in development, set in the [[agency]] entry of {agency}:\n  \
             issuer = \"{}\"\n  [[agency.keys]]\n  kid = \"{}\"\n  pem_file = \"{}\"",
            idp.issuer(),
            idp.kid(),
            public.display()
        ));
    }
    anyhow::bail!(message)
}

fn receipt_verify(args: ReceiptVerifyArgs) -> anyhow::Result<ExitCode> {
    use crate::receipt::SignedReceipt;
    let json = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let expected = match (&args.public_key, &args.data_dir) {
        (Some(key), _) => Some(key.clone()),
        (None, Some(dir)) => Some(crate::app::node_public_key_hex(dir)?),
        (None, None) => None,
    };
    let outcome = SignedReceipt::parse(&json).and_then(|r| {
        r.verify(expected.as_deref())?;
        Ok(r)
    });
    match outcome {
        Ok(signed) => {
            let r = &signed.receipt;
            say(format!(
                "receipt {} verifies: consent {} {} at {} for {} ({}) to see {} for {}; signed by {}",
                r.receipt_id,
                r.consent_record_id,
                r.event.as_str(),
                r.event_time
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                r.recipient.name,
                r.recipient.id,
                crate::store::join_wire(&r.pii_categories),
                crate::store::join_wire(&r.purposes),
                signed.signature.public_key,
            ));
            if expected.is_none() {
                say(
                    "note: no key was pinned (--public-key or --data-dir), so this proves the \
                     receipt is intact, not which node signed it",
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            say(format!("receipt does not verify: {err}"));
            Ok(ExitCode::from(1))
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

/// `audit verify`: the log verifies.
pub const VERIFY_OK: u8 = 0;
/// `audit verify`: the log does not verify.
pub const VERIFY_FAILED: u8 = 1;
/// `audit verify`: the log could not be checked (also any other command's
/// error).
pub const VERIFY_UNCHECKED: u8 = 2;
/// `audit verify`: the chain verifies but the database no longer refuses an
/// UPDATE or DELETE of the log.
pub const VERIFY_UNGUARDED: u8 = 3;

/// Opens the database `audit verify` reads: read-only, never migrated, and
/// only if it exists and holds an audit log.
async fn open_for_verify(config: Option<&std::path::Path>, source: &Source) -> anyhow::Result<Db> {
    let db = match (&source.database, &source.data_dir) {
        (Some(url), _) => Db::open_read_only(url).await?,
        (None, Some(dir)) => Db::open_sqlite_read_only(&dir.join("node.db")).await?,
        (None, None) => {
            let url = NodeConfig::load(config)
                .context("no --database, --data-dir or --export given, and no node configuration")?
                .database_url();
            Db::open_read_only(&url).await?
        }
    };
    verify::guards::require_audit_tables(&db).await?;
    Ok(db)
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
    let mut options = verify::VerifyOptions {
        collected_checkpoints: collected,
        ..verify::VerifyOptions::default()
    };
    for key in &args.public_key {
        match key.split_once('=') {
            Some((log_id, hex)) => {
                options
                    .keys
                    .insert(log_id.trim().to_owned(), hex.to_owned());
            }
            None if options.expected_key.is_none() => options.expected_key = Some(key.clone()),
            None => anyhow::bail!("give one bare --public-key; pin the others as LOG_ID=HEX"),
        }
    }
    let mut unguarded = Vec::new();
    let outcome = match &args.source.export {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            verify::verify_file(std::io::BufReader::new(file), &options)
                .map_err(|failure| failure.to_string())
        }
        None => {
            let db = open_for_verify(config, &args.source).await?;
            unguarded = verify::guards::unguarded_changes(&db).await?;
            let outcome = verify::verify_database(&db, &options)
                .await
                .map(|report| vec![report])
                .map_err(|failure| failure.to_string());
            db.close().await;
            outcome
        }
    };
    if !unguarded.is_empty() {
        let changes: Vec<String> = unguarded.iter().map(ToString::to_string).collect();
        say(format!(
            "warning: the append-only triggers are missing: nothing in the database refuses {} \
             of audit_log, so the log can be changed without an error",
            changes.join(" or ")
        ));
    }
    match outcome {
        Ok(reports) => {
            for report in &reports {
                say(report);
            }
            if reports.is_empty() {
                say("the file holds no log");
            }
            if unguarded.is_empty() {
                Ok(ExitCode::from(VERIFY_OK))
            } else {
                say("UNGUARDED: the chain verifies, but the log is not protected against changes");
                Ok(ExitCode::from(VERIFY_UNGUARDED))
            }
        }
        Err(failure) => {
            say(format!("FAILED: {failure}"));
            Ok(ExitCode::from(VERIFY_FAILED))
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
    // The filters of a node's `/audit/export`, checked the same way.
    let pairs = [
        ("agency", args.agency.as_deref()),
        ("survivor", args.survivor.as_deref()),
        ("break_glass", args.break_glass.then_some("true")),
        ("purpose", args.purpose.as_deref()),
        ("decision", args.decision.as_deref()),
        ("since", args.since.as_deref()),
        ("until", args.until.as_deref()),
    ];
    let filter = crate::audit::query::ExportQuery::parse(
        pairs
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, v))),
    )?
    .filter;
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
        ExportFormat::Csv => {
            crate::audit::export::export_csv(&db, &log_id, &filter, &mut out).await?
        }
    };
    out.flush()?;
    eprintln!(
        "exported {} entries ({} elided, through seq {}) and {} checkpoints",
        summary.entries, summary.elided, summary.last_seq, summary.checkpoints
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to standard output. A reader that went away (`... | head`)
/// ends the output quietly instead of a panic; the exit status still tells
/// the outcome.
fn write_stdout(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("writing to standard output: {err}");
    }
}

/// Writes one line to standard output (see [`write_stdout`]).
fn say(line: impl std::fmt::Display) {
    write_stdout(&format!("{line}\n"));
}
