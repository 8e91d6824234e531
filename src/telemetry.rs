//! Logs and metrics. Logs are `tracing` events, as text or JSON lines; they never carry a
//! password, token or hash (no code path logs a request body, a header or a query string).
//! With an OTLP endpoint configured, spans are exported as traces too ([`otlp`]).
//! Metrics use the `metrics` facade with a Prometheus recorder installed once per process.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

mod json_lines;
pub mod otlp;

tokio::task_local! {
    /// The id of the HTTP request being served, for logs, audit events and internal errors.
    pub static REQUEST_ID: String;
    /// The method and route of the HTTP request being served, for JSON log lines.
    pub static REQUEST_ROUTE: (&'static str, String);
}

/// The request id of the current task, when it serves an HTTP request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs the global log subscriber (`RUST_LOG` filters; else `default_level`, e.g. `info`),
/// exporting spans to `otlp_endpoint` when one is given (see [`otlp`]; that needs a Tokio
/// runtime entered). A second call (tests start many servers in one process) keeps the first
/// subscriber.
pub fn init_logging(format: LogFormat, default_level: &str, otlp_endpoint: Option<&str>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let lines: Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colour codes only for a person at a terminal, not in files and log collectors.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json_lines::JsonLines)
            .boxed(),
    };
    let mut otlp_error = None;
    let traces = otlp_endpoint.and_then(|endpoint| match otlp::tracer(endpoint) {
        Ok(tracer) => Some(tracing_opentelemetry::layer().with_tracer(tracer)),
        Err(e) => {
            otlp_error = Some(e);
            None
        }
    });
    let installed = tracing_subscriber::registry()
        .with(lines)
        .with(traces)
        .with(filter)
        .try_init()
        .is_ok();
    if installed && format == LogFormat::Json {
        // A panic's message as a log line too, not as text among the JSON lines.
        std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "panicked")));
    }
    if let Some(e) = otlp_error {
        tracing::error!(error = %e, "traces are not exported");
    }
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("constant, non-empty bucket list")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is already installed; then ours just stays empty.
            let _ = metrics::set_global_recorder(recorder);
            start_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// The recorder keeps every histogram sample (two per request) in a queue until upkeep folds
/// it into the buckets; a scrape of `/metrics` does that too, but a server nobody scrapes would
/// grow by those samples for ever. A thread of its own folds them every few seconds.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name(UPKEEP_THREAD.to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_PERIOD);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the metrics upkeep thread: {e}");
    }
}

/// The upkeep thread's name.
const UPKEEP_THREAD: &str = "usersvc-metrics";

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of this process's threads.
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .expect("/proc/self/task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    #[test]
    fn installing_the_recorder_starts_one_upkeep_thread() {
        let _ = metrics_handle();
        let _ = metrics_handle();
        let upkeep = || {
            thread_names()
                .iter()
                .filter(|name| *name == UPKEEP_THREAD)
                .count()
        };
        // A new thread carries its parent's name until it has named itself.
        for _ in 0..500 {
            if upkeep() > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(upkeep(), 1, "{:?}", thread_names());
    }
}
