#!/usr/bin/env python3
"""How much of a long text's label lies past its first 128 tokens: the same classifier given more of
each text, so the long-document issue's targets can be read against what the extra text carries.

    bench/long_text_reading.py --savant target/release/savant --datasets finance,legal,rules-multi   # ~75 min
    bench/long_text_reading.py --table

Readings (the same splits as bench/quality.py; C chosen on val, test macro-F1 over every training
class as `savant eval` computes it):
  bow_first126, bow_first254, bow_first510, bow_whole
      TF-IDF 1-2-grams + LogisticRegression (bench/quality.py's tfidf_lr) on each text cut to its
      first N MiniLM tokens (the tokenizer's own offsets), and on the whole text
  probe_trunc128, probe_trunc256, probe_trunc512, probe_windows2, probe_windows_all
      the frozen all-MiniLM-L6-v2 (`savant embed`, mean pooling, unnormalised) + LogisticRegression
      (bench/quality.py's probe, C from its grid): the first 128/256/512 tokens, the mean of the first 2 / all
      128-token windows (stride 31)
  rules-multi (--datasets rules-multi): bench/multilabel.py's one-vs-rest TF-IDF baseline (C and
      per-label thresholds on val, test micro-F1) on the licence rules cut the same ways
Results: bench/results/long_text_reading.json (merged by dataset and reading).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.dont_write_bytecode = True
import quality as q  # noqa: E402  (splits, runner, venv, TF-IDF recipe, C grids)

RESULTS = BENCH / "results" / "long_text_reading.json"
BOW = [("bow_first126", 126), ("bow_first254", 254), ("bow_first510", 510), ("bow_whole", None)]
READINGS = {
    "probe_trunc128": ["--max-len", "128"],
    "probe_trunc256": ["--max-len", "256"],
    "probe_trunc512": ["--max-len", "512"],
    "probe_windows2": ["--max-len", "128", "--long", "windows", "--stride", "31", "--max-windows", "2"],
    "probe_windows_all": ["--max-len", "128", "--long", "windows", "--stride", "31"],
}


def macro_f1(y, p, classes) -> float:
    from sklearn.metrics import f1_score
    return float(f1_score(y, p, labels=classes, average="macro", zero_division=0))


def fit(train, y_train, val, y_val, test, y_test, classes, grid, make) -> dict:
    best = None
    for c in grid:
        clf = make(c).fit(train, y_train)
        f = macro_f1(y_val, clf.predict(val), classes)
        if best is None or f > best[0]:
            best = (f, c, clf)
    f, c, clf = best
    return {"C": c, "val_f1_macro": f, "test_f1_macro": macro_f1(y_test, clf.predict(test), classes)}


def cut(texts: list[str], n: int | None, tokenizer) -> list[str]:
    """Each text up to the end of its n-th non-special token (the text itself when it has fewer)."""
    if n is None:
        return texts
    out = []
    for text, enc in zip(texts, tokenizer.encode_batch(texts)):
        offsets = [o for o, special in zip(enc.offsets, enc.special_tokens_mask) if not special]
        out.append(text if len(offsets) <= n else text[: offsets[n - 1][1]])
    return out


def main() -> None:
    q.ensure_venv(__file__)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--savant", type=Path, default=q.pvt.default_savant())
    ap.add_argument("--datasets", default="finance,legal,rules-multi")
    ap.add_argument("--readings", default="bow,probe", help="bow, probe or both")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--table", action="store_true", help="print docs/benchmarks.md's table from the results file")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(RESULTS.read_text())))
        return

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from tokenizers import Tokenizer
    env = dict(os.environ)
    home = q.pvt.savant_home()
    minilm = home / "models" / "minilm"
    tokenizer = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"results": {}}
    for name in args.datasets.split(","):
        if name == "rules-multi":
            import multilabel as ml
            info = ml.prepare(args.savant)
            res = doc["results"].setdefault(name, {})
            for label, n in BOW:
                r = ml.tfidf_ovr(info, reading=lambda texts, n=n: cut(texts, n, tokenizer))
                res[label] = {"C": r["C"], "val_f1_micro": r["val"]["f1_micro"], "test_f1_micro": r["test"]["f1_micro"],
                              "test_f1_macro": r["test"]["f1_macro"], "seconds": r["seconds"]}
                print(name, label, json.dumps(res[label]), flush=True)
            save(doc)
            continue
        info = q.prepare(name, home, args.savant, {}, env)
        classes = info["classes"]
        xy = {s: q.labels_of(info["files"][s]) for s in ["train", "val", "test"]}
        res = doc["results"].setdefault(name, {})
        doc.setdefault("data", {})[name] = info["sha256"]
        if "bow" in args.readings:
            for label, n in BOW:
                t0 = time.perf_counter()
                x = {s: cut(xy[s][0], n, tokenizer) for s in xy}
                vec = TfidfVectorizer(**q.TFIDF)
                a = vec.fit_transform(x["train"])
                r = fit(a, xy["train"][1], vec.transform(x["val"]), xy["val"][1], vec.transform(x["test"]), xy["test"][1],
                        classes, q.C_TFIDF, lambda c: LogisticRegression(C=c, max_iter=2000))
                r["seconds"] = time.perf_counter() - t0
                res[label] = r
                print(name, label, json.dumps(r), flush=True)
        if "probe" in args.readings:
            for label, flags in READINGS.items():
                t0 = time.perf_counter()
                vecs, _ = q.embeddings(args.savant, minilm, info, env, args.threads, reading=(label, flags))
                # Unstandardised vectors, as bench/quality.py's probe row.
                r = fit(vecs["train"], xy["train"][1], vecs["val"], xy["val"][1], vecs["test"], xy["test"][1], classes,
                        q.C_PROBE, lambda c: LogisticRegression(C=c, max_iter=3000))
                r["seconds"] = time.perf_counter() - t0
                res[label] = r
                print(name, label, json.dumps(r), flush=True)
        save(doc)


NAMES = {"bow_first126": "TF-IDF + LR, first 126 tokens", "bow_first254": "TF-IDF + LR, first 254 tokens",
         "bow_first510": "TF-IDF + LR, first 510 tokens", "bow_whole": "TF-IDF + LR, the whole text",
         "probe_trunc128": "frozen MiniLM probe, first 126 tokens", "probe_trunc256": "frozen MiniLM probe, first 254 tokens",
         "probe_trunc512": "frozen MiniLM probe, first 510 tokens",
         "probe_windows2": "frozen MiniLM probe, mean of the first 2 windows (128, stride 31)",
         "probe_windows_all": "frozen MiniLM probe, mean of every window (128, stride 31)"}


def table(doc: dict) -> str:
    """One row per reading, a test / val column per dataset (macro-F1; micro-F1 for rules-multi), in points."""
    names = [n for n in ["finance", "legal", "rules-multi"] if n in doc["results"]]
    out = ["| reading | " + " | ".join(f"{n} test / val" for n in names) + " |", "|---|" + "---|" * len(names)]
    for key, what in NAMES.items():
        cells = []
        for n in names:
            r = doc["results"][n].get(key)
            if r is None:
                cells.append("-")
            else:
                kind = "micro" if n == "rules-multi" else "macro"
                cells.append(f"{100 * r[f'test_f1_{kind}']:.1f} / {100 * r[f'val_f1_{kind}']:.1f}")
        if any(c != "-" for c in cells):
            out.append(f"| {what} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def save(doc: dict) -> None:
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(RESULTS)


if __name__ == "__main__":
    main()
