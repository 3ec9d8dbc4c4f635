//! The flags of `molt fetch`, spelled as MOLT spells them.

use std::path::PathBuf;
use std::time::Duration;

use molt_cli::{LogArgs, parse_duration};

/// `molt fetch`: bulk load from a source into CockroachDB or PostgreSQL.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "fetch",
    version,
    about = "Bulk load from PostgreSQL, MySQL or Oracle into CockroachDB or PostgreSQL"
)]
pub struct FetchArgs {
    /// Source connection URL (Oracle: the PDB or non-CDB).
    #[arg(long)]
    pub source: String,
    /// Oracle CDB connection URL.
    #[arg(long = "source-cdb")]
    pub source_cdb: Option<String>,
    /// Target connection URL.
    #[arg(long)]
    pub target: String,
    /// Permit unencrypted connections (sslmode=disable, MySQL without sslmode).
    #[arg(long = "allow-tls-mode-disable")]
    pub allow_tls_mode_disable: bool,
    /// Cloud role or service account; needs --use-implicit-auth.
    #[arg(long = "assume-role")]
    pub assume_role: Option<String>,
    /// s3://, gs:// or azure-blob:// path for intermediate files.
    #[arg(long = "bucket-path")]
    pub bucket_path: Option<String>,
    /// Match schema and table names case-sensitively.
    #[arg(long = "case-sensitive", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub case_sensitive: bool,
    /// File format of an export-only run: csv (the default, what IMPORT INTO and COPY load)
    /// or parquet (typed, zstd-compressed, for a data lake; needs --mode export-only).
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Delete intermediate files when the load succeeds.
    #[arg(long)]
    pub cleanup: bool,
    /// Compression of intermediate files: gzip (the default for IMPORT INTO) or none.
    #[arg(long)]
    pub compression: Option<String>,
    /// Resume from this file onwards (needs --fetch-id and --continuation-token).
    #[arg(long = "continuation-file-name")]
    pub continuation_file_name: Option<String>,
    /// Resume one table from its token (needs --fetch-id).
    #[arg(long = "continuation-token")]
    pub continuation_token: Option<String>,
    /// Protected-timestamp lifetime for a CockroachDB source.
    #[arg(long = "crdb-pts-duration", default_value = "24h0m0s", value_parser = parse_duration)]
    pub crdb_pts_duration: Duration,
    /// Protected-timestamp refresh interval for a CockroachDB source.
    #[arg(long = "crdb-pts-refresh-interval", default_value = "10m0s", value_parser = parse_duration)]
    pub crdb_pts_refresh_interval: Duration,
    /// COPY straight from source to target, no intermediate files.
    #[arg(long = "direct-copy")]
    pub direct_copy: bool,
    /// Shards (and connections) per table. Unset: up to 4, fewer for tables too small to gain
    /// from them (one per 250,000 estimated rows).
    #[arg(long = "export-concurrency")]
    pub export_concurrency: Option<u32>,
    /// Attempts per export query.
    #[arg(long = "export-retry-max-attempts", default_value_t = 3)]
    pub export_retry_max_attempts: u32,
    /// Retry budget per export; 0 is unlimited.
    #[arg(long = "export-retry-max-duration", default_value = "5m0s", value_parser = parse_duration)]
    pub export_retry_max_duration: Duration,
    /// Resume this fetch.
    #[arg(long = "fetch-id")]
    pub fetch_id: Option<String>,
    /// Row filters (JSON).
    #[arg(long = "filter-path")]
    pub filter_path: Option<PathBuf>,
    /// Rows per intermediate file.
    #[arg(long = "flush-rows")]
    pub flush_rows: Option<u64>,
    /// Bytes per intermediate file.
    #[arg(long = "flush-size")]
    pub flush_size: Option<u64>,
    /// Skip replication checks and do not print a cdc_cursor.
    #[arg(long = "ignore-replication-check")]
    pub ignore_replication_check: bool,
    /// Files per IMPORT INTO statement.
    #[arg(long = "import-batch-size", default_value_t = 1000)]
    pub import_batch_size: u32,
    /// S3 region for IMPORT INTO.
    #[arg(long = "import-region")]
    pub import_region: Option<String>,
    /// Directory for intermediate files served to the target.
    #[arg(long = "local-path")]
    pub local_path: Option<PathBuf>,
    /// Address of the embedded file server.
    #[arg(long = "local-path-listen-addr")]
    pub local_path_listen_addr: Option<String>,
    /// Address the target uses to reach the file server.
    #[arg(long = "local-path-crdb-access-addr")]
    pub local_path_crdb_access_addr: Option<String>,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// Address of the /metrics endpoint.
    #[arg(long = "metrics-listen-addr", default_value = "127.0.0.1:3030")]
    pub metrics_listen_addr: String,
    /// data-load, export-only or import-only.
    #[arg(long, default_value = "data-load")]
    pub mode: String,
    /// Never prompt.
    #[arg(long = "non-interactive")]
    pub non_interactive: bool,
    /// Accepted for compatibility; this toolkit sends no telemetry.
    #[arg(long = "opt-out-telemetry")]
    pub opt_out_telemetry: bool,
    /// Replication slot to create before the snapshot (= replicator --slotName).
    #[arg(long = "pglogical-replication-slot-name")]
    pub pglogical_replication_slot_name: Option<String>,
    /// Drop and recreate publication molt_fetch and the slot.
    #[arg(long = "pglogical-publication-and-slot-drop-and-recreate")]
    pub pglogical_publication_and_slot_drop_and_recreate: bool,
    /// Accepted for compatibility; no profiler endpoint is served.
    #[arg(long = "pprof-listen-addr", default_value = "127.0.0.1:3031")]
    pub pprof_listen_addr: String,
    /// Rows per shard query page.
    #[arg(long = "row-batch-size", default_value_t = 100_000)]
    pub row_batch_size: u64,
    /// Schemas to load (regular expression).
    #[arg(long = "schema-filter", default_value = ".*")]
    pub schema_filter: String,
    /// Allow tables without (or with mismatched) primary keys; disables sharding.
    #[arg(long = "skip-pk-check")]
    pub skip_pk_check: bool,
    /// Tables in flight.
    #[arg(long = "table-concurrency", default_value_t = 4)]
    pub table_concurrency: u32,
    /// Tables to load (regular expression).
    #[arg(long = "table-filter", default_value = ".*")]
    pub table_filter: String,
    /// Tables to skip (regular expression).
    #[arg(long = "table-exclusion-filter", default_value = "")]
    pub table_exclusion_filter: String,
    /// none, truncate-if-exists or drop-on-target-and-recreate.
    #[arg(long = "table-handling", default_value = "none")]
    pub table_handling: String,
    /// Transformation rules (JSON).
    #[arg(long = "transformations-file")]
    pub transformations_file: Option<PathBuf>,
    /// Column type overrides (JSON).
    #[arg(long = "type-map-file")]
    pub type_map_file: Option<PathBuf>,
    /// Load with COPY FROM instead of IMPORT INTO.
    #[arg(long = "use-copy")]
    pub use_copy: bool,
    /// Use the machine's cloud credentials.
    #[arg(long = "use-implicit-auth")]
    pub use_implicit_auth: bool,
    /// Shard by pg_stats histogram bounds.
    #[arg(long = "use-stats-based-sharding")]
    pub use_stats_based_sharding: bool,
    /// Flags of older MOLT releases, accepted with a warning.
    #[command(flatten)]
    pub retired: crate::retired::RetiredArgs,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn molt_docs_command_parses() {
        let a = FetchArgs::try_parse_from([
            "fetch",
            "--source",
            "postgres://u:p@h:5432/db",
            "--target",
            "postgres://root@crdb:26257/defaultdb?sslmode=verify-full",
            "--schema-filter",
            "migration_schema",
            "--table-filter",
            "employees|payments|orders",
            "--bucket-path",
            "s3://b/p",
            "--table-handling",
            "truncate-if-exists",
            "--ignore-replication-check",
            "--export-retry-max-duration",
            "10m",
            "--case-sensitive=false",
        ])
        .unwrap();
        assert_eq!(a.table_filter, "employees|payments|orders");
        assert_eq!(a.export_retry_max_duration, Duration::from_secs(600));
        assert_eq!(a.crdb_pts_duration, Duration::from_secs(86_400));
        assert_eq!(a.export_concurrency, None);
        assert_eq!(a.row_batch_size, 100_000);
        assert!(!a.case_sensitive);
        assert!(a.ignore_replication_check);
    }

    #[test]
    fn retired_flags_parse_hidden_from_help() {
        let a = FetchArgs::try_parse_from([
            "fetch",
            "--source",
            "postgres://u@h/db",
            "--target",
            "postgres://u@t/db",
            "--pglogical-publication-name",
            "molt_fetch",
            "--pglogical-ignore-wal-check",
            "--table-splits",
            "3",
            "--replicator-flags",
            "--stagingSchema _replicator",
        ])
        .unwrap();
        assert_eq!(a.retired.table_splits, Some(3));
        assert_eq!(a.retired.pglogical_ignore_wal_check, Some(true));
        assert_eq!(a.retired.replicator_flags.as_deref(), Some("--stagingSchema _replicator"));
        let help = <FetchArgs as clap::CommandFactory>::command().render_long_help().to_string();
        assert!(!help.contains("table-splits") && help.contains("export-concurrency"));
    }

    #[test]
    fn source_and_target_are_required() {
        assert!(FetchArgs::try_parse_from(["fetch", "--source", "postgres://h/db"]).is_err());
    }
}
