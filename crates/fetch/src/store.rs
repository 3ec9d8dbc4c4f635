//! Where intermediate files live: a local directory, or a bucket (`--bucket-path s3://…`,
//! `gs://…`, `azure-blob://…`) through `object_store`.
//!
//! ```text
//!  shard writer (blocking thread, gzip) ──▶ spool file ──▶ multipart upload ──▶ bucket
//!                                          (deleted once uploaded; a few per shard at most)
//!  bucket ──▶ COPY FROM STDIN (streamed)    or    IMPORT INTO … 's3://…?AWS_…' (CockroachDB reads it)
//! ```
//!
//! Objects are laid out as local files are: `{prefix}/{schema.table}/shard_NN_part_NNNNNNNN.csv[.gz]`
//! and `{prefix}/{schema.table}/_manifest.json`. Credentials come from the environment MOLT
//! documents (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`; `GOOGLE_APPLICATION_CREDENTIALS`;
//! `AZURE_ACCOUNT_NAME`, `AZURE_ACCOUNT_KEY`) or, with `--use-implicit-auth`, from the
//! machine. They reach CockroachDB only inside `IMPORT INTO` URLs, which are logged redacted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use molt_schema::TableName;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::io::AsyncWriteExt as _;

use crate::files::{self, MANIFEST, Manifest};

/// The cloud a bucket URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// `s3://bucket/prefix`.
    S3,
    /// `gs://bucket/prefix`.
    Gcs,
    /// `azure-blob://container/prefix`.
    Azure,
}

/// A parsed `--bucket-path` (its query parameters ignored, as MOLT does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPath {
    /// Which cloud.
    pub cloud: Cloud,
    /// Bucket or container.
    pub bucket: String,
    /// Key prefix, without slashes at either end (may be empty).
    pub prefix: String,
}

impl BucketPath {
    /// Parses `s3://b/p`, `gs://b/p` or `azure-blob://c/p`.
    ///
    /// # Errors
    /// Another scheme, or no bucket.
    pub fn parse(text: &str) -> anyhow::Result<BucketPath> {
        let without_query = text.split('?').next().unwrap_or_default();
        let (scheme, rest) = without_query.split_once("://").with_context(|| {
            format!("--bucket-path {text:?} is not s3://bucket/path, gs://bucket/path or azure-blob://container/path")
        })?;
        let cloud = match scheme {
            "s3" => Cloud::S3,
            "gs" => Cloud::Gcs,
            "azure-blob" | "azure" => Cloud::Azure,
            other => bail!("--bucket-path scheme {other:?} is not one of s3, gs, azure-blob"),
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("--bucket-path {text:?} names no bucket");
        }
        Ok(BucketPath {
            cloud,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    fn scheme(&self) -> &'static str {
        match self.cloud {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
            Cloud::Azure => "azure-blob",
        }
    }

    /// The key of a table's file.
    pub fn key(&self, table: &TableName, name: &str) -> String {
        if self.prefix.is_empty() {
            format!("{table}/{name}")
        } else {
            format!("{}/{table}/{name}", self.prefix)
        }
    }

    /// The URL of a file without credentials (for logs).
    pub fn display_url(&self, table: &TableName, name: &str) -> String {
        format!("{}://{}/{}", self.scheme(), self.bucket, self.key(table, name))
    }
}

/// How fetch and CockroachDB authenticate to the bucket.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// `--use-implicit-auth`.
    pub implicit: bool,
    /// `--assume-role` (only with implicit auth).
    pub assume_role: Option<String>,
    /// `--import-region` (S3).
    pub region: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn enc(v: &str) -> String {
    utf8_percent_encode(v, NON_ALPHANUMERIC).to_string()
}

/// A bucket opened for fetch.
pub struct Bucket {
    path: BucketPath,
    store: Arc<dyn ObjectStore>,
    auth: Auth,
    /// Local directory where parts are written before their upload.
    spool: PathBuf,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Bucket {
    /// Opens the bucket with credentials from the environment (or the machine's, with
    /// implicit auth).
    ///
    /// # Errors
    /// Missing credentials, with the variables to set; a store that cannot be built.
    pub fn open(path: BucketPath, auth: Auth) -> anyhow::Result<Bucket> {
        if auth.assume_role.is_some() && !auth.implicit {
            tracing::warn!("--assume-role is ignored without --use-implicit-auth");
        }
        let store: Arc<dyn ObjectStore> = match path.cloud {
            Cloud::S3 => {
                if !auth.implicit
                    && (env("AWS_ACCESS_KEY_ID").is_none()
                        || env("AWS_SECRET_ACCESS_KEY").is_none())
                {
                    bail!(
                        "--bucket-path s3://{}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION), or pass --use-implicit-auth to use this machine's credentials",
                        path.bucket
                    );
                }
                let mut b =
                    object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&path.bucket);
                if let Some(r) = &auth.region {
                    b = b.with_region(r);
                }
                Arc::new(b.build().context("--bucket-path: configuring S3")?)
            }
            Cloud::Gcs => {
                if !auth.implicit && env("GOOGLE_APPLICATION_CREDENTIALS").is_none() {
                    bail!(
                        "--bucket-path gs://{}: set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or pass --use-implicit-auth",
                        path.bucket
                    );
                }
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&path.bucket);
                if let Some(f) = env("GOOGLE_APPLICATION_CREDENTIALS") {
                    b = b.with_application_credentials(f);
                }
                Arc::new(b.build().context("--bucket-path: configuring Google Cloud Storage")?)
            }
            Cloud::Azure => {
                let account =
                    env("AZURE_ACCOUNT_NAME").or_else(|| env("AZURE_STORAGE_ACCOUNT_NAME"));
                let key = env("AZURE_ACCOUNT_KEY").or_else(|| env("AZURE_STORAGE_ACCOUNT_KEY"));
                if account.is_none() || (!auth.implicit && key.is_none()) {
                    bail!(
                        "--bucket-path azure-blob://{}: set AZURE_ACCOUNT_NAME and AZURE_ACCOUNT_KEY (or AZURE_CLIENT_SECRET and AZURE_TENANT_ID with --use-implicit-auth)",
                        path.bucket
                    );
                }
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(&path.bucket);
                if let Some(a) = account {
                    b = b.with_account(a);
                }
                if let Some(k) = key {
                    b = b.with_access_key(k);
                }
                Arc::new(b.build().context("--bucket-path: configuring Azure Blob Storage")?)
            }
        };
        let spool = std::env::temp_dir().join(format!("molt-fetch-spool-{}", std::process::id()));
        Ok(Bucket { path, store, auth, spool })
    }

    /// Lists the prefix once, so that a wrong credential, bucket or endpoint stops fetch
    /// before any table starts.
    ///
    /// # Errors
    /// The store's answer, with the variables to check.
    pub async fn check(&self) -> anyhow::Result<()> {
        let prefix = ObjectPath::from(self.path.prefix.as_str());
        if let Err(e) = self.store.list_with_delimiter(Some(&prefix)).await {
            return Err(anyhow::Error::new(e).context(format!(
                "--bucket-path {}://{}/{}: the bucket cannot be listed; check the credentials ({}), the bucket name and the endpoint",
                self.path.scheme(),
                self.path.bucket,
                self.path.prefix,
                match self.path.cloud {
                    Cloud::S3 => "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION",
                    Cloud::Gcs => "GOOGLE_APPLICATION_CREDENTIALS",
                    Cloud::Azure => "AZURE_ACCOUNT_NAME, AZURE_ACCOUNT_KEY",
                }
            )));
        }
        Ok(())
    }

    /// The bucket path.
    pub fn path(&self) -> &BucketPath {
        &self.path
    }

    fn object(&self, table: &TableName, name: &str) -> ObjectPath {
        ObjectPath::from(self.path.key(table, name))
    }

    fn table_prefix(&self, table: &TableName) -> ObjectPath {
        ObjectPath::from(self.path.key(table, "").trim_end_matches('/'))
    }

    /// Uploads a local file (multipart for large ones) and deletes it.
    ///
    /// # Errors
    /// I/O or upload errors.
    pub async fn upload(&self, local: &Path, table: &TableName, name: &str) -> anyhow::Result<()> {
        let target = self.object(table, name);
        let mut file = tokio::fs::File::open(local)
            .await
            .with_context(|| format!("opening {}", local.display()))?;
        let mut writer = object_store::buffered::BufWriter::with_capacity(
            Arc::clone(&self.store),
            target,
            8 * 1024 * 1024,
        );
        let copied = tokio::io::copy(&mut file, &mut writer).await;
        if let Err(e) = copied {
            let _ = writer.abort().await;
            return Err(anyhow::Error::new(e)
                .context(format!("uploading {}", self.path.display_url(table, name))));
        }
        writer.shutdown().await.with_context(|| {
            format!("finishing the upload of {}", self.path.display_url(table, name))
        })?;
        tokio::fs::remove_file(local)
            .await
            .with_context(|| format!("removing {}", local.display()))?;
        Ok(())
    }

    async fn put(&self, table: &TableName, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&self.object(table, name), bytes.into())
            .await
            .with_context(|| format!("writing {}", self.path.display_url(table, name)))?;
        Ok(())
    }

    async fn get(&self, table: &TableName, name: &str) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(&self.object(table, name)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("reading {}", self.path.display_url(table, name)))),
        }
    }

    async fn names(&self, table: &TableName) -> anyhow::Result<Vec<String>> {
        let prefix = self.table_prefix(table);
        let mut out = Vec::new();
        let mut list = self.store.list(Some(&prefix));
        while let Some(meta) = list.next().await {
            let meta =
                meta.with_context(|| format!("listing {}", self.path.display_url(table, "")))?;
            if let Some(name) = meta.location.filename() {
                out.push(name.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete_table(&self, table: &TableName) -> anyhow::Result<()> {
        for name in self.names(table).await? {
            self.store
                .delete(&self.object(table, &name))
                .await
                .with_context(|| format!("deleting {}", self.path.display_url(table, &name)))?;
        }
        Ok(())
    }

    /// The URL CockroachDB's `IMPORT INTO` reads a file from, credentials included.
    pub fn import_url(&self, table: &TableName, name: &str) -> String {
        import_url(&self.path, &self.auth, table, name, env)
    }
}

/// The `IMPORT INTO` URL of a file: the bucket path plus CockroachDB's credential parameters,
/// taken from `getenv` (the process environment in fetch).
pub fn import_url(
    path: &BucketPath,
    auth: &Auth,
    table: &TableName,
    name: &str,
    getenv: impl Fn(&str) -> Option<String>,
) -> String {
    let base = path.display_url(table, name);
    let mut params: Vec<String> = Vec::new();
    if auth.implicit {
        params.push("AUTH=implicit".into());
        if let Some(role) = &auth.assume_role {
            params.push(format!("ASSUME_ROLE={}", enc(role)));
        }
    }
    match path.cloud {
        Cloud::S3 => {
            if !auth.implicit {
                for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
                    if let Some(v) = getenv(var) {
                        params.push(format!("{var}={}", enc(&v)));
                    }
                }
            }
            if let Some(r) = auth.region.clone().or_else(|| getenv("AWS_REGION")) {
                params.push(format!("AWS_REGION={}", enc(&r)));
            }
            if let Some(e) = getenv("AWS_ENDPOINT").or_else(|| getenv("AWS_ENDPOINT_URL")) {
                params.push(format!("AWS_ENDPOINT={}", enc(&e)));
            }
        }
        Cloud::Gcs => {
            if !auth.implicit
                && let Some(file) = getenv("GOOGLE_APPLICATION_CREDENTIALS")
                && let Ok(json) = std::fs::read(&file)
            {
                params.push("AUTH=specified".into());
                params.push(format!("CREDENTIALS={}", enc(&base64_encode(&json))));
            }
        }
        Cloud::Azure => {
            if let Some(a) =
                getenv("AZURE_ACCOUNT_NAME").or_else(|| getenv("AZURE_STORAGE_ACCOUNT_NAME"))
            {
                params.push(format!("AZURE_ACCOUNT_NAME={}", enc(&a)));
            }
            if !auth.implicit
                && let Some(k) =
                    getenv("AZURE_ACCOUNT_KEY").or_else(|| getenv("AZURE_STORAGE_ACCOUNT_KEY"))
            {
                params.push(format!("AZURE_ACCOUNT_KEY={}", enc(&k)));
            }
        }
    }
    if params.is_empty() { base } else { format!("{base}?{}", params.join("&")) }
}

/// Standard base64 (CockroachDB's `CREDENTIALS=` parameter).
fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Where a fetch's intermediate files are.
#[derive(Debug)]
pub enum Store {
    /// A local directory (`--local-path`).
    Local(PathBuf),
    /// A bucket (`--bucket-path`).
    Bucket(Bucket),
}

impl Store {
    /// The directory shard writers write into: the files themselves (local) or a spool of
    /// parts waiting for upload (bucket).
    pub fn write_dir(&self) -> &Path {
        match self {
            Store::Local(dir) => dir,
            Store::Bucket(b) => &b.spool,
        }
    }

    /// The manifest of a table's complete export, if there is one.
    ///
    /// # Errors
    /// Unreadable or malformed manifests.
    pub async fn read_manifest(&self, table: &TableName) -> anyhow::Result<Option<Manifest>> {
        match self {
            Store::Local(dir) => Ok(files::read_manifest(dir, table)?),
            Store::Bucket(b) => match b.get(table, MANIFEST).await? {
                None => Ok(None),
                Some(bytes) => Ok(Some(files::parse_manifest(&bytes).with_context(|| {
                    format!("{} is not a fetch manifest", b.path.display_url(table, MANIFEST))
                })?)),
            },
        }
    }

    /// Writes a table's manifest (last, after every file).
    ///
    /// # Errors
    /// I/O or upload errors.
    pub async fn write_manifest(&self, table: &TableName, m: &Manifest) -> anyhow::Result<()> {
        match self {
            Store::Local(dir) => Ok(files::write_manifest(dir, table, m)?),
            Store::Bucket(b) => b.put(table, MANIFEST, files::manifest_json(m).into_bytes()).await,
        }
    }

    /// The data files of a table, by name (for files exported without a manifest).
    ///
    /// # Errors
    /// Listing errors.
    pub async fn list_files(&self, table: &TableName) -> anyhow::Result<Vec<String>> {
        let names = match self {
            Store::Local(dir) => files::list_table_files(dir, table)?
                .into_iter()
                .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
                .collect(),
            Store::Bucket(b) => b.names(table).await?,
        };
        Ok(names.into_iter().filter(|n| files::is_data_file(n)).collect())
    }

    /// Removes a table's files (before a fresh export, and for `--cleanup`).
    ///
    /// # Errors
    /// I/O or delete errors.
    pub async fn remove_table(&self, table: &TableName) -> anyhow::Result<()> {
        match self {
            Store::Local(dir) => {
                let d = files::table_dir(dir, table);
                if d.exists() {
                    std::fs::remove_dir_all(&d)
                        .with_context(|| format!("removing {}", d.display()))?;
                }
                Ok(())
            }
            Store::Bucket(b) => {
                let d = files::table_dir(&b.spool, table);
                if d.exists() {
                    std::fs::remove_dir_all(&d)
                        .with_context(|| format!("removing {}", d.display()))?;
                }
                b.delete_table(table).await
            }
        }
    }

    /// A file's bytes, streamed (decompressed when it is gzip).
    ///
    /// # Errors
    /// A file that cannot be opened.
    pub async fn read(
        &self,
        table: &TableName,
        name: &str,
    ) -> anyhow::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        match self {
            Store::Local(dir) => {
                let rx = files::read_chunks(files::table_dir(dir, table).join(name));
                Ok(futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|c| (c.map(Bytes::from), rx))
                })
                .boxed())
            }
            Store::Bucket(b) => {
                if name.ends_with(".gz") {
                    bail!(
                        "{}: COPY reads plain CSV; export with --compression none",
                        b.path.display_url(table, name)
                    );
                }
                let got = b
                    .store
                    .get(&b.object(table, name))
                    .await
                    .with_context(|| format!("reading {}", b.path.display_url(table, name)))?;
                Ok(got.into_stream().map(|r| r.map_err(std::io::Error::other)).boxed())
            }
        }
    }

    /// A file's location for logs.
    pub fn display(&self, table: &TableName, name: &str) -> String {
        match self {
            Store::Local(dir) => files::table_dir(dir, table).join(name).display().to_string(),
            Store::Bucket(b) => b.path.display_url(table, name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paths() {
        let p = BucketPath::parse("s3://bucket/some/prefix/?region=x").unwrap();
        assert_eq!(
            (p.cloud, p.bucket.as_str(), p.prefix.as_str()),
            (Cloud::S3, "bucket", "some/prefix")
        );
        let t = TableName::new("migration_schema", "employees");
        assert_eq!(
            p.display_url(&t, "shard_01_part_00000001.csv.gz"),
            "s3://bucket/some/prefix/migration_schema.employees/shard_01_part_00000001.csv.gz"
        );
        let g = BucketPath::parse("gs://b").unwrap();
        assert_eq!(g.key(&t, "f"), "migration_schema.employees/f");
        assert_eq!(BucketPath::parse("azure-blob://c/p").unwrap().cloud, Cloud::Azure);
        assert!(
            BucketPath::parse("ftp://x/y").unwrap_err().to_string().contains("s3, gs, azure-blob")
        );
        assert!(BucketPath::parse("s3:///p").is_err());
        assert!(BucketPath::parse("bucket/p").is_err());
    }

    #[test]
    fn import_urls_carry_credentials_cockroachdb_understands() {
        let t = TableName::new("public", "employees");
        let p = BucketPath::parse("s3://b/pre").unwrap();
        let vars = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIA1".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("se/cr+et".to_owned()),
            "AWS_ENDPOINT" => Some("http://127.0.0.1:9000".to_owned()),
            "AZURE_ACCOUNT_NAME" => Some("acct".to_owned()),
            "AZURE_ACCOUNT_KEY" => Some("k==".to_owned()),
            _ => None,
        };
        let auth = Auth { region: Some("us-east-1".into()), ..Auth::default() };
        assert_eq!(
            import_url(&p, &auth, &t, "f.csv.gz", vars),
            "s3://b/pre/public.employees/f.csv.gz?AWS_ACCESS_KEY_ID=AKIA1&AWS_SECRET_ACCESS_KEY=se%2Fcr%2Bet&AWS_REGION=us%2Deast%2D1&AWS_ENDPOINT=http%3A%2F%2F127%2E0%2E0%2E1%3A9000"
        );
        let implicit = Auth {
            implicit: true,
            assume_role: Some("arn:aws:iam::1:role/r".into()),
            region: None,
        };
        assert_eq!(
            import_url(&p, &implicit, &t, "f", |_| None),
            "s3://b/pre/public.employees/f?AUTH=implicit&ASSUME_ROLE=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"
        );
        let az = BucketPath::parse("azure-blob://c/p").unwrap();
        assert_eq!(
            import_url(&az, &Auth::default(), &t, "f", vars),
            "azure-blob://c/p/public.employees/f?AZURE_ACCOUNT_NAME=acct&AZURE_ACCOUNT_KEY=k%3D%3D"
        );
        let redacted = molt_target::import::redact_url(&import_url(&p, &auth, &t, "f", vars));
        assert!(!redacted.contains("se%2Fcr") && !redacted.contains("AKIA1"), "{redacted}");
    }

    #[test]
    fn base64_as_cockroachdb_reads_it() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
