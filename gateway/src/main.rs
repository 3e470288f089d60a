//! `exchange-gateway`: serves the federation gateway from a configuration
//! file (see `deploy/gateway.toml`) until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use exchange_gateway::{Application, GatewayConfig, telemetry};

/// The federation gateway of the survivor data exchange: one GraphQL
/// endpoint that routes each operation to the agency nodes that own the
/// records, checks tokens with the nodes' own rules and audits every
/// federated operation.
#[derive(Parser, Debug)]
#[command(name = "exchange-gateway", version)]
struct Cli {
    /// Configuration file (TOML). Environment variables
    /// `EXCHANGE_GATEWAY__*` override it; see deploy/gateway.toml.
    #[arg(long, short, env = "EXCHANGE_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Without a command, the gateway serves.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// The gateway's keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(clap::Subcommand, Debug)]
enum KeysCommand {
    /// Rotates the signing key of the gateway's audit log, with the
    /// gateway stopped: the old key signs a checkpoint announcing the new
    /// one, and `exchange-audit verify` with the old key pinned follows it.
    RotateSigningKey,
}

/// mimalloc rather than the C library's allocator: under concurrent
/// requests the system allocator took about an eighth of the gateway's CPU
/// (docs/benchmarks.md, Gateway). Built without transparent huge pages,
/// which would otherwise grow resident memory in 2 MB steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match GatewayConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    // The runtime is sized by the configuration, so it is built after it.
    match config.runtime.build() {
        Ok(runtime) => match cli.command {
            None => runtime.block_on(serve(config)),
            Some(Command::Keys(KeysCommand::RotateSigningKey)) => {
                runtime.block_on(rotate_signing_key(config))
            }
        },
        Err(err) => {
            eprintln!("error: starting the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: GatewayConfig) -> ExitCode {
    let _telemetry = match telemetry::init(config.log_format, "exchange-gateway") {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    match app.run(exchange_service::shutdown::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `keys rotate-signing-key`: the handover written to the gateway's own
/// audit log (log ID `gateway`), then the new key put in place.
async fn rotate_signing_key(config: GatewayConfig) -> ExitCode {
    let timeout = std::time::Duration::from_millis(config.audit.write_timeout_ms.max(1));
    let rotated = async {
        let db = exchange_service::db::Db::connect_with(&config.database_url(), timeout).await?;
        db.migrate(&exchange_audit::MIGRATIONS).await?;
        let rotated = exchange_audit::rotation::rotate_signing_key(
            &config.data_dir,
            &db,
            exchange_gateway::app::AUDIT_LOG_ID,
            timeout,
        )
        .await;
        db.close().await;
        rotated
    }
    .await;
    match rotated {
        Ok(rotation) => {
            println!(
                "the gateway's audit signing key was rotated at seq {}: the checkpoint there, signed by {}, \
                 hands over to {}. Destroy every copy of the old key.",
                rotation.seq, rotation.old_key, rotation.new_key
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
