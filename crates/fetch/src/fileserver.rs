//! The embedded file server of `--local-path`: answers `GET /{schema.table}/{file}` with the
//! file's bytes, so that CockroachDB's `IMPORT INTO` can read intermediate files from the
//! machine fetch runs on. Nothing outside the directory is served.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, info};

/// A running file server; stopped when dropped.
#[derive(Debug)]
pub struct FileServer {
    /// The bound address.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `root` on `listen`.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(root: PathBuf, listen: &str) -> std::io::Result<FileServer> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    info!(addr = %addr, dir = %root.display(), "serving intermediate files");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let root = root.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &root).await {
                    debug!(error = %e, "file server request failed");
                }
            });
        }
    });
    Ok(FileServer { addr, task })
}

/// The file a request path names, if it stays inside `root`.
pub fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let path = request_path.split('?').next().unwrap_or_default();
    let decoded = percent_decode(path)?;
    let rel = Path::new(decoded.trim_start_matches('/'));
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn answer(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let file = match (method, resolve(root, path)) {
        ("GET" | "HEAD", Some(p)) => tokio::fs::File::open(&p).await.ok(),
        _ => None,
    };
    let Some(mut file) = file else {
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return Ok(());
    };
    let len = file.metadata().await?.len();
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(header.as_bytes()).await?;
    if method == "GET" {
        tokio::io::copy(&mut file, &mut stream).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside_the_directory() {
        let root = Path::new("/data");
        assert_eq!(
            resolve(root, "/public.t/shard_01_part_00000001.csv.gz"),
            Some(PathBuf::from("/data/public.t/shard_01_part_00000001.csv.gz"))
        );
        assert_eq!(
            resolve(root, "/public.my%20t/f.csv"),
            Some(PathBuf::from("/data/public.my t/f.csv"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a/%2e%2e/%2e%2e/etc"), None);
        assert_eq!(resolve(root, "/"), None);
        assert_eq!(resolve(root, "/%zz"), None);
    }

    #[tokio::test]
    async fn serves_files_over_http() {
        let root = std::env::temp_dir().join(format!("molt-fs-{}", std::process::id()));
        std::fs::create_dir_all(root.join("public.t")).unwrap();
        std::fs::write(root.join("public.t/f.csv"), b"1,a\n2,b\n").unwrap();
        let server = serve(root.clone(), "127.0.0.1:0").await.unwrap();
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/public.t/f.csv").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.ends_with("\r\n\r\n1,a\n2,b\n"), "{ok}");
        assert!(get("/public.t/missing.csv").await.starts_with("HTTP/1.1 404"));
        assert!(get("/../../etc/passwd").await.starts_with("HTTP/1.1 404"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
