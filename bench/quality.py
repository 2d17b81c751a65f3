#!/usr/bin/env python3
"""What a user gets: every method on full, leak-free splits of the real datasets, the same test rows
for all, test macro-F1 and accuracy with 95% bootstrap intervals (savant eval's).

    bench/quality.py --datasets medical                       # every method on the drug reviews (~20 min)
    bench/quality.py --datasets finance --methods lora        # LoRA on the full CFPB split (~45 min)
    bench/quality.py --datasets finance --methods untrained   # majority, TF-IDF + LR, centroid, probe (minutes)
    bench/quality.py --table                                  # docs/benchmarks.md's tables, from the results file
    bench/quality.py --datasets medical --train-rows 48 --val-rows 16 --test-rows 16 --epochs 1 --methods lora   # smoke

Results accumulate in bench/results/quality_full.json, one row per dataset x method: a run does the
methods asked for that the file lacks (or all of them with --redo) and keeps the rest, so the hours
this takes on two cores can be spread over several sessions. A row is dropped when its dataset's
files changed (each row carries the sha256 of train/val/test). A sampled run (--train-rows, ...)
writes bench/data/quality/quality_smoke.json instead.

Data (per dataset, from `savant demo --no-train`'s work in $SAVANT_HOME):
  train, val  the demo's splits (cleaned: redacted, near-deduplicated, training rows that leak
              into the package's test file dropped; split grouping near-duplicates), all rows;
  test        finance, medical: the package's own test file (CFPB 3,000 rows, Drugs.com 379),
              put through `savant clean --redact --dedup none` as the training rows were (so
              the same normalisation and placeholders; no row is dropped for duplication);
              legal, legal-rules: the demo's test split.
  Val/test rows whose label the training rows lack are dropped and counted.

Methods (--methods, comma-separated; `untrained` = the first five, `trained` = the rest):
  majority       the training rows' most frequent class
  tfidf_lr       scikit-learn TfidfVectorizer (1-2-grams, sublinear tf, min_df 2) + LogisticRegression,
                 C in 0.1, 1, 10, 100 chosen on val
  savant_baseline  `savant baseline` (the same recipe in core; what `savant train` compares against)
  centroid       all-MiniLM-L6-v2 untrained: `savant embed` vectors (max length 128), the mean unit
                 vector of each class's training rows, nearest by cosine
  probe          all-MiniLM-L6-v2 frozen + scikit-learn LogisticRegression on those vectors, C in
                 0.001, 0.01, 0.1, 1, 10 chosen on val (savant train's epoch 0 does the same in core)
  full, partial, adapter, lora
                 `savant train` with its defaults (mean-pooled head initialised from the probe,
                 3 epochs, batch 16, max length 128, per-mode learning rates), seed 42;
                 partial freezes the embeddings and the bottom 3 of 6 layers
  full_pooler, lora_pooler
                 the recipe before issue 19: HF's pooler head, randomly initialised (lora at 5e-4)
  peft_lora, torch_full
                 the peer: PyTorch + transformers + PEFT with savant's recipe (mean-pooled head
                 initialised from a standardised sklearn probe, C chosen on val; LoRA r 8 at 1e-3
                 or full at 5e-5; 3 epochs, batches of 16 cut as savant cuts them, the best val
                 epoch kept): bench/peer_lpft.py. `all` leaves the peers out (`peer` names them)
Every method writes test predictions (prob_<class> columns) scored by `savant eval --bootstrap
1000` and cross-checked against scikit-learn's f1_score/accuracy_score on the same predictions.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.dont_write_bytecode = True
import predict_vs_transformers as pvt  # noqa: E402  (savant home, default binary, machine info, git revision; csv field limit)

VENV = ROOT / "tests/fixtures/model/.venv"
VENV_PY = VENV / "bin" / "python"
QDATA = BENCH / "data" / "quality"
RESULTS = BENCH / "results" / "quality_full.json"
SMOKE = QDATA / "quality_smoke.json"
# name -> (demo folder, what it is, the package's test file under $SAVANT_HOME/datasets or None)
DATASETS = {
    "finance": ("cfpb", "CFPB complaints -> product", "cfpb/test.csv"),
    "medical": ("drugs", "Drugs.com reviews -> sentiment", "drugs/test.csv"),
    "legal": ("licenses", "licence texts -> category", None),
    "legal-rules": ("license-rules", "licence notices/rules -> category", None),
}
UNTRAINED = ("majority", "tfidf_lr", "savant_baseline", "centroid", "probe")
TRAINED = ("full", "partial", "adapter", "lora", "full_pooler", "lora_pooler")
PEERS = ("peft_lora", "torch_full")
# Long texts (issue 20): a trained mode with how it reads a text longer than the max length.
LONG = ("full_headtail", "full_windows", "full_windows8", "full_windows_max", "lora_windows", "lora_windows8", "lora_headtail",
        "full_len256", "lora_len256", "lora_windows8_pool", "lora_windows8_max", "lora_windows2", "lora_windows2_pool", "lora_len512",
        "lora_windows5_max")
# The variants' flags that predict takes too (each flag has one value).
PREDICT_FLAGS = ("--long", "--stride", "--max-windows", "--aggregate", "--max-len")
# Other settings of a trained mode, chosen on val like everything else.
TUNED = ("full_balanced", "lora_balanced", "adapter_balanced")
VARIANT_ARGS = {  # suffix -> savant train/predict flags
    "headtail": ["--long", "head-tail"],
    "windows": ["--long", "windows"],
    "windows8": ["--long", "windows", "--max-windows", "8"],
    "windows_max": ["--long", "windows", "--aggregate", "max-logits"],
    "windows8_pool": ["--long", "windows", "--max-windows", "8", "--aggregate", "mean-pool"],
    "windows8_max": ["--long", "windows", "--max-windows", "8", "--aggregate", "max-logits"],
    "windows2": ["--long", "windows", "--max-windows", "2"],
    "windows2_pool": ["--long", "windows", "--max-windows", "2", "--aggregate", "mean-pool"],
    "windows5_max": ["--long", "windows", "--max-windows", "5", "--aggregate", "max-logits"],
    "len256": ["--max-len", "256"],
    "len512": ["--max-len", "512"],
    "balanced": ["--class-weights", "balanced"],
}
# A trained run's probabilities averaged with TF-IDF + LR's (ens_<method>), weight chosen on val.
ENSEMBLES = tuple(f"ens_{m}" for m in TRAINED + LONG + TUNED)
METHODS = UNTRAINED + TRAINED + PEERS + LONG + TUNED + ENSEMBLES
LABELS = {
    "majority": "majority class", "tfidf_lr": "TF-IDF + LR (sklearn)", "savant_baseline": "TF-IDF + LR (savant baseline)",
    "centroid": "MiniLM untrained: centroid", "probe": "MiniLM untrained: probe",
    "full": "full", "partial": "partial (3 of 6 layers frozen)", "adapter": "Houlsby adapters", "lora": "LoRA r 8",
    "full_pooler": "full, old recipe (pooler head, random init)", "lora_pooler": "LoRA, old recipe (pooler head, random init, 5e-4)",
    "peft_lora": "peer: PyTorch + PEFT LoRA r 8, same recipe", "torch_full": "peer: PyTorch full, same recipe",
    "full_headtail": "full, head + tail of each text (32 + 94 tokens)",
    "full_windows": "full, windows over the whole text (128 tokens, stride 31), mean logits",
    "full_windows8": "full, the first 8 windows of each text (~760 tokens), mean logits",
    "full_windows_max": "full, windows over the whole text, max logits",
    "lora_windows": "LoRA r 8, windows over the whole text, mean logits",
    "lora_windows8": "LoRA r 8, the first 8 windows of each text (~760 tokens), mean logits",
    "lora_headtail": "LoRA r 8, head + tail of each text",
    "full_len256": "full, texts cut at 256 tokens",
    "lora_len256": "LoRA r 8, texts cut at 256 tokens",
    "lora_len512": "LoRA r 8, texts cut at 512 tokens",
    "lora_windows8_pool": "LoRA r 8, the first 8 windows of each text, mean-pooled (trained on whole texts)",
    "lora_windows8_max": "LoRA r 8, the first 8 windows of each text, max logits",
    "lora_windows2": "LoRA r 8, the first 2 windows of each text (~220 tokens), mean logits",
    "lora_windows2_pool": "LoRA r 8, the first 2 windows of each text, mean-pooled (trained on whole texts)",
    "lora_windows5_max": "LoRA r 8, the first 5 windows of each text (~510 tokens), max logits",
    "full_balanced": "full, class-weighted loss (balanced)",
    "lora_balanced": "LoRA r 8, class-weighted loss (balanced)",
    "adapter_balanced": "Houlsby adapters, class-weighted loss (balanced)",
}
SEED = 42
MAX_LEN = 128
FREEZE_LAYERS = 3
C_TFIDF = (0.1, 1.0, 10.0, 100.0)
C_PROBE = (0.001, 0.01, 0.1, 1.0, 10.0)
TFIDF = {"sublinear_tf": True, "ngram_range": (1, 2), "min_df": 2}
BOOTSTRAP = 1000

log = pvt.log


def rel(p) -> str:
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def ensure_venv(script: str = __file__) -> None:
    """Re-run `script` (this file, or a bench script importing it) with the fixtures venv's Python."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PY.exists():
        sys.exit(f"{VENV} is missing: make it as tests/fixtures/model/make_fixtures.py's header says (scikit-learn, numpy)")
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(script).resolve()), *sys.argv[1:]])


def run(cmd: list[str], log_path: Path, env: dict, stdout=None) -> subprocess.CompletedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as e:
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=stdout if stdout is not None else e, stderr=e)
    if p.returncode:
        tail = log_path.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{shlex.join(cmd)} failed (exit {p.returncode}); {rel(log_path)}:\n{tail}")
    return p


# ---------------------------------------------------------------------------------------------
# Data.
# ---------------------------------------------------------------------------------------------


def read_rows(src: Path) -> tuple[list[tuple[str, str]], int]:
    """(text, label) of every row with a non-empty text and label, and how many were skipped."""
    rows, skipped = [], 0
    with open(src, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        if "text" not in r.fieldnames or "label" not in r.fieldnames:
            sys.exit(f"{src}: expected columns text,label, found {r.fieldnames}")
        for row in r:
            text, label = row["text"] or "", (row["label"] or "").strip()
            if not text.strip() or not label:
                skipped += 1
            else:
                rows.append((text, label))
    return rows, skipped


def write_rows(rows, dst: Path) -> None:
    """Rewritten only when the content changes (stable mtimes and hashes)."""
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(rows)
    if dst.exists() and dst.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(dst)


def counts(labels) -> dict[str, int]:
    c: dict[str, int] = {}
    for l in labels:
        c[l] = c.get(l, 0) + 1
    return dict(sorted(c.items()))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(name: str, home: Path, savant: Path, sizes: dict, env: dict) -> dict:
    folder, what, package_test = DATASETS[name]
    splits = home / "demo" / folder / "splits"
    if not (splits / "train.csv").exists():
        sys.exit(f"{splits}/train.csv is missing: make the splits with `savant demo --no-train --dataset {folder}`")
    out = QDATA / name
    out.mkdir(parents=True, exist_ok=True)
    info = {"name": name, "source": folder, "what": what, "splits": {}}
    sources = {"train": splits / "train.csv", "val": splits / "val.csv", "test": splits / "test.csv"}
    if package_test:
        raw = home / "datasets" / package_test
        cleaned = out / "test_package_clean.csv"
        report = out / "test_package_clean.json"
        if not cleaned.exists() or cleaned.stat().st_mtime < raw.stat().st_mtime:
            run([str(savant), "clean", str(raw), "-o", str(cleaned), "--redact", "--dedup", "none", "--quiet",
                 "--report", str(report)], out / "clean_test.log", env)
        rep = json.loads(report.read_text())
        info["test_source"] = {"file": str(raw), "cleaned_by": "savant clean --redact --dedup none",
                               "clean_report": {k: v for k, v in rep.items() if isinstance(v, (int, float, str))}}
        sources["test"] = cleaned
    taken = {}
    for split, src in sources.items():
        rows, skipped = read_rows(src)
        n = sizes.get(f"{split}_rows")
        taken[split] = (rows[:n] if n else rows, len(rows), skipped, src)
    classes = sorted({l for _, l in taken["train"][0]})
    info["files"] = {}
    for split, (rows, available, skipped, src) in taken.items():
        kept = [(t, l) for t, l in rows if l in classes]
        dropped = [l for _, l in rows if l not in classes]
        dst = out / f"{split}.csv"
        write_rows(kept, dst)
        info["files"][split] = dst
        info["splits"][split] = {"source": str(src), "source_rows": available, "skipped_empty": skipped,
                                 "rows": len(kept), "dropped_unknown_label": counts(dropped),
                                 "label_counts": counts(l for _, l in kept),
                                 "mean_chars": round(sum(len(t) for t, _ in kept) / max(len(kept), 1), 1)}
    info["classes"] = classes
    info["sha256"] = {s: sha256(p) for s, p in info["files"].items()}
    return info


def labels_of(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


# ---------------------------------------------------------------------------------------------
# Scoring: every method's test predictions through savant eval (bootstrap), checked with sklearn.
# ---------------------------------------------------------------------------------------------


def write_probs(path: Path, labels: list[str], probs, classes: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["label", "pred"] + [f"prob_{c}" for c in classes])
        for y, p in zip(labels, probs):
            p = [float(x) for x in p]
            w.writerow([y, classes[max(range(len(p)), key=lambda i: p[i])]] + [repr(x) for x in p])
    tmp.replace(path)


def evaluate(savant: Path, preds: Path, classes: list[str], env: dict) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    p = run([str(savant), "eval", str(preds), "--label", "label", "--json", "--bootstrap", str(BOOTSTRAP), "--seed", "0"],
            preds.with_suffix(".eval.log"), env, stdout=subprocess.PIPE)
    rep = json.loads(p.stdout)
    ci = rep.get("confidence_intervals") or {}
    with open(preds, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    y, yp = [r["label"] for r in rows], [r["pred"] for r in rows]
    sk_f1 = float(f1_score(y, yp, labels=classes, average="macro", zero_division=0))
    sk_acc = float(accuracy_score(y, yp))
    diff = max(abs(sk_f1 - rep["f1_macro"]), abs(sk_acc - rep["accuracy"]))
    if diff > 1e-9:
        log(f"  WARNING: {rel(preds)}: savant eval {rep['f1_macro']:.6f}/{rep['accuracy']:.6f}, sklearn {sk_f1:.6f}/{sk_acc:.6f}")
    return {"n": rep["n"], "f1_macro": rep["f1_macro"], "accuracy": rep["accuracy"],
            "f1_macro_ci95": ci.get("f1_macro"), "accuracy_ci95": ci.get("accuracy"),
            "f1_macro_present": float(f1_score(y, yp, average="macro", zero_division=0)),
            "max_abs_diff_vs_sklearn": diff, "log_loss": rep.get("log_loss")}


def val_scores(y, yp, classes) -> dict:
    from sklearn.metrics import accuracy_score, f1_score
    return {"f1_macro": float(f1_score(y, yp, labels=classes, average="macro", zero_division=0)),
            "accuracy": float(accuracy_score(y, yp)), "n": len(y)}


# ---------------------------------------------------------------------------------------------
# The untrained methods.
# ---------------------------------------------------------------------------------------------


def embeddings(savant: Path, minilm: Path, info: dict, env: dict, threads: int,
               reading: tuple[str, list[str]] = (f"minilm{MAX_LEN}", ["--max-len", str(MAX_LEN)])):
    """`savant embed` mean-pooled, unnormalised vectors of each split, cached beside the files;
    `reading` names the cache and gives embed's length flags (bench/long_text_reading.py's readings)."""
    import numpy as np

    tag, flags = reading
    out, seconds = {}, {}
    for split, path in info["files"].items():
        npy = path.with_name(f"{split}.{tag}.npy")
        if not npy.exists() or npy.stat().st_mtime < path.stat().st_mtime:
            t0 = time.perf_counter()
            run([str(savant), "embed", "--model", str(minilm), str(path), "--text", "text", *flags,
                 "--no-normalize", "--device", "cpu", "--threads", str(threads), "-o", str(npy)],
                path.with_name(f"embed_{split}.{tag}.log"), env)
            seconds[split] = time.perf_counter() - t0
        out[split] = np.load(npy)
        if len(out[split]) != info["splits"][split]["rows"]:
            raise RuntimeError(f"{npy}: {len(out[split])} vectors for {info['splits'][split]['rows']} rows")
    return out, seconds


def untrained(method: str, info: dict, savant: Path, minilm: Path, env: dict, threads: int) -> dict:
    import numpy as np

    classes = info["classes"]
    files = info["files"]
    x_train, y_train = labels_of(files["train"])
    x_val, y_val = labels_of(files["val"])
    x_test, y_test = labels_of(files["test"])
    preds = QDATA / info["name"] / "preds" / f"{method}.csv"
    row: dict = {"method": method}
    t0 = time.perf_counter()
    if method == "majority":
        major = max(classes, key=lambda c: (y_train.count(c), -classes.index(c)))
        probs = [[1.0 if c == major else 0.0 for c in classes] for _ in y_test]
        row["what"] = f"'{major}' for every text"
        row["val"] = val_scores(y_val, [major] * len(y_val), classes)
    elif method == "tfidf_lr":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vec = TfidfVectorizer(**TFIDF)
        a, v, t = vec.fit_transform(x_train), vec.transform(x_val), vec.transform(x_test)
        grid, best = [], None
        for c in C_TFIDF:
            lr = LogisticRegression(C=c, max_iter=2000).fit(a, y_train)
            s = val_scores(y_val, list(lr.predict(v)), classes)
            grid.append({"C": c, "val_f1_macro": s["f1_macro"]})
            if best is None or s["f1_macro"] > best[1]["f1_macro"]:
                best = (lr, s, c)
        lr, row["val"], row["C"] = best
        assert list(lr.classes_) == classes
        probs = lr.predict_proba(t)
        row["grid"], row["vocabulary"] = grid, len(vec.vocabulary_)
        row["what"] = f"{len(vec.vocabulary_):,} terms, C {row['C']:g} chosen on val"
    elif method == "savant_baseline":
        run_dir = QDATA / info["name"] / "runs" / "savant_baseline"
        run([str(savant), "baseline", "--train", rel(files["train"]), "--val", rel(files["val"]), "--test", rel(files["test"]),
             "-o", rel(run_dir)], run_dir.with_name("savant_baseline.log"), env)
        preds, probs = run_dir / "test_predictions.csv", None
        meta = json.loads((run_dir / "baseline.json").read_text())
        vm = json.loads((run_dir / "val_metrics.json").read_text())
        row["val"] = {"f1_macro": vm.get("f1_macro"), "accuracy": vm.get("accuracy"), "n": vm.get("n")}
        row["baseline"] = {k: v for k, v in meta.items() if isinstance(v, (int, float, str))}
        row["what"] = "savant baseline (core's TF-IDF + LR), C chosen on val"
    else:
        vec, row["embed_seconds"] = embeddings(savant, minilm, info, env, threads)
        if method == "centroid":
            unit = {s: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) for s, v in vec.items()}
            ytr = np.array([classes.index(y) for y in y_train])
            cent = np.stack([unit["train"][ytr == k].mean(0) for k in range(len(classes))])
            cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)

            def softmax(sims):
                z = np.exp((sims - sims.max(1, keepdims=True)) / 0.05)
                return z / z.sum(1, keepdims=True)

            probs = softmax(unit["test"] @ cent.T)
            row["val"] = val_scores(y_val, [classes[i] for i in (unit["val"] @ cent.T).argmax(1)], classes)
            row["what"] = "mean unit vector of every training row of a class, nearest by cosine"
        else:  # probe
            from sklearn.linear_model import LogisticRegression

            grid, best = [], None
            for c in C_PROBE:
                lr = LogisticRegression(C=c, max_iter=3000).fit(vec["train"], y_train)
                s = val_scores(y_val, list(lr.predict(vec["val"])), classes)
                grid.append({"C": c, "val_f1_macro": s["f1_macro"]})
                if best is None or s["f1_macro"] > best[1]["f1_macro"]:
                    best = (lr, s, c)
            lr, row["val"], row["C"] = best
            probs = lr.predict_proba(vec["test"])
            row["grid"] = grid
            row["what"] = f"logistic regression on frozen mean-pooled vectors, C {row['C']:g} chosen on val"
    row["seconds"] = time.perf_counter() - t0
    if probs is not None:
        write_probs(preds, y_test, probs, classes)
    row["preds"] = rel(preds)
    row["test"] = evaluate(savant, preds, classes, env)
    return row


# ---------------------------------------------------------------------------------------------
# savant train / predict / eval.
# ---------------------------------------------------------------------------------------------


def trained(method: str, info: dict, savant: Path, minilm: Path, env: dict, args) -> dict:
    files = info["files"]
    mode, _, variant = method.partition("_")
    long = VARIANT_ARGS.get(variant, [])
    run_dir = QDATA / info["name"] / "runs" / method
    logs = QDATA / info["name"] / "logs"
    preds = QDATA / info["name"] / "preds" / f"{method}.csv"
    preds.parent.mkdir(parents=True, exist_ok=True)
    train = [str(savant), "train", "--model", str(minilm), "--train", rel(files["train"]), "--val", rel(files["val"]),
             "--mode", mode, "--seed", str(SEED), "--device", "cpu", "--overwrite", "-o", rel(run_dir)]
    if args.epochs:
        train += ["--epochs", str(args.epochs)]
    if mode == "partial":
        train += ["--freeze-layers", str(FREEZE_LAYERS)]
    if method.endswith("_pooler"):
        train += ["--head", "pooler", "--head-init", "random"] + (["--lr", "5e-4"] if mode == "lora" else [])
    train += long
    model = ["--model", str(minilm), "--adapter", rel(run_dir / "adapter")] if mode in ("adapter", "lora") \
        else ["--model", rel(run_dir / "model")]
    # The max length trained with (a variant may set its own; clap takes an option once), and
    # how texts are read; the other flags (--class-weights) are training's alone.
    max_len = [] if "--max-len" in long else ["--max-len", str(MAX_LEN)]
    shared = [x for flag, value in zip(long[::2], long[1::2]) if flag in PREDICT_FLAGS for x in (flag, value)]
    predict = [str(savant), "predict", *model, rel(files["test"]), "--text", "text", *max_len,
               "--device", "cpu", "-o", rel(preds)] + shared
    row = {"method": method, "commands": {"train": shlex.join(train), "predict": shlex.join(predict)}, "wall_s": {}}
    shutil.rmtree(run_dir, ignore_errors=True)
    for stage, cmd in (("train", train), ("predict", predict)):
        log(f"  {info['name']} {method}: {stage} ...")
        t0 = time.perf_counter()
        run(cmd, logs / f"{method}.{stage}.log", env)
        row["wall_s"][stage] = time.perf_counter() - t0
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # ~90-350 MB each
    m = json.loads((run_dir / "metrics.json").read_text())
    epochs = [json.loads(l) for l in (run_dir / "train_log.jsonl").read_text().splitlines() if '"event":"epoch"' in l]
    row["val"] = {"f1_macro": m.get("f1_macro"), "accuracy": m.get("accuracy"), "n": m.get("n")}
    for k in ("best_epoch", "stopped_early", "head", "head_init", "probe_val_f1_macro", "probe_c", "baseline_val_f1_macro",
              "baseline_c", "train_seconds", "train_tokens_per_second", "trainable_params", "total_params", "truncated",
              "train_rows", "peak_rss_mib", "long", "windows", "windows_per_text"):
        row[k] = m.get(k)
    row["epochs"] = [{k: e.get(k) for k in ("epoch", "val_metric", "improved", "seconds")} for e in epochs]
    row["trainable_pct"] = 100 * m["trainable_params"] / m["total_params"] if m.get("total_params") else None
    row["preds"] = rel(preds)
    row["test"] = evaluate(savant, preds, info["classes"], env)
    return row


def ensemble(method: str, info: dict, savant: Path, env: dict, res: dict) -> dict:
    """`ens_<trained method>`: that run's class probabilities averaged with TF-IDF + LR's (its C
    from the tfidf_lr row), w · specialist + (1 − w) · TF-IDF, w in 0, 0.1, ... 1 chosen on val
    macro-F1. The run's model is read again to predict the val rows (its row's predict command)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    base = method.removeprefix("ens_")
    if base not in res or "commands" not in res[base] or "tfidf_lr" not in res:
        raise RuntimeError(f"{method} needs the {base} and tfidf_lr rows first")
    classes, files = info["classes"], info["files"]
    preds_dir = QDATA / info["name"] / "preds"
    # A run of a savant that writes savant_ensemble.json: the product's own path.
    saved = QDATA / info["name"] / "runs" / base / "savant_ensemble.json"
    if saved.exists():
        preds = preds_dir / f"{method}.csv"
        cmd = shlex.split(res[base]["commands"]["predict"])
        cmd[cmd.index("-o") + 1] = rel(preds)
        cmd += ["--ensemble", rel(saved)]
        run(cmd, preds_dir / f"{method}.log", env)
        m = json.loads((saved.parent / "metrics.json").read_text())
        return {"method": method, "base": base, "w": m.get("ensemble_weight"), "how": shlex.join(cmd),
                "val": {"f1_macro": m.get("ensemble_val_f1_macro"), "n": m.get("n")},
                "what": f"savant predict --ensemble: {base} × {m.get('ensemble_weight')} + savant's TF-IDF baseline",
                "preds": rel(preds), "test": evaluate(savant, preds, classes, env)}
    cmd = shlex.split(res[base]["commands"]["predict"])
    val_preds = preds_dir / f"{base}.val.csv"
    cmd[cmd.index(rel(files["test"]))] = rel(files["val"])
    cmd[cmd.index("-o") + 1] = rel(val_preds)
    t0 = time.perf_counter()
    run(cmd, preds_dir / f"{base}.val.log", env)
    seconds = time.perf_counter() - t0

    def probs_of(path: Path):
        with open(path, newline="", encoding="utf-8") as f:
            return np.array([[float(r[f"prob_{c}"]) for c in classes] for r in csv.DictReader(f)])

    x_train, y_train = labels_of(files["train"])
    x_val, y_val = labels_of(files["val"])
    x_test, y_test = labels_of(files["test"])
    vec = TfidfVectorizer(**TFIDF)
    lr = LogisticRegression(C=res["tfidf_lr"]["C"], max_iter=2000).fit(vec.fit_transform(x_train), y_train)
    assert list(lr.classes_) == classes
    tv, tt = lr.predict_proba(vec.transform(x_val)), lr.predict_proba(vec.transform(x_test))
    sv, st = probs_of(val_preds), probs_of(QDATA / info["name"] / "preds" / f"{base}.csv")
    grid = []
    for w in [i / 10 for i in range(11)]:
        s = val_scores(y_val, [classes[i] for i in (w * sv + (1 - w) * tv).argmax(1)], classes)
        grid.append({"w": w, "val_f1_macro": s["f1_macro"], "val": s})
    best = max(grid, key=lambda g: g["val_f1_macro"])
    preds = preds_dir / f"{method}.csv"
    write_probs(preds, y_test, best["w"] * st + (1 - best["w"]) * tt, classes)
    return {"method": method, "base": base, "w": best["w"], "val": best["val"],
            "grid": [{k: g[k] for k in ("w", "val_f1_macro")} for g in grid], "val_predict_seconds": seconds,
            "what": f"{base} probabilities × {best['w']:g} + TF-IDF + LR's × {1 - best['w']:g} (weight chosen on val)",
            "preds": rel(preds), "test": evaluate(savant, preds, classes, env)}


def peer(method: str, info: dict, savant: Path, minilm: Path, env: dict, args) -> dict:
    """bench/peer_lpft.py in the venv: the same recipe in PyTorch + transformers + PEFT."""
    files = info["files"]
    mode = {"peft_lora": "lora", "torch_full": "full"}[method]
    preds = QDATA / info["name"] / "preds" / f"{method}.csv"
    result = QDATA / info["name"] / "runs" / f"{method}.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(VENV_PY), rel(BENCH / "peer_lpft.py"), "--model", str(minilm), "--train", rel(files["train"]),
           "--val", rel(files["val"]), "--test", rel(files["test"]), "--mode", mode, "--threads", str(args.threads),
           "--out", rel(preds), "--json", rel(result)] + (["--epochs", str(args.epochs)] if args.epochs else [])
    log(f"  {info['name']} {method}: train + predict (PyTorch) ...")
    t0 = time.perf_counter()
    run(cmd, QDATA / info["name"] / "logs" / f"{method}.log", env)
    row = json.loads(result.read_text())
    row.pop("classes", None)
    row.update({"method": method, "commands": {"train": shlex.join(cmd)}, "wall_s": {"train": time.perf_counter() - t0},
                "trainable_pct": 100 * row["trainable_params"] / row["total_params"], "preds": rel(preds)})
    row["test"] = evaluate(savant, preds, info["classes"], env)
    return row


# ---------------------------------------------------------------------------------------------
# Tables.
# ---------------------------------------------------------------------------------------------


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def cell(r: dict) -> str:
    t = r["test"]
    ci = t.get("f1_macro_ci95")
    return f"{pct(t['f1_macro'])}" + (f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else "")


def label(m: str) -> str:
    if m.startswith("ens_"):
        return f"{LABELS[m.removeprefix('ens_')]} + TF-IDF + LR, probabilities averaged (weight on val)"
    return LABELS[m]


def table(doc: dict) -> str:
    """Markdown: one block per dataset, methods in METHODS order."""
    out = []
    for name, res in doc["results"].items():
        d = doc["data"].get(name)
        if not d or not res:
            continue
        s = d["splits"]
        out.append(f"\n**{name}** ({d['what']}; {len(d['classes'])} classes; train {s['train']['rows']:,}, val "
                   f"{s['val']['rows']:,}, test {s['test']['rows']:,} rows)\n")
        out.append("| method | test macro-F1 [95% CI] | test accuracy | val macro-F1 | training min | trainable % |")
        out.append("|---|---|---|---|---|---|")
        for m in METHODS:
            r = res.get(m)
            if not r:
                continue
            if r.get("error"):
                out.append(f"| {label(m)} | failed: {r['error'][:80]} | | | | |")
                continue
            # `savant train`'s seconds cover the probe, the epochs and the val passes; the peer's
            # train_seconds only the epochs, so its probe and val seconds are added.
            secs = r.get("train_seconds") and r["train_seconds"] + r.get("probe_s", 0) + r.get("val_s", 0)
            mins = f"{secs / 60:.1f}" if secs else "-"
            tp = f"{r['trainable_pct']:.2f}" if r.get("trainable_pct") is not None else "-"
            v = (r.get("val") or {}).get("f1_macro")
            out.append(f"| {label(m)} | {cell(r)} | {pct(r['test']['accuracy'])} | {pct(v)} | {mins} | {tp} |")
    return "\n".join(out).strip() + "\n"


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--savant", help="savant binary (default: $CARGO_TARGET_DIR or ~/.cache/savant/target, + /release/savant)")
    ap.add_argument("--datasets", default="finance,medical,legal", help=f"comma-separated, of {', '.join(DATASETS)}")
    ap.add_argument("--methods", default="all", help="comma-separated, of " + ", ".join(METHODS) + "; or untrained, trained, all")
    ap.add_argument("--redo", action="store_true", help="run the methods asked for even when the results file has them")
    ap.add_argument("--train-rows", type=int, help="sample: the first N train rows (writes the smoke results file)")
    ap.add_argument("--val-rows", type=int)
    ap.add_argument("--test-rows", type=int)
    ap.add_argument("--epochs", type=int, help="savant train --epochs (default: savant's, 3)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--table", action="store_true", help="print the markdown table of the results file and stop")
    args = ap.parse_args()

    sampled = any(x is not None for x in (args.train_rows, args.val_rows, args.test_rows, args.epochs))
    path = SMOKE if sampled else RESULTS
    doc = json.loads(path.read_text()) if path.exists() else {"results": {}, "data": {}, "sessions": []}
    if args.table:
        print(table(doc), end="")
        return
    datasets = [d for d in args.datasets.split(",") if d]
    wanted = {"all": UNTRAINED + TRAINED, "untrained": UNTRAINED, "trained": TRAINED, "peer": PEERS, "long": LONG, "tuned": TUNED}
    methods = [m for w in args.methods.split(",") if w for m in wanted.get(w, (w,))]
    bad = [d for d in datasets if d not in DATASETS] + [m for m in methods if m not in METHODS]
    if bad:
        sys.exit(f"unknown dataset or method: {', '.join(bad)}")
    ensure_venv()
    import numpy
    import sklearn

    sys.stdout.reconfigure(line_buffering=True)
    t_start = time.perf_counter()
    home = pvt.savant_home()
    minilm = home / "models/minilm"
    savant = Path(args.savant).resolve() if args.savant else pvt.default_savant()
    if not savant.exists():
        sys.exit(f"{savant} does not exist: build it with `cargo build --release -p savant` or pass --savant")
    version = subprocess.run([str(savant), "--version"], capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    sizes = {"train_rows": args.train_rows, "val_rows": args.val_rows, "test_rows": args.test_rows}
    session = {"date": dt.datetime.now().isoformat(timespec="seconds"), "git": pvt.git_rev(), "savant": version,
               "machine": pvt.machine_info(), "versions": {"sklearn": sklearn.__version__, "numpy": numpy.__version__},
               "datasets": datasets, "methods": methods, "sizes": sizes, "epochs": args.epochs, "done": []}
    doc["sessions"].append(session)

    # Rows this run wrote (dataset -> methods), and datasets whose old rows it dropped: saving
    # merges them into the file as it is now, so runs of other methods side by side keep theirs.
    wrote: dict = {}
    cleared: set = set()

    def save() -> None:
        current = json.loads(path.read_text()) if path.exists() else {"results": {}, "data": {}, "sessions": []}
        for name in cleared:
            current["results"][name] = {}
        for name, methods in wrote.items():
            current["data"][name] = doc["data"][name]
            for m in methods:
                current["results"].setdefault(name, {})[m] = doc["results"][name][m]
        current["sessions"] = [s for s in current["sessions"] if s.get("date") != session["date"]] + [session]
        tmp = path.with_name(path.name + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(current, indent=1, default=str) + "\n")
        tmp.replace(path)

    for name in datasets:
        info = prepare(name, home, savant, sizes, env)
        files = info.pop("files")
        res = doc["results"].setdefault(name, {})
        old = doc["data"].get(name, {}).get("sha256")
        if old and old != info["sha256"]:
            log(f"{name}: the split files changed since the results file's rows were made: dropping {sorted(res)}")
            res.clear()
            cleared.add(name)
        doc["data"][name] = info
        info_files = {**info, "files": files}
        log(f"{name}: train {info['splits']['train']['rows']:,}, val {info['splits']['val']['rows']:,}, "
            f"test {info['splits']['test']['rows']:,} rows, {len(info['classes'])} classes")
        for m in methods:
            if m in res and not res[m].get("error") and not args.redo:
                log(f"  {name} {m}: in {rel(path)} already ({res[m]['test']['f1_macro']:.4f}); --redo reruns it")
                continue
            t0 = time.perf_counter()
            try:
                r = untrained(m, info_files, savant, minilm, env, args.threads) if m in UNTRAINED \
                    else peer(m, info_files, savant, minilm, env, args) if m in PEERS \
                    else ensemble(m, info_files, savant, env, res) if m in ENSEMBLES \
                    else trained(m, info_files, savant, minilm, env, args)
            except RuntimeError as e:
                log(f"  {name} {m}: FAILED: {e}")
                r = {"method": m, "error": str(e)}
            r.update({"date": dt.datetime.now().isoformat(timespec="seconds"), "git": session["git"], "savant": version,
                      "wall_seconds": time.perf_counter() - t0})
            res[m] = r
            wrote.setdefault(name, []).append(m)
            session["done"].append(f"{name}/{m}")
            save()
            if not r.get("error"):
                t = r["test"]
                log(f"  {name} {m}: test macro-F1 {t['f1_macro']:.4f} {t.get('f1_macro_ci95')}, accuracy {t['accuracy']:.4f} "
                    f"({r['wall_seconds']:.0f} s; {time.perf_counter() - t_start:.0f} s so far)")
    session["seconds"] = time.perf_counter() - t_start
    save()
    print(table(json.loads(path.read_text())), end="")
    print(f"wrote {rel(path)}")


if __name__ == "__main__":
    main()
