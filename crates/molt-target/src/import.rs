//! CockroachDB `IMPORT INTO`: statements over batches of intermediate files, and narrowing a
//! failed batch down to its first bad file.
//!
//! `IMPORT INTO` is atomic per statement: a failed statement loads nothing. So when a batch
//! fails, [`import_files`] splits it in halves and imports the left half first: a left half
//! that succeeds stays loaded and the search moves right, one that fails is split again. The
//! search ends at the lowest failing file with every file before it loaded exactly once and
//! none after it, which is what a continuation token needs (resume from that file).
//!
//! This module was checked on generated SQL and on the narrowing logic; no CockroachDB server
//! runs in this project's test bed (see `docs/live-coverage.md`).

use std::future::Future;

use molt_schema::{TableName, ddl::quote_literal, quote_ident};

/// One `IMPORT INTO` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportStatement {
    /// Table to load.
    pub table: TableName,
    /// Columns in file order.
    pub columns: Vec<String>,
    /// URLs CockroachDB reads (`http://…`, `s3://…?AWS_…`, `gs://…`, `azure-blob://…`).
    pub urls: Vec<String>,
    /// Whether the files are gzip-compressed.
    pub gzip: bool,
}

impl ImportStatement {
    /// The SQL text. NULL is the empty unquoted field (`nullif = ''`); a quoted `""` stays the
    /// empty string, as PostgreSQL's CSV writes them.
    pub fn sql(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        let urls: Vec<String> = self.urls.iter().map(|u| quote_literal(u)).collect();
        let mut opts = vec!["nullif = ''".to_owned()];
        if self.gzip {
            opts.push("decompress = 'gzip'".to_owned());
        }
        format!(
            "IMPORT INTO {} ({}) CSV DATA ({}) WITH {}",
            self.table.quoted(),
            cols.join(", "),
            urls.join(", "),
            opts.join(", ")
        )
    }

    /// The SQL with credentials in URLs replaced by `redacted` (for debug logs).
    pub fn redacted_sql(&self) -> String {
        let mut copy = self.clone();
        copy.urls = self.urls.iter().map(|u| redact_url(u)).collect();
        copy.sql()
    }
}

/// Blanks the values of credential query parameters (`AWS_SECRET_ACCESS_KEY`, `AZURE_ACCOUNT_KEY`,
/// `CREDENTIALS`, …) of a storage URL.
pub fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if is_secret_param(k) => format!("{k}=redacted"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

fn is_secret_param(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    k.contains("SECRET") || k.contains("KEY") || k.contains("TOKEN") || k == "CREDENTIALS"
}

/// The first file whose import failed, and why.
#[derive(Debug)]
pub struct ImportFailure<E> {
    /// Index (into the files given) of the lowest failing file.
    pub file_index: usize,
    /// Rows loaded from the files before it.
    pub rows_loaded: u64,
    /// The error of importing that file alone.
    pub error: E,
}

/// Imports `files` in batches of `batch_size` with `run` (which imports the given files in one
/// atomic statement and returns the rows loaded). On a failed batch, narrows to the lowest
/// failing file; returns the rows loaded before it.
///
/// # Errors
/// [`ImportFailure`] with the lowest failing file: every file before it is loaded, none after.
pub async fn import_files<F, Fut, E>(
    files: &[String],
    batch_size: usize,
    mut run: F,
) -> Result<u64, ImportFailure<E>>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<u64, E>>,
{
    let batch_size = batch_size.max(1);
    let mut rows = 0u64;
    let mut start = 0usize;
    while start < files.len() {
        let end = (start + batch_size).min(files.len());
        match run(files[start..end].to_vec()).await {
            Ok(n) => {
                rows += n;
                start = end;
            }
            Err(first) => {
                // Narrow [start, end): invariant: files before `lo` are loaded and some file
                // in [lo, hi) fails.
                let (mut lo, mut hi, mut last_err) = (start, end, first);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    match run(files[lo..mid].to_vec()).await {
                        Ok(n) => {
                            rows += n;
                            lo = mid;
                        }
                        Err(e) => {
                            last_err = e;
                            hi = mid;
                        }
                    }
                }
                return Err(ImportFailure { file_index: lo, rows_loaded: rows, error: last_err });
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn statement_text() {
        let s = ImportStatement {
            table: TableName::new("public", "employees"),
            columns: vec!["id".into(), "name".into()],
            urls: vec![
                "http://10.0.0.1:3000/public.employees/shard_01_part_00000001.csv.gz".into(),
                "s3://b/p/x.csv.gz?AWS_ACCESS_KEY_ID=AK&AWS_SECRET_ACCESS_KEY=s3cr3t".into(),
            ],
            gzip: true,
        };
        assert_eq!(
            s.sql(),
            "IMPORT INTO \"public\".\"employees\" (\"id\", \"name\") CSV DATA ('http://10.0.0.1:3000/public.employees/shard_01_part_00000001.csv.gz', 's3://b/p/x.csv.gz?AWS_ACCESS_KEY_ID=AK&AWS_SECRET_ACCESS_KEY=s3cr3t') WITH nullif = '', decompress = 'gzip'"
        );
        let red = s.redacted_sql();
        assert!(!red.contains("s3cr3t") && !red.contains("=AK"), "{red}");
        assert!(red.contains("AWS_SECRET_ACCESS_KEY=redacted"));
    }

    fn files(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    /// Runs the narrowing against a fake loader (pure logic: which files a statement would
    /// load), recording loaded files so that duplicates show.
    fn simulate(n: usize, batch: usize, bad: &[usize]) -> (Result<u64, usize>, Vec<String>) {
        let loaded = RefCell::new(Vec::new());
        let bad: Vec<String> = bad.iter().map(|i| format!("f{i}")).collect();
        let all = files(n);
        let fut = import_files(&all, batch, |chunk: Vec<String>| {
            let fail = chunk.iter().any(|f| bad.contains(f));
            if !fail {
                loaded.borrow_mut().extend(chunk.iter().cloned());
            }
            let n = chunk.len() as u64;
            async move { if fail { Err("bad file") } else { Ok(n) } }
        });
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let out = rt.block_on(fut).map_err(|f| f.file_index);
        (out, loaded.into_inner())
    }

    #[test]
    fn narrows_to_lowest_bad_file_loading_each_earlier_file_once() {
        for n in 1..20 {
            for batch in [1, 3, 4, 1000] {
                for bad in 0..n {
                    let (res, loaded) = simulate(n, batch, &[bad, (bad + 2).min(n - 1)]);
                    assert_eq!(res, Err(bad), "n={n} batch={batch} bad={bad}");
                    assert_eq!(loaded, files(bad), "n={n} batch={batch} bad={bad}");
                }
            }
        }
        let (res, loaded) = simulate(7, 3, &[]);
        assert_eq!(res, Ok(7));
        assert_eq!(loaded, files(7));
    }

    #[test]
    fn redaction_keeps_other_params() {
        assert_eq!(
            redact_url("azure-blob://c/p?AZURE_ACCOUNT_NAME=acct&AZURE_ACCOUNT_KEY=k"),
            "azure-blob://c/p?AZURE_ACCOUNT_NAME=acct&AZURE_ACCOUNT_KEY=redacted"
        );
        assert_eq!(redact_url("http://h/p"), "http://h/p");
    }
}
