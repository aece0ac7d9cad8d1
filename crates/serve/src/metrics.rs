//! Prometheus metrics at `/api/v1/metrics`: requests and latency by method, route and
//! status, and the table version served.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// One series: the route as declared (`/api/v1/products/{golden_id}`), never the raw path,
/// so that ids do not become label values.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    version: Gauge<u64, AtomicU64>,
    events: Counter,
}

/// 50 µs to about 1.6 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let version = Gauge::<u64, AtomicU64>::default();
        let mut registry = Registry::with_prefix("shopfuse");
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response, by method, route and status",
            latency.clone(),
        );
        registry.register(
            "table_version",
            "The committed table version being served",
            version.clone(),
        );
        let events = Counter::default();
        registry.register(
            "events_accepted",
            "Events written durably to the event log",
            events.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            version,
            events,
        }
    }
}

impl Metrics {
    pub fn observe(&self, labels: RequestLabels, took: Duration) {
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    pub fn events_accepted(&self, n: u64) {
        self.events.inc_by(n);
    }

    /// The text exposition format, with the version served set to `version`.
    pub fn render(&self, version: u64) -> String {
        self.version.set(version);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
