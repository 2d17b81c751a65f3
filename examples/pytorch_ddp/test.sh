#!/usr/bin/env bash
# Continues a `savant pretrain` run in PyTorch DDP on 2 CPU processes (gloo), then checks that
# the loss fell, that both ranks ended with the same weights (continue_mlm.py checks it), and
# that savant loads the result. Run by hand: it needs torch + transformers (default: the
# fixtures venv, tests/fixtures/model/README.md), which CI does not install.
#   examples/pytorch_ddp/test.sh            [PYTHON=... SAVANT_BIN=...]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-tests/fixtures/model/.venv/bin/python}
SAVANT=${SAVANT_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/savant/target}/debug/savant}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Sentences of the tiny test model's words.
"$PY" - "$work/corpus.jsonl" <<'PY'
import json, sys
words = ["bank", "loan", "card", "fee", "charge", "refund", "patient", "dose", "pain", "contract", "clause", "court"]
with open(sys.argv[1], "w") as f:
    for i in range(200):
        f.write(json.dumps({"text": " ".join(words[(i * 5 + j * 7) % len(words)] for j in range(6))}) + "\n")
PY

"$SAVANT" pretrain --model tests/fixtures/model/tiny-base --corpus "$work/corpus.jsonl" --steps 10 \
    --batch-size 8 --max-len 16 --lr 3e-3 --warmup 0 --eval-docs 16 -o "$work/dapt"
"$PY" -m torch.distributed.run --nproc_per_node 2 examples/pytorch_ddp/continue_mlm.py \
    --model "$work/dapt/model" --corpus "$work/corpus.jsonl" --steps 30 --batch-size 8 --max-len 16 \
    --lr 3e-3 -o "$work/ddp"
"$PY" - "$work/ddp/ddp_log.json" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
first, last = sum(log["losses"][:5]) / 5, sum(log["losses"][-5:]) / 5
assert log["world_size"] == 2, log
assert last < first, f"the DDP run's loss did not fall: {first:.4f} -> {last:.4f}"
print(f"DDP: loss {first:.4f} -> {last:.4f} over {len(log['losses'])} steps on 2 ranks")
PY
printf 'text\nthe bank charged a fee\n' > "$work/texts.csv"
"$SAVANT" embed --model "$work/ddp" "$work/texts.csv" -o "$work/emb.jsonl"
echo "savant loads the DDP result: $(wc -l < "$work/emb.jsonl") embedding(s)"
echo "examples/pytorch_ddp/test.sh: ok"
