//! Unit tests of the playground's JavaScript bindings (`crates/playground/src/wasm.rs`), run in headless Chromium
//! by wasm-bindgen-test-runner (scripts/test.sh:
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p downhill-playground --target wasm32-unknown-unknown
//! --features wasm --test wasm_bindings`). On other targets this file is
//! empty.
#![cfg(target_arch = "wasm32")]

use downhill_playground::wasm::{HillsSession, NetSession, default_lr, default_spec};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The default spiral session trains in the browser: the loss falls, the pictures have the
/// right sizes, the model file is a safetensors file with the network's tensors.
#[wasm_bindgen_test]
fn spiral_session_trains_in_the_browser() {
    let mut s = NetSession::new(&default_spec()).unwrap();
    let before: serde_json::Value = serde_json::from_str(&s.progress().unwrap()).unwrap();
    s.run(2000).unwrap();
    let after: serde_json::Value = serde_json::from_str(&s.progress().unwrap()).unwrap();
    let (b, a) = (
        before["test_loss"].as_f64().unwrap(),
        after["test_loss"].as_f64().unwrap(),
    );
    assert!(b > 0.6 && a < 0.4, "{b} → {a}");
    assert_eq!(s.widths(), vec![7, 8, 8, 2]);
    assert_eq!(s.surface(30).unwrap().len(), 900);
    assert_eq!(s.neurons(10).unwrap().len(), (7 + 8 + 8 + 2) * 100);
    assert_eq!(s.points().len(), 2 * 500);
    assert_eq!(s.targets().len(), 500);
    assert_eq!(s.train_len(), 250);
    let bytes = s.model_bytes().unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["0.weight"]["shape"], serde_json::json!([8, 7]));
    assert_eq!(header["4.bias"]["shape"], serde_json::json!([2]));
    assert!(s.pytorch().contains("nn.Linear(8, 2)"));
    assert!(s.test_csv().starts_with("x,y,x2,y2,xy,sinx,siny,target\n"));
    assert_eq!(s.loss(), "cross-entropy");
}

/// Bad settings come back as JavaScript errors, not panics.
#[wasm_bindgen_test]
fn bad_settings_are_errors() {
    assert!(NetSession::new("{\"data\": \"moons\"}").is_err());
    assert!(NetSession::new("{\"hidden\": [0]}").is_err());
    assert!(NetSession::new("not json").is_err());
    assert!(NetSession::new("{\"colour\": 1}").is_err());
    assert!(HillsSession::new("flat", 1.0, "[]", 0.0, 0.0, 0.0, 0).is_err());
    assert!(HillsSession::new("quadratic", 10.0, "[[\"newton\", 0.1]]", 0.0, 0.0, 0.0, 0).is_err());
    assert!(default_lr("adam", "flat", 1.0).is_err());
}

/// Optimisers on the quadratic bowl reach its minimum; too large a rate diverges.
#[wasm_bindgen_test]
fn hills_roll_to_the_minimum() {
    let lr = default_lr("gd", "quadratic", 10.0).unwrap();
    assert_eq!(lr, 0.1);
    let mut h = HillsSession::new(
        "quadratic",
        10.0,
        "[[\"gd\", 0.1], [\"adam\", 0.1], [\"gd\", 0.25]]",
        -2.0,
        1.5,
        0.0,
        1,
    )
    .unwrap();
    h.run(300);
    assert_eq!(h.count(), 3);
    let p = h.path(0);
    assert_eq!(p.len(), 2 * 301);
    assert!(p[600].abs() < 1e-6 && p[601].abs() < 1e-6);
    assert!(!h.diverged(0));
    assert!(h.diverged(2));
    assert_eq!(h.losses(1).len(), 301);
    assert_eq!(h.frame()[..8], [-2.5, 2.5, -2.5, 2.5, -2.0, 1.5, 0.0, 0.0]);
    assert_eq!(h.heights(10).len(), 100);
}
