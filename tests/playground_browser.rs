//! End-to-end tests of the browser playground in headless Chromium, driven through chromedriver
//! (WebDriver) by `fantoccini`: the built site (scripts/build-playground.sh → target/playground)
//! served by `downhill playground`, exactly as a learner opens it.
//!
//! Run by scripts/test.sh (CI) as
//! `cargo test --release --features browser-tests --test playground_browser`. A missing browser,
//! driver or built site FAILS the test (it never skips). Screenshots of each view are written to
//! docs/playground/ (shown in the README), and the measured steps per second are printed.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Kills the helper processes when the test ends, passed or failed: each child, and for
/// chromedriver (started as the leader of its own process group) the whole group, so that the
/// browser it started goes too. The group is signalled by `kill(2)` on its negative id: never
/// through the `kill` program, which reads an argument like `-13` as a signal number and then
/// signals every process (pid -1), as it did on CI.
struct Kill {
    children: Vec<Child>,
    groups: Vec<u32>,
}
impl Drop for Kill {
    fn drop(&mut self) {
        for &g in &self.groups {
            let g = i32::try_from(g).expect("a process id fits in i32");
            assert!(g > 1, "refusing to signal process group {g}");
            // SAFETY: kill(2) takes plain integers; -g names only the driver's own group.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `downhill playground` on a free port; returns the process and its URL (its first line).
fn start_server(site: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(["playground", "--port", "0", "--dir"])
        .arg(site)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start downhill playground");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (child, url)
}

fn chromedriver() -> PathBuf {
    let p = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    assert!(
        p.exists(),
        "chromedriver not found at {} (install Debian's chromium and chromium-driver: scripts/test.sh does)",
        p.display()
    );
    p
}

async fn connect(downloads: &Path) -> (Child, Client) {
    let port = free_port();
    let driver = Command::new(chromedriver())
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let mut caps = serde_json::Map::new();
    let mut chrome = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--disable-background-networking", "--disable-quic",
                 "--disable-component-update", "--disable-sync", "--no-first-run"],
        "prefs": {"download.default_directory": downloads.to_str().unwrap(),
                  "download.prompt_for_download": false},
    });
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&binary).exists(),
        "chromium not found at {binary} (scripts/test.sh installs Debian's chromium)"
    );
    chrome["binary"] = json!(binary);
    caps.insert("goog:chromeOptions".into(), chrome);
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return (driver, c),
            Err(e) if start.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start a Chromium session through chromedriver: {e}"),
        }
    }
}

/// Runs `script` (a function body) in the page and returns its value.
async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Waits until `script` returns true (or fails after `secs`, with `what` and the page's errors).
async fn wait_for(c: &Client, script: &str, secs: u64, what: &str) {
    let start = Instant::now();
    loop {
        if js(c, script).await == Value::Bool(true) {
            return;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let errors = js(
                c,
                "return window.pg ? window.pg.errors : 'page script not loaded'",
            )
            .await;
            panic!("timed out after {secs} s waiting for {what}; page errors: {errors}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let dir = root().join("docs").join("playground");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// Distinct colours on a canvas (a blank one has one).
async fn colours(c: &Client, id: &str) -> u64 {
    js(
        c,
        &format!(
            "const c = document.getElementById('{id}'); const d = c.getContext('2d')\
             .getImageData(0, 0, c.width, c.height).data; const s = new Set();\
             for (let i = 0; i < d.length; i += 4) s.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]);\
             return s.size;"
        ),
    )
    .await
    .as_u64()
    .unwrap()
}

fn downhill(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "downhill {args:?} failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

async fn wait_file(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let start = Instant::now();
    while !(p.exists() && std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false)) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the browser did not download {name}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playground_in_headless_chromium() {
    let site = std::env::var_os("PLAYGROUND_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/playground"));
    assert!(
        site.join("index.html").is_file(),
        "no built playground in {} (run scripts/build-playground.sh first)",
        site.display()
    );
    let downloads = tempfile::tempdir().unwrap();
    let (server, url) = start_server(&site);
    let mut procs = Kill {
        children: vec![server],
        groups: vec![],
    };
    let (driver, c) = connect(downloads.path()).await;
    procs.groups.push(driver.id());
    procs.children.push(driver);

    // 1. The page loads, the engine starts in its worker, the default spiral network is drawn.
    c.goto(&url).await.unwrap();
    wait_for(
        &c,
        "return !!(window.pg && pg.loaded && pg.net.ready && pg.net.frames >= 1)",
        30,
        "the page and its worker",
    )
    .await;
    assert_eq!(js(&c, "return pg.errors").await, json!([]));
    assert_eq!(js(&c, "return pg.net.widths").await, json!([7, 8, 8, 2]));

    // 2. Train on the spiral until the test loss is below 0.3 (chance is ln 2 ≈ 0.69).
    let first = js(&c, "return pg.net.progress.test_loss")
        .await
        .as_f64()
        .unwrap();
    assert!(first > 0.6, "untrained test loss {first}");
    click(&c, "net-play").await;
    wait_for(
        &c,
        "return pg.net.progress.test_loss < 0.3",
        90,
        "the spiral's test loss to fall below 0.3",
    )
    .await;
    click(&c, "net-play").await; // pause
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = js(&c, "return pg.net.progress").await;
    println!(
        "spiral: test loss {} at step {} ({} test accuracy)",
        p["test_loss"], p["step"], p["test_accuracy"]
    );
    assert!(p["test_accuracy"].as_f64().unwrap() > 0.85, "{p}");

    // 3. The decision boundary canvas and the network picture are not blank.
    let n = colours(&c, "net-output").await;
    assert!(n > 50, "decision-boundary canvas has only {n} colours");
    let g = colours(&c, "net-graph").await;
    assert!(g > 50, "network picture has only {g} colours");
    screenshot(&c, "network.png").await;

    // 3b. The Backprop panel: a click on a training point in Output shows its a and δ on the
    // neurons and in the panel; the δ shown are `downhill explain --json`'s for the same
    // weights and input. "Step once" plays forward → backward → update.
    js(&c, "const c = document.getElementById('net-output'); const r = c.getBoundingClientRect();\
        const p = pg.net.points, i = 5;\
        const x = r.left + (p[2*i] + 6) / 12 * r.width, y = r.top + (6 - p[2*i+1]) / 12 * r.height;\
        c.dispatchEvent(new MouseEvent('click', { clientX: x, clientY: y, bubbles: true })); return 1").await;
    wait_for(
        &c,
        "return !!(pg.net.backprop && document.querySelectorAll('.bp-delta').length === 18)",
        20,
        "the Backprop panel",
    )
    .await;
    let bp = js(&c, "return pg.net.backprop").await;
    let shown = js(&c, "return [...document.querySelectorAll('.bp-delta')].map((s) => [Number(s.dataset.layer), Number(s.dataset.unit), Number(s.textContent)])").await;
    let t = &bp["trace"];
    let weights = tempfile::tempdir().unwrap();
    let wfile = weights.path().join("w.json");
    std::fs::write(&wfile, t.to_string()).unwrap();
    let ex = &t["examples"][0];
    let x: Vec<String> = ex["x"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect();
    let cli: Value = serde_json::from_str(&downhill(&[
        "explain",
        "--json",
        "--weights",
        wfile.to_str().unwrap(),
        "--hidden",
        "8,8",
        "--activation",
        "tanh",
        "--input",
        &x.join(","),
        "--target",
        &ex["target"].to_string(),
        "--optimizer",
        t["optimizer"]["name"].as_str().unwrap(),
        "--lr",
        &t["optimizer"]["lr"].to_string(),
    ]))
    .unwrap();
    let cli_layers = cli["examples"][0]["layers"].as_array().unwrap();
    for cell in shown.as_array().unwrap() {
        let (l, j, v) = (
            cell[0].as_u64().unwrap() as usize,
            cell[1].as_u64().unwrap() as usize,
            cell[2].as_f64().unwrap(),
        );
        let want = cli_layers[l - 1]["delta"][j].as_f64().unwrap();
        assert!(
            (v - want).abs() <= 5e-7,
            "point {}: δ of layer {l} unit {j} shown {v}, downhill explain {want}",
            bp["index"]
        );
        let exact = ex["layers"][l - 1]["delta"][j].as_f64().unwrap();
        assert!(
            (exact - want).abs() <= 1e-9 * want.abs().max(1.0),
            "panel trace δ {exact} vs {want}"
        );
    }
    println!(
        "backprop panel: point {} shows the δ of downhill explain ({} values)",
        bp["index"],
        shown.as_array().unwrap().len()
    );
    click(&c, "net-bp-step").await;
    wait_for(
        &c,
        "return pg.net.backprop.phase === 'done'",
        10,
        "step once to end",
    )
    .await;
    js(
        &c,
        "document.getElementById('net-bp-step').click(); return 1",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await; // the backward phase
    screenshot(&c, "backprop.png").await;
    js(
        &c,
        "document.getElementById('net-bp-clear').click(); return 1",
    )
    .await;

    // 4. Download the model and the test set; `downhill eval` reads both.
    click(&c, "net-download").await;
    let model = wait_file(downloads.path(), "playground.safetensors").await;
    click(&c, "net-download-csv").await;
    let csv = wait_file(downloads.path(), "playground-test.csv").await;
    let report = downhill(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
    ]);
    println!("downhill eval of the downloaded spiral model:\n{report}");
    let acc = report
        .lines()
        .find_map(|l| {
            l.split("accuracy")
                .nth(1)
                .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("no accuracy in {report}"));
    let page_acc = p["test_accuracy"].as_f64().unwrap();
    assert!(
        (acc - page_acc).abs() < 1e-3,
        "eval says {acc}, the page said {page_acc}"
    );
    click(&c, "net-pytorch").await;
    wait_for(&c, "return document.getElementById('net-pytorch-code').textContent.includes('nn.Linear(7, 8)')", 10, "the PyTorch snippet").await;

    // Steps per second of the default spiral network, training as fast as it can (the time
    // inside the engine's steps, in the worker).
    js(&c, "const s = document.getElementById('net-speed'); s.value = '0'; s.dispatchEvent(new Event('change')); pg.net.play(); return 1").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    js(&c, "pg.net.pause(); return 1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sps = js(&c, "return pg.net.stepsPerSecond")
        .await
        .as_f64()
        .unwrap();
    println!("spiral: {sps:.0} steps/s (default network 7-8-8-2 tanh, batch 10, Adam)");
    assert!(sps > 100.0, "{sps} steps/s");

    // 5. Switch the optimiser to plain SGD through the page: the URL records it and it trains.
    js(&c, "const s = document.getElementById('net-opt'); s.value = 'momentum'; s.dispatchEvent(new Event('change')); return 1").await;
    wait_for(
        &c,
        "return pg.net.ready && pg.net.progress.step === 0",
        20,
        "the reset after switching optimiser",
    )
    .await;
    js(&c, "const s = document.getElementById('net-data'); s.value = 'circle'; s.dispatchEvent(new Event('change')); return 1").await;
    wait_for(
        &c,
        "return pg.net.ready && pg.net.progress.step === 0",
        20,
        "the reset after switching data",
    )
    .await;
    assert!(
        js(&c, "return location.hash")
            .await
            .as_str()
            .unwrap()
            .contains("net-opt=momentum")
    );
    let before = js(&c, "return pg.net.progress.test_loss")
        .await
        .as_f64()
        .unwrap();
    js(&c, "pg.net.play(); return 1").await;
    wait_for(
        &c,
        &format!("return pg.net.progress.test_loss < {}", before * 0.5),
        60,
        "SGD with momentum to halve the circle's test loss",
    )
    .await;
    js(&c, "pg.net.pause(); return 1").await;

    // 5b. Upload a CSV (a numeric, a text and a boolean column; the last is the target): it is
    //     read as `downhill train` reads it, trains, and its model evaluates with the CLI.
    let mut table = String::from("size,colour,ok,label\n");
    for i in 0..300 {
        let size = (i % 20) as f64 / 2.0;
        let colour = ["red", "green", "blue"][i % 3];
        let label = if size > 4.5 || colour == "blue" {
            "yes"
        } else {
            "no"
        };
        table += &format!("{size},{colour},{},{label}\n", i % 2 == 0);
    }
    let table_path = downloads.path().join("upload.csv");
    std::fs::write(&table_path, &table).unwrap();
    js(
        &c,
        &format!(
            "pg.net.uploadCsv('upload.csv', {}); return 1",
            serde_json::to_string(&table).unwrap()
        ),
    )
    .await;
    wait_for(&c, "return pg.net.ready && pg.net.progress && pg.net.progress.step === 0 && !!pg.net.tableReport", 20, "the uploaded table").await;
    let report = js(&c, "return pg.net.tableReport.join('\\n')").await;
    assert!(report.as_str().unwrap().contains("colour"), "{report}");
    assert_eq!(
        js(&c, "return pg.net.widths[0]").await,
        json!(5),
        "size, 3 colours one-hot, ok"
    );
    js(&c, "pg.net.play(); return 1").await;
    wait_for(
        &c,
        "return pg.net.progress.test_accuracy > 0.9",
        60,
        "the table's test accuracy above 90%",
    )
    .await;
    js(&c, "pg.net.pause(); return 1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::remove_file(&model).unwrap();
    click(&c, "net-download").await;
    let table_model = wait_file(downloads.path(), "playground.safetensors").await;
    let report = downhill(&[
        "eval",
        "--model",
        table_model.to_str().unwrap(),
        "--data",
        table_path.to_str().unwrap(),
    ]);
    let acc = report
        .lines()
        .find_map(|l| {
            l.split("accuracy")
                .nth(1)
                .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("no accuracy in {report}"));
    assert!(
        acc > 0.9,
        "downhill eval of the uploaded table's model: {report}"
    );

    // 6. The height map: optimisers roll on the quadratic bowl; the final point of each path is
    //    the one `downhill landscape` computes for the same method, rate and start.
    click(&c, "tab-hills").await;
    wait_for(&c, "return !!pg.hills.session", 10, "the height map").await;
    js(
        &c,
        "pg.hills.setStart(-2, 1.5); pg.hills.session.run(200); return 1",
    )
    .await;
    click(&c, "hills-step").await; // draws
    let methods = js(&c, "return pg.hills.methods").await;
    assert_eq!(
        methods,
        json!(["gd", "momentum", "nesterov", "adam", "rmsprop", "adagrad"])
    );
    let cli = downhill(&[
        "landscape",
        "--surface",
        "quadratic",
        "--condition",
        "10",
        "--start=-2,1.5",
        "--steps",
        "201",
        "--json",
        "--out",
        downloads.path().join("l.svg").to_str().unwrap(),
    ]);
    let cli: Value = serde_json::from_str(&cli).unwrap_or_else(|e| panic!("{e}: {cli}"));
    let paths = cli["optimizers"]
        .as_array()
        .unwrap_or_else(|| panic!("no paths in {cli}"));
    for (i, m) in methods.as_array().unwrap().iter().enumerate() {
        let path = js(
            &c,
            &format!("return Array.from(pg.hills.session.path({i}))"),
        )
        .await;
        let path = path.as_array().unwrap();
        let (x, y) = (
            path[path.len() - 2].as_f64().unwrap(),
            path[path.len() - 1].as_f64().unwrap(),
        );
        let want = paths
            .iter()
            .find(|p| p["label"] == *m)
            .unwrap_or_else(|| panic!("{m} not in {cli}"));
        let w = want["final_point"].as_array().unwrap();
        assert_eq!(
            (x, y),
            (w[0].as_f64().unwrap(), w[1].as_f64().unwrap()),
            "{m}"
        );
    }
    let n = colours(&c, "hills-map").await;
    assert!(n > 50, "height map has only {n} colours");
    // Play the animation a moment for the picture.
    // The picture: the race 60 steps in, from the surface's own start.
    click(&c, "hills-reset").await;
    js(
        &c,
        "pg.hills.setStart(-2, 1.5); pg.hills.session.run(59); return 1",
    )
    .await;
    click(&c, "hills-step").await;
    screenshot(&c, "height-map.png").await;

    // 7. Digits: accuracy rises from chance; the confusion matrix counts the test set; a drawn
    //    "1" is recognised.
    click(&c, "tab-digits").await;
    wait_for(
        &c,
        "return !!(pg.digits.ready && pg.digits.progress)",
        30,
        "the digits",
    )
    .await;
    let start_acc = js(&c, "return pg.digits.progress.test_accuracy")
        .await
        .as_f64()
        .unwrap();
    click(&c, "dig-play").await;
    wait_for(
        &c,
        "return pg.digits.progress.test_accuracy > 0.88",
        120,
        "digit accuracy above 88%",
    )
    .await;
    click(&c, "dig-play").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = js(&c, "return pg.digits.progress").await;
    println!(
        "digits: test accuracy {start_acc} → {} at step {}",
        d["test_accuracy"], d["step"]
    );
    // Steps per second over 4 more seconds of training at full speed (counted from the reset of
    // the worker's counters that a speed change makes).
    js(&c, "const s = document.getElementById('dig-speed'); s.value = '0'; s.dispatchEvent(new Event('change')); pg.digits.play(); return 1").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    js(&c, "pg.digits.pause(); return 1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dsps = js(&c, "return pg.digits.stepsPerSecond")
        .await
        .as_f64()
        .unwrap();
    println!("digits: {dsps:.0} steps/s (784-100-10 ReLU, batch 64, Adam)");
    assert!(dsps > 10.0, "{dsps} steps/s");
    assert!(start_acc < 0.3, "untrained accuracy {start_acc}");
    let cm = js(&c, "return pg.digits.confusion").await;
    let total: u64 = cm
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 1000, "confusion matrix of the 1000 test digits");
    js(
        &c,
        "pg.digits.drawStrokes([[[140, 40], [140, 240]]]); return 1",
    )
    .await;
    wait_for(
        &c,
        "return pg.digits.prediction !== undefined",
        10,
        "a prediction",
    )
    .await;
    let pred = js(&c, "return pg.digits.prediction").await;
    let probs = js(&c, "return pg.digits.probabilities").await;
    assert_eq!(
        pred,
        json!(1),
        "a vertical stroke read as {pred}; probabilities {probs}"
    );
    screenshot(&c, "digits.png").await;

    // 7b. The small convolutional network on the digits: its accuracy rises too.
    js(&c, "const s = document.getElementById('dig-net'); s.value = s.options[1].value; s.dispatchEvent(new Event('change')); return 1").await;
    wait_for(
        &c,
        "return !!(pg.digits.ready && pg.digits.progress && pg.digits.progress.step === 0)",
        30,
        "the conv net",
    )
    .await;
    js(&c, "pg.digits.play(); return 1").await;
    wait_for(
        &c,
        "return pg.digits.progress.test_accuracy > 0.8",
        120,
        "the conv net's digit accuracy above 80%",
    )
    .await;
    js(&c, "pg.digits.pause(); return 1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = js(&c, "return pg.digits.progress").await;
    let csps = js(&c, "return pg.digits.stepsPerSecond")
        .await
        .as_f64()
        .unwrap();
    println!(
        "digits, small conv net: test accuracy {} at step {}; {csps:.0} steps/s (conv 8 3 pad 1, relu, maxpool 2, conv 16 3 pad 1, relu, maxpool 2, flatten, dense; batch 64, Adam)",
        d["test_accuracy"], d["step"]
    );
    click(&c, "dig-pytorch").await;
    wait_for(
        &c,
        "return !!pg.digits.pytorch && pg.digits.pytorch.includes('nn.Conv2d(1, 8')",
        10,
        "the conv net's PyTorch snippet",
    )
    .await;

    // 8. A link holds the whole state: XOR, one hidden layer of 4, plain SGD at η = 0.1.
    let link =
        format!("{url}#view=net&net-data=xor&net-hidden=4&net-opt=sgd&net-opt-lr=0.1&net-f-x2=0");
    c.goto("about:blank").await.unwrap();
    c.goto(&link).await.unwrap();
    wait_for(
        &c,
        "return !!(window.pg && pg.loaded && pg.net.ready && pg.net.frames >= 1)",
        30,
        "the linked page",
    )
    .await;
    assert_eq!(js(&c, "return pg.net.widths").await, json!([6, 4, 2]));
    let state = js(&c, "return [document.getElementById('net-data').value, document.getElementById('net-opt').value, document.getElementById('net-opt-lr').value, document.getElementById('view-net').hidden]").await;
    assert_eq!(state, json!(["xor", "sgd", "0.1", false]));
    let link = format!("{url}#view=hills&hills-surface=rosenbrock&hills-start=-1.25,2.5");
    c.goto("about:blank").await.unwrap();
    c.goto(&link).await.unwrap();
    wait_for(
        &c,
        "return !!(window.pg && pg.loaded && pg.hills.session)",
        30,
        "the linked height map",
    )
    .await;
    assert_eq!(js(&c, "return [document.getElementById('view-hills').hidden, document.getElementById('hills-surface').value, Array.from(pg.hills.session.path(0))]").await, json!([false, "rosenbrock", [-1.25, 2.5]]));
    assert_eq!(js(&c, "return pg.errors").await, json!([]));

    c.close().await.unwrap();
}
