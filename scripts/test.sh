#!/usr/bin/env bash
# The whole test suite on a fresh machine (what .ci/run runs):
#   1. the code's form: `cargo fmt --check`, `cargo clippy -D warnings` (every target, native and
#      WebAssembly), `cargo doc` with warnings as errors; then the native tests of every crate
#      of the workspace, `cargo test --release --locked --workspace`;
#   2. the documentation: README.md under 250 lines, every relative link of README.md,
#      ARCHITECTURE.md, CHANGELOG.md and the book resolving (scripts/check-links.py), and the
#      book built by mdBook (pinned; installed into target/tools/ from crates.io if missing)
#      into target/book/;
#   3. the library crates (core, data, io) build for WebAssembly without threads or files;
#   4. the playground: Debian's chromium and chromium-driver (installed if missing), the
#      wasm32 target and wasm-bindgen-cli (pinned to Cargo.lock), the site built by
#      scripts/build-playground.sh, the bindings' unit tests in headless Chromium
#      (wasm-bindgen-test-runner), and the end-to-end browser tests (fantoccini → chromedriver).
# A missing browser fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then apt=(apt-get); else apt=(sudo apt-get); fi

# The code's form: formatted, no clippy warning, documentation without broken links.
rustup component add rustfmt clippy
rustup target add wasm32-unknown-unknown
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets --features browser-tests -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown -p downhill-playground --features wasm -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown --no-default-features \
    -p downhill-core -p downhill-data -p downhill-io -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps

cargo test --release --locked --workspace

# The documentation: the README stays short, every relative link resolves, the book builds.
readme_lines=$(wc -l < README.md)
if [ "$readme_lines" -ge 250 ]; then
    echo "README.md has $readme_lines lines; it must have fewer than 250 (move detail into docs/book/)" >&2
    exit 1
fi
if ! command -v python3 >/dev/null; then
    "${apt[@]}" update
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends python3
fi
python3 scripts/check-links.py
MDBOOK_VERSION=0.5.4
if ! target/tools/bin/mdbook --version 2>/dev/null | grep -qx "mdbook v$MDBOOK_VERSION"; then
    cargo install mdbook --version "=$MDBOOK_VERSION" --locked --root target/tools \
        --no-default-features --features search
fi
target/tools/bin/mdbook build docs/book

# The browser and its driver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    "${apt[@]}" update
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends chromium chromium-driver
fi
chromium --version
chromedriver --version

# The library crates for WebAssembly (no threads, no files), then the playground's site.
cargo build --target wasm32-unknown-unknown --no-default-features --locked \
    -p downhill-core -p downhill-data -p downhill-io
scripts/build-playground.sh

# The bindings' unit tests, in headless Chromium.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$PWD/target/tools/bin/wasm-bindgen-test-runner" \
CHROMEDRIVER="$(command -v chromedriver)" \
    cargo test --release --locked --target wasm32-unknown-unknown -p downhill-playground \
    --features wasm --test wasm_bindings

# The page, end to end.
cargo test --release --locked --features browser-tests --test playground_browser -- --nocapture
