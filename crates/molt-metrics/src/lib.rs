//! Metric names MOLT users build dashboards on, and the HTTP endpoint that serves them.
//!
//! Names are constants ([`fetch`], [`verify`], [`replicator`]) so a typo cannot split a series.
//! [`install`] sets the global `metrics` recorder; [`serve`] answers on MOLT's routes:
//! `/metrics` for fetch and verify, `/_/varz` for the replicator, each with its health route
//! (`/healthz`, `/_/healthz` answering `OK`), and 404 elsewhere.
//!
//! ```no_run
//! # async fn demo() -> Result<(), molt_metrics::MetricsError> {
//! let handle = molt_metrics::install()?;
//! let server = molt_metrics::serve("127.0.0.1:3030".parse().unwrap(), molt_metrics::Routes::FETCH, handle).await?;
//! metrics::counter!(molt_metrics::fetch::ROWS_EXPORTED, "table" => "public.t").increment(10);
//! # drop(server); Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// `molt fetch` metrics (label `table` = `schema.table`).
pub mod fetch {
    /// Tables selected for the run.
    pub const NUM_TABLES: &str = "molt_fetch_num_tables";
    /// Tasks that failed.
    pub const NUM_TASK_ERRORS: &str = "molt_fetch_num_task_errors";
    /// Data errors per table.
    pub const NUM_DATA_ERRORS: &str = "molt_fetch_num_data_errors";
    /// Whole-run duration, seconds.
    pub const OVERALL_DURATION: &str = "molt_fetch_overall_duration";
    /// Rows read from the source.
    pub const ROWS_EXPORTED: &str = "molt_fetch_rows_exported";
    /// Rows written to the target.
    pub const ROWS_IMPORTED: &str = "molt_fetch_rows_imported";
    /// Export duration per table, milliseconds.
    pub const TABLE_EXPORT_DURATION_MS: &str = "molt_fetch_table_export_duration_ms";
    /// Import duration per table, milliseconds.
    pub const TABLE_IMPORT_DURATION_MS: &str = "molt_fetch_table_import_duration_ms";
    /// Whole duration per table, milliseconds.
    pub const TABLE_OVERALL_DURATION_MS: &str = "molt_fetch_table_overall_duration_ms";
    /// Percent of a table loaded.
    pub const COMPLETION_PERCENT: &str = "molt_fetch_completion_percent";
}

/// `molt verify` metrics.
pub mod verify {
    /// Tables by `category` = verified | missing | extraneous.
    pub const NUM_TABLES: &str = "molt_verify_num_tables";
    /// Rows by `status` and `table`.
    pub const ROW_VERIFICATION_STATUS: &str = "molt_verify_row_verification_status";
    /// Rows read per table.
    pub const ROWS_READ: &str = "molt_verify_rows_read";
    /// Shards in flight.
    pub const SHARDS_RUNNING: &str = "molt_verify_shards_running";
    /// Run duration, seconds.
    pub const DURATION_SECONDS: &str = "molt_verify_duration_seconds";
}

/// `replicator` metrics.
pub mod replicator {
    /// Seconds between a source commit and now, for the newest applied change.
    pub const CORE_SOURCE_LAG_SECONDS: &str = "core_source_lag_seconds";
    /// Seconds from source commit to target apply.
    pub const SOURCE_COMMIT_TO_APPLY_LAG_SECONDS: &str = "source_commit_to_apply_lag_seconds";
    /// Age of the oldest unapplied transaction.
    pub const TARGET_APPLY_TRANSACTION_LAG_SECONDS: &str = "target_apply_transaction_lag_seconds";
    /// Age of mutations when applied.
    pub const TARGET_APPLY_MUTATION_AGE_SECONDS: &str = "target_apply_mutation_age_seconds";
    /// Apply queue fill, percent.
    pub const TARGET_APPLY_QUEUE_UTILIZATION_PERCENT: &str =
        "target_apply_queue_utilization_percent";
    /// Apply queue length.
    pub const TARGET_APPLY_QUEUE_SIZE: &str = "target_apply_queue_size";
    /// Rows upserted, by `schema` and `table`.
    pub const APPLY_UPSERTS_TOTAL: &str = "apply_upserts_total";
    /// Rows deleted.
    pub const APPLY_DELETES_TOTAL: &str = "apply_deletes_total";
    /// Apply errors.
    pub const APPLY_ERRORS_TOTAL: &str = "apply_errors_total";
    /// Rows the target refused, set aside in the dead-letter table.
    pub const APPLY_DEAD_LETTERS_TOTAL: &str = "apply_dead_letters_total";
    /// Apply conflicts.
    pub const APPLY_CONFLICTS_TOTAL: &str = "apply_conflicts_total";
    /// Apply duration.
    pub const APPLY_DURATION_SECONDS: &str = "apply_duration_seconds";
    /// Mutations read from the source, by `source` and `type`.
    pub const MUTATION_TOTAL: &str = "mutation_total";
    /// Successful replication connections.
    pub const PGLOGICAL_DIAL_SUCCESS_TOTAL: &str = "pglogical_dial_success_total";
    /// Failed replication connections.
    pub const PGLOGICAL_DIAL_FAILURE_TOTAL: &str = "pglogical_dial_failure_total";
    /// Successful binlog connections.
    pub const MYLOGICAL_DIAL_SUCCESS_TOTAL: &str = "mylogical_dial_success_total";
    /// Failed binlog connections.
    pub const MYLOGICAL_DIAL_FAILURE_TOTAL: &str = "mylogical_dial_failure_total";
    /// Flushes of the sequencer.
    pub const CORE_FLUSH_COUNT: &str = "core_flush_count";
}

/// Which routes an endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes {
    /// Path of the Prometheus text.
    pub metrics: &'static str,
    /// Path answering `OK`.
    pub health: &'static str,
}

impl Routes {
    /// fetch and verify: `/metrics`, `/healthz`.
    pub const FETCH: Routes = Routes { metrics: "/metrics", health: "/healthz" };
    /// replicator: `/_/varz`, `/_/healthz`.
    pub const REPLICATOR: Routes = Routes { metrics: "/_/varz", health: "/_/healthz" };
}

/// Why metrics could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The recorder could not be installed.
    #[error("installing the metrics recorder")]
    Install(#[source] metrics_exporter_prometheus::BuildError),
    /// The address could not be bound.
    #[error("cannot listen for metrics on {addr}; choose another address")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder (once per process; later calls return the same
/// handle) and starts its upkeep task when a tokio runtime is running.
///
/// # Errors
/// [`MetricsError::Install`] if another recorder is already installed.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new().install_recorder().map_err(MetricsError::Install)?;
    let handle = HANDLE.get_or_init(|| handle).clone();
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let upkeep = handle.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                upkeep.run_upkeep();
            }
        });
    }
    Ok(handle)
}

/// A running endpoint; dropping it does not stop it, [`MetricsServer::stop`] does.
#[derive(Debug)]
pub struct MetricsServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Serves `routes` on `addr` in the background.
///
/// # Errors
/// [`MetricsError::Bind`] if the address is taken or invalid.
pub async fn serve(
    addr: SocketAddr,
    routes: Routes,
    handle: PrometheusHandle,
) -> Result<MetricsServer, MetricsError> {
    let listener =
        TcpListener::bind(addr).await.map_err(|source| MetricsError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(|source| MetricsError::Bind { addr, source })?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let path = path.split('?').next().unwrap_or(path);
                let (status, content_type, body) = if path == routes.metrics {
                    ("200 OK", "text/plain; version=0.0.4", handle.render())
                } else if path == routes.health {
                    ("200 OK", "text/plain", "OK".to_owned())
                } else {
                    ("404 Not Found", "text/plain", "not found".to_owned())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                if let Err(e) = stream.write_all(response.as_bytes()).await {
                    tracing::debug!(error = %e, "metrics client went away");
                }
            });
        }
    });
    Ok(MetricsServer { addr, task })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_molt_routes() {
        let handle = install().unwrap();
        metrics::counter!(replicator::APPLY_UPSERTS_TOTAL, "schema" => "public", "table" => "t")
            .increment(3);
        let varz = serve("127.0.0.1:0".parse().unwrap(), Routes::REPLICATOR, handle.clone())
            .await
            .unwrap();
        let body = get(varz.addr, "/_/varz").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains("apply_upserts_total{schema=\"public\",table=\"t\"} 3"), "{body}");
        assert!(get(varz.addr, "/_/healthz").await.ends_with("\r\n\r\nOK"));
        assert!(get(varz.addr, "/metrics").await.starts_with("HTTP/1.1 404"));
        varz.stop();

        let fetch = serve("127.0.0.1:0".parse().unwrap(), Routes::FETCH, handle).await.unwrap();
        assert!(get(fetch.addr, "/metrics").await.contains("apply_upserts_total"));
        assert!(get(fetch.addr, "/healthz").await.ends_with("OK"));
        assert!(get(fetch.addr, "/_/varz").await.starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn taken_port_is_explained() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let handle = install().unwrap();
        let err = serve(addr, Routes::FETCH, handle).await.unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
