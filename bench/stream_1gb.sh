#!/usr/bin/env bash
# savant pretrain's input pipeline on 1 GB of JSONL: memory stays bounded and reading keeps up
# with training. Builds bench/data/stream/corpus.jsonl (~1 GB: the real CFPB complaints repeated,
# each line a JSON document), then
#   1. `savant pretrain --scan`: one pass through shards → tokeniser → windows → shuffle buffer →
#      masking, no model: tokens/s of the reader and peak RSS over the whole gigabyte;
#   2. a short real run of MiniLM on the same corpus: tokens/s of training and the seconds it
#      waited for data (`data_wait_seconds`), peak RSS.
# Writes bench/results/stream_1gb.json. Needs `savant fetch model minilm` and `savant fetch
# dataset cfpb` (the README's first command does both) and a release build.
#   bench/stream_1gb.sh [--gb 1.0] [--steps 20]
set -euo pipefail
cd "$(dirname "$0")/.."
gb=1.0; steps=20
while [ $# -gt 0 ]; do case "$1" in --gb) gb=$2; shift 2;; --steps) steps=$2; shift 2;; *) echo "unknown $1"; exit 2;; esac; done
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/savant/target}
SAVANT=${SAVANT_BIN:-$TARGET/release/savant}
HOME_DIR=${SAVANT_HOME:-$HOME/.cache/savant}
MODEL=$HOME_DIR/models/minilm
work=bench/data/stream
mkdir -p "$work" bench/results
if [ ! -f "$work/corpus.jsonl" ] || [ "$(cat "$work/.gb" 2>/dev/null)" != "$gb" ]; then
    python3 - "$HOME_DIR/datasets/cfpb/train.csv" "$work/corpus.jsonl" "$gb" <<'PY'
import csv, json, sys
texts = [r["text"] for r in csv.DictReader(open(sys.argv[1], newline=""))]
target, size, i = float(sys.argv[3]) * 1e9, 0, 0
with open(sys.argv[2] + ".tmp", "w") as f:
    while size < target:
        line = json.dumps({"id": i, "text": texts[i % len(texts)]}) + "\n"
        f.write(line); size += len(line.encode()); i += 1
import os; os.replace(sys.argv[2] + ".tmp", sys.argv[2])
print(f"{sys.argv[2]}: {i} documents, {size / 1e9:.2f} GB")
PY
    echo "$gb" > "$work/.gb"
fi
rss() { /usr/bin/time -f "%M" -o "$work/rss.txt" "$@" > /dev/null; echo $(( $(cat "$work/rss.txt") / 1024 )); }
scan_rss=$(rss "$SAVANT" pretrain --model "$MODEL" --corpus "$work/corpus.jsonl" --max-len 128 --scan -o "$work/scan" --overwrite)
train_rss=$(rss "$SAVANT" pretrain --model "$MODEL" --corpus "$work/corpus.jsonl" --max-len 128 --steps "$steps" \
    --batch-size 16 --eval-docs 50 --log-every 5 --device cpu -o "$work/train" --overwrite)
python3 - "$work" "$scan_rss" "$train_rss" "$(stat -c %s "$work/corpus.jsonl")" <<'PY'
import json, sys
work, scan_rss, train_rss, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
scan = json.load(open(f"{work}/scan/scan.json"))
train = json.load(open(f"{work}/train/metrics.json"))
out = {
    "corpus_bytes": size,
    "scan": {k: scan[k] for k in ("documents", "windows", "split_into_windows", "tokens", "seconds", "tokens_per_second")}
    | {"peak_rss_mib": scan_rss, "mb_per_second": size / 1e6 / scan["seconds"]},
    "train": {k: train[k] for k in ("steps", "batch_size", "tokens", "seconds", "tokens_per_second", "data_wait_seconds", "mfu")}
    | {"peak_rss_mib": train_rss},
}
out["reader_headroom"] = scan["tokens_per_second"] / train["tokens_per_second"]
json.dump(out, open("bench/results/stream_1gb.json", "w"), indent=2)
print(json.dumps(out, indent=2))
PY
