//! Servers in child processes, so that each one's CPU time and resident
//! memory are its own: the gateway and the fan-out floor (this binary, in a
//! child mode: [`run_child_mode`]), or another program such as Hive Router
//! ([`ChildServer::adopt`]). Their CPU time and memory are read from
//! `/proc/<pid>/`.

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use exchange_gateway::config::NodesConfig;
use exchange_gateway::{Application, GatewayConfig};

use crate::cpus::pin_this_process;
use crate::nodes::{AUDIENCE, specs};

/// The child modes of a bench binary: `serve-gateway <config.toml>
/// [CPU,...]` and `serve-fan-out <url>...`. `None` when `args` (the whole
/// command line) names no child mode, so the binary runs its bench.
pub fn run_child_mode(args: &[String]) -> Option<anyhow::Result<()>> {
    match args.get(1).map(String::as_str) {
        Some("serve-gateway") => Some(serve_gateway_mode(args)),
        Some("serve-fan-out") => Some(
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(serve_fan_out(args[2..].to_vec()))),
        ),
        _ => None,
    }
}

fn serve_gateway_mode(args: &[String]) -> anyhow::Result<()> {
    let config = args
        .get(2)
        .context("serve-gateway <config.toml> [CPU,...]")?;
    // Pinned before the runtime starts, so that it sizes its worker pool to
    // the CPUs it has, as on a machine of that size.
    if let Some(cpus) = args.get(3) {
        let cpus = cpus
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<usize>, _>>()?;
        pin_this_process(&cpus)?;
    }
    // The file, then `EXCHANGE_GATEWAY__*` (such as
    // `EXCHANGE_GATEWAY__RUNTIME__WORKER_THREADS`), as the gateway binary
    // reads them; the runtime is built as the binary builds it.
    let config = GatewayConfig::load(Some(Path::new(config)))?;
    let runtime = config.runtime.build()?;
    runtime.block_on(serve_gateway(config))
}

/// Child mode: runs one gateway until standard input closes.
async fn serve_gateway(config: GatewayConfig) -> anyhow::Result<()> {
    let _telemetry = exchange_gateway::telemetry::init(
        exchange_service::config::LogFormat::Json,
        "exchange-gateway-bench",
    )?;
    let app = Application::build(config).await?;
    println!("LISTENING {}", app.address());
    std::io::stdout().flush()?;
    app.run(stdin_closed()).await
}

/// Child mode: the floor of a fan-out over HTTP, with none of the
/// exchange's work. Each `POST /graphql` sends its body to every URL given,
/// at once, with an HTTP client set up as the gateway's node client, waits
/// for every answer and returns them side by side in a JSON array: no
/// token, no parse, no plan, no audit, no merge. Runs until standard input
/// closes.
async fn serve_fan_out(urls: Vec<String>) -> anyhow::Result<()> {
    use axum::body::Bytes;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(NodesConfig::default().pool_max_idle_per_node)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?;
    let urls: Arc<[String]> = urls.into();
    let fan_out = move |body: Bytes| {
        let (client, urls) = (client.clone(), urls.clone());
        async move {
            let answers = futures::future::join_all(urls.iter().map(|url| {
                let request = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                async move { request.send().await?.error_for_status()?.bytes().await }
            }))
            .await;
            let mut out = b"[".to_vec();
            for (i, answer) in answers.into_iter().enumerate() {
                match answer {
                    Ok(bytes) => {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(&bytes);
                    }
                    Err(_) => return Err(axum::http::StatusCode::BAD_GATEWAY),
                }
            }
            out.push(b']');
            Ok(out)
        }
    };
    let router = axum::Router::new().route("/graphql", axum::routing::post(fan_out));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    axum::serve(listener, router)
        .with_graceful_shutdown(stdin_closed())
        .await?;
    Ok(())
}

/// Resolves when standard input closes (the bench's signal to a child to
/// stop).
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            sink.clear();
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// How a child server is stopped when its [`ChildServer`] is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Close its standard input (this binary's child modes).
    CloseStdin,
    /// Kill it (a program that does not watch its standard input).
    Kill,
}

/// A server in a child process of its own.
pub struct ChildServer {
    child: Child,
    stop: Stop,
    /// Its base URL, `http://<address>`.
    pub base: String,
}

impl ChildServer {
    /// Starts a gateway named `name` over the nodes of `node_urls` (one
    /// agency per entry, `None` for an agency without a node), with the
    /// development keys in `keys` and a data directory of its own under
    /// `root` (two processes never share an audit log), on `cpus` only when
    /// given.
    pub fn start(
        root: &Path,
        name: &str,
        keys: &Path,
        node_urls: &[Option<String>],
        cpus: Option<&[usize]>,
    ) -> anyhow::Result<Self> {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("keys"))?;
        for entry in std::fs::read_dir(keys)? {
            let entry = entry?;
            let target = dir.join("keys").join(entry.file_name());
            if !target.exists() {
                std::fs::copy(entry.path(), &target)?;
            }
        }
        let federation = exchange_trust::DevFederation::create(&dir, &specs(node_urls), AUDIENCE)?;
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nfederation = \"{}\"\nlog_format = \"json\"\n",
                dir.join("data").display(),
                federation.path.display()
            ),
        )?;
        let mut args = vec!["serve-gateway".to_owned(), config.display().to_string()];
        if let Some(cpus) = cpus {
            args.push(
                cpus.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        Self::spawn(name, &args)
    }

    /// Starts the fan-out floor (`serve-fan-out`) over `urls`.
    pub fn start_fan_out(name: &str, urls: &[String]) -> anyhow::Result<Self> {
        let mut args = vec!["serve-fan-out".to_owned()];
        args.extend(urls.iter().cloned());
        Self::spawn(name, &args)
    }

    /// Runs this binary with `args` and waits for the `LISTENING` line.
    fn spawn(name: &str, args: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        // The gateway logs (warnings and errors) to its standard output:
        // pass them on to ours, on standard error, rather than lose them.
        forward_lines(name, reader);
        let address = line
            .trim()
            .strip_prefix("LISTENING ")
            .with_context(|| format!("unexpected output of {name}: {line:?}"))?;
        Ok(Self {
            base: format!("http://{address}"),
            child,
            stop: Stop::CloseStdin,
        })
    }

    /// Takes over a child server started by the caller (its standard output
    /// and error piped, or not), serving at `base`: passes its output on to
    /// standard error labelled `name`, and kills it when dropped.
    pub fn adopt(name: &str, mut child: Child, base: String) -> Self {
        if let Some(stdout) = child.stdout.take() {
            forward_lines(name, BufReader::new(stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            forward_lines(name, BufReader::new(stderr));
        }
        Self {
            child,
            stop: Stop::Kill,
            base,
        }
    }

    /// Its exit status if it has already exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// CPU time the child process has used so far (user + system).
    pub fn cpu(&self) -> Duration {
        process_cpu(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory and peak resident memory (VmRSS, VmHWM) in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        match self.stop {
            Stop::CloseStdin => drop(self.child.stdin.take()),
            Stop::Kill => {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// Passes each line read from `reader` on to standard error, labelled
/// `name`, on a thread of its own, until the stream ends.
fn forward_lines(name: &str, reader: impl BufRead + Send + 'static) {
    let label = name.to_owned();
    std::thread::spawn(move || {
        for log in reader.lines().map_while(Result::ok) {
            eprintln!("{label}: {log}");
        }
    });
}

/// User plus system CPU time of the process whose `stat` file is `path`
/// (`/proc/<pid>/stat`), in clock ticks of 10 ms; zero if unreadable.
pub fn process_cpu(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold
    // spaces): utime and stime are the 12th and 13th of them.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}
