#!/usr/bin/env python3
"""savant's metrics vs scikit-learn on the same 10,000,000 rows, in one run.

    bench/eval_vs_sklearn.py [--rows 10000000]

Makes (once) random labels and scores with numpy (binary, and 10 classes with softmax
probabilities rounded to 6 decimals, binary scores to 3, so ties happen as in real models), writes them as
raw little-endian arrays to bench/data/eval_<rows>/, times sklearn on the in-memory arrays
(best of 3), runs `cargo run --release -p savant-core --example metrics_timing` on the same
arrays, checks the values agree, and prints the ratios. Needs scikit-learn: it uses (or makes)
the venv at tests/fixtures/metrics/.venv.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tests/fixtures/metrics/.venv"

def ensure_venv():
    py = VENV / "bin/python"
    if Path(sys.prefix).resolve() == VENV.resolve():  # already inside the venv
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", "scikit-learn"])
    os.execv(str(py), [str(py), __file__, *sys.argv[1:]])

def best_of(f, n=3):
    best, value = float("inf"), None
    for _ in range(n):
        t = time.perf_counter(); value = f(); best = min(best, time.perf_counter() - t)
    return best, value

def main():
    ensure_venv()
    import numpy as np
    from sklearn import metrics as M
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    args = ap.parse_args()
    n, k = args.rows, 10
    d = ROOT / f"bench/data/eval_{n}"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    yb = rng.integers(0, 2, n).astype(np.uint32)
    sb = np.round(np.clip(rng.normal(0.5 + 0.2 * (yb - 0.5), 0.25), 0, 1), 3)
    ym = rng.integers(0, k, n).astype(np.uint32)
    logits = rng.normal(0, 1, (n, k)); logits[np.arange(n), ym] += 1.0
    pm = np.exp(logits); pm /= pm.sum(axis=1, keepdims=True); pm = np.round(pm, 6)  # ties, yet rows sum to 1 within sklearn's tolerance
    for name, arr in [("y_binary.u32", yb), ("s_binary.f64", sb), ("y_multi.u32", ym), ("s_multi.f64", pm)]:
        arr.astype("<u4" if name.endswith("u32") else "<f8").tofile(d / name)

    t_bin, auc_bin = best_of(lambda: M.roc_auc_score(yb, sb))
    t_ovr, auc_ovr = best_of(lambda: M.roc_auc_score(ym, pm, multi_class="ovr", average="macro", labels=list(range(k))))
    def full():
        pred = pm.argmax(axis=1)
        out = {
            "accuracy": M.accuracy_score(ym, pred),
            "balanced_accuracy": M.balanced_accuracy_score(ym, pred),
            "prf": [M.precision_recall_fscore_support(ym, pred, average=a, zero_division=0) for a in (None, "micro", "macro", "weighted")],
            "mcc": M.matthews_corrcoef(ym, pred),
            "cm": M.confusion_matrix(ym, pred),
            "log_loss": M.log_loss(ym, pm / pm.sum(axis=1, keepdims=True), labels=list(range(k))),
            "ovr": [M.roc_auc_score(ym, pm, multi_class="ovr", average=a) for a in ("macro", "weighted")],
            "ovo": [M.roc_auc_score(ym, pm / pm.sum(axis=1, keepdims=True), multi_class="ovo", average=a) for a in ("macro", "weighted")],
            "ap": M.average_precision_score(np.eye(k)[ym], pm, average="macro"),
            "top": [M.top_k_accuracy_score(ym, pm, k=t, labels=list(range(k))) for t in (2, 3, 4, 5)],
        }
        return out
    t_full, full_out = best_of(full, n=1)

    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/savant/target")))
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "savant-core", "--example", "metrics_timing"], cwd=ROOT, env=env)
    exe = Path(env["CARGO_TARGET_DIR"]) / "release/examples/metrics_timing"
    ours = json.loads(subprocess.check_output([str(exe), str(d)], cwd=ROOT))

    assert abs(ours["roc_auc_binary"] - auc_bin) < 1e-12, (ours, auc_bin)
    assert abs(ours["roc_auc_ovr_macro"] - auc_ovr) < 1e-12, (ours, auc_ovr)
    assert abs(ours["accuracy"] - full_out["accuracy"]) < 1e-12
    rows = [
        ("ROC-AUC binary", t_bin, ours["roc_auc_binary_s"]),
        ("ROC-AUC 10-class OvR macro", t_ovr, ours["roc_auc_ovr_s"]),
        ("full report (10 classes)", t_full, ours["full_report_s"]),
    ]
    print(f"{n:,} rows, values agree to 1e-12; best of 3 (sklearn full report: 1 run)")
    print(f"{'metric':30} {'sklearn s':>10} {'savant s':>10} {'ratio':>8}")
    for name, ts, to in rows:
        print(f"{name:30} {ts:10.3f} {to:10.3f} {ts / to:7.1f}x")
    out = ROOT / "bench/results" / f"eval_{time.strftime('%Y-%m-%d')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": n, "sklearn": {"roc_auc_binary_s": t_bin, "roc_auc_ovr_s": t_ovr, "full_report_s": t_full}, "savant": ours}, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")

if __name__ == "__main__":
    main()
