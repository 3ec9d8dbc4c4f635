//! Intermediate files: `{dir}/{schema.table}/shard_{NN}_part_{NNNNNNNN}.csv[.gz]`, cut at
//! `--flush-rows` rows or `--flush-size` bytes (whichever comes first), written and read on
//! blocking threads so that compression never stalls the async runtime.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::Compression as GzLevel;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use molt_schema::TableName;
use tokio::sync::mpsc;

use crate::config::Compression;

/// One written file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Full path.
    pub path: PathBuf,
    /// File name (`shard_01_part_00000001.csv.gz`).
    pub name: String,
    /// Rows in it.
    pub rows: u64,
}

/// The directory of a table's files.
pub fn table_dir(root: &Path, table: &TableName) -> PathBuf {
    root.join(table.to_string())
}

/// The name of part `part` of shard `shard` (both 1-based).
pub fn file_name(shard: u32, part: u32, compression: Compression) -> String {
    let ext = match compression {
        Compression::Gzip => "csv.gz",
        Compression::None => "csv",
    };
    format!("shard_{shard:02}_part_{part:08}.{ext}")
}

/// The files of a table, in name order (shard, then part).
///
/// # Errors
/// When the directory cannot be read.
pub fn list_table_files(root: &Path, table: &TableName) -> io::Result<Vec<PathBuf>> {
    let dir = table_dir(root, table);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_data_file))
        .collect();
    files.sort();
    Ok(files)
}

/// The name of the file that marks a table's export complete.
pub const MANIFEST: &str = "_manifest.json";

/// A table's complete export: written after its last file, so its presence means every file
/// it lists is whole. A resumed fetch imports from it instead of exporting again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The fetch that exported the files.
    pub fetch_id: String,
    /// Files in load order, with their row counts.
    pub files: Vec<(String, u64)>,
    /// The columns of every file, in order (`None` in manifests of older builds, whose files
    /// hold the source's columns less excluded ones).
    pub columns: Option<Vec<String>>,
}

/// A manifest as JSON text.
pub fn manifest_json(m: &Manifest) -> String {
    let files: Vec<serde_json::Value> = m
        .files
        .iter()
        .map(|(name, rows)| serde_json::json!({"name": name, "rows": rows}))
        .collect();
    let mut v = serde_json::json!({"fetch_id": m.fetch_id, "files": files});
    if let Some(columns) = &m.columns {
        v["columns"] = serde_json::json!(columns);
    }
    v.to_string()
}

/// Parses a manifest's JSON text.
///
/// # Errors
/// Text that is not a manifest.
pub fn parse_manifest(text: &[u8]) -> io::Result<Manifest> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a fetch manifest");
    let v: serde_json::Value = serde_json::from_slice(text).map_err(|_| bad())?;
    let fetch_id = v.get("fetch_id").and_then(|f| f.as_str()).ok_or_else(bad)?.to_owned();
    let files = v
        .get("files")
        .and_then(|f| f.as_array())
        .ok_or_else(bad)?
        .iter()
        .map(|f| {
            let name = f.get("name").and_then(|n| n.as_str())?;
            let rows = f.get("rows").and_then(serde_json::Value::as_u64)?;
            Some((name.to_owned(), rows))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    let columns = match v.get("columns") {
        None => None,
        Some(c) => Some(
            c.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?,
        ),
    };
    Ok(Manifest { fetch_id, files, columns })
}

/// Writes the manifest of `table` atomically (temporary file, fsync, rename).
///
/// # Errors
/// I/O errors.
pub fn write_manifest(root: &Path, table: &TableName, m: &Manifest) -> io::Result<()> {
    let dir = table_dir(root, table);
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(manifest_json(m).as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(MANIFEST))?;
    File::open(&dir)?.sync_all()
}

/// The manifest of `table`, if its export completed.
///
/// # Errors
/// I/O errors other than a missing file, or a manifest that is not one.
pub fn read_manifest(root: &Path, table: &TableName) -> io::Result<Option<Manifest>> {
    let path = table_dir(root, table).join(MANIFEST);
    match fs::read(&path) {
        Ok(t) => parse_manifest(&t).map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a fetch manifest", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a file name is one of fetch's data files.
pub fn is_data_file(name: &str) -> bool {
    name.starts_with("shard_")
        && (name.ends_with(".csv") || name.ends_with(".csv.gz") || name.ends_with(".parquet"))
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gzip(w) => w.write_all(b),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => {
                w.flush().and_then(|()| w.into_inner().map_err(|e| e.into_error())?.sync_all())
            }
            Sink::Gzip(w) => {
                let mut inner = w.finish()?;
                inner.flush()?;
                inner.into_inner().map_err(|e| e.into_error())?.sync_all()
            }
        }
    }
}

/// Where a shard's rows go: a blocking thread that writes and rotates files.
pub struct ShardWriter {
    tx: mpsc::Sender<Vec<Bytes>>,
    done: tokio::task::JoinHandle<io::Result<Vec<WrittenFile>>>,
}

impl ShardWriter {
    /// Starts the writer of `shard` for `table` under `root`.
    pub fn start(
        root: &Path,
        table: &TableName,
        shard: u32,
        compression: Compression,
        flush_rows: Option<u64>,
        flush_size: u64,
        finished: Option<mpsc::Sender<WrittenFile>>,
    ) -> ShardWriter {
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(8);
        let dir = table_dir(root, table);
        let done = tokio::task::spawn_blocking(move || {
            fs::create_dir_all(&dir)?;
            let mut files = Vec::new();
            let mut current: Option<(Sink, WrittenFile, u64)> = None;
            let open = |part: u32| -> io::Result<(Sink, WrittenFile, u64)> {
                let name = file_name(shard, part, compression);
                let path = dir.join(&name);
                let w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
                let sink = match compression {
                    Compression::Gzip => Sink::Gzip(GzEncoder::new(w, GzLevel::fast())),
                    Compression::None => Sink::Plain(w),
                };
                Ok((sink, WrittenFile { path, name, rows: 0 }, 0))
            };
            let mut part = 0u32;
            while let Some(rows) = rx.blocking_recv() {
                for row in rows {
                    if current.is_none() {
                        part += 1;
                        current = Some(open(part)?);
                    }
                    let full = if let Some((sink, file, bytes)) = current.as_mut() {
                        sink.write_all(&row)?;
                        file.rows += 1;
                        *bytes += row.len() as u64;
                        flush_rows.is_some_and(|n| file.rows >= n) || *bytes >= flush_size
                    } else {
                        false
                    };
                    if full && let Some((sink, file, _)) = current.take() {
                        sink.finish()?;
                        if let Some(tx) = &finished {
                            tx.blocking_send(file.clone()).map_err(|_| {
                                io::Error::other("the upload of finished files stopped")
                            })?;
                        }
                        files.push(file);
                    }
                }
            }
            if let Some((sink, file, _)) = current.take() {
                sink.finish()?;
                if let Some(tx) = &finished {
                    tx.blocking_send(file.clone())
                        .map_err(|_| io::Error::other("the upload of finished files stopped"))?;
                }
                files.push(file);
            }
            Ok(files)
        });
        ShardWriter { tx, done }
    }

    /// Hands rows (each a complete CSV line) to the writer.
    ///
    /// # Errors
    /// When the writer thread has failed (its error comes from [`ShardWriter::finish`]).
    pub async fn send(&self, rows: Vec<Bytes>) -> Result<(), ()> {
        self.tx.send(rows).await.map_err(|_| ())
    }

    /// Closes the last file and returns every file written.
    ///
    /// # Errors
    /// The first I/O error of the writer.
    pub async fn finish(self) -> io::Result<Vec<WrittenFile>> {
        drop(self.tx);
        self.done.await.map_err(io::Error::other)?
    }
}

/// Reads a file (decompressing `.gz`) in chunks on a blocking thread.
pub fn read_chunks(path: PathBuf) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let gz = path.extension().is_some_and(|e| e == "gz");
        let mut reader: Box<dyn Read> = if gz {
            Box::new(MultiGzDecoder::new(io::BufReader::with_capacity(1 << 20, file)))
        } else {
            Box::new(io::BufReader::with_capacity(1 << 20, file))
        };
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotates_by_rows_and_bytes_and_reads_back() {
        let root = std::env::temp_dir().join(format!("molt-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let t = TableName::new("public", "t");
        let w = ShardWriter::start(&root, &t, 1, Compression::Gzip, Some(3), u64::MAX, None);
        let rows: Vec<Bytes> = (0..7).map(|i| Bytes::from(format!("{i},\"a,b\"\n"))).collect();
        w.send(rows[..4].to_vec()).await.unwrap();
        w.send(rows[4..].to_vec()).await.unwrap();
        let files = w.finish().await.unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "shard_01_part_00000001.csv.gz",
                "shard_01_part_00000002.csv.gz",
                "shard_01_part_00000003.csv.gz"
            ]
        );
        assert_eq!(files.iter().map(|f| f.rows).collect::<Vec<_>>(), vec![3, 3, 1]);
        let listed = list_table_files(&root, &t).unwrap();
        assert_eq!(listed.len(), 3);
        let mut text = Vec::new();
        for p in listed {
            let mut rx = read_chunks(p);
            while let Some(c) = rx.recv().await {
                text.extend(c.unwrap());
            }
        }
        let expected: Vec<u8> = rows.iter().flat_map(|r| r.to_vec()).collect();
        assert_eq!(text, expected);

        let m = Manifest {
            fetch_id: "f".into(),
            files: vec![("a.csv".into(), 3), ("b.csv".into(), 4)],
            columns: Some(vec!["id".into(), "Name".into()]),
        };
        assert_eq!(read_manifest(&root, &t).unwrap(), None);
        write_manifest(&root, &t, &m).unwrap();
        assert_eq!(read_manifest(&root, &t).unwrap(), Some(m.clone()));
        let older = parse_manifest(br#"{"fetch_id":"f","files":[{"name":"a.csv","rows":3}]}"#);
        assert_eq!(older.unwrap().columns, None, "manifests of older builds list no columns");
        assert_eq!(
            list_table_files(&root, &t).unwrap().len(),
            3,
            "the manifest is not a data file"
        );

        let w = ShardWriter::start(&root, &t, 2, Compression::None, None, 10, None);
        w.send(rows.clone()).await.unwrap();
        let files = w.finish().await.unwrap();
        assert_eq!(files.len(), 4, "8-byte rows cut at 10 bytes: two rows per file");
        assert!(files[0].name.ends_with(".csv"));
        let _ = fs::remove_dir_all(&root);
    }
}
