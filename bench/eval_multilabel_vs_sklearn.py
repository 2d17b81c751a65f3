#!/usr/bin/env python3
"""savant's multi-label metrics (`savant eval --multi-label`'s) vs scikit-learn's, on the same
1,000,000 rows × 50 labels, in memory.

    bench/eval_multilabel_vs_sklearn.py [--rows 1000000 --labels 50]

Makes (once, seeded) label sets with skewed label frequencies, scores rounded to 3 decimals (ties,
as real models give) and predicted sets at 0.5, as raw little-endian arrays in
bench/data/eval_ml_<rows>x<labels>/; times scikit-learn's functions for every key the report has
(precision/recall/F1 micro, macro, weighted, samples; subset accuracy; hamming loss; Jaccard
samples and macro; ROC AUC and average precision, macro and micro; label ranking average
precision; coverage error; label ranking loss; multilabel_confusion_matrix), best of 3, then runs
`cargo run --release -p savant-core --example multilabel_timing` on the same arrays, checks the
values agree (1e-9) and writes bench/results/eval_multilabel.json. Uses the venv of
tests/fixtures/metrics (scikit-learn, numpy).
"""
import argparse, datetime as dt, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tests/fixtures/metrics/.venv"


def ensure_venv():
    py = VENV / "bin/python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", "scikit-learn"])
    os.execv(str(py), [str(py), __file__, *sys.argv[1:]])


def main():
    ensure_venv()
    import numpy as np
    from sklearn import metrics as M
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--labels", type=int, default=50)
    a = ap.parse_args()
    n, k = a.rows, a.labels
    d = ROOT / f"bench/data/eval_ml_{n}x{k}"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    freq = 0.3 / (1 + np.arange(k)) ** 0.7  # label j on ~30% … ~2% of rows
    y = rng.random((n, k)) < freq
    s = np.round(np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1), 3)
    p = s >= 0.5
    y.astype(np.uint8).tofile(d / "y_true.u8")
    p.astype(np.uint8).tofile(d / "y_pred.u8")
    s.astype("<f8").tofile(d / "scores.f64")
    (d / "meta.json").write_text(json.dumps({"n": n, "k": k}))

    def sklearn_all():
        out = {}
        for avg in ("micro", "macro", "weighted", "samples"):
            pr, rc, f1, _ = M.precision_recall_fscore_support(y, p, average=avg, zero_division=0)
            out[f"f1_{avg}"] = f1
        out["subset_accuracy"] = M.accuracy_score(y, p)
        out["hamming_loss"] = M.hamming_loss(y, p)
        out["jaccard_samples"] = M.jaccard_score(y, p, average="samples", zero_division=0)
        out["jaccard_macro"] = M.jaccard_score(y, p, average="macro", zero_division=0)
        out["roc_auc_macro"] = M.roc_auc_score(y, s, average="macro")
        out["roc_auc_micro"] = M.roc_auc_score(y, s, average="micro")
        out["average_precision_macro"] = M.average_precision_score(y, s, average="macro")
        out["average_precision_micro"] = M.average_precision_score(y, s, average="micro")
        out["label_ranking_average_precision"] = M.label_ranking_average_precision_score(y, s)
        out["coverage_error"] = M.coverage_error(y, s)
        out["label_ranking_loss"] = M.label_ranking_loss(y, s)
        M.multilabel_confusion_matrix(y, p)
        return out

    best, ref = float("inf"), None
    for _ in range(3):
        t = time.perf_counter()
        ref = sklearn_all()
        best = min(best, time.perf_counter() - t)
    run = subprocess.run(["cargo", "run", "-q", "--release", "-p", "savant-core", "--example", "multilabel_timing", "--", str(d)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    ours = json.loads(run.stdout.strip().splitlines()[-1])
    bad = {key: (ours[key], v) for key, v in ref.items() if key in ours and abs(ours[key] - v) > 1e-9 * max(1, abs(v))}
    if bad:
        sys.exit(f"values differ from scikit-learn's: {bad}")
    result = {"rows": n, "labels": k, "sklearn_seconds": best, "savant_seconds": ours["seconds"],
              "speedup": best / ours["seconds"], "date": dt.datetime.now().isoformat(timespec="seconds"),
              "cpus": os.cpu_count(), "note": "best of 3 each, in memory; the values agree to 1e-9"}
    out = ROOT / "bench/results/eval_multilabel.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
