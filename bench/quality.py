#!/usr/bin/env python3
"""Quality of `savant train`'s four strategies on three real datasets, beside TF-IDF + logistic regression.

    bench/quality.py                                        # 3 datasets x (tf-idf+LR, majority, full, partial, adapter, lora)
    bench/quality.py --only-baseline                        # the data and the scikit-learn rows only (seconds)
    bench/quality.py --datasets medical --modes lora --train-rows 48 --val-rows 16 --test-rows 16 --epochs 1   # smoke test
    bench/quality.py --datasets legal-rules --sample shuffle                                                 # licence rules, a random sample

Python environment: the model fixtures venv tests/fixtures/model/.venv (scikit-learn, numpy). The
script re-executes itself with that venv's Python; it does not create or install anything, and it
does not build savant.

One run, per dataset (finance = cfpb, medical = drugs, legal = licenses; legal-rules =
license-rules on request; the splits of `savant demo` in $SAVANT_HOME/demo/<name>/splits):
  1. writes the first --train-rows (800), --val-rows (200) and --test-rows (400) usable rows of
     train/val/test.csv (fewer when the file has fewer; rows with an empty text or label skipped)
     to bench/data/quality/<dataset>/{train,val,test}.csv, columns text,label; val and test rows
     whose label the train rows lack are dropped (savant refuses them) and counted;
  2. baseline rows: TfidfVectorizer(sublinear_tf, 1-2-grams, min_df 2, max_features 200,000) +
     LogisticRegression(max_iter 2000, C) with C in 0.1, 1, 10, 100 picked by val macro-F1, scored
     on test; and the majority class of the train rows;
  3. per --modes (full, partial, adapter, lora): `savant train` (--epochs, batch 16, max_len 128,
     seed 42, savant's default learning rates unless --lr-full / --lr-peft; partial freezes the
     bottom 3 of 6 layers) into bench/data/quality/<dataset>/runs/<mode>, `savant predict` on the
     test rows, `savant eval --json`; a failing step is recorded (FAILED + stderr tail) and the
     run goes on;
  4. prints a table per dataset and a summary (datasets x methods, test macro-F1), and writes
     bench/results/quality.json (other settings: bench/data/quality/quality_<settings>.json).

Macro-F1 is savant eval's everywhere: the mean F1 over the train rows' classes (a class with no
test rows and no predictions scores 0), i.e. sklearn's f1_score(labels=classes, average="macro",
zero_division=0); the JSON also has sklearn's default (classes present in y_true or y_pred).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.dont_write_bytecode = True  # no bench/__pycache__ from the import below
import predict_vs_transformers as pvt  # noqa: E402  (savant home, default binary, machine info, git revision; csv field limit)

VENV = ROOT / "tests/fixtures/model/.venv"
VENV_PY = VENV / "bin" / "python"
QDATA = BENCH / "data" / "quality"
# name -> (folder under $SAVANT_HOME/demo, what it is)
DATASETS = {
    "finance": ("cfpb", "CFPB complaints -> product"),
    "medical": ("drugs", "Drugs.com reviews -> sentiment"),
    "legal": ("licenses", "licence texts -> category"),
    "legal-rules": ("license-rules", "licence notices/rules -> category"),
}
DEFAULT_DATASETS = ("finance", "medical", "legal")
MODES = ("full", "partial", "adapter", "lora")
DEFAULT_SIZES = {"train_rows": 800, "val_rows": 200, "test_rows": 400, "epochs": 3}
SEED = 42
BATCH = 16
MAX_LEN = 128
FREEZE_LAYERS = 3  # partial: embeddings + the bottom 3 of MiniLM's 6 layers frozen
C_GRID = (0.1, 1.0, 10.0, 100.0)
TFIDF = {"sublinear_tf": True, "ngram_range": (1, 2), "min_df": 2, "max_features": 200000}
LR_MAX_ITER = 2000
STDERR_TAIL = 2000

log = pvt.log


def rel(p) -> str:
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PY.exists():
        sys.exit(f"{VENV} is missing: make it as tests/fixtures/model/make_fixtures.py's header says, "
                 "then `pip install scikit-learn` into it")
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])


# ---------------------------------------------------------------------------------------------
# Data.
# ---------------------------------------------------------------------------------------------


def read_usable(src: Path) -> tuple[list[tuple[str, str]], int]:
    """(text, label) of every row with a non-empty text and label (label trimmed, as savant trims
    it), in file order, and how many rows were skipped."""
    if not src.exists():
        sys.exit(f"{src} is missing: make the splits with `savant demo`")
    rows, skipped = [], 0
    with open(src, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        if "text" not in r.fieldnames or "label" not in r.fieldnames:
            sys.exit(f"{src}: expected columns text,label, found {r.fieldnames}")
        for row in r:
            text, label = row["text"] or "", (row["label"] or "").strip()
            if not text.strip() or not label:
                skipped += 1
                continue
            rows.append((text, label))
    return rows, skipped


def write_csv(rows: list[tuple[str, str]], dst: Path) -> None:
    """Rewritten only when the content changed (keeps mtimes stable across runs)."""
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


def prepare(name: str, home: Path, sizes: dict, sample: str) -> dict:
    """Writes the subsamples of one dataset; returns what they hold."""
    folder, what = DATASETS[name]
    splits = home / "demo" / folder / "splits"
    out_dir = QDATA / name
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {"name": name, "source": folder, "what": what, "splits": {}}
    taken = {}
    for split in ("train", "val", "test"):
        rows, skipped = read_usable(splits / f"{split}.csv")
        available = len(rows)
        if sample == "shuffle":  # a seeded random sample instead of the file's first rows
            random.Random(SEED).shuffle(rows)
        rows = rows[: sizes[f"{split}_rows"]]
        taken[split] = (rows, available, skipped)
    classes = sorted({l for _, l in taken["train"][0]})
    files = {}
    for split, (rows, available, skipped) in taken.items():
        dropped = [l for _, l in rows if l not in classes]
        kept = [(t, l) for t, l in rows if l in classes]
        dst = out_dir / f"{split}.csv"
        write_csv(kept, dst)
        files[split] = dst
        info["splits"][split] = {
            "path": rel(dst),
            "source_rows": available,
            "asked": sizes[f"{split}_rows"],
            "taken": len(rows),
            "rows": len(kept),
            "skipped_empty": skipped,
            "dropped_unknown_label": len(dropped),
            "dropped_labels": counts(dropped),
            "mean_chars": sum(len(t) for t, _ in kept) / max(len(kept), 1),
            "label_counts": counts(l for _, l in kept),
        }
    info["classes"] = classes
    info["files"] = files
    return info


def print_data(info: dict) -> None:
    s = info["splits"]
    print(f"\n{info['name']} ({info['source']}: {info['what']}): {len(info['classes'])} classes; rows "
          + ", ".join(f"{k} {v['rows']:,}" + (f" (file has {v['source_rows']:,})" if v["source_rows"] < v["asked"] else "")
                      for k, v in s.items())
          + f"; mean chars {s['train']['mean_chars']:,.0f}")
    for split in ("val", "test"):
        d = s[split]
        if d["dropped_unknown_label"]:
            print(f"  {split}: dropped {d['dropped_unknown_label']} of {d['taken']} rows, label not among the train rows': "
                  + ", ".join(f"{l} {n}" for l, n in d["dropped_labels"].items()))
        else:
            print(f"  {split}: dropped 0 rows")
    labels = sorted(set(info["classes"]) | set(s["val"]["label_counts"]) | set(s["test"]["label_counts"]))
    width = min(max(len(l) for l in labels), 44)
    print(f"  {'class':<{width}} {'train':>6} {'val':>5} {'test':>5}")
    for l in labels:
        c = [s[k]["label_counts"].get(l, 0) for k in ("train", "val", "test")]
        short = l if len(l) <= width else l[: width - 3] + "..."
        flag = "  (< 2 train rows)" if c[0] < 2 else ("  (no test rows)" if c[2] == 0 else "")
        print(f"  {short:<{width}} {c[0]:>6} {c[1]:>5} {c[2]:>5}{flag}")


# ---------------------------------------------------------------------------------------------
# Metrics and the scikit-learn rows.
# ---------------------------------------------------------------------------------------------


def read_labelled(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def scores(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    if not y_true:
        return {"f1_macro": None, "f1_macro_present": None, "accuracy": None, "n": 0}
    return {
        # savant eval's definition: every class of the model, zero_division 0
        "f1_macro": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        # sklearn's default: the classes present in y_true or y_pred
        "f1_macro_present": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n": len(y_true),
    }


def baselines(info: dict) -> dict[str, dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    classes = info["classes"]
    x_train, y_train = read_labelled(info["files"]["train"])
    x_val, y_val = read_labelled(info["files"]["val"])
    x_test, y_test = read_labelled(info["files"]["test"])
    out = {}

    majority = max(classes, key=lambda c: (y_train.count(c), -classes.index(c)))
    out["majority"] = {"method": "majority", "class": majority,
                       "val": scores(y_val, [majority] * len(y_val), classes),
                       "test": scores(y_test, [majority] * len(y_test), classes)}

    if len(classes) < 2:
        out["tfidf_lr"] = {"method": "tf-idf+LR", "error": f"only {len(classes)} class in the train rows"}
        return out
    grid = []
    best = None
    for c in C_GRID:
        pipe = Pipeline([("tfidf", TfidfVectorizer(**TFIDF)),
                         ("lr", LogisticRegression(max_iter=LR_MAX_ITER, C=c))])
        t0 = time.perf_counter()
        try:
            pipe.fit(x_train, y_train)
        except ValueError as e:  # e.g. min_df=2 leaves no terms on a tiny sample
            out["tfidf_lr"] = {"method": "tf-idf+LR", "error": str(e)}
            return out
        fit_s = time.perf_counter() - t0
        val = scores(y_val, list(pipe.predict(x_val)), classes)
        grid.append({"C": c, "val": val, "fit_s": fit_s})
        if best is None or (val["f1_macro"] or 0) > (best[1]["val"]["f1_macro"] or 0):  # ties: the smaller C
            best = (pipe, grid[-1])
    pipe, chosen = best
    lr = pipe.named_steps["lr"]
    out["tfidf_lr"] = {
        "method": "tf-idf+LR",
        "C": chosen["C"],
        "val": chosen["val"],
        "test": scores(y_test, list(pipe.predict(x_test)), classes),
        "fit_s": chosen["fit_s"],
        "grid_fit_s": sum(g["fit_s"] for g in grid),
        "n_features": len(pipe.named_steps["tfidf"].vocabulary_),
        "params": int(lr.coef_.size + lr.intercept_.size),
        "n_iter": [int(n) for n in lr.n_iter_],
        "grid": grid,
    }
    return out


# ---------------------------------------------------------------------------------------------
# savant train / predict / eval.
# ---------------------------------------------------------------------------------------------


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-STDERR_TAIL:] if path.exists() else ""


def savant_run(savant: Path, minilm: Path, info: dict, mode: str, args, env: dict) -> dict:
    """Trains, predicts the test rows, evaluates; a failing step ends this run (recorded, no raise)."""
    name, files = info["name"], info["files"]
    run = QDATA / name / "runs" / mode
    logs = QDATA / name / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    preds = run / "test_preds.csv"
    lr = args.lr_peft if mode in ("adapter", "lora") else args.lr_full
    train = [str(savant), "train", "--model", str(minilm), "--train", rel(files["train"]), "--val", rel(files["val"]),
             "--text", "text", "--label", "label", "--mode", mode, "--epochs", str(args.epochs),
             "--batch-size", str(BATCH), "--max-len", str(MAX_LEN), "--seed", str(SEED), "--device", "cpu",
             "--threads", str(args.threads)] + \
            (["--freeze-layers", str(FREEZE_LAYERS)] if mode == "partial" else []) + \
            (["--lr", lr] if lr else []) + ["--overwrite", "-o", rel(run)]
    if mode in ("adapter", "lora"):
        model_args = ["--model", str(minilm), "--adapter", rel(run / "adapter")]
    else:
        model_args = ["--model", rel(run / "model")]
    predict = [str(savant), "predict", *model_args, rel(files["test"]), "--text", "text", "-o", rel(preds),
               "--max-len", str(MAX_LEN), "--device", "cpu", "--threads", str(args.threads)]
    evaluate = [str(savant), "eval", rel(preds), "--label", "label", "--json"]
    out = {"method": mode, "run_dir": rel(run), "lr": lr or "savant default",
           "commands": {k: shlex.join(c) for k, c in (("train", train), ("predict", predict), ("eval", evaluate))},
           "wall_s": {}}
    shutil.rmtree(run, ignore_errors=True)  # no stale metrics.json or predictions from an earlier run
    for stage, cmd in (("train", train), ("predict", predict), ("eval", evaluate)):
        err = logs / f"{mode}.{stage}.log"
        log(f"  {name} {mode}: {stage} ...")
        t0 = time.perf_counter()
        with open(err, "wb") as e:
            p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE if stage == "eval" else e, stderr=e)
        out["wall_s"][stage] = time.perf_counter() - t0
        if p.returncode:
            out["error"] = {"stage": stage, "exit": p.returncode, "log": rel(err), "stderr_tail": tail(err)}
            log(f"  {name} {mode}: {stage} FAILED (exit {p.returncode}); see {rel(err)}:\n"
                + "\n".join("    " + l for l in tail(err).strip().splitlines()[-8:]))
            return out
        if stage == "train":
            out.update(train_figures(run))
            if not args.keep_checkpoints:
                shutil.rmtree(run / "checkpoints", ignore_errors=True)  # ~350 MB per full run
        elif stage == "eval":
            rep = json.loads(p.stdout)
            out["test"] = {"f1_macro": rep.get("f1_macro"), "accuracy": rep.get("accuracy"), "n": rep.get("n"),
                           "eval_classes": rep.get("classes")}
            out["test_report"] = {k: v for k, v in rep.items() if k not in ("confusion_matrix", "curves")}
            out["test"].update(cross_check(preds, info["classes"], rep))
    return out


def train_figures(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    epochs = []
    log_path = run / "train_log.jsonl"
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            if line.strip():
                e = json.loads(line)
                if e.get("event") == "epoch":
                    epochs.append({k: e.get(k) for k in ("epoch", "train_loss", "val_metric", "improved", "seconds")})
    return {
        "val": {"f1_macro": m.get("f1_macro"), "accuracy": m.get("accuracy"), "n": m.get("n")},
        "best_epoch": m.get("best_epoch"),
        "epochs_run": len(epochs) or None,
        "stopped_early": m.get("stopped_early"),
        "train_seconds": m.get("train_seconds"),
        "train_step_seconds": m.get("train_step_seconds"),
        "train_tokens": m.get("train_tokens"),
        "train_tokens_per_second": m.get("train_tokens_per_second"),
        "trainable_params": m.get("trainable_params"),
        "total_params": m.get("total_params"),
        "truncated": m.get("truncated"),
        "train_rows": m.get("train_rows"),
        "peak_rss_mib": m.get("peak_rss_mib"),
        "epochs": epochs,
    }


def cross_check(preds: Path, classes: list[str], rep: dict) -> dict:
    """sklearn's macro-F1 and accuracy of the pred column, beside savant eval's (they should agree)."""
    with open(preds, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    s = scores([r["label"] for r in rows], [r["pred"] for r in rows], classes)
    diff = max(abs(s["f1_macro"] - (rep.get("f1_macro") or 0)), abs(s["accuracy"] - (rep.get("accuracy") or 0)))
    if diff > 1e-9 or rep.get("classes") != classes:
        log(f"  WARNING: {preds}: sklearn on the pred column gives macro-F1 {s['f1_macro']:.6f}, accuracy "
            f"{s['accuracy']:.6f}; savant eval {rep.get('f1_macro')}, {rep.get('accuracy')} (classes {rep.get('classes')})")
    return {"f1_macro_present": s["f1_macro_present"], "sklearn_f1_macro": s["f1_macro"],
            "sklearn_accuracy": s["accuracy"], "max_abs_diff_vs_sklearn": diff}


# ---------------------------------------------------------------------------------------------
# Tables.
# ---------------------------------------------------------------------------------------------


def f4(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "-"


def row_cells(r: dict, epochs: int) -> list[str]:
    """method, test F1, test acc, val F1, best, train s, params, tokens/s."""
    if r.get("error"):
        e = r["error"]
        if isinstance(e, str):
            msg = e
        else:  # the error line (clap's `error:`, anyhow's `Error:`, a panic), else the last line
            lines = [l.strip() for l in e["stderr_tail"].splitlines() if l.strip()]
            pick = [l for l in lines if l.lower().startswith("error") or "panicked" in l]
            msg = f"{e['stage']} exit {e['exit']}: " + (pick[-1] if pick else lines[-1] if lines else "")
        return [r["method"], f"FAILED ({msg[:100]})"]
    t, v = r.get("test", {}), r.get("val", {})
    if r["method"] == "tf-idf+LR":
        best, secs, params, tps = f"C={r['C']:g}", f"{r['fit_s']:.1f}", f"{r['params']:,}", "-"
    elif r["method"] == "majority":
        best, secs, params, tps = "-", "-", "0", "-"
    else:
        best = f"{r['best_epoch']}/{r.get('epochs_run') or epochs}" if r.get("best_epoch") is not None else "-"
        secs = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else "-"
        params = f"{r['trainable_params']:,}" if r.get("trainable_params") is not None else "-"
        tps = f"{r['train_tokens_per_second']:,.0f}" if r.get("train_tokens_per_second") else "-"
    return [r["method"], f4(t.get("f1_macro")), f4(t.get("accuracy")), f4(v.get("f1_macro")), best, secs, params, tps]


HEAD = ["method", "test F1 macro", "test acc", "val F1 macro", "best", "train s", "trainable params", "tokens/s"]


def print_table(info: dict, rows: list[dict], epochs: int) -> None:
    s = info["splits"]
    print(f"\n{info['name']} ({info['source']}): test {s['test']['rows']:,} rows, val {s['val']['rows']:,}, "
          f"train {s['train']['rows']:,}; {len(info['classes'])} classes")
    cells = [row_cells(r, epochs) for r in rows]
    widths = [max(len(HEAD[i]), *(len(c[i]) for c in cells if len(c) > i and len(c) == len(HEAD))) for i in range(len(HEAD))]
    print(f"{HEAD[0]:<{widths[0]}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(HEAD[1:], widths[1:])))
    for c in cells:
        if len(c) == len(HEAD):
            print(f"{c[0]:<{widths[0]}}  " + "  ".join(f"{x:>{w}}" for x, w in zip(c[1:], widths[1:])))
        else:
            print(f"{c[0]:<{widths[0]}}  {c[1]}")
    absent = [c for c in info["classes"] if not s["test"]["label_counts"].get(c)]
    if absent:
        print(f"  note: {len(absent)} of the {len(info['classes'])} classes {'has' if len(absent) == 1 else 'have'} no test rows ({', '.join(absent)}); "
              f"each scores F1 0, so macro-F1 is at most {1 - len(absent) / len(info['classes']):.4f}. "
              "quality.json has sklearn's default macro-F1 (present classes) too")


def print_summary(results: dict, methods: list[str]) -> None:
    print("\ntest macro-F1 (accuracy)")
    width = max(len(m) for m in methods)
    cols = max(16, width + 2)
    print(f"{'dataset':<12}" + "".join(f"{m:>{cols}}" for m in methods))
    for name, res in results.items():
        line = f"{name:<12}"
        for m in methods:
            r = next((x for x in res["rows"] if x["method"] == m), None)
            if r is None:
                cell = "-"
            elif r.get("error"):
                cell = "FAILED"
            else:
                cell = f"{f4(r['test']['f1_macro'])} ({f4(r['test']['accuracy'])[1:]})" if r["test"]["accuracy"] is not None else "-"
            line += f"{cell:>{cols}}"
        print(line)


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--savant", help="savant binary (default: $CARGO_TARGET_DIR or ~/.cache/savant/target, + /release/savant)")
    ap.add_argument("--datasets", default=",".join(DEFAULT_DATASETS),
                    help=f"comma-separated, of {', '.join(DATASETS)} (default: {','.join(DEFAULT_DATASETS)})")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated savant train modes (default: {','.join(MODES)})")
    ap.add_argument("--only-baseline", action="store_true", help="the data and the scikit-learn rows only (no savant)")
    ap.add_argument("--train-rows", type=int, default=DEFAULT_SIZES["train_rows"], help="first N train rows (default 800)")
    ap.add_argument("--val-rows", type=int, default=DEFAULT_SIZES["val_rows"], help="first N val rows (default 200)")
    ap.add_argument("--test-rows", type=int, default=DEFAULT_SIZES["test_rows"], help="first N test rows (default 400)")
    ap.add_argument("--epochs", type=int, default=DEFAULT_SIZES["epochs"], help="savant train --epochs (default 3)")
    ap.add_argument("--sample", choices=("head", "shuffle"), default="head",
                    help="head: the first N rows of each file (default); shuffle: N rows after a seeded shuffle")
    ap.add_argument("--lr-full", help="savant train --lr for full and partial (default: savant's, 5e-5)")
    ap.add_argument("--lr-peft", help="savant train --lr for adapter and lora (default: savant's, 5e-4)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="RAYON_NUM_THREADS and savant train/predict --threads (default: all CPUs)")
    ap.add_argument("--keep-checkpoints", action="store_true", help="keep each run's checkpoints/ (deleted after training by default)")
    ap.add_argument("--json", help="where to write the results (default: bench/results/quality.json for a full run "
                                   "at the default settings, bench/data/quality/quality_<settings>.json otherwise)")
    args = ap.parse_args()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not datasets or any(d not in DATASETS for d in datasets):
        sys.exit(f"--datasets: expected a comma-separated list of {', '.join(DATASETS)}, got {args.datasets!r}")
    if not modes or any(m not in MODES for m in modes):
        sys.exit(f"--modes: expected a comma-separated list of {', '.join(MODES)}, got {args.modes!r}")
    if min(args.train_rows, args.val_rows, args.test_rows, args.epochs) < 1:
        sys.exit("the row counts and --epochs must be at least 1")

    ensure_venv()
    import numpy
    import sklearn

    sys.stdout.reconfigure(line_buffering=True)
    t_start = time.perf_counter()
    home = pvt.savant_home()
    minilm = home / "models/minilm"
    sizes = {"train_rows": args.train_rows, "val_rows": args.val_rows, "test_rows": args.test_rows}
    threads = str(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=threads)

    savant = version = None
    if not args.only_baseline:
        if not (minilm / "model.safetensors").exists():
            sys.exit(f"{minilm}: no model.safetensors; fetch it with `savant fetch model minilm`")
        savant = Path(args.savant).resolve() if args.savant else pvt.default_savant()
        if not savant.exists():
            sys.exit(f"{savant} does not exist: build it with `cargo build --release -p savant` or pass --savant")
        version = subprocess.run([str(savant), "--version"], capture_output=True, text=True).stdout.strip()
        st = savant.stat()
        log(f"{version} ({savant}, built {dt.datetime.fromtimestamp(st.st_mtime).isoformat(timespec='seconds')}), "
            f"{args.threads} threads; modes {', '.join(modes)}, {args.epochs} epoch(s)")

    infos = {d: prepare(d, home, sizes, args.sample) for d in datasets}
    print(f"data: first {args.train_rows:,} train / {args.val_rows:,} val / {args.test_rows:,} test rows of each split"
          + (" after a seeded shuffle" if args.sample == "shuffle" else "")
          + "; val/test rows whose label the train rows lack are dropped")
    for info in infos.values():
        print_data(info)

    results = {}
    for name, info in infos.items():
        base = baselines(info)
        rows = [base["tfidf_lr"], base["majority"]]
        b = base["tfidf_lr"]
        log(f"{name}: tf-idf+LR " + (f"C={b['C']:g}, test macro-F1 {b['test']['f1_macro']:.4f}" if "C" in b
                                      else f"failed: {b['error']}"))
        if savant:
            for mode in modes:
                r = savant_run(savant, minilm, info, mode, args, env)
                if not r.get("error"):
                    log(f"  {name} {mode}: test macro-F1 {f4(r['test']['f1_macro'])}, accuracy {f4(r['test']['accuracy'])}; "
                        f"best epoch {r['best_epoch']}, {r['train_seconds']:.0f} s training, "
                        f"{r.get('train_tokens_per_second') or 0:,.0f} tokens/s; "
                        f"{time.perf_counter() - t_start:.0f} s so far")
                rows.append(r)
        results[name] = {"rows": rows}
        print_table(info, rows, args.epochs)

    methods = ["tf-idf+LR", "majority"] + ([] if args.only_baseline else modes)
    print_summary(results, methods)

    for info in infos.values():
        info.pop("files")
    settings = {**sizes, "epochs": args.epochs, "sample": args.sample, "threads": args.threads, "batch_size": BATCH,
                "max_len": MAX_LEN, "seed": SEED, "freeze_layers_partial": FREEZE_LAYERS,
                "lr_full": args.lr_full or "savant default (5e-5)", "lr_peft": args.lr_peft or "savant default (5e-4)",
                "tfidf": {**TFIDF, "ngram_range": list(TFIDF["ngram_range"])}, "lr_max_iter": LR_MAX_ITER,
                "c_grid": list(C_GRID), "env": {"RAYON_NUM_THREADS": threads}}
    doc = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "git": pvt.git_rev(),
        "machine": pvt.machine_info(),
        "versions": {"sklearn": sklearn.__version__, "numpy": numpy.__version__},
        "savant": {"binary": str(savant) if savant else None, "version": version,
                   "binary_mtime": dt.datetime.fromtimestamp(savant.stat().st_mtime).isoformat(timespec="seconds") if savant else None},
        "model": str(minilm),
        "settings": settings,
        "f1_macro_definition": "mean F1 over the train rows' classes, zero_division 0 (savant eval; sklearn "
                               "f1_score(labels=classes, average='macro', zero_division=0)); f1_macro_present: "
                               "sklearn's default, over the classes in y_true or y_pred",
        "data": infos,
        "results": results,
        "total_seconds": time.perf_counter() - t_start,
    }
    default = sizes == {k: DEFAULT_SIZES[k] for k in sizes} and args.epochs == DEFAULT_SIZES["epochs"] \
        and args.sample == "head" and not args.lr_full and not args.lr_peft
    full = default and datasets == list(DEFAULT_DATASETS) and modes == list(MODES) and not args.only_baseline
    if args.json:
        path = Path(args.json).resolve()
    elif full:
        path = BENCH / "results" / "quality.json"
    else:
        tag = f"{args.train_rows}_{args.val_rows}_{args.test_rows}_e{args.epochs}"
        if args.sample != "head":
            tag += f"_{args.sample}"
        if args.lr_full or args.lr_peft:
            tag += f"_lr{args.lr_full or 'd'}-{args.lr_peft or 'd'}"
        if datasets != list(DEFAULT_DATASETS):
            tag += "_" + "-".join(datasets)
        if args.only_baseline:
            tag += "_baseline"
        elif modes != list(MODES):
            tag += "_" + "-".join(modes)
        path = QDATA / f"quality_{tag}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"\nwrote {rel(path)} ({time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
