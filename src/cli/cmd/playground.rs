//! `downhill playground`: a small static file server for the built playground (HTML, JavaScript
//! and the WebAssembly engine) on 127.0.0.1, GET and HEAD only.
//!
//! HTTP/1.1 is hyper's (parsing, keep-alive, limits on the request head) on a one-thread tokio
//! runtime; this file adds what a static server of a local folder needs, every part bounded:
//!
//! - at most [`MAX_CONNECTIONS`] connections at once (more wait in the kernel's backlog);
//! - a request head of at most [`MAX_HEAD`] bytes (hyper answers a longer one with an error
//!   status and closes), read within [`HEAD_TIMEOUT`];
//! - a deadline for the whole connection ([`CONNECTION_DEADLINE`]; the hidden environment
//!   variable `DOWNHILL_PLAYGROUND_DEADLINE_MS` shortens it for tests), so a client that sends
//!   slowly or never reads what it asked for is disconnected;
//! - files streamed in 64 KiB chunks, never read whole into memory;
//! - only a `Host` naming this address (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`) is
//!   answered, so a page of another site that rebinds its DNS name to 127.0.0.1 cannot read the
//!   folder (421 otherwise);
//! - paths percent-decoded, then resolved inside the folder: no `..`, no symbolic link leading
//!   out, and only regular files (a FIFO or device is not opened; 404).

use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::cli::args::PlaygroundArgs;
use downhill::Error;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// The largest request head (request line and headers) read, in bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection may stay open, whatever it does.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(60);
/// Bytes of a file sent per chunk.
const CHUNK: usize = 64 * 1024;

type Body = BoxBody<Bytes, std::io::Error>;

/// Serves `a.dir` until the process is stopped; prints the URL first.
pub fn serve(a: &PlaygroundArgs) -> Result<ExitCode, Error> {
    let index = a.dir.join("index.html");
    if !index.is_file() || !a.dir.join("pkg").join("downhill_bg.wasm").is_file() {
        return Err(Error::setting(
            "dir",
            a.dir.display(),
            "no built playground there (index.html and pkg/downhill_bg.wasm); build it with scripts/build-playground.sh",
        ));
    }
    let root = a.dir.canonicalize().map_err(|source| Error::Io {
        path: a.dir.clone(),
        source,
    })?;
    let address = PathBuf::from(format!("127.0.0.1:{}", a.port));
    let io_err = |source| Error::Io {
        path: address.clone(),
        source,
    };
    // One thread serves; opening files (which may block) runs on at most a few more.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .map_err(io_err)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", a.port)))
        .map_err(io_err)?;
    let port = listener.local_addr().map(|s| s.port()).unwrap_or(a.port);
    outln!(
        "playground at http://127.0.0.1:{port}/ (serving {}; Ctrl-C to stop)",
        root.display()
    );
    let deadline = std::env::var("DOWNHILL_PLAYGROUND_DEADLINE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(CONNECTION_DEADLINE, Duration::from_millis);
    let site = Arc::new(Site { root, port });
    runtime.block_on(accept(listener, site, deadline));
    Ok(ExitCode::SUCCESS)
}

/// The served folder and the port it is served on.
struct Site {
    root: PathBuf,
    port: u16,
}

/// Accepts connections for ever, at most [`MAX_CONNECTIONS`] at once, each within `deadline`.
async fn accept(listener: tokio::net::TcpListener, site: Arc<Site>, deadline: Duration) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: wait a little, keep serving.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let site = Arc::clone(&site);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let site = Arc::clone(&site);
                async move { Ok::<_, Infallible>(answer(&site, req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .half_close(true)
                .serve_connection(TokioIo::new(stream), service);
            // Past the deadline the connection is dropped, whatever it was doing.
            let _ = tokio::time::timeout(deadline, connection).await;
            drop(slot);
        });
    }
}

/// The response to one request.
async fn answer(site: &Site, req: Request<Incoming>) -> Response<Body> {
    // One `Host` (RFC 9112 §3.2: more is a bad request); a request in absolute form names its
    // host in the URI, which then counts instead of the header.
    if req.headers().get_all(header::HOST).iter().count() > 1 {
        return text(StatusCode::BAD_REQUEST, "one Host header only\n");
    }
    let host = match req.uri().authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => req.headers().get(header::HOST).cloned(),
    };
    if !host_is_ours(host.as_ref(), site.port) {
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only for 127.0.0.1, localhost and [::1] on its port\n",
        );
    }
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
    };
    let Some(path) = decode_path(req.uri().path()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the path is not percent-encoded UTF-8\n",
        );
    };
    let root = site.root.clone();
    let found = tokio::task::spawn_blocking(move || open_inside(&root, &path))
        .await
        .ok()
        .flatten();
    let Some((file, len, real)) = found else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let body = if head {
        Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
    } else {
        stream_file(tokio::fs::File::from_std(file))
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(&real)));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A short plain-text response.
fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(message.as_bytes()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether a `Host` header names this server: 127.0.0.1, localhost or [::1] with its port (the
/// port may be left out only when it is 80, HTTP's default).
pub fn host_is_ours(host: Option<&HeaderValue>, port: u16) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let (name, given) = match host.rsplit_once(':') {
        Some((name, p)) if !p.contains(']') => (name, p.parse::<u16>().ok()),
        _ => (host, Some(80)),
    };
    let name = name.to_ascii_lowercase();
    given == Some(port) && ["127.0.0.1", "localhost", "[::1]"].contains(&name.as_str())
}

/// The request path percent-decoded (`None` if it is not UTF-8 then, or holds a NUL or a
/// backslash, which no file of the site has).
pub fn decode_path(path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    (!decoded.contains(['\0', '\\'])).then(|| decoded.into_owned())
}

/// The body of a file, 64 KiB at a time.
fn stream_file(file: tokio::fs::File) -> Body {
    use tokio::io::AsyncReadExt;
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    StreamBody::new(chunks).boxed()
}

/// The MIME type of a file, by extension (WebAssembly must be `application/wasm` for streaming
/// compilation, JavaScript modules a JavaScript type).
fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "csv" => "text/csv",
        _ => "application/octet-stream",
    }
}

/// The file a (decoded) request path names inside `root`: no `..`, no absolute parts; `/` is
/// index.html; symbolic links must not lead out of the folder.
pub fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    let real = out.canonicalize().ok()?;
    real.starts_with(root).then_some(real)
}

/// [`resolve`]d and opened, if it is a regular file: the file, its length and its real path.
/// It is opened without blocking (a FIFO put there after the check cannot stall the server)
/// and checked again once open.
fn open_inside(root: &Path, path: &str) -> Option<(std::fs::File, u64, PathBuf)> {
    let real = resolve(root, path)?;
    if !std::fs::metadata(&real).ok()?.is_file() {
        return None;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(&real).ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta.len(), real))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_on_our_port_are_ours() {
        let h = |s: &str| Some(HeaderValue::from_str(s).unwrap());
        assert!(host_is_ours(h("127.0.0.1:8000").as_ref(), 8000));
        assert!(host_is_ours(h("LocalHost:8000").as_ref(), 8000));
        assert!(host_is_ours(h("[::1]:8000").as_ref(), 8000));
        assert!(host_is_ours(h("localhost").as_ref(), 80));
        assert!(!host_is_ours(h("localhost").as_ref(), 8000));
        assert!(!host_is_ours(h("127.0.0.1:8001").as_ref(), 8000));
        assert!(!host_is_ours(h("evil.example:8000").as_ref(), 8000));
        assert!(!host_is_ours(
            h("127.0.0.1.evil.example:8000").as_ref(),
            8000
        ));
        assert!(!host_is_ours(None, 8000));
    }

    #[test]
    fn paths_are_percent_decoded_and_refused_when_not_text() {
        assert_eq!(decode_path("/a%20b.txt").as_deref(), Some("/a b.txt"));
        assert_eq!(decode_path("/%2e%2e/x").as_deref(), Some("/../x"));
        assert_eq!(decode_path("/%ff"), None);
        assert_eq!(decode_path("/a%00b"), None);
        assert_eq!(decode_path("/..%5c..%5cx"), None);
    }
}
