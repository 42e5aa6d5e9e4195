#!/usr/bin/env bash
# Builds the browser playground into target/playground/ (a static site: open it with
# `downhill playground`, or copy the folder to any static web host).
#
# Needs the wasm32-unknown-unknown target (rustup) and wasm-bindgen-cli at the version of the
# wasm-bindgen crate in Cargo.lock; both are installed here if missing (wasm-bindgen-cli into
# target/tools/, from crates.io).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${1:-$TARGET/playground}
TOOLS=target/tools
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ -z "$version" ]; then
    echo "build-playground: wasm-bindgen is not in Cargo.lock" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $version\$"; then
    # wasm-bindgen-cli's own Cargo.lock pins a yanked crate (webpki-roots 1.0.11), so
    # `--locked` cannot resolve; the version of the tool itself is pinned exactly.
    cargo install wasm-bindgen-cli --version "=$version" --root "$TOOLS"
fi
cargo rustc --release --locked --lib --target wasm32-unknown-unknown -p downhill-playground \
    --features wasm --crate-type cdylib
rm -rf "$OUT"
mkdir -p "$OUT"
"$TOOLS/bin/wasm-bindgen" --target web --no-typescript --out-dir "$OUT/pkg" --out-name downhill \
    "$TARGET/wasm32-unknown-unknown/release/downhill_playground.wasm"
cp playground/index.html playground/style.css playground/app.js playground/worker.js "$OUT/"
echo "playground built in $OUT ($(du -sh "$OUT" | cut -f1)); serve it with: cargo run --release -- playground"
