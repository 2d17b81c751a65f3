#!/usr/bin/env bash
# Builds the page into www/dist/: `trunk build --release`, then wasm-opt -O3 (npm's binaryen;
# the result is cached by the input's hash, it takes minutes), then the default model
# (all-MiniLM-L6-v2, from `savant fetch model minilm`) beside the page. Installs Trunk,
# wasm-bindgen-cli and the npm tools when they are missing.
#   www/build.sh [--no-model]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/savant/target}"
with_model=1
[ "${1:-}" = "--no-model" ] && with_model=0

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
trunk --version 2>/dev/null | grep -q "trunk 0.21" || cargo install --locked trunk --version ~0.21
wasm-bindgen --version 2>/dev/null | grep -q "0.2.130" || cargo install wasm-bindgen-cli --version 0.2.130
[ -x node_modules/.bin/wasm-opt ] || npm ci --no-audit --no-fund

(cd www && trunk build --release)

wasm=www/dist/savant-web_bg.wasm
if [ "${SAVANT_WASM_OPT:-1}" = 0 ]; then
    echo "SAVANT_WASM_OPT=0: wasm-opt skipped (development builds only)"
else
cache="$HOME/.cache/savant/wasm-opt"
mkdir -p "$cache"
hash=$(sha256sum "$wasm" | cut -c1-32)
if [ ! -f "$cache/$hash.wasm" ]; then
    echo "wasm-opt -O3 $(du -h "$wasm" | cut -f1) (a few minutes; cached afterwards)"
    node_modules/.bin/wasm-opt -O3 "$wasm" -o "$cache/$hash.tmp"
    mv "$cache/$hash.tmp" "$cache/$hash.wasm"
fi
cp "$cache/$hash.wasm" "$wasm"
fi
echo "$wasm: $(stat -c %s "$wasm") bytes, $(gzip -9 < "$wasm" | wc -c) gzipped"

if [ "$with_model" = 1 ]; then
    src="${SAVANT_HOME:-$HOME/.cache/savant}/models/minilm"
    if [ ! -f "$src/.complete" ]; then
        savant=$(ls "$CARGO_TARGET_DIR"/release/savant "$CARGO_TARGET_DIR"/debug/savant 2>/dev/null | head -1 || true)
        if [ -n "$savant" ]; then "$savant" fetch model minilm; else
            echo "no savant binary to fetch the default model: run \`cargo run --release -p savant -- fetch model minilm\`, or build with --no-model"; exit 1; fi
    fi
    dst=www/dist/models/all-MiniLM-L6-v2
    mkdir -p "$dst"
    for f in config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json; do
        [ -f "$src/$f" ] && cp "$src/$f" "$dst/$f"
    done
    echo "default model: $dst"
fi
