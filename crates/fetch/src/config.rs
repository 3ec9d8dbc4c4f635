//! From flags as typed ([`FetchArgs`]) to a checked [`Config`]: every combination MOLT refuses
//! is refused here, before anything connects.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use molt_schema::TableFilter;
use molt_target::handling::TableHandling;

use crate::FetchArgs;

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Export and import (the default).
    DataLoad,
    /// Write intermediate files and stop.
    ExportOnly,
    /// Load intermediate files written by an earlier export-only run.
    ImportOnly,
}

/// Where rows travel between source and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataPath {
    /// COPY out of the source straight into COPY on the target.
    Direct,
    /// Intermediate files in a bucket, read by `IMPORT INTO` or streamed into COPY.
    Bucket {
        /// `--bucket-path`.
        path: crate::store::BucketPath,
    },
    /// Intermediate files in a local directory, served over HTTP for `IMPORT INTO`.
    Local {
        /// The directory.
        dir: PathBuf,
        /// Address the file server listens on.
        listen: Option<String>,
        /// Address the target uses to reach it.
        access: Option<String>,
    },
}

/// How rows are written into the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMethod {
    /// `COPY … FROM STDIN`.
    Copy,
    /// CockroachDB `IMPORT INTO` (the default; PostgreSQL targets fall back to COPY).
    Import,
}

/// Format of intermediate files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// CSV (what the loaders read).
    Csv,
    /// Parquet, for export-only runs.
    Parquet,
}

/// Compression of intermediate files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`.csv.gz`).
    Gzip,
    /// Plain CSV.
    None,
}

/// Default size of an intermediate file, as MOLT writes local files.
pub const DEFAULT_FLUSH_SIZE: u64 = 128 * 1024 * 1024;

/// Which earlier fetch to continue (`--fetch-id`, `--continuation-token`,
/// `--continuation-file-name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The fetch to continue.
    pub fetch_id: String,
    /// Only this token's table.
    pub token: Option<String>,
    /// From this file of that table onwards.
    pub from_file: Option<String>,
}

/// A checked fetch configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Continue an earlier fetch instead of starting one.
    pub resume: Option<Resume>,
    /// `--non-interactive`: never prompt.
    pub non_interactive: bool,
    /// `--source`.
    pub source: String,
    /// `--target`.
    pub target: String,
    /// `--allow-tls-mode-disable`.
    pub allow_tls_mode_disable: bool,
    /// Compiled filters.
    pub filter: TableFilter,
    /// `--type-map-file`.
    pub type_map_file: Option<PathBuf>,
    /// How fetch and CockroachDB reach a bucket.
    pub auth: crate::store::Auth,
    /// `--filter-path`: rows to load, per table.
    pub row_filters: Option<molt_schema::rules::RowFilters>,
    /// `--transformations-file`: renames, merges and left-out columns.
    pub transforms: Option<molt_schema::rules::Transforms>,
    /// `--mode`.
    pub mode: Mode,
    /// Direct or through files.
    pub path: DataPath,
    /// COPY or IMPORT INTO (before the target's dialect is known).
    pub method: LoadMethod,
    /// File compression.
    pub compression: Compression,
    /// `--format`.
    pub format: FileFormat,
    /// `--table-handling`.
    pub handling: TableHandling,
    /// `--skip-pk-check`.
    pub skip_pk_check: bool,
    /// `--export-concurrency`.
    pub export_concurrency: u32,
    /// `--export-concurrency` was given: every table gets that many shards when its key
    /// allows; otherwise small tables get fewer ([`shards_worth`]).
    pub export_concurrency_explicit: bool,
    /// `--table-concurrency`.
    pub table_concurrency: u32,
    /// `--use-stats-based-sharding`.
    pub stats_sharding: bool,
    /// `--flush-rows`.
    pub flush_rows: Option<u64>,
    /// `--flush-size` (or the default).
    pub flush_size: u64,
    /// `--import-batch-size`.
    pub import_batch_size: usize,
    /// `--cleanup`.
    pub cleanup: bool,
    /// `--pglogical-replication-slot-name`.
    pub slot: Option<String>,
    /// `--pglogical-publication-and-slot-drop-and-recreate`.
    pub drop_and_recreate_slot: bool,
    /// `--ignore-replication-check`.
    pub ignore_replication_check: bool,
    /// `--metrics-listen-addr`.
    pub metrics_addr: Option<SocketAddr>,
    /// `--export-retry-max-attempts`.
    pub export_retry_max_attempts: u32,
    /// `--export-retry-max-duration` (zero = unlimited).
    pub export_retry_max_duration: std::time::Duration,
    /// Retired flags given, logged when the run starts.
    pub retired: Vec<crate::retired::RetiredFlag>,
    /// `--mode data-load-and-replication` (retired): print the replicator command at the end.
    pub handoff: Option<crate::retired::ReplicationHandoff>,
}

impl Config {
    /// Checks the flags together.
    ///
    /// # Errors
    /// A message naming the flags that conflict and what to use instead.
    pub fn from_args(a: &FetchArgs) -> anyhow::Result<Config> {
        let filter = TableFilter::new(
            &a.schema_filter,
            &a.table_filter,
            &a.table_exclusion_filter,
            a.case_sensitive,
        )?;
        let retired = crate::retired::resolve(a)?;
        let mode = match retired.mode.as_str() {
            "data-load" | "data_load" => Mode::DataLoad,
            "export-only" | "export_only" => Mode::ExportOnly,
            "import-only" | "import_only" => Mode::ImportOnly,
            other => bail!("--mode {other:?} is not one of data-load, export-only, import-only"),
        };
        let bucket_path = a.bucket_path.as_ref().or(retired.bucket_path.as_ref());
        let ignore_replication_check =
            a.ignore_replication_check || retired.ignore_replication_check;
        let drop_and_recreate_slot =
            a.pglogical_publication_and_slot_drop_and_recreate || retired.drop_and_recreate_slot;
        let chosen_concurrency = retired.export_concurrency.or(a.export_concurrency);
        let export_concurrency = chosen_concurrency.unwrap_or(DEFAULT_EXPORT_CONCURRENCY);
        if retired.handoff.is_some() && a.pglogical_replication_slot_name.is_none() {
            bail!(
                "--mode data-load-and-replication (retired) needs --pglogical-replication-slot-name: fetch creates that slot at the snapshot, and `replicator pglogical --slotName …` replicates from it; for a load without replication use --mode data-load"
            );
        }
        let handling: TableHandling = a.table_handling.parse().map_err(anyhow::Error::msg)?;
        let path = match (a.direct_copy, &a.local_path, bucket_path) {
            (_, Some(_), Some(_)) => {
                bail!("--local-path and --bucket-path both name where files go: keep one")
            }
            (true, Some(_), _) | (true, _, Some(_)) => {
                bail!(
                    "--direct-copy writes no files: drop --local-path/--bucket-path or --direct-copy"
                )
            }
            (true, None, None) => DataPath::Direct,
            (false, None, Some(url)) => {
                DataPath::Bucket { path: crate::store::BucketPath::parse(url)? }
            }
            (false, Some(dir), None) => DataPath::Local {
                dir: dir.clone(),
                listen: a.local_path_listen_addr.clone(),
                access: a
                    .local_path_crdb_access_addr
                    .clone()
                    .or_else(|| a.local_path_listen_addr.clone()),
            },
            (false, None, None) => bail!(
                "choose where rows go: --direct-copy (no files), --local-path DIR or --bucket-path s3://… for intermediate files"
            ),
        };
        if path == DataPath::Direct && mode != Mode::DataLoad {
            bail!(
                "--mode {} needs intermediate files: use --local-path or --bucket-path instead of --direct-copy",
                a.mode
            );
        }
        let method =
            if a.direct_copy || a.use_copy { LoadMethod::Copy } else { LoadMethod::Import };
        let compression = match (a.compression.as_deref(), method) {
            (None, LoadMethod::Copy) | (Some("none"), _) => Compression::None,
            (None | Some("gzip"), LoadMethod::Import) => Compression::Gzip,
            (Some("gzip"), LoadMethod::Copy) => bail!(
                "--compression gzip cannot be used with --use-copy or --direct-copy (COPY reads plain CSV); drop --compression"
            ),
            (Some(other), _) => bail!("--compression {other:?} is not one of gzip, none"),
        };
        let format = match a.format.as_str() {
            "csv" => FileFormat::Csv,
            "parquet" => {
                if mode != Mode::ExportOnly || path == DataPath::Direct {
                    bail!(
                        "--format parquet writes files for a data lake: it needs --mode export-only and --local-path or --bucket-path (IMPORT INTO and COPY load CSV)"
                    );
                }
                FileFormat::Parquet
            }
            other => bail!("--format {other:?} is not one of csv, parquet"),
        };
        if a.table_exclusion_filter == ".*" {
            bail!("--table-exclusion-filter '.*' excludes every table");
        }
        if drop_and_recreate_slot && a.pglogical_replication_slot_name.is_none() {
            bail!(
                "--pglogical-publication-and-slot-drop-and-recreate needs --pglogical-replication-slot-name"
            );
        }
        if a.pglogical_replication_slot_name.is_some() && ignore_replication_check {
            bail!(
                "--pglogical-replication-slot-name and --ignore-replication-check contradict each other: a slot is for replication"
            );
        }
        let metrics_addr = match a.metrics_listen_addr.as_str() {
            "" => None,
            addr => Some(
                addr.parse::<SocketAddr>()
                    .with_context(|| format!("--metrics-listen-addr {addr:?} is not host:port"))?,
            ),
        };
        let row_filters = match &a.filter_path {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("--filter-path: reading {}", p.display()))?;
                Some(molt_schema::rules::RowFilters::from_json(&text)?)
            }
        };
        let transforms = match &a.transformations_file {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("--transformations-file: reading {}", p.display()))?;
                Some(molt_schema::rules::Transforms::from_json(&text)?)
            }
        };
        let resume = match (&a.fetch_id, &a.continuation_token, &a.continuation_file_name) {
            (None, None, None) => None,
            (None, _, _) => bail!(
                "--continuation-token and --continuation-file-name need --fetch-id (molt fetch tokens list --conn-string <target> shows them)"
            ),
            (Some(_), None, Some(_)) => {
                bail!(
                    "--continuation-file-name needs --continuation-token: it names a file of that token's table"
                )
            }
            (Some(id), token, file) => {
                if path == DataPath::Direct {
                    bail!(
                        "--fetch-id resumes a load from its intermediate files; --direct-copy writes none, so rerun it with --table-handling truncate-if-exists"
                    );
                }
                if mode == Mode::ExportOnly {
                    bail!(
                        "--fetch-id resumes loading into the target; --mode export-only loads nothing"
                    );
                }
                Some(Resume { fetch_id: id.clone(), token: token.clone(), from_file: file.clone() })
            }
        };
        Ok(Config {
            resume,
            non_interactive: a.non_interactive,
            source: a.source.clone(),
            target: a.target.clone(),
            allow_tls_mode_disable: a.allow_tls_mode_disable,
            filter,
            type_map_file: a.type_map_file.clone(),
            row_filters,
            transforms,
            auth: crate::store::Auth {
                implicit: a.use_implicit_auth,
                assume_role: a.assume_role.clone(),
                region: a.import_region.clone(),
            },
            mode,
            path,
            method,
            compression,
            format,
            handling,
            skip_pk_check: a.skip_pk_check,
            export_concurrency: export_concurrency.max(1),
            export_concurrency_explicit: chosen_concurrency.is_some(),
            table_concurrency: a.table_concurrency.max(1),
            stats_sharding: a.use_stats_based_sharding,
            flush_rows: a.flush_rows.filter(|n| *n > 0),
            flush_size: a.flush_size.filter(|n| *n > 0).unwrap_or(DEFAULT_FLUSH_SIZE),
            import_batch_size: usize::try_from(a.import_batch_size.max(1)).unwrap_or(1000),
            cleanup: a.cleanup,
            slot: a.pglogical_replication_slot_name.clone(),
            drop_and_recreate_slot,
            ignore_replication_check,
            metrics_addr,
            export_retry_max_attempts: a.export_retry_max_attempts.max(1),
            export_retry_max_duration: a.export_retry_max_duration,
            retired: retired.flags,
            handoff: retired.handoff,
        })
    }
}

/// Shards per table when `--export-concurrency` is not given (MOLT's default).
pub const DEFAULT_EXPORT_CONCURRENCY: u32 = 4;

/// Estimated rows a shard must hold to be worth a session of its own: below it, splitting a
/// table adds range queries and sessions that compete with the other tables' (measured on
/// MariaDB and PostgreSQL sources: four 100k–400k-row tables loaded 20 % faster unsplit).
pub const MIN_ROWS_PER_SHARD: u64 = 250_000;

/// Shards for a table of about `estimated_rows` (0: unknown) when the user did not choose.
pub fn shards_worth(estimated_rows: u64, most: u32) -> u32 {
    if estimated_rows == 0 {
        return most;
    }
    let worth = estimated_rows / MIN_ROWS_PER_SHARD;
    u32::try_from(worth).unwrap_or(u32::MAX).clamp(1, most.max(1))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args(extra: &[&str]) -> anyhow::Result<Config> {
        let mut v = vec!["fetch", "--source", "postgres://u@h/db", "--target", "postgres://u@t/db"];
        v.extend_from_slice(extra);
        Config::from_args(&FetchArgs::try_parse_from(v)?)
    }

    #[test]
    fn data_paths() {
        assert_eq!(args(&["--direct-copy"]).unwrap().path, DataPath::Direct);
        let c =
            args(&["--local-path", "/d", "--local-path-listen-addr", "127.0.0.1:3000"]).unwrap();
        assert_eq!(c.method, LoadMethod::Import);
        assert_eq!(c.compression, Compression::Gzip);
        let c = args(&["--local-path", "/d", "--use-copy"]).unwrap();
        assert_eq!((c.method, c.compression), (LoadMethod::Copy, Compression::None));
        let e = |extra: &[&str]| args(extra).unwrap_err().to_string();
        assert!(e(&[]).contains("--direct-copy"));
        assert!(e(&["--direct-copy", "--local-path", "/d"]).contains("writes no files"));
        assert!(
            e(&["--local-path", "/d", "--use-copy", "--compression", "gzip"])
                .contains("COPY reads plain CSV")
        );
        assert!(e(&["--direct-copy", "--mode", "export-only"]).contains("intermediate files"));
        assert!(e(&["--direct-copy", "--mode", "replication-only"]).contains("retired"));
        assert!(
            e(&["--direct-copy", "--mode", "data-load-and-replication"])
                .contains("needs --pglogical-replication-slot-name")
        );
        let c = args(&["--direct-copy", "--pglogical-ignore-wal-check", "--table-splits", "6"])
            .unwrap();
        assert!(c.ignore_replication_check);
        assert_eq!(c.export_concurrency, 6);
        assert_eq!(c.retired.len(), 2);
        let c = args(&["--s3-bucket", "b"]).unwrap();
        assert!(matches!(c.path, DataPath::Bucket { .. }), "{:?}", c.path);
        assert!(
            e(&["--direct-copy", "--pglogical-replication-slot-drop-if-exists"])
                .contains("--pglogical-replication-slot-name")
        );
        assert!(e(&["--direct-copy", "--table-handling", "drop"]).contains("truncate-if-exists"));
        assert!(e(&["--direct-copy", "--table-exclusion-filter", ".*"]).contains("every table"));
        assert!(
            e(&["--direct-copy", "--pglogical-publication-and-slot-drop-and-recreate"])
                .contains("--pglogical-replication-slot-name")
        );
        assert!(e(&["--direct-copy", "--metrics-listen-addr", "nope"]).contains("host:port"));
        assert!(e(&["--direct-copy", "--fetch-id", "x"]).contains("writes none"));
        assert!(
            e(&["--local-path", "/d", "--use-copy", "--format", "parquet"]).contains("export-only")
        );
        assert!(e(&["--local-path", "/d", "--format", "orc"]).contains("csv, parquet"));
        let c =
            args(&["--local-path", "/d", "--mode", "export-only", "--format", "parquet"]).unwrap();
        assert_eq!(c.format, FileFormat::Parquet);
        assert!(e(&["--direct-copy", "--continuation-token", "t"]).contains("need --fetch-id"));
        let local = ["--local-path", "/d", "--use-copy", "--fetch-id", "f"];
        assert!(
            e(&[&local[..], &["--continuation-file-name", "x"]].concat())
                .contains("needs --continuation-token")
        );
        let c = args(
            &[&local[..], &["--continuation-token", "t", "--continuation-file-name", "x"]].concat(),
        )
        .unwrap();
        assert_eq!(
            c.resume,
            Some(Resume {
                fetch_id: "f".into(),
                token: Some("t".into()),
                from_file: Some("x".into())
            })
        );
    }
}
