//! `downhill playground` as a hostile user meets it: a folder with no built site, a busy port,
//! requests that try to leave the folder or use other methods, and clients that try to exhaust
//! it — hundreds of idle connections, a request line of megabytes, clients that never read, a
//! foreign `Host`, a FIFO in the folder. Every load here goes to 127.0.0.1 only, with bounded
//! counts and times. (The page itself is tested in a browser by tests/playground_browser.rs.)

use crate::common::exe;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fake built site: index.html, pkg/downhill_bg.wasm, and a secret beside the folder.
fn site() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let site = d.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(site.join("pkg/downhill_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(site.join("app.js"), "export {}").unwrap();
    std::fs::write(d.path().join("secret.txt"), "secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(d.path().join("secret.txt"), site.join("link.txt")).unwrap();
    d
}

/// Sends `raw` on a new connection, closes the writing side, returns all it gets back (header
/// names lower-cased, as HTTP makes them case-insensitive).
fn request(port: u16, raw: &str) -> String {
    request_bytes(port, raw.as_bytes())
}

fn request_bytes(port: u16, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(raw);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) => format!("{}\r\n\r\n{body}", head.to_ascii_lowercase()),
        None => text.to_ascii_lowercase(),
    }
}

/// A GET (or other `method`) of `path` with this server's `Host`.
fn get(port: u16, method: &str, path: &str) -> String {
    request(
        port,
        &format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    )
}

/// Starts `downhill playground` on a free port over `site` (with `deadline_ms` as the
/// connection deadline, if given); returns the process (killed on drop) and its port.
fn start(site: &std::path::Path, deadline_ms: Option<u64>) -> (Kill, u16) {
    start_limited(site, deadline_ms, None)
}

/// [`start`] with the server's address space limited to `memory` bytes (`setrlimit`), where
/// a thread per connection runs out of room for stacks.
fn start_limited(
    site: &std::path::Path,
    deadline_ms: Option<u64>,
    memory: Option<u64>,
) -> (Kill, u16) {
    let mut cmd = Command::new(exe());
    #[cfg(unix)]
    if let Some(bytes) = memory {
        use std::os::unix::process::CommandExt;
        let limit = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(move || match libc::setrlimit(libc::RLIMIT_AS, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
    }
    cmd.args(["playground", "--port", "0", "--dir"])
        .arg(site)
        .stdout(Stdio::piped());
    if let Some(ms) = deadline_ms {
        cmd.env("DOWNHILL_PLAYGROUND_DEADLINE_MS", ms.to_string());
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("{line}"));
    let port: u16 = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    (Kill(child), port)
}

/// The server's resident memory in KiB (Linux), and that it is still running.
fn rss_kib(server: &mut Kill) -> u64 {
    assert!(server.0.try_wait().unwrap().is_none(), "the server exited");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.0.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_folder_without_a_built_site_is_refused_with_the_build_command() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(exe())
        .args(["playground", "--port", "0", "--dir"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scripts/build-playground.sh"), "{err}");
    assert!(err.contains(&d.path().display().to_string()), "{err}");
}

#[test]
fn serves_the_folder_and_nothing_outside_it() {
    let d = site();
    let (_kill, port) = start(&d.path().join("site"), None);

    let index = get(port, "GET", "/");
    assert!(index.starts_with("http/1.1 200"), "{index}");
    assert!(
        index.contains("text/html") && index.ends_with("<h1>hi</h1>"),
        "{index}"
    );
    let wasm = get(port, "GET", "/pkg/downhill_bg.wasm?v=1");
    assert!(wasm.contains("content-type: application/wasm"), "{wasm}");
    let js = get(port, "GET", "/app.js");
    assert!(js.contains("content-type: text/javascript"), "{js}");
    let head = get(port, "HEAD", "/index.html");
    assert!(
        head.starts_with("http/1.1 200")
            && head.contains("content-length: 11")
            && !head.contains("<h1>"),
        "{head}"
    );
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/link.txt",
        "/pkg/../../secret.txt",
        "//etc/passwd",
        "/nope",
    ] {
        let r = get(port, "GET", path);
        assert!(r.starts_with("http/1.1 404"), "{path}: {r}");
        assert!(!r.contains("secret"), "{path}: {r}");
    }
    let post = request(
        port,
        &format!("POST / HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 0\r\n\r\n"),
    );
    assert!(post.starts_with("http/1.1 405"), "{post}");
    assert!(post.contains("allow: get, head"), "{post}");
    // Garbage and an empty request do not stop the server.
    let _ = request(port, "\u{1}\u{2}\r\n\r\n");
    let _ = request(port, "");
    assert!(get(port, "GET", "/").starts_with("http/1.1 200"));

    // A second server on the same port: a clear error naming the address.
    let out = Command::new(exe())
        .args(["playground", "--port", &port.to_string(), "--dir"])
        .arg(d.path().join("site"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// DNS rebinding: a page of another site whose name now points at 127.0.0.1 sends its own
/// name as `Host`; only this server's own names on its port are answered. HTTP/1.1 requires a
/// `Host`: a request without one is refused too.
#[test]
fn only_requests_for_this_address_are_answered() {
    let d = site();
    let (_kill, port) = start(&d.path().join("site"), None);
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        let r = request(port, &format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert!(r.starts_with("http/1.1 421"), "{host}: {r}");
        assert!(!r.contains("<h1>"), "{host}: {r}");
    }
    // Two Host headers are a bad request; an absolute-form URI's host is the one that counts.
    let r = request(
        port,
        &format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n"),
    );
    assert!(r.starts_with("http/1.1 400"), "{r}");
    let r = request(
        port,
        &format!("GET http://evil.example/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    );
    assert!(r.starts_with("http/1.1 421"), "{r}");
    assert!(!r.contains("<h1>"), "{r}");
    let r = request(
        port,
        &format!("GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    );
    assert!(r.starts_with("http/1.1 200"), "{r}");
    let r = request(port, "GET / HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("http/1.1 4"), "{r}");
    assert!(!r.contains("<h1>"), "{r}");
    for host in [format!("localhost:{port}"), format!("[::1]:{port}")] {
        let r = request(port, &format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert!(r.starts_with("http/1.1 200"), "{host}: {r}");
    }
}

/// Names are percent-decoded (`%20` is a space), encoded traversal is still refused, a FIFO
/// in the folder is not opened (a handler waiting for a writer would stall), and a request line
/// that is not UTF-8 gets an answer (400), not silence.
#[cfg(unix)]
#[test]
fn percent_decoding_fifos_and_bytes_that_are_not_text() {
    let d = site();
    let site = d.path().join("site");
    std::fs::write(site.join("a b.txt"), "spaced").unwrap();
    let fifo = site.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let (_kill, port) = start(&site, None);
    let r = get(port, "GET", "/a%20b.txt");
    assert!(
        r.starts_with("http/1.1 200") && r.ends_with("spaced"),
        "{r}"
    );
    for path in [
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
    ] {
        let r = get(port, "GET", path);
        assert!(
            r.starts_with("http/1.1 404") && !r.contains("secret"),
            "{path}: {r}"
        );
    }
    let started = Instant::now();
    let r = get(port, "GET", "/pipe");
    assert!(r.starts_with("http/1.1 404"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(get(port, "GET", "/").starts_with("http/1.1 200"));
    let r = request_bytes(port, b"GET /\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(r.starts_with("http/1.1 400"), "{r}");
}

/// Load on loopback, bounded: 300 connections that send nothing, then a real request, which is
/// answered (the idle ones are closed at the connection deadline, 64 served at a time); the
/// process is alive and small. Under a 512 MiB address space a thread per connection (the old
/// server) runs out of room for stacks and panics.
#[test]
fn hundreds_of_idle_connections_do_not_stop_it() {
    let d = site();
    let (mut server, port) = start_limited(&d.path().join("site"), Some(500), Some(512 << 20));
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() >= 250, "{} connections", idle.len());
    let started = Instant::now();
    let r = get(port, "GET", "/");
    assert!(r.starts_with("http/1.1 200"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(rss_kib(&mut server) < 64 * 1024);
    drop(idle);
}

/// A request line of 10 MB without a newline is cut off at the head limit (an error status or
/// a closed connection), not read into memory: the process stays small and keeps serving.
#[test]
fn a_huge_request_line_is_refused_without_reading_it_all() {
    let d = site();
    let (mut server, port) = start(&d.path().join("site"), Some(5_000));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = s.write_all(b"GET /").is_ok();
    for _ in 0..10 {
        sent = sent && s.write_all(&chunk).is_ok();
    }
    // The server stops reading and closes long before 10 MB (a write then fails), or answers.
    let mut out = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut out);
    let answer = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert!(!sent || answer.starts_with("http/1.1 4"), "{answer}");
    assert!(rss_kib(&mut server) < 64 * 1024);
    assert!(get(port, "GET", "/").starts_with("http/1.1 200"));
}

/// Five clients ask for a 64 MB file and never read: the file is streamed in chunks, so the
/// server's memory stays small, and each connection is closed at the deadline (here 1 s), so a
/// client cannot hold one for ever.
#[test]
fn clients_that_never_read_hold_neither_memory_nor_connections() {
    let d = site();
    let site = d.path().join("site");
    std::fs::write(site.join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    let (mut server, port) = start(&site, Some(1_000));
    let ask = format!("GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let mut clients: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(ask.as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        rss_kib(&mut server) < 64 * 1024,
        "{} KiB",
        rss_kib(&mut server)
    );
    // After the deadline each connection is closed: reading it all ends well short of 64 MB.
    std::thread::sleep(Duration::from_millis(1_500));
    for s in &mut clients {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        assert!(got < 60 << 20, "{got} bytes: the connection was not cut");
    }
    assert!(get(port, "GET", "/").starts_with("http/1.1 200"));
}
