#!/usr/bin/env python3
"""`savant baseline` vs scikit-learn's TfidfVectorizer + LogisticRegression on the same split.

    bench/baseline_vs_sklearn.py --savant target/release/savant \\
        --splits $SAVANT_HOME/demo/cfpb/splits [--out bench/results/baseline_vs_sklearn.json]

Both sides: TF-IDF with word 1-2-grams, sublinear tf, min_df 2 (sklearn's other defaults), then
multinomial logistic regression (lbfgs, L2) for C in 0.1, 1, 10, 100, C picked by val macro-F1
(ties: the smaller C), scored on test. sklearn runs with max_iter 1000 and its default tol 1e-4;
savant with its defaults (max_iter 1000, tol 1e-6). Rows are read as savant reads them: the
`text` and `label` columns, rows with an empty text or label left out, val/test rows whose label
training lacks dropped (savant refuses them; the count is printed). Timed: the whole fit with the
C search (sklearn in-process, one thread: OMP/BLAS threads pinned to 1; savant: its own
`fit_seconds` and the wall time of the command, which adds reading the files and the test
reports). Prints a table and writes the JSON.

Uses (or makes) the venv tests/fixtures/baseline/.venv (scikit-learn, numpy).
"""
import argparse, csv, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CS = [0.1, 1.0, 10.0, 100.0]
sys.path.insert(0, str(ROOT / "tests/fixtures/baseline"))
import make  # the fixture's script: its venv (tests/fixtures/baseline/.venv)


def ensure_venv():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    make.ensure_venv(__file__, env)


def read(path):
    csv.field_size_limit(1 << 30)
    with open(path, newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["label"].strip()) for r in csv.DictReader(f)]
    return [(t, l) for t, l in rows if t.strip() and l]


def write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(rows)


def sklearn_baseline(train, val, test):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    classes = sorted({l for _, l in train})
    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x = vec.fit_transform([t for t, _ in train])
    xv = vec.transform([t for t, _ in val])
    table, best = [], None
    for c in CS:
        t = time.perf_counter()
        clf = LogisticRegression(C=c, max_iter=1000).fit(x, [l for _, l in train])
        f1 = f1_score([l for _, l in val], clf.predict(xv), average="macro", labels=classes)
        table.append({"c": c, "val_macro_f1": f1, "n_iter": int(max(clf.n_iter_)), "seconds": time.perf_counter() - t})
        if best is None or f1 > best[1]:
            best = (c, f1, clf)
    fit_seconds = time.perf_counter() - t0
    c, val_f1, clf = best
    pred = clf.predict(vec.transform([t for t, _ in test]))
    test_f1 = f1_score([l for _, l in test], pred, average="macro", labels=classes)
    return {"vocabulary_size": len(vec.vocabulary_), "c": c, "c_table": table, "val_macro_f1": val_f1,
            "test_macro_f1": test_f1, "fit_seconds": fit_seconds}


def main():
    ensure_venv()
    import sklearn

    ap = argparse.ArgumentParser()
    ap.add_argument("--savant", required=True, help="the savant binary")
    ap.add_argument("--splits", required=True, help="a folder with train.csv, val.csv, test.csv (text, label)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/baseline_vs_sklearn.json"))
    args = ap.parse_args()
    d = Path(args.splits)
    train, val, test = read(d / "train.csv"), read(d / "val.csv"), read(d / "test.csv")
    known = {l for _, l in train}
    dropped = {n: sum(l not in known for _, l in rows) for n, rows in (("val", val), ("test", test))}
    val, test = [r for r in val if r[1] in known], [r for r in test if r[1] in known]
    print(f"{len(train)} train, {len(val)} val, {len(test)} test rows, {len(known)} classes; "
          f"dropped for a label training lacks: {dropped}", flush=True)

    sk = sklearn_baseline(train, val, test)
    print(f"sklearn {sklearn.__version__}: vocabulary {sk['vocabulary_size']}, C {sk['c']}, "
          f"val macro-F1 {sk['val_macro_f1']:.4f}, test macro-F1 {sk['test_macro_f1']:.4f}, fit {sk['fit_seconds']:.1f}s",
          flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, rows in (("train", train), ("val", val), ("test", test)):
            write(tmp / f"{name}.csv", rows)
        t = time.perf_counter()
        subprocess.run([args.savant, "baseline", "--train", str(tmp / "train.csv"), "--val", str(tmp / "val.csv"),
                        "--test", str(tmp / "test.csv"), "-o", str(tmp / "run")], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        got = json.loads((tmp / "run/baseline.json").read_text())
        test_metrics = json.loads((tmp / "run/test_metrics.json").read_text())
    sv = {"vocabulary_size": got["vocabulary_size"], "c": got["c"], "c_table": got["c_table"],
          "val_macro_f1": got["val"]["f1_macro"], "test_macro_f1": test_metrics["f1_macro"],
          "fit_seconds": got["fit_seconds"], "wall_seconds": wall}
    print(f"savant: vocabulary {sv['vocabulary_size']}, C {sv['c']}, val macro-F1 {sv['val_macro_f1']:.4f}, "
          f"test macro-F1 {sv['test_macro_f1']:.4f}, fit {sv['fit_seconds']:.1f}s (command {wall:.1f}s)")
    print(f"test macro-F1 difference (savant - sklearn): {sv['test_macro_f1'] - sk['test_macro_f1']:+.4f}; "
          f"fit time ratio savant/sklearn: {sv['fit_seconds'] / sk['fit_seconds']:.2f}")
    for a, b in zip(sk["c_table"], sv["c_table"]):
        print(f"  C {a['c']:<6} val macro-F1 sklearn {a['val_macro_f1']:.4f} ({a['n_iter']} it, {a['seconds']:.1f}s)"
              f"  savant {b['val_macro_f1']:.4f} ({b['iterations']} it)")
    result = {"splits": str(d), "rows": {"train": len(train), "val": len(val), "test": len(test)},
              "dropped": dropped, "sklearn_version": sklearn.__version__, "sklearn": sk, "savant": sv,
              "cpu_count": os.cpu_count()}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
