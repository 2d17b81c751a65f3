#!/usr/bin/env python3
"""Multi-label quality on real data: the ScanCode licence rules labelled with the set of their
licences' categories (`savant fetch dataset license-rules-multi`), Savant's fine-tuned MiniLM vs
the multi-label bag-of-words baseline, on the same test rows.

    bench/multilabel.py --savant target/release/savant                 # prepare, baseline, LoRA (~45 min)
    bench/multilabel.py --savant ... --methods full                    # another strategy
    bench/multilabel.py --savant ... --methods full --epochs 4 --variant e4   # another setting, its own row
    bench/multilabel.py --savant ... --methods full --model runs/tapt/model --head mean --variant tapt   # from `savant pretrain`'s folder
    bench/multilabel.py --savant ... --errors                          # where the baseline errs; near-identical rules with other sets
    bench/multilabel.py --savant ... --combine full,lora               # the runs averaged with the baseline and a k-NN vote
    bench/multilabel.py --table                                        # the README table from the results

Data: rules_multi.csv → `savant clean --label-sep '|' --conflicts union --dedup near` (near
duplicates with different sets keep their union) → `savant split --label-sep '|' --seed 7 --val
0.1 --test 0.1` (iterative stratification, near-duplicate groups kept whole).

Methods (test rows; thresholds, C and the best epoch chosen on val only):
  tfidf_ovr  scikit-learn: TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2) +
             OneVsRestClassifier(LogisticRegression(C)), C from {0.1, 1, 10, 100} by val micro-F1,
             then one threshold per label from 0.05 … 0.95 by that label's val F1 (the same grid and
             rule as `savant train --thresholds per-label`)
  lora, full `savant train --label-sep '|' --mode M --metric f1_micro --thresholds per-label`, then
             `savant predict` on test and `savant eval --multi-label`; and M_ens: the same run's
             average with its one-vs-rest baseline (`predict --ensemble`: weight and thresholds
             chosen on val by `savant train`)
Results: bench/results/multilabel.json (merged by method), README/docs table from it.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tests/fixtures/model/.venv"
RESULTS = ROOT / "bench/results/multilabel.json"
DATA = ROOT / "bench/data/multilabel"
SEP = "|"
csv.field_size_limit(1 << 30)


def ensure_venv() -> None:
    py = VENV / "bin/python"
    if Path(sys.prefix).resolve() != VENV.resolve() and py.exists():
        os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def home() -> Path:
    return Path(os.environ.get("SAVANT_HOME", Path.home() / ".cache/savant"))


def git_rev() -> str:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout
    return rev + ("-dirty" if dirty.strip() else "")


def run(cmd: list, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        p = subprocess.run([str(c) for c in cmd], cwd=ROOT, stdout=out, stderr=out)
    if p.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed; see {log}:\n{log.read_text(errors='replace')[-1500:]}")


def rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        r = list(csv.DictReader(f))
    return [x["text"] for x in r], [[l for l in x["label"].split(SEP) if l] for x in r]


def prepare(savant: Path) -> dict:
    src = home() / "datasets/license-rules-multi/rules_multi.csv"
    if not src.exists():
        sys.exit(f"{src} is missing: savant fetch dataset license-rules-multi")
    DATA.mkdir(parents=True, exist_ok=True)
    splits = DATA / "splits"
    if not (splits / "test.csv").exists():
        run([savant, "clean", src, "-o", DATA / "clean.csv", "--label-sep", SEP, "--conflicts", "union", "--dedup", "near",
             "--report", DATA / "clean_report.json", "-q"], DATA / "clean.log")
        run([savant, "split", DATA / "clean.csv", "--label-sep", SEP, "--seed", "7", "--val", "0.1", "--test", "0.1", "-o", splits, "-q"], DATA / "split.log")
    info = {"source": str(src), "clean": json.loads((DATA / "clean_report.json").read_text())["rows_out"]}
    for s in ["train", "val", "test"]:
        _, sets = rows(splits / f"{s}.csv")
        info[s] = {"rows": len(sets), "with_2_or_more_labels": sum(len(x) > 1 for x in sets)}
    _, sets = rows(splits / "train.csv")
    info["labels"] = sorted({l for x in sets for l in x})
    return info


def metrics(y_true, y_pred) -> dict:
    from sklearn.metrics import accuracy_score, f1_score
    return {"f1_micro": f1_score(y_true, y_pred, average="micro", zero_division=0),
            "f1_macro": f1_score(y_true, y_pred, average="macro", zero_division=0),
            "subset_accuracy": accuracy_score(y_true, y_pred)}


def tfidf_splits(info: dict, reading=None):
    """Each split's TF-IDF matrix (fitted on train) and label-set indicator matrix, and the vocabulary
    size; `reading` (a function of a split's texts) cuts them first (bench/long_text_reading.py)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import MultiLabelBinarizer

    data = {s: rows(DATA / "splits" / f"{s}.csv") for s in ["train", "val", "test"]}
    if reading is not None:
        data = {s: (reading(texts), sets) for s, (texts, sets) in data.items()}
    mlb = MultiLabelBinarizer(classes=info["labels"])
    y = {s: mlb.fit_transform(data[s][1]) for s in data}
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x = {"train": vec.fit_transform(data["train"][0])}
    x.update({s: vec.transform(data[s][0]) for s in ["val", "test"]})
    return x, y, len(vec.vocabulary_)


def per_label_thresholds(y_val, p_val) -> list[float]:
    """One threshold per label from 0.05 … 0.95 by that label's val F1, ties to the one nearest 0.5
    (the grid and rule of `savant train --thresholds per-label`)."""
    from sklearn.metrics import f1_score

    grid = [i / 20 for i in range(1, 20)]
    return [max((f1_score(y_val[:, j], p_val[:, j] >= t, zero_division=0), -abs(t - 0.5), t) for t in grid)[2]
            for j in range(y_val.shape[1])]


def one_vs_rest(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    return OneVsRestClassifier(LogisticRegression(C=c, max_iter=1000))


def tfidf_ovr(info: dict, reading=None) -> dict:
    """The baseline row (on texts cut by `reading`, when given)."""
    import numpy as np
    from sklearn.metrics import f1_score

    started = time.time()
    x, y, vocabulary = tfidf_splits(info, reading)
    best = None
    for c in [0.1, 1.0, 10.0, 100.0]:
        clf = one_vs_rest(c).fit(x["train"], y["train"])
        f1 = f1_score(y["val"], clf.predict_proba(x["val"]) >= 0.5, average="micro", zero_division=0)
        if best is None or f1 > best[0]:
            best = (f1, c, clf)
    _, c, clf = best
    pv, pt = clf.predict_proba(x["val"]), clf.predict_proba(x["test"])
    thresholds = per_label_thresholds(y["val"], pv)
    t = np.array(thresholds)
    return {"C": c, "thresholds": thresholds, "vocabulary": vocabulary, "val": metrics(y["val"], pv >= t),
            "test": metrics(y["test"], pt >= t), "seconds": time.time() - started,
            "what": f"TF-IDF 1-2-grams + one-vs-rest logistic regression (scikit-learn), C {c} and per-label thresholds on val"}


def errors(info: dict, c: float, thresholds: list[float]) -> dict:
    """Where the baseline errs on test (false positives and negatives per label), and how many test
    rules have a near-identical training twin (TF-IDF cosine >= 0.95) that carries another label set."""
    import numpy as np

    x, y, _ = tfidf_splits(info)
    train, test = x["train"], x["test"]
    pred = one_vs_rest(c).fit(train, y["train"]).predict_proba(test) >= np.array(thresholds)
    per_label = {l: {"support": int(y["test"][:, j].sum()), "false_positives": int((pred[:, j] & (y["test"][:, j] == 0)).sum()),
                     "false_negatives": int((~pred[:, j] & (y["test"][:, j] == 1)).sum())} for j, l in enumerate(info["labels"])}
    sims = (test @ train.T).toarray()
    twin, near = sims.argmax(1), sims.max(1) >= 0.95
    other = near & (y["train"][twin] != y["test"]).any(1)
    return {"what": "the tfidf_ovr row's errors on test, and test rules with a training twin of TF-IDF cosine >= 0.95",
            "per_label": per_label, "test_rows_with_errors": int((pred != y["test"]).any(1).sum()),
            "with_twin": int(near.sum()), "twin_has_another_label_set": int(other.sum())}


def reading_flags(long: str = "truncate", max_windows: int = 0, aggregate: str = "mean-logits") -> list:
    """How texts are read, the same in train and predict (windows: the first max_windows of each)."""
    return ["--long", long] + (["--max-windows", str(max_windows)] if long == "windows" and max_windows else []) \
        + (["--aggregate", aggregate] if long == "windows" and aggregate not in (None, "mean-logits") else [])


def base_model(base: str = "") -> Path:
    """The model a run starts from: MiniLM unless --model named another folder."""
    return Path(base) if base else home() / "models/minilm"


def model_flags(run_dir: Path, base: str = "") -> list:
    """`savant predict`'s model for a run: its base with the run's adapter (LoRA), or its model folder."""
    if (run_dir / "adapter").exists():
        return ["--model", base_model(base), "--adapter", run_dir / "adapter"]
    return ["--model", run_dir / "model"]


def trained(mode: str, savant: Path, epochs: int, variant: str = "", long: str = "truncate", max_windows: int = 0,
            aggregate: str = "mean-logits", lr: str = "", head_lr: str = "", base: str = "", head: str = "") -> dict:
    name = f"{mode}_{variant}" if variant else mode
    reading = reading_flags(long, max_windows, aggregate)
    # Learning rates other than savant train's defaults (5e-5 full, 1e-3 LoRA; the head's = lr); another
    # base (e.g. `savant pretrain`'s folder, which declares no sentence pooling) needs --head mean.
    settings = (["--lr", lr] if lr else []) + (["--head-lr", head_lr] if head_lr else []) + (["--head", head] if head else [])
    run_dir = DATA / "runs" / name
    started = time.time()
    run([savant, "train", "--model", base_model(base), "--train", DATA / "splits/train.csv", "--val", DATA / "splits/val.csv",
         "--label-sep", SEP, "--mode", mode, "--metric", "f1_micro", "--thresholds", "per-label", "--epochs", str(epochs),
         *reading, *settings, "--device", "cpu", "--overwrite", "-o", run_dir], DATA / f"train_{name}.log")
    base_what = f" (from {base})" if base else ""
    long_what = ("" if long == "truncate" else ", " + " ".join(reading)) + ("" if not settings else ", " + " ".join(settings))
    train_seconds = time.time() - started
    m = json.loads((run_dir / "metrics.json").read_text())
    model = model_flags(run_dir, base)

    def scored(extra: list, suffix: str) -> dict:
        """`savant predict` (+ `extra`) on the test rows, then `eval --multi-label`: its report."""
        preds, report = DATA / f"preds_{name}{suffix}.csv", DATA / f"test_{name}{suffix}.json"
        run([savant, "predict", *model, DATA / "splits/test.csv", *reading, *extra, "--device", "cpu",
             "-o", preds], DATA / f"predict_{name}{suffix}.log")
        run([savant, "eval", preds, "--multi-label", "-o", report], DATA / f"eval_{name}{suffix}.log")
        return json.loads(report.read_text())

    r = scored([], "")
    v = m["val_at_thresholds"]
    pick = lambda d: {k: d[k] for k in ["f1_micro", "f1_macro", "subset_accuracy"]}
    out = {name: {"mode": mode, "epochs": epochs, "long": long, "max_windows": max_windows or None,
                  **({"lr": lr} if lr else {}), **({"head_lr": head_lr} if head_lr else {}),
                  **({"model": str(base)} if base else {}), **({"head": head} if head else {}),
                  "windows_per_text": m.get("windows_per_text"),
                  **({"aggregate": aggregate} if long == "windows" else {}), "best_epoch": m["best_epoch"], "thresholds": m["thresholds"],
                  "val": pick(v), "test": pick(r), "train_minutes": train_seconds / 60,
                  "trainable_params": m["trainable_params"], "total_params": m["total_params"],
                  "what": f"MiniLM{base_what} {mode}, {epochs} epochs{long_what}, sigmoid + BCE, per-label thresholds on val"}}
    if (run_dir / "savant_ensemble.json").exists():
        # The run's own average with the one-vs-rest baseline (weight and thresholds chosen on val).
        ens = scored(["--ensemble", run_dir], "_ens")
        out[f"{name}_ens"] = {"mode": mode, "epochs": epochs, "long": long, "ensemble_weight": m["ensemble_weight"],
                              "thresholds": m["ensemble_thresholds"], "val": pick(m["ensemble_val_at_thresholds"]),
                              "test": pick(ens),
                              "what": f"MiniLM{base_what} {mode}, {epochs} epochs{long_what}, averaged with the one-vs-rest baseline (savant train's "
                                      f"weight {m['ensemble_weight']:.1f} and thresholds, chosen on val; predict --ensemble)"}
    return out


def combinations(doc: dict, savant: Path, names: list[str]) -> dict:
    """Whether averaging more models closes the gap: the named runs' probabilities (their folders
    under runs/, predicted on val and test with their own reading), the baseline's (scikit-learn,
    its row's C) and a k-nearest-rules vote over TF-IDF, averaged with weights on a 0.1 grid and
    per-label thresholds, both chosen on val by micro-F1 (the rule of `savant train`'s ensemble)."""
    import itertools
    import numpy as np
    from sklearn.metrics import f1_score

    info, labels = doc["data"], doc["data"]["labels"]
    x, y, _ = tfidf_splits(info)
    base = one_vs_rest(doc["results"]["tfidf_ovr"]["C"]).fit(x["train"], y["train"])
    parts = {"tfidf_ovr": {s: base.predict_proba(x[s]) for s in ["val", "test"]}}
    sims = {s: (x[s] @ x["train"].T).toarray() for s in ["val", "test"]}
    near = {s: np.argsort(-sims[s], 1)[:, :5] for s in sims}
    # The 5 nearest training rules' label sets, weighted by cosine^4 (near twins dominate).
    weight = {s: np.take_along_axis(sims[s], near[s], 1) ** 4 + 1e-9 for s in sims}
    parts["knn5"] = {s: (weight[s][:, :, None] * y["train"][near[s]]).sum(1) / weight[s].sum(1, keepdims=True) for s in sims}
    for name in names:
        r, run_dir = doc["results"][name], DATA / "runs" / name
        parts[name] = {}
        for split in ["val", "test"]:
            preds = DATA / f"preds_{name}.csv" if split == "test" else DATA / f"preds_val_{name}.csv"
            if not preds.exists():
                run([savant, "predict", *model_flags(run_dir, r.get("model", "")), DATA / f"splits/{split}.csv", *reading_flags(r["long"] or "truncate",
                     r["max_windows"] or 0, r.get("aggregate")), "--device", "cpu", "-o", preds], DATA / f"predict_{split}_{name}.log")
            with open(preds, newline="") as f:
                parts[name][split] = np.array([[float(row[f"prob_{l}"]) for l in labels] for row in csv.DictReader(f)])
    def average(members: tuple) -> dict:
        best = None
        shares = [w for w in itertools.product(range(1, 10), repeat=len(members)) if sum(w) == 10] if len(members) > 1 else [(10,)]
        for w in shares:
            pv, pt = (sum(wi / 10 * parts[m][s] for wi, m in zip(w, members)) for s in ["val", "test"])
            t = np.array(per_label_thresholds(y["val"], pv))
            val = f1_score(y["val"], pv >= t, average="micro", zero_division=0)
            if best is None or val > best["val_f1_micro"]:
                best = {"weights": [wi / 10 for wi in w], "val_f1_micro": val, "test": metrics(y["test"], pt >= t)}
        return {"members": list(members), **best}

    sets = [(m,) for m in parts] + [(m, "tfidf_ovr") for m in names] + [(m, "knn5", "tfidf_ovr") for m in names]
    sets += [(*names, "tfidf_ovr"), (*names, "knn5", "tfidf_ovr")] if len(names) > 1 else []
    out = []
    for members in sets:
        out.append(average(members))
        print(f"{' + '.join(members)}: weights {out[-1]['weights']} val {100 * out[-1]['val_f1_micro']:.2f} "
              f"test {100 * out[-1]['test']['f1_micro']:.2f}", flush=True)
    return {"what": combinations.__doc__.split("\n\n")[0].replace("\n    ", " "), "git": git_rev(), "rows": out}


def table(doc: dict) -> str:
    out = ["| method | test micro-F1 | macro-F1 | subset accuracy | val micro-F1 | minutes |", "|---|---|---|---|---|---|"]
    for name, r in doc.get("results", {}).items():
        t, v = r["test"], r["val"]
        minutes = r.get("train_minutes", r.get("seconds", 0) / 60)
        out.append(f"| {name}: {r['what']} | {100 * t['f1_micro']:.1f} | {100 * t['f1_macro']:.1f} | "
                   f"{100 * t['subset_accuracy']:.1f} | {100 * v['f1_micro']:.1f} | {minutes:.1f} |")
    return "\n".join(out)


def main() -> None:
    ensure_venv()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--savant", type=Path, default=ROOT / "target/release/savant")
    ap.add_argument("--methods", default="tfidf_ovr,lora")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--long", default="truncate", help="savant train/predict --long (truncate, head-tail, windows)")
    ap.add_argument("--max-windows", type=int, default=0, help="with --long windows: the first N windows of each text")
    ap.add_argument("--aggregate", default="mean-logits", help="with --long windows: mean-logits or max-logits")
    ap.add_argument("--lr", default="", help="savant train --lr (default: savant's, 5e-5 for full)")
    ap.add_argument("--head-lr", default="", help="savant train --head-lr (default: --lr)")
    ap.add_argument("--model", default="", help="savant train --model (default: MiniLM), e.g. a `savant pretrain` output's model/")
    ap.add_argument("--head", default="", help="savant train --head (default: the folder's pooling, else BERT's pooler)")
    ap.add_argument("--variant", default="", help="a suffix for the result's name (another setting of a method)")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--combine", default="", help="runs (their result names) to average with the baseline and a k-NN vote")
    ap.add_argument("--errors", action="store_true", help="the baseline's errors per label and the near-twin count (the docs' why)")
    a = ap.parse_args()
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"results": {}}
    if a.table:
        print(table(doc))
        return
    doc["data"] = prepare(a.savant)
    print(f"data: {json.dumps(doc['data'])}", flush=True)
    if a.errors:
        base = doc["results"]["tfidf_ovr"]
        doc["errors"] = errors(doc["data"], base["C"], base["thresholds"])
        print(json.dumps(doc["errors"], indent=1))
        RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
        return
    if a.combine:
        doc["combinations"] = combinations(doc, a.savant, a.combine.split(","))
        RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
        return
    for m in a.methods.split(","):
        rows = {m: tfidf_ovr(doc["data"])} if m == "tfidf_ovr" else trained(m, a.savant, a.epochs, a.variant, a.long, a.max_windows,
                                                                                    a.aggregate, a.lr, a.head_lr, a.model, a.head)
        for name, r in rows.items():
            r.update({"date": dt.datetime.now().isoformat(timespec="seconds"), "git": git_rev()})
            doc["results"][name] = r
            print(f"{name}: test {json.dumps(r['test'])} val {json.dumps(r['val'])}", flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
    print(table(doc))


if __name__ == "__main__":
    main()
