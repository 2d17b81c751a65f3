#!/usr/bin/env bash
# Runs every fuzz target for a set time (default 600 s each; `fuzz/run.sh 60` for a minute) on
# seed corpora made from the real files and the tests' bad inputs, and writes what each run did to
# fuzz/results.json (executions, seconds, corpus size, crashes). Needs the nightly toolchain and
# cargo-fuzz (installed when missing). A crash stops its target; its input is kept under
# fuzz/artifacts/TARGET/ — add it to fuzz/regressions/TARGET/ so `cargo test` replays it.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} = 0 ] && targets=(table redact config safetensors tokenizer adapter checkpoint eval_input ingest annotate)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/savant/fuzz-target}"
cargo +nightly fuzz build -O

repo=..
home="${SAVANT_HOME:-$HOME/.cache/savant}"
seed() { # seed TARGET PICK-BYTE FILE...
    local t=$1 pick=$2
    shift 2
    mkdir -p "corpus/$t"
    for f in "$@"; do
        [ -f "$f" ] || continue
        { [ -n "$pick" ] && printf "\\x$pick"; head -c 65536 "$f"; } > "corpus/$t/seed-$(echo "$f$pick" | sha1sum | cut -c1-16)"
    done
}
pair() { # pair TARGET JSON WEIGHTS: json, a NUL, then the weights
    mkdir -p "corpus/$1"
    { cat "$2"; printf '\0'; cat "$3"; } > "corpus/$1/seed-$(echo "$2$3" | sha1sum | cut -c1-16)"
}
for f in $repo/tests/bad-input/*.csv $repo/tests/bad-input/no_extension "$home/datasets/drugs/train.csv" "$home/datasets/complaints/test.csv"; do
    seed table 00 "$f"; seed annotate 00 "$f"; seed redact "" "$f"
done
for f in $repo/tests/bad-input/*.tsv; do seed table 01 "$f"; seed annotate 01 "$f"; done
for f in $repo/tests/bad-input/*.jsonl $repo/tests/fixtures/ingest/other/questions.jsonl; do seed table 02 "$f"; seed annotate 02 "$f"; done
seed config "" $repo/tests/fixtures/model/*/config.json $repo/tests/bad-input/models/*/config.json "$home/models/minilm/config.json"
seed safetensors "" $repo/tests/fixtures/model/tiny-*/model.safetensors $repo/tests/bad-input/models/st_*/model.safetensors $repo/tests/bad-input/adapters/*/adapter_model.safetensors
seed checkpoint "" $repo/tests/fixtures/model/tiny-cls/model.safetensors $repo/tests/bad-input/adapters/valid/adapter_model.safetensors
seed tokenizer 00 $repo/tests/fixtures/model/*/tokenizer.json $repo/tests/bad-input/models/tokenizer_*/tokenizer.json
seed tokenizer 01 $repo/tests/fixtures/model/*/vocab.txt
for d in $repo/tests/bad-input/adapters/*/; do
    [ -f "$d/adapter_config.json" ] && [ -f "$d/adapter_model.safetensors" ] && pair adapter "$d/adapter_config.json" "$d/adapter_model.safetensors"
done
i=0
for f in $(find $repo/tests/fixtures/ingest -type f | sort); do seed ingest "$(printf %02x $((i % 7)))" "$f"; i=$((i + 1)); done
for f in $repo/tests/bad-input/eval/*.csv; do seed eval_input 00 "$f"; done
for f in $repo/tests/bad-input/eval/*.jsonl; do seed eval_input 01 "$f"; done

for t in "${targets[@]}"; do
    log="logs/$t.log"
    mkdir -p logs "artifacts/$t" "corpus/$t"
    start=$(date +%s)
    status=ok
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 -timeout=20 \
        -artifact_prefix="artifacts/$t/" > "$log" 2>&1 || status=crash
    took=$(( $(date +%s) - start ))
    runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" | tail -1 || true)
    [ -z "$runs" ] && runs=$(grep -oE "^#[0-9]+" "$log" | tail -1 | tr -d '#' || echo 0)
    inputs=$(ls "corpus/$t" | wc -l)
    echo "$t: $status, ${runs:-0} executions in ${took} s, corpus $inputs inputs"
    mkdir -p results
    echo "{\"target\": \"$t\", \"status\": \"$status\", \"executions\": ${runs:-0}, \"seconds\": $took, \"corpus\": $inputs, \"date\": \"$(date -u +%F)\"}" > "results/$t.json"
done
# Every target's latest run, one file (runs of other targets, or in parallel, are kept).
{ echo "["; ls results/*.json | xargs -n1 cat | paste -sd, | sed 's/},{/},\n{/g'; echo "]"; } > results.json
echo "fuzz/results.json written"
grep -q '"crash"' results.json && { echo "a target crashed: see fuzz/artifacts/ and fuzz/logs/"; exit 1; } || true
