#!/usr/bin/env bash
# Builds the page into www/dist/: `trunk build --release`, then wasm-opt (npm's binaryen; -O3 by
# default, SAVANT_WASM_OPT=O1 for a quicker test build, 0 to skip; the result is cached by the
# input's hash and level), then the default model (all-MiniLM-L6-v2, from `savant fetch model
# minilm`) beside the page. Installs Trunk, wasm-bindgen-cli and the npm tools when missing.
#   www/build.sh [--no-model]     the page
#   www/build.sh --tools          only install the tools (tests/run starts this early)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/savant/target}"
with_model=1
[ "${1:-}" = "--no-model" ] && with_model=0

# Build tools, not the product: a light profile (no LTO, parallel codegen; opt-level 1 for
# wasm-bindgen, which rewrites the whole module, 0 for Trunk, which only runs the others) builds
# them in a fraction of their release time, into one target dir they share and keep.
install_tool() {
    local opt=$1; shift
    CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true \
        cargo install --target-dir "$CARGO_TARGET_DIR/tools" "$@"
}
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
wasm-bindgen --version 2>/dev/null | grep -q "0.2.130" || install_tool 1 wasm-bindgen-cli --version 0.2.130
trunk --version 2>/dev/null | grep -q "trunk 0.21" || install_tool 0 --locked trunk --version ~0.21
[ -x node_modules/.bin/wasm-opt ] || npm ci --no-audit --no-fund
[ "${1:-}" = "--tools" ] && exit 0

# SAVANT_PAGE_OPT_LEVEL: rustc's opt-level for the wasm (default 3, the release page's;
# tests/run builds at 1: the page tests check behaviour on tiny models, and burn compiles in
# about half the time).
(cd www && CARGO_PROFILE_RELEASE_OPT_LEVEL="${SAVANT_PAGE_OPT_LEVEL:-3}" trunk build --release)

wasm=www/dist/savant-web_bg.wasm
level="${SAVANT_WASM_OPT:-O3}"
if [ "$level" = 0 ]; then
    echo "SAVANT_WASM_OPT=0: wasm-opt skipped (development builds only)"
else
    case "$level" in O1|O2|O3|O4|Os|Oz) ;; *) echo "SAVANT_WASM_OPT=$level: expected O1, O2, O3, O4, Os, Oz or 0"; exit 1;; esac
    cache="$CARGO_TARGET_DIR/wasm-opt"
    mkdir -p "$cache"
    hash=$(sha256sum "$wasm" | cut -c1-32)-$level
    if [ ! -f "$cache/$hash.wasm" ]; then
        echo "wasm-opt -$level $(du -h "$wasm" | cut -f1) (cached afterwards)"
        node_modules/.bin/wasm-opt "-$level" "$wasm" -o "$cache/$hash.tmp"
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
