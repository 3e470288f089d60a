//! The `agency-node` command line: serve a node, verify and export its audit
//! log offline, print the subgraph SDL, and development helpers (a local
//! identity provider that mints tokens).

use exchange_service::output::{say, write_stdout};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use exchange_schema::{AgencyId, Role};

use crate::app::{Application, shutdown_signal};
use crate::config::NodeConfig;

pub use exchange_audit::cli::{VERIFY_FAILED, VERIFY_OK, VERIFY_UNCHECKED, VERIFY_UNGUARDED};

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
    Audit(exchange_audit::cli::AuditCommand),
    /// Print the GraphQL SDL this node serves (the federation contract).
    Schema,
    /// Development helpers: a local identity provider for trying a node.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Check a consent receipt a survivor downloaded from the portal.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// The survivors' data keys: rotation of the key-encryption key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Back up a node on SQLite while it runs: a consistent copy of the
    /// records database and, to another file, of the key store. Never
    /// overwrites a file. On PostgreSQL use pg_dump (docs/operations.md).
    Backup(BackupArgs),
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The new file for the records and the audit log.
    #[arg(long)]
    pub records: PathBuf,
    /// The new file for the key store (keep it apart from the records).
    #[arg(long)]
    pub keys: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// How many live data keys each key-encryption key wraps (the current
    /// one first). A rotation is done when the retired ones wrap none.
    Status,
    /// Wrap every data key a retired key-encryption key wrapped again under
    /// the current one (`[vault] retired_kek_files`), and print how many.
    /// Safe while the node runs; the node also does it at start.
    Rewrap,
    /// Rotate the audit log's signing key: the old key signs a checkpoint
    /// announcing the new one, which signs from then on (`audit verify` and
    /// the gateway's collectors follow the handover). Stop every process of
    /// the node first; run again to finish an interrupted rotation.
    RotateSigningKey,
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
            // Logs, and spans exported over OTLP when
            // OTEL_EXPORTER_OTLP_ENDPOINT is set; flushed at the end.
            let _telemetry =
                exchange_service::telemetry::init_with_traces(config.log_format, "agency-node")?;
            let app = Application::build(config).await?;
            app.run(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            write_stdout(&crate::graphql::subgraph_sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(command) => {
            let file = cli.config.as_deref();
            let configured = || {
                let config = NodeConfig::load(file).context("no node configuration")?;
                Ok(exchange_audit::cli::Configuration {
                    database_url: config.database_url(),
                    log_id: config.agency.to_string(),
                })
            };
            exchange_audit::cli::run(command, &configured).await
        }
        Command::Receipt(ReceiptCommand::Verify(args)) => receipt_verify(args),
        Command::Keys(KeysCommand::RotateSigningKey) => {
            let config = NodeConfig::load(cli.config.as_deref())?;
            let rotation = crate::signing_key::rotate(&config).await?;
            say(format!(
                "the audit log's signing key was rotated at seq {}: the checkpoint there, signed by \
                 {}, hands over to {}. Destroy every copy of the old key; give the new public key to \
                 the gateway's operator if it pins keys ([auditors.pinned_keys]).",
                rotation.seq, rotation.old_key, rotation.new_key
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(command) => {
            let config = NodeConfig::load(cli.config.as_deref())?;
            let vault = crate::app::open_vault(&config).await?;
            if matches!(command, KeysCommand::Rewrap) {
                let count = vault.rewrap().await?;
                say(format!(
                    "wrapped {count} data keys again under {}",
                    vault.kek_id()
                ));
            }
            for kek in vault.census().await? {
                say(format!(
                    "{}\t{}\t{} live data keys",
                    kek.kek_id,
                    kek.role.as_str(),
                    kek.live_keys
                ));
            }
            vault.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup(args) => {
            let config = NodeConfig::load(cli.config.as_deref())?;
            let db = exchange_service::db::Db::connect_with(
                &config.database_url(),
                config.audit.write_timeout(),
            )
            .await?;
            let vault = crate::app::open_vault(&config).await?;
            let done = crate::backup::sqlite(&db, &vault, &args.records, &args.keys).await;
            db.close().await;
            vault.close().await;
            done?;
            say(format!(
                "records backed up to {}, the key store to {}",
                args.records.display(),
                args.keys.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
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
    let agency = match args.agency.as_deref() {
        Some(raw) => AgencyId::parse(raw)?,
        None => config.agency.clone(),
    };
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
        (None, Some(dir)) => Some(exchange_audit::keys::public_key_hex(dir)?),
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
