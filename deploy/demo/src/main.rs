//! `exchange-demo`: one command that starts a local federation on this
//! machine: a gateway and three agency nodes (a shelter, a legal-aid service
//! and a health clinic; the federation file also lists an oversight body,
//! without a node, for the auditor). Each node keeps its own SQLite file
//! under `./data/demo/<agency>/` and is seeded with synthetic survivors,
//! consent grants and referrals on first start. Gateway and nodes talk over
//! mutual TLS with certificates from a local CA generated on first start.
//! A second start reuses the data, keys and certificates. Ctrl-C stops
//! everything cleanly.
//!
//! It also starts the caseworker console (`console/`, port + 20) and a
//! development OpenID provider (`exchange_trust::dev_oidc`, port + 21) that
//! serves every agency's issuer at `http://127.0.0.1:<port+21>/<agency>`, so
//! a caseworker signs in from the browser by choosing a demo user.
//!
//! `exchange-demo idp` runs the development OpenID provider alone, for the
//! Kubernetes demo overlay ([`idp`]).
//!
//! Development only: the identity providers are local keys with no
//! password, and the CA is on the same disk.

mod idp;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use exchange_console::config::{ConsoleConfig, SignInConfig};
use exchange_gateway::config::ClientTlsConfig;
use exchange_gateway::{Application as Gateway, GatewayConfig};
use exchange_schema::{AgencyId, AgencyKind, Purpose, Role, ServiceKind};
use exchange_service::tls::DevPki;
use exchange_trust::dev_oidc::{DevClient, DevOpenIdProvider, DevUser};
use exchange_trust::{AgencySpec, DevFederation, MintRequest};
use tokio::sync::watch;

/// Starts a local demo federation: a gateway and three agency nodes with
/// synthetic data, mutual TLS between them, and prints ready-to-paste
/// tokens and example operations.
#[derive(Parser, Debug)]
#[command(name = "exchange-demo", version)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<DemoCommand>,
    /// Where the nodes' databases, keys and certificates live.
    #[arg(long, default_value = "data/demo")]
    data_dir: PathBuf,
    /// The gateway's port on 127.0.0.1; the nodes use the next three, their
    /// survivor portals those ten above (7011-7013 by default), the
    /// caseworker console port + 20 and its development OpenID provider
    /// port + 21.
    #[arg(long, default_value_t = 7000)]
    port: u16,
    /// Synthetic survivors seeded per node on first start.
    #[arg(long, default_value_t = 6)]
    survivors: usize,
    /// Synthetic survivors per node registered in the last quarter on first
    /// start (coded intake only), counted for the statistics dashboard.
    #[arg(long, default_value_t = 150)]
    statistics_survivors: usize,
}

/// What else the demo's binary runs.
#[derive(clap::Subcommand, Debug)]
enum DemoCommand {
    /// Runs the development OpenID provider alone (the Kubernetes demo
    /// overlay's `demo-idp`): each agency given, at `<base-url>/<agency>`.
    Idp(idp::IdpArgs),
}

/// The token audience of the demo federation.
const AUDIENCE: &str = "survivor-exchange-demo";
/// The console's client ID at the development OpenID provider.
const CONSOLE_CLIENT_ID: &str = "exchange-console";

/// A caseworker and a supervisor at every agency with a node.
fn demo_users() -> Vec<DevUser> {
    AGENCIES
        .iter()
        .filter(|a| a.has_node)
        .flat_map(|a| {
            let agency = AgencyId::parse(a.id).expect("demo agency IDs are valid");
            idp::users_of(&agency, a.name)
        })
        .collect()
}

struct DemoAgency {
    id: &'static str,
    name: &'static str,
    kind: AgencyKind,
    services: &'static [ServiceKind],
    languages: &'static [&'static str],
    region: &'static str,
    has_node: bool,
}

const AGENCIES: [DemoAgency; 4] = [
    DemoAgency {
        id: "shelter-north",
        name: "North Star Shelter",
        kind: AgencyKind::Shelter,
        services: &[ServiceKind::Shelter, ServiceKind::Psychosocial],
        languages: &["en", "es", "ro"],
        region: "North",
        has_node: true,
    },
    DemoAgency {
        id: "legal-aid-city",
        name: "City Legal Aid",
        kind: AgencyKind::LegalAid,
        services: &[ServiceKind::LegalAid, ServiceKind::Interpretation],
        languages: &["en", "pt-BR", "uk"],
        region: "City",
        has_node: true,
    },
    DemoAgency {
        id: "clinic-east",
        name: "East Health Clinic",
        kind: AgencyKind::HealthClinic,
        services: &[ServiceKind::Medical, ServiceKind::Psychosocial],
        languages: &["en", "fr"],
        region: "East",
        has_node: true,
    },
    DemoAgency {
        id: "oversight-board",
        name: "Data Protection Oversight Board",
        kind: AgencyKind::Oversight,
        services: &[],
        languages: &["en"],
        region: "National",
        has_node: false,
    },
];

fn tls_identity(agency: &str) -> String {
    format!("node.{agency}.demo")
}

/// mimalloc rather than the C library's allocator: under concurrent
/// requests the system allocator took about an eighth of the gateway's CPU
/// (docs/benchmarks.md, Gateway). Built without transparent huge pages,
/// which would otherwise grow resident memory in 2 MB steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    agency_node::telemetry::init(match &cli.command {
        Some(DemoCommand::Idp(args)) => args.log_format.into(),
        None => agency_node::config::LogFormat::Pretty,
    });
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let done = match cli.command {
        Some(DemoCommand::Idp(args)) => idp::run(args).await,
        None => run(cli).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = &cli.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pki = DevPki::load_or_create(&dir.join("pki")).context("the local CA")?;
    let node_ports: Vec<u16> = (1..=3).map(|i| cli.port + i).collect();
    let specs: Vec<AgencySpec> = AGENCIES
        .iter()
        .enumerate()
        .map(|(i, a)| AgencySpec {
            id: AgencyId::parse(a.id).expect("demo agency IDs are valid"),
            name: a.name.into(),
            kind: a.kind,
            services: a.services.to_vec(),
            languages: a.languages.iter().map(|l| (*l).to_owned()).collect(),
            region: a.region.into(),
            node_url: a
                .has_node
                .then(|| format!("https://127.0.0.1:{}", node_ports[i])),
            tls_identity: a.has_node.then(|| tls_identity(a.id)),
            webhook: None,
        })
        .collect();
    let provider_base = format!("http://127.0.0.1:{}", cli.port + 21);
    let console_url = format!("http://127.0.0.1:{}", cli.port + 20);
    let federation =
        DevFederation::create_with_issuers(dir, &specs, AUDIENCE, Some(&provider_base))
            .context("the demo federation file")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut seeded = Vec::new();
    let mut portals = Vec::new();
    for (i, agency) in AGENCIES.iter().enumerate().filter(|(_, a)| a.has_node) {
        let identity = pki.identity(
            &format!("node-{}", agency.id),
            &[tls_identity(agency.id)],
            true,
            // Nodes call each other to hand a case over (case transfer).
            true,
        )?;
        let config = node_config(
            &federation.path,
            dir,
            agency.id,
            node_ports[i],
            &identity,
            &pki.ca_file(),
        )?;
        let app = agency_node::Application::build(config)
            .await
            .with_context(|| format!("starting the node of {}", agency.id))?;
        let state = app.state();
        let partners: Vec<AgencyId> = AGENCIES
            .iter()
            .filter(|p| p.has_node && p.id != agency.id)
            .map(|p| AgencyId::parse(p.id).expect("valid"))
            .collect();
        let intake = caller(&federation, &state, agency.id)?;
        let summary = agency_node::seed::seed_demo(&state, &intake, &partners, cli.survivors)
            .await
            .map_err(|e| anyhow::anyhow!("seeding {}: {e:?}", agency.id))?;
        if summary.seeded {
            agency_node::seed::seed_statistics(
                &state,
                &intake,
                cli.statistics_survivors,
                last_quarter(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("seeding {}'s statistics: {e:?}", agency.id))?;
        }
        let portal = demo_consent_code(&state, &intake).await?;
        seeded.push((agency.id, summary));
        portals.push((agency.id, app.portal_address(), portal));
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(app.run(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })));
    }

    let client = pki.identity("gateway", &["gateway.demo".into()], false, true)?;
    let mut config = GatewayConfig::new(&federation.path, dir.join("gateway"));
    config.listen = format!("127.0.0.1:{}", cli.port).parse()?;
    config.log_format = agency_node::config::LogFormat::Pretty;
    // The dashboard's map: the demo's synthetic regions.
    config.statistics.regions_file =
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regions.geojson"));
    config.tls = Some(ClientTlsConfig {
        cert_file: client.cert_file,
        key_file: client.key_file,
        ca_file: pki.ca_file(),
    });
    let gateway = Gateway::build(config)
        .await
        .context("starting the gateway")?;
    let address = gateway.address();
    let mut rx = stop_rx.clone();
    tasks.push(tokio::spawn(gateway.run(async move {
        let _ = rx.wait_for(|stop| *stop).await;
    })));

    let demo_users = demo_users();
    let provider = std::sync::Arc::new(DevOpenIdProvider::new(
        &provider_base,
        AUDIENCE,
        federation.providers.clone(),
        vec![DevClient {
            client_id: CONSOLE_CLIENT_ID.into(),
            redirect_uris: vec![format!("{console_url}/auth/callback")],
            post_logout_redirect_uris: vec![format!("{console_url}/")],
        }],
        demo_users.clone(),
        Duration::from_secs(8 * 3600),
    ));
    let provider_listener = tokio::net::TcpListener::bind(("127.0.0.1", cli.port + 21))
        .await
        .with_context(|| {
            format!(
                "binding the development OpenID provider to port {}",
                cli.port + 21
            )
        })?;
    let mut rx = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        axum::serve(provider_listener, provider.router())
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(anyhow::Error::from)
    }));
    let console = exchange_console::Application::build(ConsoleConfig {
        listen: format!("127.0.0.1:{}", cli.port + 20).parse()?,
        public_url: console_url.clone(),
        gateway_url: format!("http://{address}/graphql"),
        federation_file: federation.path.clone(),
        sign_in: AGENCIES
            .iter()
            .filter(|a| a.has_node)
            .map(|a| SignInConfig {
                agency: a.id.into(),
                client_id: CONSOLE_CLIENT_ID.into(),
                client_secret_file: None,
                scopes: Vec::new(),
                extra_parameters: Default::default(),
                portal_url: portals
                    .iter()
                    .find(|(id, _, _)| *id == a.id)
                    .and_then(|(_, address, _)| *address)
                    .map(|address| format!("http://localhost:{}/", address.port())),
            })
            .collect(),
        session: Default::default(),
        log_format: agency_node::config::LogFormat::Pretty,
        ca_file: None,
        metrics: Default::default(),
    })
    .await
    .context("starting the caseworker console")?;
    let mut rx = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        console
            .run_until(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(anyhow::Error::from)
    }));

    let dashboard = release_statistics(&federation, address).await;
    print_welcome(&federation, address, &seeded, &portals)?;
    match dashboard {
        Ok(url) => println!("\nStatistics dashboard (public, no sign-in): {url}"),
        Err(err) => eprintln!("\nthe statistics release was not produced: {err:#}"),
    }
    println!();
    println!("Caseworker console (open in a browser, choose your agency, then a demo user;");
    println!("no token to paste): {console_url}/");
    for user in &demo_users {
        let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
        println!(
            "  {:<16} {:<40} {}",
            user.agency.as_str(),
            user.name,
            roles.join(", ")
        );
    }
    agency_node::app::shutdown_signal().await;
    println!("\nStopping the gateway and the nodes...");
    let _ = stop_tx.send(true);
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(40), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => eprintln!("a server stopped with an error: {err:#}"),
            Ok(Err(err)) => eprintln!("a server task failed: {err}"),
            Err(_) => eprintln!("a server did not stop in time"),
        }
    }
    println!(
        "Stopped. Data kept in {}; start again to reuse it.",
        dir.display()
    );
    Ok(())
}

fn node_config(
    federation: &Path,
    dir: &Path,
    agency: &str,
    port: u16,
    identity: &exchange_service::tls::Identity,
    ca: &Path,
) -> anyhow::Result<agency_node::NodeConfig> {
    let mut tls = toml::Table::new();
    tls.insert(
        "cert_file".into(),
        identity.cert_file.display().to_string().into(),
    );
    tls.insert(
        "key_file".into(),
        identity.key_file.display().to_string().into(),
    );
    tls.insert("client_ca_file".into(), ca.display().to_string().into());
    let mut table = toml::Table::new();
    table.insert("agency".into(), agency.into());
    table.insert("federation".into(), federation.display().to_string().into());
    table.insert("listen".into(), format!("127.0.0.1:{port}").into());
    table.insert(
        "data_dir".into(),
        dir.join(agency).display().to_string().into(),
    );
    table.insert("log_format".into(), "pretty".into());
    table.insert("tls".into(), tls.into());
    // The survivor portal: plain HTTP on loopback for the demo (browsers
    // accept its Secure cookie on localhost); production gives it HTTPS.
    let mut portal = toml::Table::new();
    portal.insert("listen".into(), format!("127.0.0.1:{}", port + 10).into());
    table.insert("portal".into(), portal.into());
    let config: agency_node::NodeConfig = table.try_into().context("the node configuration")?;
    config.check()?;
    Ok(config)
}

/// A node's survivor portal: agency, address, and (survivor, fresh code).
type DemoPortal = (
    &'static str,
    Option<std::net::SocketAddr>,
    Option<(String, String)>,
);

/// A fresh consent code for the node's first survivor (codes are stored
/// only as hashes, so each start issues a new one): (survivor, code).
async fn demo_consent_code(
    state: &agency_node::state::NodeState,
    intake: &agency_node::state::Caller,
) -> anyhow::Result<Option<(String, String)>> {
    let mut conn = state.db.pool().acquire().await?;
    let first = agency_node::store::survivors::page(&mut conn, &state.vault, None, 1).await?;
    drop(conn);
    let Some(survivor) = first.first() else {
        return Ok(None);
    };
    let gid = exchange_schema::GlobalId::new(state.agency.clone(), survivor.id.clone())?;
    let event = agency_node::disclosure::change_event(
        intake,
        exchange_schema::AuditKind::ConsentCodeIssued,
        Some(gid.clone()),
        None,
    );
    let (code, _) = agency_node::portal::credentials::issue(
        state,
        &gid,
        format!("{}/{}", intake.principal.agency, intake.principal.user),
        event,
    )
    .await
    .map_err(|e| anyhow::anyhow!("issuing the demo consent code: {e:?}"))?;
    Ok(Some((gid.to_string(), code.expose().to_owned())))
}

/// The node's own intake caseworker, who registers the demo data.
fn caller(
    federation: &DevFederation,
    state: &agency_node::state::NodeState,
    agency: &str,
) -> anyhow::Result<agency_node::state::Caller> {
    let token = mint(
        federation,
        agency,
        "intake-caseworker",
        Role::Caseworker,
        Duration::from_secs(300),
    )?;
    let principal = state
        .verifier
        .verify(&token)
        .map_err(|e| anyhow::anyhow!("the demo token did not verify: {e}"))?;
    Ok(agency_node::state::Caller {
        principal,
        purpose: Some(Purpose::CaseManagement),
        justification: None,
        trace_id: uuid_like(),
    })
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:032x}")
}

/// The last quarter that has ended.
fn last_quarter() -> exchange_schema::statistics::Period {
    use exchange_schema::statistics::Period;
    let now = time::OffsetDateTime::now_utc();
    Period::of(Period::of(now).start() - time::Duration::days(1))
}

/// Produces the last quarter's statistics release as the oversight board's
/// statistician (once: a later start finds it released), and returns the
/// dashboard's address.
async fn release_statistics(
    federation: &DevFederation,
    address: std::net::SocketAddr,
) -> anyhow::Result<String> {
    let quarter = last_quarter();
    let token = mint(
        federation,
        "oversight-board",
        "demo-statistician",
        Role::Statistician,
        Duration::from_secs(300),
    )?;
    let response = reqwest::Client::new()
        .post(format!("http://{address}/statistics/releases/{quarter}"))
        .bearer_auth(token)
        .header(exchange_schema::PURPOSE_HEADER, "STATISTICS")
        .send()
        .await?;
    let status = response.status();
    if !(status.is_success() || status == reqwest::StatusCode::CONFLICT) {
        anyhow::bail!("the gateway answered {status}: {}", response.text().await?);
    }
    Ok(format!("http://{address}/statistics"))
}

fn mint(
    federation: &DevFederation,
    agency: &str,
    user: &str,
    role: Role,
    ttl: Duration,
) -> anyhow::Result<String> {
    let agency = AgencyId::parse(agency)?;
    let idp = federation
        .provider(&agency)
        .with_context(|| format!("no identity provider for {agency}"))?;
    let mut request = MintRequest::new(agency.clone(), user, vec![role], AUDIENCE);
    request.ttl = ttl;
    Ok(idp.mint(&request)?)
}

fn print_welcome(
    federation: &DevFederation,
    address: std::net::SocketAddr,
    seeded: &[(&str, agency_node::seed::SeedSummary)],
    portals: &[DemoPortal],
) -> anyhow::Result<()> {
    let ttl = Duration::from_secs(8 * 3600);
    println!();
    println!("Survivor data exchange: local demo federation (synthetic data, development keys)");
    println!("=================================================================================");
    println!("GraphiQL (gateway): http://{address}/graphql");
    println!(
        "Notifications (gateway): ws://{address}/graphql/ws, graphql-transport-ws; send the headers below in connection_init"
    );
    for (i, agency) in AGENCIES.iter().enumerate().filter(|(_, a)| a.has_node) {
        println!(
            "  node {:<16} https://127.0.0.1:{} (mutual TLS; the gateway holds the client certificate)",
            agency.id,
            address.port() + i as u16 + 1
        );
    }
    println!();
    println!("Paste into GraphiQL's Headers pane, one of (tokens valid 8 hours):");
    for agency in AGENCIES.iter().filter(|a| a.has_node) {
        let token = mint(
            federation,
            agency.id,
            &format!("{}-caseworker", agency.id),
            Role::Caseworker,
            ttl,
        )?;
        println!("\n  caseworker at {} ({}):", agency.id, agency.name);
        println!(
            "  {{ \"Authorization\": \"Bearer {token}\", \"x-exchange-purpose\": \"REFERRAL\" }}"
        );
    }
    let auditor = mint(
        federation,
        "oversight-board",
        "oversight-auditor",
        Role::Auditor,
        ttl,
    )?;
    println!("\n  auditor at oversight-board:");
    println!("  {{ \"Authorization\": \"Bearer {auditor}\", \"x-exchange-purpose\": \"AUDIT\" }}");
    // Legal holds, erasure and survivors' requests to correct or erase.
    let officer = mint(
        federation,
        "shelter-north",
        "shelter-north-dpo",
        Role::DataProtectionOfficer,
        ttl,
    )?;
    println!(
        "\n  data-protection officer at shelter-north (rightsRequests, placeLegalHold, eraseSurvivorRecord):"
    );
    println!(
        "  {{ \"Authorization\": \"Bearer {officer}\", \"x-exchange-purpose\": \"CASE_MANAGEMENT\" }}"
    );
    println!();
    println!("Try (as the clinic's caseworker, purpose REFERRAL):");
    println!(
        "  query {{ referrals(direction: INCOMING, first: 5) {{ edges {{ cursor node {{ id fromAgency service urgency status createdAt survivor {{ identity {{ givenName }} withheld {{ category reason }} }} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    println!(
        "  query {{ agencies(service: LEGAL_AID) {{ id name languages region }} nodeHealth {{ agency status latencyMs circuit }} }}"
    );
    if let Some((agency, summary)) = seeded.iter().find(|(_, s)| !s.survivors.is_empty()) {
        println!(
            "As a partner of {agency} (purpose SERVICE_COORDINATION), read a survivor it registered:"
        );
        println!(
            "  query {{ survivor(id: \"{}\") {{ identity {{ givenName }} contact {{ currentLocation }} health {{ medicalNotes }} withheld {{ category reason }} }} }}",
            summary.survivors[0]
        );
        if let Some(case) = &summary.case_with_history {
            println!(
                "As {agency}'s caseworker (purpose CASE_MANAGEMENT), open a case with history:"
            );
            println!(
                "  query {{ survivor(id: \"{case}\") {{ caseNotes(includeSuperseded: true) {{ edges {{ node {{ category body author {{ agency role }} supersedes }} }} }} services {{ kind providerAgency status }} followUps {{ kind dueAt status }} carePlan {{ version goals actions {{ description responsibleAgency status }} agreement {{ method }} }} carePlanVersions {{ version agreement {{ method }} }} referrals {{ toAgency status parentId }} assignedCaseworkers {{ user }} }} }}"
            );
            let week = (time::OffsetDateTime::now_utc() + time::Duration::days(7))
                .format(&time::format_description::well_known::Rfc3339)?;
            println!("  and this week's follow-ups of the agency, from every node:");
            println!(
                "  query {{ followUpsDue(before: \"{week}\") {{ edges {{ node {{ survivorId kind dueAt assignedAgency }} }} }} }}"
            );
            println!(
                "  (its survivor sees the plan waiting for agreement, and the timeline, in the portal below)"
            );
        }
        if let Some((grant, grantee)) = summary.grants.first() {
            println!(
                "As {agency}'s caseworker (purpose CASE_MANAGEMENT), revoke its grant to {grantee}, then ask again:"
            );
            println!(
                "  mutation {{ revokeConsent(grantId: \"{grant}\", reason: \"survivor asked\") {{ revokedAt }} }}"
            );
        }
    } else {
        println!(
            "(Data from an earlier start is reused; list yours with `query {{ survivors {{ edges {{ node {{ id }} }} }} }}`.)"
        );
    }
    println!();
    println!("Survivor consent portals (open in a browser; sign in with the code, leave the PIN");
    println!("empty the first time and choose one; a new code is issued at every start):");
    for (agency, address, code) in portals {
        let url = address.map_or_else(String::new, |a| format!("http://localhost:{}/", a.port()));
        match code {
            Some((survivor, code)) => {
                println!("  {agency:<16} {url}  code {code}  (survivor {survivor})")
            }
            None => println!("  {agency:<16} {url}"),
        }
    }
    println!("Then query that survivor through the gateway as another agency's caseworker,");
    println!("give or withdraw consent in the portal, and ask again.");
    println!();
    println!("As the auditor (purpose AUDIT):");
    println!(
        "  query {{ auditLog(first: 10) {{ edges {{ node {{ at kind actorAgency purpose decision reason traceId }} }} }} }}"
    );
    println!();
    println!("Every operation is also in the gateway's own audit log; check it offline with");
    println!("  cargo run -p agency-node -- audit verify --data-dir data/demo/gateway");
    println!("Ctrl-C stops everything; a second start reuses the data, keys and certificates.");
    Ok(())
}
