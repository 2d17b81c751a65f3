#!/usr/bin/env python3
"""How strongly to regularise the linear probe, and how much the 128-token cut costs: on VAL rows.

    bench/probe_c.py [--dataset cfpb] [--train-rows 1500] [--val-rows 0] [--lens 128,256,512]
                     [--savant BIN] [--demo DIR]

For the first --train-rows of a `savant demo` dataset's train split and its val rows (--val-rows,
0: all; rows whose label train lacks dropped, as the demo does): `savant embed` (MiniLM, mean
pooling, not normalised) at each --lens max length, then scikit-learn's
LogisticRegression(C) on StandardScaler'd vectors (what core's LinearProbe fits) for C in
0.001 ... 10, and TF-IDF (1-2-grams, sublinear tf, min_df 2) + LogisticRegression(C in 1, 10,
100) on the whole texts and on the texts cut to each length (the tokenizer's first tokens,
decoded). Val macro-F1 everywhere; writes bench/results/probe_c_<dataset>.json and prints it.
Never reads a test split. Python: the model fixtures venv (tests/fixtures/model/.venv).
"""
import argparse, csv, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / "tests/fixtures/model/.venv/bin/python"
if Path(sys.executable) != VENV_PY and VENV_PY.exists() and os.environ.get("PROBE_C_VENV") != "1":
    os.environ["PROBE_C_VENV"] = "1"
    os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

csv.field_size_limit(1 << 30)
HOME = Path(os.environ.get("SAVANT_HOME", Path.home() / ".cache/savant"))
PROBE_CS = [0.001, 0.01, 0.1, 1.0, 10.0]  # core's probe::PROBE_CS
TFIDF_CS = [1.0, 10.0, 100.0]


def read(path, n=0):
    with open(path, newline="", encoding="utf-8") as f:
        r = [(x["text"], x["label"]) for x in csv.DictReader(f) if x["text"].strip() and x["label"].strip()]
    return r[:n] if n else r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="cfpb")
    ap.add_argument("--train-rows", type=int, default=1500)
    ap.add_argument("--val-rows", type=int, default=0)
    ap.add_argument("--lens", default="128,256,512")
    ap.add_argument("--demo", default=str(HOME / "demo"))
    ap.add_argument("--savant", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/savant"))
    a = ap.parse_args()
    splits = Path(a.demo) / a.dataset / "splits"
    train = read(splits / "train.csv", a.train_rows)
    classes = {l for _, l in train}
    val = [r for r in read(splits / "val.csv", a.val_rows) if r[1] in classes]
    work = ROOT / "bench/data/probe_c" / a.dataset
    work.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("val", val)):
        # Rewritten only when the rows changed: the vectors of an unchanged file are reused.
        if not (work / f"{name}.csv").exists() or read(work / f"{name}.csv") != rows:
            with open(work / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["text", "label"])
                w.writerows(rows)
    ytr, yva = [l for _, l in train], [l for _, l in val]
    model = HOME / "models/minilm"
    out = {"dataset": a.dataset, "train_rows": len(train), "val_rows": len(val), "probe": [], "tfidf": []}
    for n in [int(x) for x in a.lens.split(",")]:
        x = {}
        secs = 0.0
        for name in ("train", "val"):
            npy = work / f"{name}_{n}.npy"
            t = time.time()
            if not npy.exists() or npy.stat().st_mtime < (work / f"{name}.csv").stat().st_mtime:
                subprocess.run([a.savant, "embed", "--model", str(model), str(work / f"{name}.csv"), "--text", "text",
                            "--max-len", str(n), "--no-normalize", "-o", str(npy)], check=True, capture_output=True)
                secs += time.time() - t
            x[name] = np.load(npy)
        sc = StandardScaler().fit(x["train"])
        f1s = {}
        for c in PROBE_CS:
            m = LogisticRegression(C=c, max_iter=5000).fit(sc.transform(x["train"]), ytr)
            f1s[c] = f1_score(yva, m.predict(sc.transform(x["val"])), average="macro")
        out["probe"].append({"max_len": n, "embed_seconds": round(secs, 1) or None, "val_f1_macro_by_c": {str(c): round(v, 4) for c, v in f1s.items()}})
        print(json.dumps(out["probe"][-1]), flush=True)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))

    def cut(t, n):
        return tok.decode(tok(t, truncation=True, max_length=n)["input_ids"], skip_special_tokens=True)

    for n in [None] + [int(x) for x in a.lens.split(",")]:
        tr = [t if n is None else cut(t, n) for t, _ in train]
        va = [t if n is None else cut(t, n) for t, _ in val]
        v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2).fit(tr)
        f1s = {str(c): round(f1_score(yva, LogisticRegression(C=c, max_iter=5000).fit(v.transform(tr), ytr).predict(v.transform(va)), average="macro"), 4) for c in TFIDF_CS}
        out["tfidf"].append({"cut_to_tokens": n, "val_f1_macro_by_c": f1s})
        print(json.dumps(out["tfidf"][-1]), flush=True)
    dest = ROOT / f"bench/results/probe_c_{a.dataset}.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", dest)


if __name__ == "__main__":
    main()
