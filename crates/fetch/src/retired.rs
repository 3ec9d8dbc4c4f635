//! Flags older MOLT releases documented and fetch no longer has (spec §3.2). Commands copied
//! from those docs still parse: each retired flag is mapped to its replacement or ignored,
//! and [`run()`](crate::run()) logs one warning per flag naming it and what took its place.
//!
//! | retired | now |
//! |---|---|
//! | `--pglogical-ignore-wal-check` | `--ignore-replication-check` |
//! | `--table-splits N`, `--concurrency-per-table N` | `--export-concurrency N` |
//! | `--s3-bucket B`, `--gcp-bucket B` | `--bucket-path s3://B`, `gs://B` |
//! | `--pglogical-replication-slot-drop-if-exists` | `--pglogical-publication-and-slot-drop-and-recreate` |
//! | `--mode data-load-and-replication`, `--ongoing-replication` | `--mode data-load`, then the `replicator pglogical` command fetch prints |
//! | `--replicator-flags F` | appended to that command; ignored otherwise |
//! | `--pglogical-publication-name`, `--pglogical-replication-slot-plugin`, `--changefeeds-path`, `--metrics-scrape-interval` | ignored (the publication is `molt_fetch`, the plugin `pgoutput`) |
//!
//! `--mode replication-only` and `--mode failback` cannot be mapped: fetch stops and says
//! which `replicator` command does that now.

use anyhow::bail;

use crate::FetchArgs;

/// The retired flags, hidden from `--help`. Go's boolean flags take `--flag` or
/// `--flag=false`, and so do these.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RetiredArgs {
    /// Retired: flags for the replicator fetch used to start.
    #[arg(long = "replicator-flags", hide = true, allow_hyphen_values = true)]
    pub replicator_flags: Option<String>,
    /// Retired: changefeed settings of `--mode failback`.
    #[arg(long = "changefeeds-path", hide = true)]
    pub changefeeds_path: Option<String>,
    /// Retired: the publication is always `molt_fetch`.
    #[arg(long = "pglogical-publication-name", hide = true)]
    pub pglogical_publication_name: Option<String>,
    /// Retired: the slot's plugin is always `pgoutput`.
    #[arg(long = "pglogical-replication-slot-plugin", hide = true)]
    pub pglogical_replication_slot_plugin: Option<String>,
    /// Retired: `--pglogical-publication-and-slot-drop-and-recreate`.
    #[arg(
        long = "pglogical-replication-slot-drop-if-exists",
        hide = true,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub pglogical_replication_slot_drop_if_exists: Option<bool>,
    /// Retired: `--ignore-replication-check`.
    #[arg(long = "pglogical-ignore-wal-check", hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub pglogical_ignore_wal_check: Option<bool>,
    /// Retired: `--mode data-load-and-replication`.
    #[arg(long = "ongoing-replication", hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub ongoing_replication: Option<bool>,
    /// Retired: `--bucket-path s3://…`.
    #[arg(long = "s3-bucket", hide = true)]
    pub s3_bucket: Option<String>,
    /// Retired: `--bucket-path gs://…`.
    #[arg(long = "gcp-bucket", hide = true)]
    pub gcp_bucket: Option<String>,
    /// Retired: `--export-concurrency`.
    #[arg(long = "table-splits", hide = true)]
    pub table_splits: Option<u32>,
    /// Retired: `--export-concurrency`.
    #[arg(long = "concurrency-per-table", hide = true)]
    pub concurrency_per_table: Option<u32>,
    /// Retired: metrics are scraped from `--metrics-listen-addr` at the scraper's pace.
    #[arg(long = "metrics-scrape-interval", hide = true)]
    pub metrics_scrape_interval: Option<String>,
}

/// A retired flag that was given, and what fetch does instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredFlag {
    /// The flag as typed (`--table-splits`, `--mode data-load-and-replication`).
    pub flag: String,
    /// The flag that replaces it; empty when it is ignored.
    pub replacement: String,
    /// What fetch does about it, for the warning.
    pub note: String,
}

/// `--mode data-load-and-replication`: load, then print the replicator command to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationHandoff {
    /// `--replicator-flags`, appended to the command.
    pub replicator_flags: Option<String>,
}

/// What the retired flags of a command come to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// One per retired flag given.
    pub flags: Vec<RetiredFlag>,
    /// `--mode` as it is spelled today.
    pub mode: String,
    /// `--pglogical-ignore-wal-check`.
    pub ignore_replication_check: bool,
    /// `--table-splits` / `--concurrency-per-table`.
    pub export_concurrency: Option<u32>,
    /// `--s3-bucket` / `--gcp-bucket` as a bucket URL.
    pub bucket_path: Option<String>,
    /// `--pglogical-replication-slot-drop-if-exists`.
    pub drop_and_recreate_slot: bool,
    /// `--mode data-load-and-replication` / `--ongoing-replication`.
    pub handoff: Option<ReplicationHandoff>,
}

impl Resolved {
    fn mapped(&mut self, flag: &str, replacement: &str, note: String) {
        self.flags.push(RetiredFlag {
            flag: flag.to_owned(),
            replacement: replacement.to_owned(),
            note: format!("{flag} is retired: {note}; update the command"),
        });
    }

    fn ignored(&mut self, flag: &str, why: &str) {
        self.flags.push(RetiredFlag {
            flag: flag.to_owned(),
            replacement: String::new(),
            note: format!("{flag} is retired and ignored: {why}"),
        });
    }
}

/// Maps the retired flags of `a` to today's.
///
/// # Errors
/// `--mode replication-only` and `--mode failback`, with the `replicator` command that does
/// that now; a retired bucket flag together with `--bucket-path`.
pub fn resolve(a: &FetchArgs) -> anyhow::Result<Resolved> {
    let r = &a.retired;
    let mut out = Resolved { mode: a.mode.clone(), ..Resolved::default() };
    let replication = "fetch runs the data load and then prints the `replicator pglogical` command that replicates from its slot";
    match a.mode.as_str() {
        "data-load-and-replication" | "data_load_and_replication" => {
            out.mapped(&format!("--mode {}", a.mode), "--mode data-load", replication.to_owned());
            out.mode = "data-load".into();
            out.handoff = Some(ReplicationHandoff::default());
        }
        "replication-only" | "replication_only" => bail!(
            "--mode replication-only was retired from MOLT fetch: replication runs in `replicator pglogical` now; run it with the --slotName of the load and the same --stagingSchema, and it resumes from its checkpoint (docs/replicator.md)"
        ),
        "failback" => bail!(
            "--mode failback was retired from MOLT fetch: failback is MOLT's `replicator start` (a CockroachDB changefeed into the old source), which this toolkit's replicator does not implement yet; --changefeeds-path went with it"
        ),
        _ => {}
    }
    if r.ongoing_replication == Some(true) && out.handoff.is_none() {
        out.mapped("--ongoing-replication", "--mode data-load", replication.to_owned());
        out.mode = "data-load".into();
        out.handoff = Some(ReplicationHandoff::default());
    } else if r.ongoing_replication.is_some() {
        out.ignored("--ongoing-replication", "fetch no longer replicates");
    }
    if let Some(flags) = &r.replicator_flags {
        match &mut out.handoff {
            Some(h) => {
                h.replicator_flags = Some(flags.clone());
                out.mapped(
                    "--replicator-flags",
                    "",
                    "its flags are appended to the replicator command fetch prints at the end"
                        .into(),
                );
            }
            None => out.ignored(
                "--replicator-flags",
                "fetch no longer starts a replicator; pass them to `replicator pglogical`",
            ),
        }
    }
    if r.changefeeds_path.is_some() {
        out.ignored("--changefeeds-path", "failback is MOLT's `replicator start`, not fetch");
    }
    if let Some(name) = &r.pglogical_publication_name {
        let why = format!(
            "fetch creates publication {} (give replicator --publicationName {0}){}",
            molt_source_pg::snapshot::FETCH_PUBLICATION,
            if name == molt_source_pg::snapshot::FETCH_PUBLICATION {
                String::new()
            } else {
                format!(", not {name}")
            }
        );
        out.ignored("--pglogical-publication-name", &why);
    }
    if let Some(plugin) = &r.pglogical_replication_slot_plugin {
        let why = if plugin == "pgoutput" {
            "slots always use pgoutput".to_owned()
        } else {
            format!("slots always use pgoutput, which replicator reads, not {plugin}")
        };
        out.ignored("--pglogical-replication-slot-plugin", &why);
    }
    if let Some(on) = r.pglogical_replication_slot_drop_if_exists {
        out.drop_and_recreate_slot = on;
        out.mapped(
            "--pglogical-replication-slot-drop-if-exists",
            "--pglogical-publication-and-slot-drop-and-recreate",
            "acting as --pglogical-publication-and-slot-drop-and-recreate, which drops and recreates publication molt_fetch as well as the slot".into(),
        );
    }
    if let Some(on) = r.pglogical_ignore_wal_check {
        out.ignore_replication_check = on;
        out.mapped(
            "--pglogical-ignore-wal-check",
            "--ignore-replication-check",
            "acting as --ignore-replication-check".into(),
        );
    }
    for (flag, value) in
        [("--table-splits", r.table_splits), ("--concurrency-per-table", r.concurrency_per_table)]
    {
        if let Some(n) = value {
            out.export_concurrency = Some(n);
            out.mapped(flag, "--export-concurrency", format!("acting as --export-concurrency {n}"));
        }
    }
    for (flag, scheme, value) in
        [("--s3-bucket", "s3", &r.s3_bucket), ("--gcp-bucket", "gs", &r.gcp_bucket)]
    {
        let Some(bucket) = value else { continue };
        if a.bucket_path.is_some() || out.bucket_path.is_some() {
            bail!(
                "{flag} (retired) and --bucket-path both name the bucket: keep --bucket-path {scheme}://…"
            );
        }
        let url = if bucket.contains("://") {
            bucket.clone()
        } else {
            format!("{scheme}://{}", bucket.trim_matches('/'))
        };
        out.mapped(flag, "--bucket-path", format!("acting as --bucket-path {url}"));
        out.bucket_path = Some(url);
    }
    if r.metrics_scrape_interval.is_some() {
        out.ignored(
            "--metrics-scrape-interval",
            "metrics are served on --metrics-listen-addr and scraped at the scraper's interval",
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn resolved(extra: &[&str]) -> anyhow::Result<Resolved> {
        let mut v = vec!["fetch", "--source", "postgres://u@h/db", "--target", "postgres://u@t/db"];
        v.extend_from_slice(extra);
        resolve(&FetchArgs::try_parse_from(v)?)
    }

    fn flags(r: &Resolved) -> Vec<(&str, &str)> {
        r.flags.iter().map(|f| (f.flag.as_str(), f.replacement.as_str())).collect()
    }

    #[test]
    fn every_retired_flag_parses() {
        let r = resolved(&[
            "--replicator-flags",
            "--stagingSchema _replicator -v",
            "--changefeeds-path",
            "cf.json",
            "--pglogical-publication-name",
            "molt_fetch",
            "--pglogical-replication-slot-plugin",
            "pgoutput",
            "--pglogical-replication-slot-drop-if-exists",
            "--pglogical-ignore-wal-check",
            "--ongoing-replication=false",
            "--s3-bucket",
            "my-bucket",
            "--table-splits",
            "8",
            "--metrics-scrape-interval",
            "10s",
        ])
        .unwrap();
        assert_eq!(
            flags(&r),
            [
                ("--ongoing-replication", ""),
                ("--replicator-flags", ""),
                ("--changefeeds-path", ""),
                ("--pglogical-publication-name", ""),
                ("--pglogical-replication-slot-plugin", ""),
                (
                    "--pglogical-replication-slot-drop-if-exists",
                    "--pglogical-publication-and-slot-drop-and-recreate"
                ),
                ("--pglogical-ignore-wal-check", "--ignore-replication-check"),
                ("--table-splits", "--export-concurrency"),
                ("--s3-bucket", "--bucket-path"),
                ("--metrics-scrape-interval", ""),
            ]
        );
        assert!(r.ignore_replication_check && r.drop_and_recreate_slot);
        assert_eq!(r.export_concurrency, Some(8));
        assert_eq!(r.bucket_path.as_deref(), Some("s3://my-bucket"));
        assert_eq!(r.handoff, None, "--ongoing-replication=false asks for no replication");
        assert!(r.flags.iter().all(|f| f.note.starts_with(&f.flag)), "{:?}", r.flags);
    }

    #[test]
    fn current_commands_have_no_retired_flags() {
        let r = resolved(&["--direct-copy", "--mode", "export-only"]).unwrap();
        assert_eq!(r, Resolved { mode: "export-only".into(), ..Resolved::default() });
    }

    #[test]
    fn mapped_values() {
        let r = resolved(&["--gcp-bucket", "gs://b/p", "--concurrency-per-table", "2"]).unwrap();
        assert_eq!(r.bucket_path.as_deref(), Some("gs://b/p"));
        assert_eq!(r.export_concurrency, Some(2));
        let r = resolved(&["--pglogical-ignore-wal-check=false"]).unwrap();
        assert!(!r.ignore_replication_check);
        assert_eq!(flags(&r), [("--pglogical-ignore-wal-check", "--ignore-replication-check")]);
        let e = resolved(&["--s3-bucket", "b", "--bucket-path", "s3://c"]).unwrap_err();
        assert!(e.to_string().contains("keep --bucket-path"), "{e}");
    }

    #[test]
    fn integrated_replication_becomes_a_data_load_and_a_printed_command() {
        for extra in [
            &["--mode", "data-load-and-replication"][..],
            &["--mode", "data_load_and_replication"][..],
            &["--ongoing-replication"][..],
        ] {
            let mut extra = extra.to_vec();
            extra.extend(["--replicator-flags", "--stagingSchema s"]);
            let r = resolved(&extra).unwrap();
            assert_eq!(r.mode, "data-load");
            assert_eq!(
                r.handoff,
                Some(ReplicationHandoff { replicator_flags: Some("--stagingSchema s".into()) })
            );
            assert_eq!(r.flags[0].replacement, "--mode data-load", "{extra:?}");
        }
        let r = resolved(&["--replicator-flags", "-v"]).unwrap();
        assert_eq!(r.handoff, None);
        assert!(r.flags[0].note.contains("ignored"), "{:?}", r.flags);
    }

    #[test]
    fn replication_only_and_failback_point_to_replicator() {
        let e = resolved(&["--mode", "replication-only"]).unwrap_err().to_string();
        assert!(e.contains("replicator pglogical") && e.contains("--stagingSchema"), "{e}");
        let e = resolved(&["--mode", "failback"]).unwrap_err().to_string();
        assert!(e.contains("replicator start"), "{e}");
    }
}
