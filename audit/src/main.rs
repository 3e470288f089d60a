//! `exchange-audit`: verify or export a node's or the gateway's audit log,
//! without the node or gateway binary. Exit status as `verify` documents.

use std::process::ExitCode;

use clap::Parser;
use exchange_audit::cli::{self, AuditCommand, VERIFY_UNCHECKED};

/// Verify or export the tamper-evident audit log of an agency node or the
/// gateway: a database (opened read-only), a data directory or an export.
#[derive(Parser, Debug)]
#[command(name = "exchange-audit", version)]
struct Cli {
    #[command(subcommand)]
    command: AuditCommand,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let unconfigured = || {
        anyhow::bail!(
            "this command has no configuration file: say which log with --database or --data-dir"
        )
    };
    match cli::run(cli.command, &unconfigured).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(VERIFY_UNCHECKED)
        }
    }
}
