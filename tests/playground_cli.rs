//! `downhill playground` as a hostile user meets it: a folder with no built site, a busy port,
//! and requests that try to leave the folder or use other methods. (The page itself is tested
//! in a browser by tests/playground_browser.rs.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn downhill() -> Command {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
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

fn request(port: u16, raw: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_folder_without_a_built_site_is_refused_with_the_build_command() {
    let d = tempfile::tempdir().unwrap();
    let out = downhill()
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
    let mut child = downhill()
        .args(["playground", "--port", "0", "--dir"])
        .arg(d.path().join("site"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _kill = Kill(child);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("{line}"));
    let port: u16 = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap();

    let index = request(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(
        index.contains("text/html") && index.ends_with("<h1>hi</h1>"),
        "{index}"
    );
    let wasm = request(port, "GET /pkg/downhill_bg.wasm?v=1 HTTP/1.1\r\n\r\n");
    assert!(wasm.contains("Content-Type: application/wasm"), "{wasm}");
    let js = request(port, "GET /app.js HTTP/1.1\r\n\r\n");
    assert!(js.contains("Content-Type: text/javascript"), "{js}");
    let head = request(port, "HEAD /index.html HTTP/1.1\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200")
            && head.contains("Content-Length: 11")
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
        let r = request(port, &format!("GET {path} HTTP/1.1\r\n\r\n"));
        assert!(r.starts_with("HTTP/1.1 404"), "{path}: {r}");
        assert!(!r.contains("secret"), "{path}: {r}");
    }
    let post = request(port, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    // Garbage and an empty request do not stop the server.
    let _ = request(port, "\u{1}\u{2}\r\n\r\n");
    let _ = request(port, "");
    assert!(request(port, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));

    // A second server on the same port: a clear error naming the address.
    let out = downhill()
        .args(["playground", "--port", &port.to_string(), "--dir"])
        .arg(d.path().join("site"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
