//! Prometheus metrics of a running process (a node, the gateway, the
//! console), served as OpenMetrics text at `/metrics` on a listener of its
//! own (`[metrics] listen`), never on the public one.
//!
//! No label ever holds personal data: every label value is a closed list's
//! code (a route template, an HTTP method, a status, a GraphQL root field
//! the schema declares, an audit kind, a category, a purpose, a withheld
//! reason, an error code) or an agency's ID from the federation file.
//! [`Metrics`] holds the families; [`track_http`] is the middleware that
//! counts and times requests by route; [`serve`] the listener.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// An HTTP request, by route template.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's template (`/graphql`, `/receipts/{id}`), `unmatched`
    /// for a path no route serves.
    pub route: String,
    pub method: String,
}

/// An HTTP answer, by route template and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

/// A GraphQL root field the schema declares (`query:survivor`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

/// An audit entry, by kind and decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EntryLabels {
    pub kind: String,
    pub decision: String,
}

/// A category disclosed, for a purpose.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DisclosureLabels {
    pub category: String,
    pub purpose: String,
}

/// A category withheld, and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WithheldLabels {
    pub category: String,
    pub reason: String,
}

/// A refusal, by its stable error code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

/// A member agency's node, as the gateway sees it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgencyLabels {
    pub agency: String,
}

/// A database pool's connections, by state (`idle`, `in_use`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
    pub state: String,
}

/// The audit log's part: what its writer reports.
#[derive(Clone, Debug)]
pub struct AuditMetrics {
    pub entries: Family<EntryLabels, Counter>,
    pub disclosed: Family<DisclosureLabels, Counter>,
    pub withheld: Family<WithheldLabels, Counter>,
    pub refusals: Family<CodeLabels, Counter>,
    /// Entries waiting for the group-commit writer.
    pub queue_depth: Gauge,
    /// How long a group took to become durable.
    pub commit_seconds: Histogram,
    /// How many entries a group held.
    pub group_size: Histogram,
}

/// Something to read just before each scrape (a queue's length, a pool's
/// size, the circuits' states).
type Refresh = Box<dyn Fn() + Send + Sync>;

/// The process's metrics. Cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    refresh: Mutex<Vec<Refresh>>,
    pub requests: Family<StatusLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
    pub operations: Family<OperationLabels, Counter>,
    pub operation_seconds: Family<OperationLabels, Histogram>,
    pub audit: AuditMetrics,
    /// The gateway's circuit of each node: 0 closed, 1 half open, 2 open.
    pub circuits: Family<AgencyLabels, Gauge>,
    pub pool_connections: Family<PoolLabels, Gauge>,
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// The families of one process, every name prefixed `exchange_`.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("exchange");
        let requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            request_seconds.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graphql_operations",
            "GraphQL root fields requested, by type and field (the schema's own names only)",
            operations.clone(),
        );
        let operation_seconds = Family::<OperationLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> _,
        );
        registry.register(
            "graphql_operation_duration_seconds",
            "Time to answer a GraphQL request, by its first root field",
            operation_seconds.clone(),
        );
        let audit = AuditMetrics {
            entries: Family::default(),
            disclosed: Family::default(),
            withheld: Family::default(),
            refusals: Family::default(),
            queue_depth: Gauge::default(),
            commit_seconds: seconds_histogram(),
            group_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
        };
        registry.register(
            "audit_entries",
            "Audit entries made durable, by kind and decision",
            audit.entries.clone(),
        );
        registry.register(
            "disclosed_categories",
            "Categories of survivors' records disclosed, by category and purpose",
            audit.disclosed.clone(),
        );
        registry.register(
            "withheld_categories",
            "Categories of survivors' records withheld, by category and reason",
            audit.withheld.clone(),
        );
        registry.register(
            "refusals",
            "Requests refused, by stable error code",
            audit.refusals.clone(),
        );
        registry.register(
            "audit_queue_depth",
            "Audit entries waiting for the group-commit writer",
            audit.queue_depth.clone(),
        );
        registry.register(
            "audit_commit_duration_seconds",
            "Time for a group of audit entries to become durable",
            audit.commit_seconds.clone(),
        );
        registry.register(
            "audit_group_size",
            "Audit entries written in one group commit",
            audit.group_size.clone(),
        );
        let circuits = Family::<AgencyLabels, Gauge>::default();
        registry.register(
            "node_circuit_state",
            "The gateway's circuit to each node: 0 closed, 1 half open, 2 open",
            circuits.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections, by pool and state (idle, in_use)",
            pool_connections.clone(),
        );
        Arc::new(Self {
            registry,
            refresh: Mutex::new(Vec::new()),
            requests,
            request_seconds,
            operations,
            operation_seconds,
            audit,
            circuits,
            pool_connections,
        })
    }

    /// Runs `refresh` before every scrape.
    pub fn on_scrape(&self, refresh: impl Fn() + Send + Sync + 'static) {
        self.refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(refresh));
    }

    /// Reports a database pool's connections before every scrape.
    pub fn watch_pool(self: &Arc<Self>, name: &str, pool: sqlx::AnyPool) {
        let metrics = Arc::downgrade(self);
        let name = name.to_owned();
        self.on_scrape(move || {
            if let Some(metrics) = metrics.upgrade() {
                let (size, idle) = (i64::from(pool.size()), pool.num_idle() as i64);
                let gauge = |state: &str| {
                    metrics.pool_connections.get_or_create(&PoolLabels {
                        pool: name.clone(),
                        state: state.to_owned(),
                    })
                };
                gauge("idle").set(idle);
                gauge("in_use").set((size - idle).max(0));
            }
        });
    }

    /// The metrics as OpenMetrics text.
    pub fn render(&self) -> String {
        for refresh in self
            .refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            refresh();
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a GraphQL request's root fields (`query:survivor`) and times
    /// it under the first; the caller passes only names the schema
    /// declares.
    pub fn operation(&self, fields: &[String], started: Instant) {
        for field in fields {
            self.operations
                .get_or_create(&OperationLabels {
                    operation: field.clone(),
                })
                .inc();
        }
        if let Some(first) = fields.first() {
            self.operation_seconds
                .get_or_create(&OperationLabels {
                    operation: first.clone(),
                })
                .observe(started.elapsed().as_secs_f64());
        }
    }
}

/// Middleware: counts and times every request by its route template
/// (`unmatched` when no route serves the path, so no path a client sent
/// becomes a label).
pub async fn track_http(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "PATCH") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .request_seconds
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&StatusLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`.
async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut response = (StatusCode::OK, metrics.render()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The metrics listener's routes: `/metrics` only.
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(metrics)
}

/// Binds the metrics listener on `address`; serves it until `stop`.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router(metrics))
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the Grafana dashboard in `deploy/grafana` queries is
    /// one these families expose (a renamed family fails here, not on an
    /// operator's screen).
    #[test]
    fn the_grafana_dashboard_queries_only_metrics_that_exist() {
        let text = Metrics::new().render();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let dashboard = include_str!("../../deploy/grafana/exchange-dashboard.json");
        let mut queried = 0;
        for (at, _) in dashboard.match_indices("exchange_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let family = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(families.contains(&family), "the dashboard queries {name}");
            queried += 1;
        }
        assert!(queried >= 12, "{queried}");
    }

    #[test]
    fn the_text_names_every_family_with_its_help_and_labels() {
        let metrics = Metrics::new();
        metrics
            .requests
            .get_or_create(&StatusLabels {
                route: "/graphql".into(),
                method: "POST".into(),
                status: 200,
            })
            .inc();
        metrics
            .audit
            .withheld
            .get_or_create(&WithheldLabels {
                category: "HEALTH".into(),
                reason: "NO_CONSENT".into(),
            })
            .inc();
        let refreshed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = refreshed.clone();
        metrics.on_scrape(move || {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let text = metrics.render();
        assert!(text.contains(
            "exchange_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"} 1"
        ));
        assert!(
            text.contains(
                "exchange_withheld_categories_total{category=\"HEALTH\",reason=\"NO_CONSENT\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("# HELP exchange_audit_queue_depth"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(refreshed.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
