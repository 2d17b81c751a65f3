#!/usr/bin/env python3
"""`savant train` vs PyTorch + transformers + PEFT: one epoch of fine-tuning, in one run (see bench/README.md).

    bench/train_vs_peft.py                                  # 2,000 CFPB complaints, lora and full
    bench/train_vs_peft.py --modes lora --rows 500          # a quicker check
    bench/train_vs_peft.py --savant path/to/savant --threads 2 --no-bucketed
    bench/train_vs_peft.py --only-torch                     # the PyTorch side only (no savant)

Python environment: the model fixtures venv tests/fixtures/model/.venv (torch, transformers,
peft, scikit-learn, numpy). The script re-executes itself with that venv's Python; it does not
create or install anything, and it does not build savant.

One run:
  1. writes the first --rows (2,000) rows of $SAVANT_HOME/demo/cfpb/splits/train.csv to
     bench/data/train_cfpb_<rows>.csv and the first --val-rows (200) of val.csv to
     bench/data/val_cfpb_<val_rows>.csv (columns text,label; rows with an empty text or label are
     skipped, as savant skips them; val rows whose label the train rows lack are dropped, since
     savant refuses them). The classes are the train rows' labels, sorted (class i = i-th label);
  2. for each --modes (lora, full), --repeat rounds of, each as its own subprocess under GNU time
     (peak RSS) after waiting for a quiet machine:
     - savant: `savant train --model MINILM --train TRAIN --val VAL --mode MODE --epochs 1
       --batch-size 16 --max-len 128 --lr LR --warmup 0.1 --weight-decay 0.01 --seed 42
       --device cpu --log-every 10 --overwrite -o bench/data/runs/savant-MODE` with
       RAYON_NUM_THREADS=--threads (and `--threads N` when the binary's train has that option);
       tokens/s is metrics.json's train_tokens_per_second (real tokens / seconds in training
       steps; loading, tokenising and validation excluded);
     - pytorch: this script as a worker (`--worker torch-train ...`): AutoModelForSequenceClassification
       (+ PEFT LoRA r 8, alpha 16, dropout 0.1 on query,value for lora), AdamW with HF Trainer's
       two parameter groups, get_linear_schedule_with_warmup, clip_grad_norm_ 1.0, batches of 16
       in a random.Random(42)-shuffled order, each tokenised with padding=True, truncation=True,
       max_length=128; tokens/s = sum of attention_mask / seconds of the training loop
       (tokenisation included, model loading and the validation pass excluded);
     - pytorch-bucketed (informational, --no-bucketed skips it): the same, but batches cut from
       windows of 50 x 16 shuffled rows sorted by token length, then shuffled, as savant does;
  3. prints per mode the table (tokens/s, train s, peak RSS, final train loss, val macro-F1 and
     accuracy) and savant / pytorch tokens/s (target >= 1.0x), and writes
     bench/results/train_vs_peft.json (other sizes: bench/data/train_vs_peft_<rows>_<val_rows>.json).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.dont_write_bytecode = True  # no bench/__pycache__ from the import below
import predict_vs_transformers as pvt  # noqa: E402  (quiet-machine wait, GNU-time runs, machine info)

VENV = ROOT / "tests/fixtures/model/.venv"
VENV_PY = VENV / "bin" / "python"
DATA = BENCH / "data"
RUNS = DATA / "runs"
TARGET = 1.0  # savant tokens/s over PyTorch tokens/s
MODES = ("lora", "full")
# The hyper-parameters of both sides (savant's defaults, written out).
SEED = 42
LR = {"lora": "5e-4", "full": "5e-5"}
EPOCHS = 1
BATCH = 16
MAX_LEN = 128
WARMUP = 0.1  # fraction of the steps, rounded up (HF's warmup_ratio, savant's --warmup)
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
LORA = {"r": 8, "alpha": 16, "dropout": 0.1, "targets": ["query", "value"]}
LOG_EVERY = 10  # savant logs the mean loss of every 10 steps
EVAL_BATCH = 32
WINDOW_BATCHES = 50  # savant's length buckets: windows of 50 batches (core/src/train/batches.rs)
LOSS_TAIL = 10  # "final train loss" of PyTorch: the mean of the last 10 batch losses

log = pvt.log


# ---------------------------------------------------------------------------------------------
# The PyTorch + transformers + PEFT worker (a fresh subprocess, so that its RSS is its own).
# ---------------------------------------------------------------------------------------------


def read_labelled(path: str) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def batch_order(lengths: list[int] | None, n: int, batching: str) -> list[list[int]]:
    """Row indices of each batch. shuffled: random.Random(42).shuffle of the rows, cut into batches
    (HF Trainer's default order, no length grouping). bucketed: the same shuffle, then windows of
    50 batches sorted by token length (longest first, stable) and cut, then the batches shuffled
    with the same Random (savant's epoch_batches)."""
    rng = random.Random(SEED)
    order = list(range(n))
    rng.shuffle(order)
    if batching == "shuffled":
        return [order[i : i + BATCH] for i in range(0, n, BATCH)]
    batches = []
    for w in range(0, n, BATCH * WINDOW_BATCHES):
        window = sorted(order[w : w + BATCH * WINDOW_BATCHES], key=lambda i: -lengths[i])
        batches.extend(window[i : i + BATCH] for i in range(0, len(window), BATCH))
    rng.shuffle(batches)
    return batches


def worker_train(minilm: str, train_csv: str, val_csv: str, mode: str, batching: str, threads: int, lr: float) -> dict:
    """One epoch as a careful HF/PEFT user writes it; returns timings, losses and val metrics."""
    t_start = time.perf_counter()
    import numpy as np
    import peft
    import sklearn
    import tokenizers
    import torch
    import transformers
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    t_import = time.perf_counter()

    texts, train_labels = read_labelled(train_csv)
    val_texts, val_labels = read_labelled(val_csv)
    labels = sorted(set(train_labels))  # as savant: class i is the i-th sorted label
    label2id = {l: i for i, l in enumerate(labels)}
    y_train = [label2id[l] for l in train_labels]
    y_val = [label2id[l] for l in val_labels]

    tok = AutoTokenizer.from_pretrained(minilm)
    if not tok.is_fast:
        raise SystemExit(f"{minilm}: expected a fast tokenizer (tokenizer.json)")
    # all-MiniLM's tokenizer.json pads every text to 128 and truncates: switch both off, so that
    # only the per-call padding=True / truncation=True / max_length below apply.
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.no_truncation()
    encode = lambda batch: tok(batch, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")

    model = AutoModelForSequenceClassification.from_pretrained(
        minilm,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        dtype=torch.float32,
    )
    trainable_report = None
    if mode == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        config = LoraConfig(task_type=TaskType.SEQ_CLS, r=LORA["r"], lora_alpha=LORA["alpha"],
                            lora_dropout=LORA["dropout"], target_modules=list(LORA["targets"]))
        model = get_peft_model(model, config)
        buf = io.StringIO()
        with redirect_stdout(buf):
            model.print_trainable_parameters()
        trainable_report = buf.getvalue().strip()
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        trainable_report = f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}"

    # HF Trainer's groups: weight decay on the matrices, none on biases and LayerNorm weights.
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    decay = [p for _, p in named if p.ndim > 1]
    no_decay = [p for _, p in named if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.999), eps=1e-8,
    )
    length_pass_s = 0.0
    lengths = None
    if batching == "bucketed":  # savant tokenises everything before training; so does this variant (untimed)
        a = time.perf_counter()
        lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=MAX_LEN)["input_ids"]]
        length_pass_s = time.perf_counter() - a
    batches = batch_order(lengths, len(texts), batching)
    steps = len(batches) * EPOCHS
    warmup = math.ceil(WARMUP * steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, steps)
    t_load = time.perf_counter()

    # --- the timed part: tokenise each batch, forward, backward, clip, step ----------------------
    model.train()
    losses: list[float] = []
    tokenize_s = step_s = 0.0
    real_tokens = pad_tokens = 0
    t0 = time.perf_counter()
    for sel in batches:
        a = time.perf_counter()
        enc = encode([texts[i] for i in sel])
        y = torch.tensor([y_train[i] for i in sel], dtype=torch.long)
        b = time.perf_counter()
        loss = model(**enc, labels=y).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        c = time.perf_counter()
        tokenize_s += b - a
        step_s += c - b
        m = int(enc["attention_mask"].sum())
        real_tokens += m
        pad_tokens += enc["attention_mask"].numel() - m
    train_s = time.perf_counter() - t0
    if not all(math.isfinite(l) for l in losses):
        raise SystemExit(f"the loss became non-finite: {losses}")

    # --- validation (not timed into tokens/s) ----------------------------------------------------
    a = time.perf_counter()
    model.eval()
    preds: list[int] = []
    with torch.no_grad():
        for s in range(0, len(val_texts), EVAL_BATCH):
            preds.extend(model(**encode(val_texts[s : s + EVAL_BATCH])).logits.argmax(-1).tolist())
    val_s = time.perf_counter() - a

    # savant logs the mean loss of every LOG_EVERY steps (the last window may be shorter): the
    # same windows here, so that the two curves can be compared.
    windows = [losses[i : i + LOG_EVERY] for i in range(0, len(losses), LOG_EVERY)]
    window_means = [sum(w) / len(w) for w in windows]
    cfg = model.get_base_model().config if mode == "lora" else model.config
    return {
        "mode": mode,
        "batching": batching,
        "rows": len(texts),
        "val_rows": len(val_texts),
        "labels": labels,
        "steps": steps,
        "warmup_steps": warmup,
        "import_s": t_import - t_start,
        "load_s": t_load - t_import,
        "length_pass_s": length_pass_s,
        "train_s": train_s,
        "tokenize_s": tokenize_s,
        "step_s": step_s,
        "val_s": val_s,
        "real_tokens": real_tokens,
        "pad_tokens": pad_tokens,
        "tokens_per_second": real_tokens / train_s,
        "final_loss": sum(losses[-LOSS_TAIL:]) / len(losses[-LOSS_TAIL:]),
        "last_window_loss": window_means[-1],
        "epoch_loss_mean_of_windows": sum(window_means) / len(window_means),
        "window_losses": window_means,
        "batch_losses": losses,
        "f1_macro": float(f1_score(y_val, preds, average="macro")),
        "accuracy": float(accuracy_score(y_val, preds)),
        "trainable_params": int(trainable),
        "total_params": int(total),
        "trainable_report": trainable_report,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "attn_implementation": getattr(cfg, "_attn_implementation", None),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "tokenizers": tokenizers.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "torch_config": torch.__config__.parallel_info().splitlines()[:8],
    }


# ---------------------------------------------------------------------------------------------
# Setup: venv, data, binary.
# ---------------------------------------------------------------------------------------------


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PY.exists():
        sys.exit(f"{VENV} is missing: make it as tests/fixtures/model/make_fixtures.py's header says, "
                 "then `pip install peft scikit-learn` into it")
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])


def worker_cmd(kind: str, *args) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", kind, *map(str, args)]


def write_split(src: Path, dst: Path, rows: int, allowed: set[str] | None) -> dict:
    """The first `rows` usable rows of src (non-empty text and label, label trimmed as savant
    trims it; with `allowed`, only those labels) to dst, columns text,label."""
    if not src.exists():
        sys.exit(f"{src} is missing: make the CFPB splits with `savant demo` (or savant fetch/clean/split)")
    out, skipped, dropped = [], 0, 0
    with open(src, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        if "text" not in r.fieldnames or "label" not in r.fieldnames:
            sys.exit(f"{src}: expected columns text,label, found {r.fieldnames}")
        for row in r:
            text, label = row["text"] or "", (row["label"] or "").strip()
            if not text.strip() or not label:
                skipped += 1
                continue
            if allowed is not None and label not in allowed:
                dropped += 1
                continue
            out.append((text, label))
            if len(out) >= rows:
                break
    if len(out) < rows:
        sys.exit(f"only {len(out)} usable rows in {src}; asked for {rows}")
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(out)
    if dst.exists() and dst.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(dst)
    counts: dict[str, int] = {}
    for _, l in out:
        counts[l] = counts.get(l, 0) + 1
    return {"path": str(dst.relative_to(ROOT)), "source": str(src), "rows": rows, "bytes": dst.stat().st_size,
            "skipped_empty": skipped, "dropped_unknown_label": dropped,
            "mean_chars": sum(len(t) for t, _ in out) / rows, "label_counts": dict(sorted(counts.items()))}


def savant_train_flags(savant: Path) -> str:
    r = subprocess.run([str(savant), "train", "--help"], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{savant} train --help failed (exit {r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


# ---------------------------------------------------------------------------------------------
# Reading each side's figures.
# ---------------------------------------------------------------------------------------------


def savant_figures(run_dir: Path, savant: Path) -> dict:
    """Tokens/s, seconds, losses and val metrics of a finished savant run. Tokens/s is metrics.json's
    train_tokens_per_second; for binaries without it, the step lines of train_log.jsonl: the
    sum of their tokens over the `seconds` of the last one (validation comes after it)."""
    lines = [json.loads(l) for l in (run_dir / "train_log.jsonl").read_text().splitlines() if l.strip()]
    steps = [l for l in lines if l.get("event") == "step"]
    epochs = [l for l in lines if l.get("event") == "epoch"]
    if not steps:
        raise SystemExit(f"{run_dir}/train_log.jsonl has no step lines")
    log_tokens, log_seconds = sum(s["tokens"] for s in steps), steps[-1]["seconds"]
    m_path = run_dir / "metrics.json"
    m = json.loads(m_path.read_text()) if m_path.exists() else {}
    if "train_tokens_per_second" in m:
        tps, source = m["train_tokens_per_second"], "metrics.json train_tokens_per_second"
        train_s = m.get("train_step_seconds", m.get("train_tokens", log_tokens) / tps)
    else:
        tps, source, train_s = log_tokens / log_seconds, "train_log.jsonl step lines", log_seconds
    st = savant.stat()  # someone may rebuild the binary during the benchmark: record which one ran
    return {
        "tokens_per_second": tps,
        "tokens_per_second_source": source,
        "train_s": train_s,
        "real_tokens": m.get("train_tokens", log_tokens),
        "log_tokens": log_tokens,
        "log_seconds": log_seconds,
        "train_seconds_with_val": m.get("train_seconds"),
        "steps": steps[-1]["step"],
        "final_loss": steps[-1]["loss"],  # mean of the last window of LOG_EVERY (or fewer) steps
        "epoch_train_loss": epochs[-1]["train_loss"] if epochs else None,
        "window_losses": [s["loss"] for s in steps],
        "f1_macro": m.get("f1_macro", epochs[-1].get("val_metric") if epochs else None),
        "accuracy": m.get("accuracy"),
        "trainable_params": m.get("trainable_params"),
        "total_params": m.get("total_params"),
        "self_reported_peak_rss_mib": m.get("peak_rss_mib"),
        "truncated": m.get("truncated"),
        "binary_mtime": st.st_mtime,
        "binary_bytes": st.st_size,
    }


# ---------------------------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------------------------


def time_tools(mode: str, tools: list[tuple[str, list[str], object, object]], env: dict, repeat: int,
               warm: list[Path], max_wait: float, retries: int) -> dict[str, dict]:
    """Every tool once per round, `repeat` rounds (interleaved, so that a slow spell of the machine
    hits all tools alike), each after waiting (at most max_wait s) for a quiet machine, and again
    (up to `retries` times) when other processes took > 5 % of the CPUs during it; medians."""
    runs: dict[str, list[dict]] = {name: [] for name, *_ in tools}
    for i in range(repeat):
        for name, cmd, before, after in tools:
            discarded = []
            while True:
                before()
                quiet = pvt.wait_for_quiet(max_wait)
                pvt.warm_cache(*warm)
                r = pvt.run_once(cmd, env, f"train-{mode}-{name}")
                r["quiet_before"] = quiet
                r["build_running_after"] = bool(pvt.builds_running())
                r["contended"] = r["build_running_after"] or r["other_cpu_s"] > 0.05 * r["wall_s"] * os.cpu_count()
                r.update(after())
                log(f"  {mode} {name} run {i + 1}/{repeat}: {r['wall_s']:.1f} s wall, {r['train_s']:.1f} s training, "
                    f"{r['tokens_per_second']:,.0f} tokens/s, {r['rss_mib']:.0f} MiB, CPU {r['cpu_s']:.1f} s "
                    f"(others {r['other_cpu_s']:.1f} s)" + ("  CONTENDED" if r["contended"] else ""))
                if not r["contended"] or len(discarded) >= retries:
                    break
                log(f"  ... run again (contended runs are retried up to {retries} times)")
                discarded.append({k: r[k] for k in ("wall_s", "cpu_s", "other_cpu_s", "tokens_per_second")})
            r["discarded_contended"] = discarded
            runs[name].append(r)
    out = {}
    for name, cmd, *_ in tools:
        rs = runs[name]
        med = lambda key: statistics.median(r[key] for r in rs)
        out[name] = {
            "cmd": cmd,
            "runs": rs,
            "tokens_per_second": med("tokens_per_second"),
            "train_s": med("train_s"),
            "wall_s": med("wall_s"),
            "cpu_s": med("cpu_s"),
            "other_cpu_s": med("other_cpu_s"),
            "rss_mib": max(r["rss_mib"] for r in rs),
            # losses and metrics are deterministic per tool (seeded); the last run's
            "final_loss": rs[-1]["final_loss"],
            "f1_macro": rs[-1]["f1_macro"],
            "accuracy": rs[-1]["accuracy"],
        }
    return out


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------


def fmt(v, spec: str, width: int = 0) -> str:
    """v formatted, or "-" when a binary did not report it."""
    return f"{v:>{width}{spec}}" if isinstance(v, (int, float)) else f"{'-':>{width}}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--savant", help="savant binary (default: $CARGO_TARGET_DIR or ~/.cache/savant/target, + /release/savant)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: lora, full (default: both)")
    ap.add_argument("--rows", type=int, default=2000, help="training rows (default 2000)")
    ap.add_argument("--val-rows", type=int, default=200, help="validation rows (default 200)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads for both sides: RAYON_NUM_THREADS for savant, torch.set_num_threads (default: all CPUs)")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per tool and mode; the median is reported (default 1)")
    ap.add_argument("--no-bucketed", action="store_true", help="skip the length-bucketed PyTorch variant")
    ap.add_argument("--only-torch", action="store_true", help="write the data and time PyTorch only (no savant)")
    ap.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for a quiet machine before each run (default 1800)")
    ap.add_argument("--retries", type=int, default=1, help="times a run is redone when other processes took CPU during it (default 1)")
    ap.add_argument("--json", help="where to write the results (default: bench/results/train_vs_peft.json for the "
                                   "default sizes, bench/data/train_vs_peft_<rows>_<val_rows>.json otherwise)")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        sys.exit(f"--modes: expected a comma-separated list of {', '.join(MODES)}, got {args.modes!r}")

    ensure_venv()
    sys.stdout.reconfigure(line_buffering=True)
    DATA.mkdir(parents=True, exist_ok=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    home = pvt.savant_home()
    minilm = home / "models/minilm"
    if not (minilm / "model.safetensors").exists():
        sys.exit(f"{minilm}: no model.safetensors; fetch it with `savant fetch model minilm`")
    splits = home / "demo/cfpb/splits"
    train_csv, val_csv = DATA / f"train_cfpb_{args.rows}.csv", DATA / f"val_cfpb_{args.val_rows}.csv"
    train_info = write_split(splits / "train.csv", train_csv, args.rows, None)
    labels = sorted(train_info["label_counts"])
    val_info = write_split(splits / "val.csv", val_csv, args.val_rows, set(labels))
    if len(labels) != 8:
        log(f"WARNING: the {args.rows} train rows hold {len(labels)} of the 8 CFPB products")
    if val_info["dropped_unknown_label"]:
        log(f"WARNING: {val_info['dropped_unknown_label']} val rows dropped: their label is not among the train rows'")
    info = pvt.machine_info()
    threads = str(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               TOKENIZERS_PARALLELISM="true", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    warm = [train_csv, val_csv, minilm / "model.safetensors", minilm / "tokenizer.json"]
    rel = lambda p: str(Path(p).resolve().relative_to(ROOT)) if Path(p).resolve().is_relative_to(ROOT) else str(p)

    savant, version, overwrite, threads_flag = None, None, False, False
    if not args.only_torch:
        savant = Path(args.savant).resolve() if args.savant else pvt.default_savant()
        if not savant.exists():
            sys.exit(f"{savant} does not exist: build it with `cargo build --release -p savant` or pass --savant")
        version = subprocess.run([str(savant), "--version"], capture_output=True, text=True).stdout.strip()
        flags = savant_train_flags(savant)
        overwrite = "--overwrite" in flags
        # Binaries whose `savant train` has its own --threads (data-parallel parts of each batch,
        # defaulting to the core count) get the same count as PyTorch through it too.
        threads_flag = re.search(r"^\s*--threads\b", flags, re.M) is not None
        if not overwrite:
            log(f"NOTE: {savant} train has no --overwrite: the run folder is deleted before each run instead")
        warm.append(savant)

    all_results, all_ratios, commands = {}, {}, {}
    variants = ["shuffled"] + ([] if args.no_bucketed else ["bucketed"])
    for mode in modes:
        tools = []
        if savant:
            run_dir = RUNS / f"savant-{mode}"
            cmd = [str(savant), "train", "--model", str(minilm), "--train", rel(train_csv), "--val", rel(val_csv),
                   "--text", "text", "--label", "label", "--mode", mode, "--epochs", str(EPOCHS),
                   "--batch-size", str(BATCH), "--max-len", str(MAX_LEN), "--lr", LR[mode], "--warmup", str(WARMUP),
                   "--weight-decay", str(WEIGHT_DECAY), "--seed", str(SEED), "--device", "cpu",
                   "--log-every", str(LOG_EVERY)] + (["--threads", threads] if threads_flag else []) + \
                  (["--overwrite"] if overwrite else []) + ["-o", rel(run_dir)]

            def before(run_dir=run_dir):
                # --overwrite replaces the run; without it (older binaries) the folder must go. Either
                # way a stale metrics.json must not be read if this run fails to write one.
                if overwrite:
                    (run_dir / "metrics.json").unlink(missing_ok=True)
                else:
                    shutil.rmtree(run_dir, ignore_errors=True)

            tools.append(("savant", cmd, before, lambda run_dir=run_dir: savant_figures(run_dir, savant)))
        for batching in variants:
            name = "pytorch" if batching == "shuffled" else "pytorch-bucketed"
            stats = DATA / "out" / f"train-{mode}-{name}.json"
            cmd = worker_cmd("torch-train", minilm, rel(train_csv), rel(val_csv), rel(stats), mode, batching,
                             args.threads, LR[mode])
            tools.append((name, cmd, lambda stats=stats: stats.unlink(missing_ok=True),
                          lambda stats=stats: json.loads(stats.read_text())))
        commands[mode] = {name: " ".join(f"{k}={env[k]}" for k in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS")) + " " +
                          shlex.join(cmd) for name, cmd, *_ in tools}
        log(f"{mode}: {version or 'PyTorch only'}{f' ({savant})' if savant else ''}, {args.threads} threads, "
            f"{args.rows:,} train / {args.val_rows:,} val rows; {args.repeat} round(s) of: {', '.join(t[0] for t in tools)}")
        try:
            all_results[mode] = time_tools(mode, tools, env, args.repeat, warm, args.max_wait, args.retries)
        except RuntimeError as e:
            sys.exit(f"a timed command failed:\n{e}")

    # --- tables ----------------------------------------------------------------------------------
    versions = torch_info = None
    for mode, results in all_results.items():
        if "savant" in results:
            results["savant"]["version"] = version
            if len({(r["binary_mtime"], r["binary_bytes"]) for r in results["savant"]["runs"]}) > 1:
                log(f"WARNING: {savant} changed during the benchmark (someone rebuilt it); the runs timed different binaries")
                results["savant"]["binary_changed"] = True
        for name in [n for n in results if n.startswith("pytorch")]:
            r = results[name]
            for key in ("versions", "torch_config", "threads", "interop_threads", "attn_implementation", "trainable_report"):
                r[key] = r["runs"][-1][key]
                for run in r["runs"]:
                    run.pop(key, None)
            versions, torch_info = r["versions"], r["torch_config"]

    print()
    print(f"torch {versions['torch']}, transformers {versions['transformers']}, peft {versions['peft']}; "
          f"{info['cpus_logical']} CPUs ({info['cpu']}); savant: {version or 'not run'}")
    for mode, results in all_results.items():
        print()
        print(f"train {mode}: {args.rows:,} CFPB complaints ({train_info['mean_chars']:.0f} chars on average) + "
              f"{args.val_rows:,} val, all-MiniLM-L6-v2, {len(labels)} labels, {EPOCHS} epoch, batch {BATCH}, "
              f"max_len {MAX_LEN}, lr {LR[mode]}, {args.threads} threads, median of {args.repeat}")
        print(f"{'tool':<17} {'tokens/s':>9} {'train s':>8} {'peak RSS MiB':>13} {'final loss':>11} "
              f"{'val F1 macro':>13} {'val acc':>8} {'others CPU s':>13}")
        for name, r in results.items():
            print(f"{name:<17} {r['tokens_per_second']:>9,.0f} {r['train_s']:>8.1f} {r['rss_mib']:>13,.0f} "
                  f"{fmt(r['final_loss'], '.4f', 11)} {fmt(r['f1_macro'], '.4f', 13)} {fmt(r['accuracy'], '.4f', 8)} "
                  f"{r['other_cpu_s']:>13.1f}")
        contended = {n: sum(x["contended"] for x in r["runs"]) for n, r in results.items()}
        if any(contended.values()):
            print("  WARNING: other processes used > 5 % of the CPUs during " +
                  ", ".join(f"{k} of {args.repeat} {n} runs" for n, k in contended.items() if k) + " (see others CPU s)")
        if "savant" in results:
            s = results["savant"]["runs"][-1]
            print(f"  savant (last run): {s['real_tokens']:,} real tokens in {s['steps']} steps; tokens/s from "
                  f"{s['tokens_per_second_source']}; trainable {fmt(s['trainable_params'], ',')} of "
                  f"{fmt(s['total_params'], ',')} params; epoch train loss {fmt(s['epoch_train_loss'], '.4f')}; "
                  f"final loss = mean of the last log window ({LOG_EVERY} steps or fewer)")
        for name in [n for n in results if n.startswith("pytorch")]:
            p = results[name]["runs"][-1]
            print(f"  {name} (last run): {p['real_tokens']:,} real tokens in {p['steps']} steps, padding "
                  f"{p['pad_tokens'] / (p['pad_tokens'] + p['real_tokens']):.0%}; tokenise {p['tokenize_s']:.1f} s, "
                  f"steps {p['step_s']:.1f} s, load {p['load_s']:.1f} s, import {p['import_s']:.1f} s, val {p['val_s']:.1f} s; "
                  f"last-window loss {p['last_window_loss']:.4f}")
            print(f"    {results[name]['trainable_report']}")
        if "savant" in results and "pytorch" in results:
            a, b = results["savant"]["runs"][-1]["real_tokens"], results["pytorch"]["runs"][-1]["real_tokens"]
            if a != b:
                print(f"  WARNING: savant counted {a:,} real tokens, PyTorch {b:,}: the two tokenise differently")

        ratios = {}
        if "savant" in results:
            s = results["savant"]
            print(f"\n{mode}: savant / pytorch:")
            for name in [n for n in results if n.startswith("pytorch")]:
                p = results[name]
                x = s["tokens_per_second"] / p["tokens_per_second"]
                per_round = [a["tokens_per_second"] / b["tokens_per_second"] for a, b in zip(s["runs"], p["runs"])]
                ratios[name] = {"tokens_per_second": x, "per_round": per_round, "rss": s["rss_mib"] / p["rss_mib"]}
                if name == "pytorch":
                    ratios[name].update(target=TARGET, met=x >= TARGET)
                note = f"(target >= {TARGET:.1f}x)  {'MET' if x >= TARGET else 'NOT MET'}" if name == "pytorch" else "(informational)"
                print(f"  vs {name:<17} tokens/s {x:5.2f}x  RSS {s['rss_mib']:,.0f} / {p['rss_mib']:,.0f} MiB  {note}")
                if args.repeat > 1:
                    print(f"     tokens/s per round: {', '.join(f'{v:.2f}x' for v in per_round)}")
        all_ratios[mode] = ratios

    doc = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "git": pvt.git_rev(),
        "machine": info,
        "versions": versions,
        "torch_parallel_info": torch_info,
        "savant": {"binary": str(savant) if savant else None, "version": version, "has_overwrite": overwrite,
                   "threads_flag": threads_flag},
        "model": str(minilm),
        "labels": labels,
        "data": {"train": train_info, "val": val_info},
        "settings": {"threads": args.threads, "repeat": args.repeat, "retries": args.retries, "max_wait": args.max_wait,
                     "epochs": EPOCHS, "batch_size": BATCH, "max_len": MAX_LEN, "lr": LR, "warmup": WARMUP,
                     "weight_decay": WEIGHT_DECAY, "max_grad_norm": MAX_GRAD_NORM, "seed": SEED, "lora": LORA,
                     "log_every": LOG_EVERY, "eval_batch": EVAL_BATCH, "bucket_window_batches": WINDOW_BATCHES,
                     "rss_method": pvt.RSS_METHOD,
                     "env": {k: env[k] for k in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                 "TOKENIZERS_PARALLELISM")}},
        "commands": commands,
        "results": all_results,
        "ratios_savant_over": all_ratios,
        "target_tokens_per_second_ratio": TARGET,
    }
    if args.json:
        path = Path(args.json).resolve()
    elif args.only_torch:
        path = DATA / "train_vs_peft.torch-only.json"
    elif (args.rows, args.val_rows) == (2000, 200):
        path = BENCH / "results" / "train_vs_peft.json"
    else:
        path = DATA / f"train_vs_peft_{args.rows}_{args.val_rows}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"\nwrote {rel(path)}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "torch-train":
            minilm, train, val, stats, mode, batching, threads, lr = rest
            result = worker_train(minilm, train, val, mode, batching, int(threads), float(lr))
            Path(stats).parent.mkdir(parents=True, exist_ok=True)
            Path(stats).write_text(json.dumps(result))
        else:
            sys.exit(f"unknown worker {kind}")
    else:
        main()
