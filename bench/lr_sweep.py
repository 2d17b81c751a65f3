#!/usr/bin/env python3
"""Learning rates for `savant train`'s defaults, chosen on the VAL splits (never test).

    bench/lr_sweep.py --demo DIR [--datasets cfpb,drugs] [--modes lora,full] [--lrs 5e-4,1e-3,2e-3]
                      [--train-rows 1500] [--val-rows 300] [--epochs 2] [--savant BIN]

For each dataset of a `savant demo` output folder (DIR/<name>/splits), the first --train-rows of
train and --val-rows of val (val rows whose label train lacks are dropped, as the demo does), and
each mode x peak learning rate: `savant train` with every other setting at its default (the
mean-pooled, probe-initialised head; batch 16; max length 128; seed 42), recording the run's
metrics.json (best epoch's val macro-F1, the probe's epoch 0, the TF-IDF baseline's val macro-F1)
and its seconds. Writes bench/results/lr_sweep.json and prints a table.
"""
import argparse, csv, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
csv.field_size_limit(1 << 30)


def rows(path, n):
    with open(path, newline="", encoding="utf-8") as f:
        r = [(x["text"], x["label"]) for x in csv.DictReader(f) if x["text"].strip() and x["label"].strip()]
    return r[:n] if n else r


def write(path, rs):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True)
    ap.add_argument("--datasets", default="cfpb,drugs")
    ap.add_argument("--modes", default="lora")
    ap.add_argument("--lrs", default="5e-4,1e-3,2e-3")
    ap.add_argument("--train-rows", type=int, default=1500)
    ap.add_argument("--val-rows", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--savant", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/savant"))
    ap.add_argument("--model", default=str(Path(os.environ.get("SAVANT_HOME", Path.home() / ".cache/savant")) / "models/minilm"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/lr_sweep.json"))
    ap.add_argument("--args", default="", help="further `savant train` flags, e.g. '--freeze-layers 3' (kept in each row)")
    a = ap.parse_args()
    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    work = ROOT / "bench/data/lr_sweep"
    # Earlier runs in the same file stay, unless this run repeats their settings.
    results = json.load(open(a.out))["results"] if Path(a.out).exists() else []
    key = lambda r: (r["dataset"], r["mode"], r["lr"], r.get("train_rows"), r.get("epochs"), r.get("args", ""))
    for ds in a.datasets.split(","):
        splits = Path(a.demo) / ds / "splits"
        train = rows(splits / "train.csv", a.train_rows)
        classes = {l for _, l in train}
        val = [r for r in rows(splits / "val.csv", a.val_rows) if r[1] in classes]
        write(work / ds / "train.csv", train)
        write(work / ds / "val.csv", val)
        for mode in a.modes.split(","):
            for lr in a.lrs.split(","):
                out = work / ds / f"{mode}-{lr}"
                cmd = [a.savant, "train", "--model", a.model, "--train", str(work / ds / "train.csv"),
                       "--val", str(work / ds / "val.csv"), "--mode", mode, "--lr", lr,
                       "--epochs", str(a.epochs), "--device", "cpu", "--overwrite", "-o", str(out)] + a.args.split()
                t = time.time()
                p = subprocess.run(cmd, capture_output=True, text=True)
                secs = time.time() - t
                if p.returncode != 0:
                    results.append({"dataset": ds, "mode": mode, "lr": float(lr), "failed": p.stderr[-2000:]})
                    print(ds, mode, lr, "FAILED", p.stderr[-500:], flush=True)
                    continue
                m = json.load(open(out / "metrics.json"))
                r = {"dataset": ds, "mode": mode, "lr": float(lr), "train_rows": len(train), "val_rows": len(val),
                     "epochs": a.epochs, "val_f1_macro": m["f1_macro"], "val_accuracy": m["accuracy"],
                     "best_epoch": m["best_epoch"], "probe_val_f1_macro": m.get("probe_val_f1_macro"),
                     "baseline_val_f1_macro": m.get("baseline_val_f1_macro"), "head": m.get("head"),
                     "probe_c": m.get("probe_c"), "savant_revision": revision, "args": a.args,
                     "trainable_params": m.get("trainable_params"),
                     "seconds": round(secs, 1)}
                results = [x for x in results if "failed" in x or key(x) != key(r)] + [r]
                print(json.dumps(r), flush=True)
                json.dump({"settings": vars(a), "results": results}, open(a.out, "w"), indent=1)
    # docs/benchmarks.md's table ("Learning rates") is this output.
    print("\n| dataset | mode | peak lr | val macro-F1 | best epoch | probe (epoch 0) | TF-IDF + LR | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if "failed" in r:
            print(f"| {r['dataset']} | {r['mode']} | {r['lr']:g} | FAILED | | | | |")
            continue
        mode = f"{r['mode']} {r['args']}" if r.get("args") else r["mode"]
        print(f"| {r['dataset']} | {mode} | {r['lr']:g} | {r['val_f1_macro']:.3f} | {r['best_epoch']} | "
              f"{r['probe_val_f1_macro'] or 0:.3f} | {r['baseline_val_f1_macro'] or 0:.3f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
