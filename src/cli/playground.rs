//! `downhill playground`: a small static file server for the built playground (HTML, JavaScript
//! and the WebAssembly engine) on 127.0.0.1, one thread per connection, GET and HEAD only.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use super::args::PlaygroundArgs;
use downhill::Error;

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
    let listener = TcpListener::bind(("127.0.0.1", a.port)).map_err(|source| Error::Io {
        path: PathBuf::from(format!("127.0.0.1:{}", a.port)),
        source,
    })?;
    let port = listener.local_addr().map(|s| s.port()).unwrap_or(a.port);
    outln!(
        "playground at http://127.0.0.1:{port}/ (serving {}; Ctrl-C to stop)",
        root.display()
    );
    for stream in listener.incoming().flatten() {
        let root = root.clone();
        std::thread::spawn(move || {
            let _ = answer(stream, &root);
        });
    }
    Ok(ExitCode::SUCCESS)
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

/// The file a request path names inside `root`: no `..`, no absolute parts; `/` is index.html.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
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
    // Symbolic links must not lead out of the folder.
    let real = out.canonicalize().ok()?;
    real.starts_with(root).then_some(real)
}

fn answer(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    // A client that sends nothing does not hold its thread for ever.
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Skip the headers.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut out = stream;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return reply(
            &mut out,
            "405 Method Not Allowed",
            "text/plain",
            b"GET or HEAD only\n",
            true,
        );
    }
    let body_wanted = method == "GET";
    match resolve(root, target).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
        Some((p, bytes)) => reply(&mut out, "200 OK", mime(&p), &bytes, body_wanted),
        None => reply(
            &mut out,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            body_wanted,
        ),
    }
}

fn reply(
    out: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if with_body {
        out.write_all(body)?;
    }
    out.flush()
}
