#!/usr/bin/env bash
# Full fine-tuning and MLM pretraining throughput on an NVIDIA GPU, savant (burn's CUDA backend,
# f32, and full fine-tuning with `--precision bf16` too) against PyTorch on the same GPU and the same model shapes, in one run (< 8 minutes):
# MiniLM-sized (6 × 384) and BERT-base-sized (12 × 768) models with random weights, sequence
# length 128 and 512. Reports tokens/s, model TFLOP/s and MFU (against the GPU's bf16 data-sheet
# peak, the issue's yardstick, and savant's f32 one), and savant / PyTorch.
#
#   bench/gpu.sh                 # builds savant with --features cuda (or set SAVANT_BIN)
#
# Needs: an NVIDIA GPU with its driver (nvidia-smi), cargo (unless SAVANT_BIN), and a Python with
# torch (CUDA) and transformers (PYTHON, default python3). Writes bench/results/gpu.json.
# Status: prepared, not yet run on a GPU — no NVIDIA machine has been available to this project.
# `DEVICE=cpu STEPS=3 BF16_PEAK_TFLOPS=1 SAVANT_BIN=... bench/gpu.sh` runs the same pipeline on
# the CPU (a smoke test of the script; its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STEPS=${STEPS:-30}
DEVICE=${DEVICE:-cuda}
if [ "$DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0)
    "$PY" -c "import torch, transformers; assert torch.cuda.is_available(), 'torch sees no GPU'"
else
    gpu=cpu
fi
if [ -z "${SAVANT_BIN:-}" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/savant/target}
    cargo build --release -p savant --features cuda
    SAVANT_BIN=$CARGO_TARGET_DIR/release/savant
fi
# bf16 dense peak (TFLOP/s) by name, the same figures as native-trainer/src/peak.rs.
case "$gpu" in
    *H200*|*"H100 SXM"*|*H100*HBM3*) bf16=989.4 ;; *"H100 NVL"*) bf16=835 ;; *"H100 PCIe"*|*H100*) bf16=756.5 ;;
    *A100*) bf16=312 ;; *L40S*) bf16=362.1 ;; *L4*) bf16=121 ;; *A10*) bf16=125 ;; *"RTX 4090"*) bf16=165.2 ;;
    *) [ -n "${BF16_PEAK_TFLOPS:-}" ] || echo "unknown GPU '$gpu': set BF16_PEAK_TFLOPS"; bf16=${BF16_PEAK_TFLOPS:?} ;;
esac

work=bench/data/gpu
rm -rf "$work" && mkdir -p "$work" bench/results
"$PY" bench/gpu_models.py "$work" > /dev/null
results="$work/results.jsonl"
: > "$results"
for model in ${MODELS:-minilm bert-base}; do
    for seq in ${SEQS:-128 512}; do
        batch=$([ "$seq" = 128 ] && echo 32 || echo 8)
        rows=$((STEPS * batch))
        head -n $((rows + 1)) "$work/train.csv" > "$work/train-$rows.csv"
        out="$work/runs/$model-$seq"
        "$SAVANT_BIN" pretrain --model "$work/$model" --corpus "$work/corpus.jsonl" --max-len "$seq" \
            --steps "$STEPS" --batch-size "$batch" --eval-docs 16 --log-every 10 --device "$DEVICE" \
            --peak-tflops "$bf16" -o "$out/mlm" --overwrite
        "$SAVANT_BIN" train --model "$work/$model" --mode full --train "$work/train-$rows.csv" --val "$work/val.csv" \
            --max-len "$seq" --batch-size "$batch" --epochs 1 --log-every 10 --device "$DEVICE" \
            --peak-tflops "$bf16" -o "$out/full" --overwrite
        "$SAVANT_BIN" train --model "$work/$model" --mode full --train "$work/train-$rows.csv" --val "$work/val.csv" \
            --max-len "$seq" --batch-size "$batch" --epochs 1 --log-every 10 --device "$DEVICE" --precision bf16 \
            --peak-tflops "$bf16" -o "$out/full-bf16" --overwrite
        torch_mlm=$("$PY" bench/torch_train_speed.py --model "$work/$model" --task mlm --seq "$seq" --batch "$batch" --steps "$STEPS" --device "$DEVICE")
        torch_cls=$("$PY" bench/torch_train_speed.py --model "$work/$model" --task cls --seq "$seq" --batch "$batch" --steps "$STEPS" --device "$DEVICE")
        torch_cls_bf16=$("$PY" bench/torch_train_speed.py --model "$work/$model" --task cls --seq "$seq" --batch "$batch" --steps "$STEPS" --precision bf16 --device "$DEVICE")
        "$PY" - "$out" "$model" "$seq" "$batch" "$torch_mlm" "$torch_cls" "$torch_cls_bf16" >> "$results" <<'PY'
import json, sys
out, model, seq, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch_mlm, torch_cls, torch_cls_bf16 = (json.loads(x) for x in sys.argv[5:8])
mlm = json.load(open(f"{out}/mlm/metrics.json"))
full = json.load(open(f"{out}/full/metrics.json"))
full_bf16 = json.load(open(f"{out}/full-bf16/metrics.json"))
print(json.dumps({
    "model": model, "seq": seq, "batch": batch,
    "mlm": {"savant_tokens_per_second": mlm["tokens_per_second"], "savant_model_tflops": mlm["model_tflops_per_second"],
            "savant_mfu_vs_bf16_peak": mlm["mfu"], "torch_fp32_tokens_per_second": torch_mlm["tokens_per_second"],
            "ratio": mlm["tokens_per_second"] / torch_mlm["tokens_per_second"]},
    "full_finetune": {"savant_tokens_per_second": full["train_tokens_per_second"],
                      "savant_model_tflops": full["train_model_tflops_per_second"],
                      "savant_mfu_vs_bf16_peak": full["train_mfu"],
                      "torch_fp32_tokens_per_second": torch_cls["tokens_per_second"],
                      "torch_bf16_tokens_per_second": torch_cls_bf16["tokens_per_second"],
                      "ratio_vs_torch_fp32": full["train_tokens_per_second"] / torch_cls["tokens_per_second"]},
    "full_finetune_bf16": {"savant_tokens_per_second": full_bf16["train_tokens_per_second"],
                           "savant_mfu_vs_bf16_peak": full_bf16["train_mfu"],
                           "torch_bf16_tokens_per_second": torch_cls_bf16["tokens_per_second"],
                           "ratio_vs_torch_bf16": full_bf16["train_tokens_per_second"] / torch_cls_bf16["tokens_per_second"]},
}))
PY
    done
done
"$PY" - "$results" "$gpu" "$bf16" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump({"gpu": sys.argv[2], "bf16_peak_tflops": float(sys.argv[3]), "runs": rows},
          open("bench/results/gpu.json", "w"), indent=2)
print(f"{'model':10} {'seq':>4} | {'MLM savant':>11} {'torch':>9} {'ratio':>6} | {'full savant':>11} {'MFU(bf16)':>9} {'torch':>9} {'ratio':>6} | {'full bf16':>10} {'MFU':>6} {'torch bf16':>10} {'ratio':>6}")
for r in rows:
    m, f, b = r["mlm"], r["full_finetune"], r["full_finetune_bf16"]
    print(f"{r['model']:10} {r['seq']:>4} | {m['savant_tokens_per_second']:>11.0f} {m['torch_fp32_tokens_per_second']:>9.0f} {m['ratio']:>6.2f} | "
          f"{f['savant_tokens_per_second']:>11.0f} {100 * (f['savant_mfu_vs_bf16_peak'] or 0):>8.1f}% {f['torch_fp32_tokens_per_second']:>9.0f} {f['ratio_vs_torch_fp32']:>6.2f} | "
          f"{b['savant_tokens_per_second']:>10.0f} {100 * (b['savant_mfu_vs_bf16_peak'] or 0):>5.1f}% {b['torch_bf16_tokens_per_second']:>10.0f} {b['ratio_vs_torch_bf16']:>6.2f}")
PY
