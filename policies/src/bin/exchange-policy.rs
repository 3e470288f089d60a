//! `exchange-policy`: the data-protection officer's command. Checks a policy
//! directory before it is deployed, and explains what the policies decide in
//! a described situation. A thin shell over the `exchange_policies` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use exchange_policies::scenario::{BreakGlassSpec, GrantSpec, Scenario};
use exchange_policies::{EngineOptions, PolicyEngine, PolicyError};
use exchange_schema::{AgencyKind, Category, Purpose, Role};

/// Check and explain the federation's disclosure policies.
#[derive(Debug, Parser)]
#[command(name = "exchange-policy", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a policy directory against the schema (strict mode).
    ///
    /// Prints OK and the policy-set hash a node will record with each
    /// decision, or every problem with its file, policy and reason, and
    /// exits with status 1.
    Validate {
        /// The directory of .cedar files; without it, the shipped baseline.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Explain what the policies decide for one category in a situation.
    ///
    /// Example: exchange-policy explain --agency-kind LEGAL_AID --role CASEWORKER
    /// --purpose LEGAL_ASSISTANCE --category HEALTH
    /// --grant 'categories=HEALTH,LEGAL;purposes=LEGAL_ASSISTANCE;state=active'
    Explain {
        /// The directory of .cedar files; without it, the shipped baseline.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The kind of the requesting agency (SHELTER, LEGAL_AID, HEALTH_CLINIC,
        /// LABOUR_INSPECTORATE, CHILD_PROTECTION, LAW_ENFORCEMENT, OUTREACH, OVERSIGHT).
        #[arg(long)]
        agency_kind: AgencyKind,
        /// A role of the requesting user; repeat for several (CASEWORKER,
        /// SUPERVISOR, AUDITOR, DATA_PROTECTION_OFFICER).
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// The declared purpose (CASE_MANAGEMENT, REFERRAL, SERVICE_COORDINATION,
        /// SHELTER_PLACEMENT, LEGAL_ASSISTANCE, HEALTH_CARE, INVESTIGATION, AUDIT,
        /// EMERGENCY).
        #[arg(long)]
        purpose: Purpose,
        /// The category asked for (IDENTITY, CONTACT, CASE, HEALTH, LEGAL).
        #[arg(long)]
        category: Category,
        /// The requester's own agency keeps the record.
        #[arg(long)]
        owner_is_self: bool,
        /// A consent grant of the survivor, repeatable:
        /// 'categories=HEALTH,LEGAL;purposes=LEGAL_ASSISTANCE;state=active'.
        /// state: active, expired, not_yet_valid, revoked. Add ';agency=other'
        /// for a grant to another agency than the requester's.
        #[arg(long = "grant")]
        grants: Vec<GrantSpec>,
        /// The requester has an active break-glass opening on this survivor.
        #[arg(long)]
        break_glass: bool,
        /// The written justification sent with the request.
        #[arg(long)]
        justification: Option<String>,
        /// Treat break-glass as switched off in this deployment.
        #[arg(long)]
        break_glass_disabled: bool,
    },
}

fn load(dir: Option<&PathBuf>, options: EngineOptions) -> Result<PolicyEngine, PolicyError> {
    match dir {
        Some(dir) => PolicyEngine::load_dir(dir, options),
        None => PolicyEngine::baseline(options),
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Validate { dir } => match load(dir.as_ref(), EngineOptions::default()) {
            Ok(engine) => {
                say(format!(
                    "OK: {} policies valid; policy set {}",
                    engine.policies().len(),
                    engine.set_hash()
                ));
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("INVALID: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Explain {
            dir,
            agency_kind,
            roles,
            purpose,
            category,
            owner_is_self,
            grants,
            break_glass,
            justification,
            break_glass_disabled,
        } => {
            let mut options = EngineOptions::default();
            options.break_glass.enabled = !break_glass_disabled;
            let engine = match load(dir.as_ref(), options) {
                Ok(engine) => engine,
                Err(err) => {
                    eprintln!("INVALID: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let scenario = Scenario {
                agency_kind,
                roles,
                purpose,
                owner_is_self,
                grants,
                break_glass: if break_glass {
                    BreakGlassSpec::Active
                } else {
                    BreakGlassSpec::None
                },
                justification,
            };
            say(scenario.explain(&engine, category));
            ExitCode::SUCCESS
        }
    }
}

/// Writes one line to standard output. A reader that went away
/// (`... | head`) ends the output quietly instead of a panic; the exit
/// status still tells the outcome.
fn say(line: impl std::fmt::Display) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(err) = writeln!(out, "{line}").and_then(|()| out.flush())
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("writing to standard output: {err}");
    }
}
