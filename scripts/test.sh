#!/usr/bin/env bash
# The whole test suite on a fresh machine (what .ci/run runs):
#   1. the native tests, `cargo test --release --locked`;
#   2. the core builds for WebAssembly without threads or files;
#   3. the playground: Debian's chromium and chromium-driver (installed if missing), the
#      wasm32 target and wasm-bindgen-cli (pinned to Cargo.lock), the site built by
#      scripts/build-playground.sh, the bindings' unit tests in headless Chromium
#      (wasm-bindgen-test-runner), and the end-to-end browser tests (fantoccini → chromedriver).
# A missing browser fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --release --locked

# The browser and its driver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt=(apt-get); else apt=(sudo apt-get); fi
    "${apt[@]}" update
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends chromium chromium-driver
fi
chromium --version
chromedriver --version

# The core for WebAssembly (no threads, no files), then the playground's site.
rustup target add wasm32-unknown-unknown
cargo build --lib --target wasm32-unknown-unknown --no-default-features --locked
scripts/build-playground.sh

# The bindings' unit tests, in headless Chromium.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$PWD/target/tools/bin/wasm-bindgen-test-runner" \
CHROMEDRIVER="$(command -v chromedriver)" \
    cargo test --release --locked --target wasm32-unknown-unknown --no-default-features \
    --features wasm --test wasm_bindings

# The page, end to end.
cargo test --release --locked --features browser-tests --test playground_browser -- --nocapture
