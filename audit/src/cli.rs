//! The auditors' commands, `verify` and `export`: the `exchange-audit`
//! binary runs them on their own, and `agency-node audit` embeds them
//! (falling back to the node's configuration for the database and the
//! log's name). Both only read: a database is opened read-only and never
//! migrated, and a missing one is an error, never created.

use exchange_service::output::say;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use exchange_service::db::Db;

use crate::query::ExportFormat;
use crate::verify;

/// Database files a data directory may hold a log in: a node's, then the
/// gateway's.
pub const DATABASE_FILES: [&str; 2] = ["node.db", "gateway.db"];

/// What the embedding binary's configuration says, asked for only when the
/// command line does not say it.
pub struct Configuration {
    /// The database the configuration names.
    pub database_url: String,
    /// The log's name (the agency's ID, or `gateway`).
    pub log_id: String,
}

/// How to get the embedding binary's [`Configuration`] (an error when there
/// is none).
pub type Configured<'a> = dyn Fn() -> anyhow::Result<Configuration> + 'a;

/// Runs one command; the exit status is its outcome (see `verify`).
pub async fn run(command: AuditCommand, configured: &Configured<'_>) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify(args) => audit_verify(args, configured).await,
        AuditCommand::Export(args) => audit_export(args, configured).await,
    }
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
    /// A node's or the gateway's data directory (its SQLite database,
    /// `node.db` or `gateway.db`, is used).
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

/// Opens the database `audit verify` and `audit export` read: read-only,
/// never migrated, and only if it exists and holds an audit log.
async fn open_read_only(source: &Source, configured: &Configured<'_>) -> anyhow::Result<Db> {
    let db = match (&source.database, &source.data_dir) {
        (Some(url), _) => Db::open_read_only(url).await?,
        (None, Some(dir)) => Db::open_sqlite_read_only(&database_in(dir)).await?,
        (None, None) => {
            let url = configured()
                .context("no --database, --data-dir or --export given")?
                .database_url;
            Db::open_read_only(&url).await?
        }
    };
    verify::guards::require_audit_tables(&db).await?;
    Ok(db)
}

/// The database file in a data directory: a node's `node.db`, else the
/// gateway's `gateway.db` (the node's name when neither is there, so the
/// error names what was looked for).
pub fn database_in(dir: &Path) -> PathBuf {
    DATABASE_FILES
        .iter()
        .map(|file| dir.join(file))
        .find(|path| path.exists())
        .unwrap_or_else(|| dir.join(DATABASE_FILES[0]))
}

async fn audit_verify(args: VerifyArgs, configured: &Configured<'_>) -> anyhow::Result<ExitCode> {
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
            let db = open_read_only(&args.source, configured).await?;
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

async fn audit_export(args: ExportArgs, configured: &Configured<'_>) -> anyhow::Result<ExitCode> {
    if args.source.export.is_some() {
        anyhow::bail!("export reads a database: give --database or --data-dir, not --export");
    }
    let db = open_read_only(&args.source, configured).await?;
    let log_id = match crate::export::stored_log_id(&db).await? {
        Some(id) => id,
        None => {
            configured()
                .context("the log has no checkpoint naming it yet")?
                .log_id
        }
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
    let filter = crate::query::ExportQuery::parse(
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
        ExportFormat::Jsonl => crate::export::export_jsonl(&db, &log_id, &filter, &mut out).await?,
        ExportFormat::Csv => crate::export::export_csv(&db, &log_id, &filter, &mut out).await?,
    };
    out.flush()?;
    eprintln!(
        "exported {} entries ({} elided, through seq {}) and {} checkpoints",
        summary.entries, summary.elided, summary.last_seq, summary.checkpoints
    );
    Ok(ExitCode::SUCCESS)
}
