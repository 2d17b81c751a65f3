#!/usr/bin/env python3
"""`savant predict` vs PyTorch + transformers on the same job, in one run (see bench/README.md).

    bench/predict_vs_transformers.py                       # 2,000 CFPB complaints, median of 3
    bench/predict_vs_transformers.py --repeat 1            # a quick check
    bench/predict_vs_transformers.py --savant path/to/savant --threads 2

Python environment: the fixtures venv tests/fixtures/model/.venv (torch, transformers,
safetensors, numpy; see tests/fixtures/model/make_fixtures.py for how it is made). The script
re-executes itself with that venv's Python; it does not create or install anything.

One run:
  1. builds (once) a sequence classifier from all-MiniLM-L6-v2 ($SAVANT_HOME/models/minilm,
     SAVANT_HOME defaulting to ~/.cache/savant): BertForSequenceClassification with the 8 CFPB
     products (sorted) as labels and a new head drawn after torch.manual_seed(0), saved as
     safetensors to bench/data/minilm-cls with the tokenizer files copied byte for byte
     (tokenizer.json keeps its baked-in padding/truncation: savant must switch them off itself);
  2. writes the first --rows (2,000) rows of $SAVANT_HOME/datasets/cfpb/test.csv (topped up
     from train.csv if test has fewer) to bench/data/cfpb_<rows>.csv;
  3. times, each as its own subprocess under GNU time (wall time, peak RSS), --repeat times:
     - savant: `savant predict --model bench/data/minilm-cls IN --text text -o OUT --max-len 128
       --batch-size 32 --device cpu --report REPORT` with RAYON_NUM_THREADS=--threads; its
       texts/s is the report's texts_per_second (model loading excluded);
     - pytorch: this script as a worker (`--worker torch ...`): torch.set_num_threads(--threads),
       the fast tokenizer with padding=True, truncation=True, max_length=128, batches of 32 in
       file order under torch.inference_mode(), softmax, the same CSV out; texts/s counts
       tokenisation + inference (load and write timed separately);
     - pytorch-sorted (informational, --no-sorted skips it): the same, but texts sorted by token
       length within chunks of 2,048 before batching, as savant does;
  4. checks savant's prob_<label> columns against PyTorch's probabilities (max abs difference,
     argmax agreement) and fails when the max difference exceeds 1e-3;
  5. prints the table and the ratio (target: savant >= 1.2x PyTorch texts/s) and writes
     bench/results/predict_vs_transformers.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = ROOT / "tests/fixtures/model/.venv"
VENV_PY = VENV / "bin" / "python"
DATA = BENCH / "data"
MODEL_DIR = DATA / "minilm-cls"
SEED = 0
TARGET = 1.2  # savant texts/s over PyTorch texts/s
FAIL_DIFF = 1e-3  # max abs probability difference that fails the run
EXPECT_DIFF = 1e-4  # what we expect (fp32 both sides)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")

csv.field_size_limit(1 << 30)  # complaints can be long; the csv module's default limit is 128 KiB


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def savant_home() -> Path:
    return Path(os.environ.get("SAVANT_HOME", Path.home() / ".cache/savant"))


def chunk_rows(batch_size: int) -> int:
    """savant's chunk size (native-trainer/src/cmd/text_input.rs): it sorts by length within it."""
    return min(max(batch_size * 64, 256), 16384)


# ---------------------------------------------------------------------------------------------
# Workers (run in fresh subprocesses, so that their RSS is their own).
# ---------------------------------------------------------------------------------------------


def worker_build(minilm: str, out: str, labels_json: str) -> dict:
    """BertForSequenceClassification on top of all-MiniLM-L6-v2, new head seeded, saved as safetensors."""
    import torch
    import transformers
    from transformers import BertForSequenceClassification

    labels = json.loads(labels_json)
    torch.manual_seed(SEED)
    model = BertForSequenceClassification.from_pretrained(
        minilm,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={l: i for i, l in enumerate(labels)},
        dtype=torch.float32,
    )
    model.eval()
    out_dir = Path(out)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
    except TypeError:  # transformers without the argument: safetensors is the only format there
        model.save_pretrained(tmp)
    for name in TOKENIZER_FILES:  # byte for byte: tokenizer.json keeps its baked-in padding/truncation
        if (Path(minilm) / name).exists():
            shutil.copyfile(Path(minilm) / name, tmp / name)
    if not (tmp / "model.safetensors").exists():
        raise SystemExit(f"save_pretrained wrote no model.safetensors in {tmp}: {sorted(p.name for p in tmp.iterdir())}")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return {"torch": torch.__version__, "transformers": transformers.__version__, "labels": labels}


def read_texts(path: str, column: str) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r[column] for r in rows], rows


def worker_torch(model_dir: str, inp: str, out: str, threads: int, batch: int, max_len: int, order: str) -> dict:
    """The PyTorch + transformers side; returns its timings (seconds) and versions."""
    t_start = time.perf_counter()
    import numpy as np
    import tokenizers
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    t_import = time.perf_counter()
    texts, rows = read_texts(inp, "text")
    t_read = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    if not tok.is_fast:
        raise SystemExit(f"{model_dir}: expected a fast tokenizer (tokenizer.json)")
    # all-MiniLM's tokenizer.json pads every text to 128 and truncates; switch both off so that
    # only the per-call padding=True / truncation=True below apply (transformers sets them per
    # call anyway; this makes it explicit).
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.no_truncation()
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    t_load = time.perf_counter()

    n, k = len(texts), len(labels)
    probs = np.empty((n, k), dtype=np.float32)
    tokenize_s = infer_s = 0.0
    pad_tokens = real_tokens = 0
    with torch.inference_mode():
        if order == "file":
            for s in range(0, n, batch):
                a = time.perf_counter()
                enc = tok(texts[s : s + batch], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
                b = time.perf_counter()
                logits = model(**enc).logits
                probs[s : s + batch] = torch.softmax(logits, dim=-1).numpy()
                c = time.perf_counter()
                tokenize_s += b - a
                infer_s += c - b
                m = enc["attention_mask"]
                real_tokens += int(m.sum())
                pad_tokens += m.numel() - int(m.sum())
        else:  # "sorted": like savant, longest first within chunks, then batches of `batch`
            pad_id = tok.pad_token_id
            for c0 in range(0, n, chunk_rows(batch)):
                part = texts[c0 : c0 + chunk_rows(batch)]
                a = time.perf_counter()
                enc = tok(part, truncation=True, max_length=max_len)
                ids, types = enc["input_ids"], enc["token_type_ids"]
                idx = sorted(range(len(part)), key=lambda i: -len(ids[i]))  # stable, as Rust's sort_by_key
                tokenize_s += time.perf_counter() - a
                for s in range(0, len(idx), batch):
                    a = time.perf_counter()
                    sel = idx[s : s + batch]
                    width = max(len(ids[i]) for i in sel)
                    input_ids = torch.full((len(sel), width), pad_id, dtype=torch.long)
                    token_types = torch.zeros((len(sel), width), dtype=torch.long)
                    mask = torch.zeros((len(sel), width), dtype=torch.long)
                    for r, i in enumerate(sel):
                        L = len(ids[i])
                        input_ids[r, :L] = torch.tensor(ids[i])
                        token_types[r, :L] = torch.tensor(types[i])
                        mask[r, :L] = 1
                    b = time.perf_counter()
                    logits = model(input_ids=input_ids, token_type_ids=token_types, attention_mask=mask).logits
                    probs[[c0 + i for i in sel]] = torch.softmax(logits, dim=-1).numpy()
                    c = time.perf_counter()
                    tokenize_s += b - a
                    infer_s += c - b
                    real_tokens += int(mask.sum())
                    pad_tokens += mask.numel() - int(mask.sum())
    t_infer = time.perf_counter()

    preds = probs.argmax(axis=1)
    header = list(rows[0].keys()) + ["pred"] + [f"prob_{l}" for l in labels]
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for i, r in enumerate(rows):
            w.writerow([*r.values(), labels[preds[i]], *(str(p) for p in probs[i])])  # str(np.float32): shortest repr
    t_write = time.perf_counter()
    return {
        "order": order,
        "rows": n,
        "import_s": t_import - t_start,
        "read_s": t_read - t_import,
        "load_s": t_load - t_read,
        "tokenize_s": tokenize_s,
        "infer_s": infer_s,
        "tokenize_infer_s": t_infer - t_load,
        "write_s": t_write - t_infer,
        "texts_per_second": n / (t_infer - t_load),
        "real_tokens": real_tokens,
        "pad_tokens": pad_tokens,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
        "torch_config": torch.__config__.parallel_info().splitlines()[:8],
    }


# ---------------------------------------------------------------------------------------------
# Setup: venv, model, data, binary.
# ---------------------------------------------------------------------------------------------


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PY.exists():
        sys.exit(
            f"{VENV} is missing: make it as tests/fixtures/model/make_fixtures.py's header says "
            "(python3 -m venv ...; pip install torch transformers safetensors numpy)"
        )
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])


def worker_cmd(kind: str, *args) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", kind, *map(str, args)]


def cfpb_labels(paths: list[Path]) -> list[str]:
    labels = set()
    for p in paths:
        if p.exists():
            with open(p, newline="", encoding="utf-8") as f:
                labels.update(r["label"] for r in csv.DictReader(f))
    return sorted(labels)


def ensure_model(minilm: Path, labels: list[str], rebuild: bool) -> dict:
    """bench/data/minilm-cls, rebuilt when missing, when asked, or when its source/labels changed."""
    meta_path = MODEL_DIR.with_name(MODEL_DIR.name + ".meta.json")
    weights = minilm / "model.safetensors"
    if not weights.exists():
        sys.exit(f"{minilm}: no model.safetensors; fetch it with `savant fetch model minilm`")
    want = {"source": str(minilm), "source_bytes": weights.stat().st_size, "labels": labels, "seed": SEED}
    if not rebuild and (MODEL_DIR / "model.safetensors").exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want:
            return meta
    log(f"building {MODEL_DIR.relative_to(ROOT)} from {minilm} ({len(labels)} labels, head seeded with {SEED})")
    info_path = DATA / "build_model.json"
    subprocess.run(worker_cmd("build", minilm, MODEL_DIR, info_path, json.dumps(labels)), check=True)
    meta = {**want, **json.loads(info_path.read_text())}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def build_data(rows: int) -> tuple[Path, dict]:
    """The first `rows` rows of test.csv (then of train.csv if test has fewer), columns text,label."""
    dst = DATA / f"cfpb_{rows}.csv"
    src = [savant_home() / "datasets/cfpb/test.csv", savant_home() / "datasets/cfpb/train.csv"]
    if not src[0].exists():
        sys.exit(f"{src[0]} is missing: fetch it with `savant fetch dataset cfpb`")
    out, used = [], {}
    for p in src:
        if len(out) >= rows or not p.exists():
            continue
        with open(p, newline="", encoding="utf-8") as f:
            r = csv.DictReader(f)
            if "text" not in r.fieldnames or "label" not in r.fieldnames:
                sys.exit(f"{p}: expected columns text,label, found {r.fieldnames}")
            before = len(out)
            for row in r:
                out.append((row["text"], row["label"]))
                if len(out) >= rows:
                    break
            used[str(p)] = len(out) - before
    if len(out) < rows:
        sys.exit(f"only {len(out)} rows in {', '.join(map(str, src))}; asked for {rows}")
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(out)
    if dst.exists() and dst.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(dst)
    return dst, {"path": str(dst.relative_to(ROOT)), "rows": rows, "bytes": dst.stat().st_size, "sources": used,
                 "mean_chars": sum(len(t) for t, _ in out) / rows}


def default_savant() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/savant/target"))
    return target / "release" / "savant"


# ---------------------------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------------------------


def builds_running() -> list[str]:
    """Running rustc processes (another developer's cargo build would skew every number)."""
    r = subprocess.run(["pgrep", "-x", "rustc"], capture_output=True, text=True)
    return r.stdout.split()


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_times() -> tuple[float, float]:
    """Machine-wide CPU seconds so far: busy (user, nice, system, irq, softirq) and steal."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def busy_fraction(seconds: float = 2.0) -> float:
    """Share of all CPUs busy over the next `seconds`."""
    b0, t0 = cpu_times()[0], time.monotonic()
    time.sleep(seconds)
    return (cpu_times()[0] - b0) / ((time.monotonic() - t0) * os.cpu_count())


def wait_for_quiet(max_wait: float, idle_below: float = 0.1) -> bool:
    """Waits (up to max_wait s) until no rustc runs and the CPUs are < 10 % busy; True when quiet."""
    deadline, announced = time.time() + max_wait, False
    while True:
        rustc, busy = builds_running(), busy_fraction()
        if not rustc and busy < idle_below:
            return True
        if time.time() > deadline:
            log(f"WARNING: the machine is busy ({busy:.0%} CPU, {len(rustc)} rustc); timings will be contended")
            return False
        if not announced:
            log(f"waiting for the machine to be quiet ({busy:.0%} CPU busy, {len(rustc)} rustc running) ...")
            announced = True
        time.sleep(3)


# Peak RSS: GNU time forks the command from a ~2 MiB process, so its %M is the command's own
# (os.wait4 from this Python process would carry Python's high-water mark across exec; see
# bench/README.md). Without GNU time, a fresh small Python launcher runs the command and reports
# getrusage(RUSAGE_CHILDREN).ru_maxrss, which then starts from that launcher's ~10 MiB at most.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
RSS_METHOD = "gnu-time" if GNU_TIME else "getrusage-children"
LAUNCHER = (
    "import resource, subprocess, sys, json\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(json.dumps([ru.ru_maxrss, ru.ru_utime + ru.ru_stime]))\n"
    "sys.exit(rc)\n"
)


def run_once(cmd: list[str], env: dict, tag: str) -> dict:
    """Runs cmd; wall seconds, CPU seconds and peak RSS (MiB) of that process alone, and the CPU
    seconds the rest of the machine used meanwhile (other_cpu_s: another job skewing the run)."""
    out_dir = DATA / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rss_file, err_file = out_dir / f"{tag}.time.txt", out_dir / f"{tag}.stderr.txt"
    if RSS_METHOD == "gnu-time":
        full = [GNU_TIME, "-f", "%M %U %S", "-o", str(rss_file), *cmd]
    else:
        full = [sys.executable, "-c", LAUNCHER, str(rss_file), *cmd]
    with open(err_file, "wb") as err:
        busy0, steal0 = cpu_times()
        t0 = time.perf_counter()
        p = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
        wall = time.perf_counter() - t0
        busy1, steal1 = cpu_times()
    if p.returncode:
        msg = err_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)}\nfailed with exit status {p.returncode}:\n{msg}")
    if RSS_METHOD == "gnu-time":
        kib, user, sys_ = rss_file.read_text().split("\n")[-2].split()  # last line: "%M %U %S"
        r = {"wall_s": wall, "cpu_s": float(user) + float(sys_), "rss_mib": int(kib) / 1024}
    else:
        kib, cpu = json.loads(rss_file.read_text())
        r = {"wall_s": wall, "cpu_s": cpu, "rss_mib": kib / 1024}
    r["other_cpu_s"] = max(0.0, busy1 - busy0 - r["cpu_s"])
    r["steal_s"] = steal1 - steal0
    return r


def warm_cache(*paths: Path) -> None:
    for p in paths:
        subprocess.run(["cat", str(p)], stdout=subprocess.DEVNULL, check=True)


def time_tools(tools: list[tuple[str, list[str], object]], env: dict, repeat: int, warm: list[Path],
               max_wait: float, retries: int) -> dict[str, dict]:
    """Runs every tool once per round, `repeat` rounds (interleaved, so that a slow spell of the
    machine hits all tools alike), each after waiting for a quiet machine and again (up to
    `retries` times) when another process took CPU during it; medians per tool."""
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in tools}
    for i in range(repeat):
        for name, cmd, after_run in tools:
            discarded = []
            while True:
                quiet = wait_for_quiet(max_wait)
                warm_cache(*warm)
                r = run_once(cmd, env, name)
                r["quiet_before"] = quiet
                r["build_running_after"] = bool(builds_running())
                # Contended: other processes used more than 5 % of the machine during the run.
                r["contended"] = r["build_running_after"] or r["other_cpu_s"] > 0.05 * r["wall_s"] * os.cpu_count()
                r.update(after_run())
                log(f"  {name} run {i + 1}/{repeat}: {r['wall_s']:.2f} s wall, {r['texts_per_second']:.1f} texts/s, "
                    f"{r['rss_mib']:.0f} MiB, CPU {r['cpu_s']:.1f} s (others {r['other_cpu_s']:.1f} s)"
                    + ("  CONTENDED" if r["contended"] else ""))
                if not r["contended"] or len(discarded) >= retries:
                    break
                log(f"  ... run again (contended runs are retried up to {retries} times)")
                discarded.append({k: r[k] for k in ("wall_s", "cpu_s", "other_cpu_s", "texts_per_second")})
            r["discarded_contended"] = discarded
            runs[name].append(r)
    out = {}
    for name, cmd, _ in tools:
        rs = runs[name]
        med = lambda key: statistics.median(r[key] for r in rs)
        out[name] = {
            "cmd": cmd,
            "runs": rs,
            "wall_s": med("wall_s"),
            "cpu_s": med("cpu_s"),
            "other_cpu_s": med("other_cpu_s"),
            "texts_per_second": med("texts_per_second"),
            "load_s": med("load_s"),
            "rss_mib": max(r["rss_mib"] for r in rs),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Comparing the outputs.
# ---------------------------------------------------------------------------------------------


def read_probs(path: Path, labels: list[str]) -> tuple[list[list[float]], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        cols = [f"prob_{l}" for l in labels]
        missing = [c for c in cols + ["pred"] if c not in r.fieldnames]
        if missing:
            raise SystemExit(f"{path}: missing columns {missing}; has {r.fieldnames}")
        probs, preds = [], []
        for row in r:
            probs.append([float(row[c]) for c in cols])
            preds.append(row["pred"])
    return probs, preds


def compare(a: Path, b: Path, labels: list[str]) -> dict:
    pa, preda = read_probs(a, labels)
    pb, predb = read_probs(b, labels)
    if len(pa) != len(pb):
        raise SystemExit(f"{a} has {len(pa)} rows, {b} has {len(pb)}")
    diffs = [abs(x - y) for ra, rb in zip(pa, pb) for x, y in zip(ra, rb)]
    # The new head is random, so probabilities sit near 1/8; log-probabilities (logits up to a
    # per-row constant) show the relative error too.
    log = lambda p: math.log(max(p, 1e-38))
    logdiffs = [abs(log(x) - log(y)) for ra, rb in zip(pa, pb) for x, y in zip(ra, rb)]
    argmax = lambda row: max(range(len(row)), key=lambda j: (row[j], -j))  # first on ties
    agree = sum(argmax(ra) == argmax(rb) for ra, rb in zip(pa, pb))
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    row_sums = [abs(sum(r) - 1) for r in pa]
    return {
        "rows": len(pa),
        "max_abs_diff": max(diffs),
        "mean_abs_diff": sum(diffs) / len(diffs),
        "max_abs_logprob_diff": max(logdiffs),
        "mean_top_prob": sum(max(r) for r in pb) / len(pb),
        "min_top2_margin": min(sorted(r)[-1] - sorted(r)[-2] for r in pb),
        "worst_row": worst // len(labels),
        "worst_label": labels[worst % len(labels)],
        "argmax_agree": agree,
        "argmax_agree_rate": agree / len(pa),
        "pred_column_agree_rate": sum(x == y for x, y in zip(preda, predb)) / len(pa),
        "max_row_sum_error_first": max(row_sums),
    }


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------


def machine_info() -> dict:
    mem_kib = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return {
        "cpus_logical": os.cpu_count(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "memory_gib": round(mem_kib / 2**20, 1),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def git_rev() -> str:
    r = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() or "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--savant", help="savant binary (default: $CARGO_TARGET_DIR or ~/.cache/savant/target, + /release/savant)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads for both sides: RAYON_NUM_THREADS for savant, torch.set_num_threads (default: all CPUs)")
    ap.add_argument("--rows", type=int, default=2000, help="texts to classify (default 2000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per tool; the median is reported")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--no-sorted", action="store_true", help="skip the length-sorted PyTorch variant")
    ap.add_argument("--only-torch", action="store_true", help="build the model and data, time PyTorch only (no savant)")
    ap.add_argument("--rebuild-model", action="store_true", help="rebuild bench/data/minilm-cls even if it is up to date")
    ap.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for a quiet machine before each run")
    ap.add_argument("--retries", type=int, default=2, help="times a run is redone when other processes took CPU during it")
    args = ap.parse_args()

    ensure_venv()
    sys.stdout.reconfigure(line_buffering=True)
    DATA.mkdir(parents=True, exist_ok=True)
    home = savant_home()
    minilm = home / "models/minilm"
    cfpb = [home / "datasets/cfpb/test.csv", home / "datasets/cfpb/train.csv"]
    labels = cfpb_labels(cfpb)
    if len(labels) != 8:
        log(f"WARNING: expected the 8 CFPB products as labels, found {len(labels)}")
    model_meta = ensure_model(minilm, labels, args.rebuild_model)
    data, data_info = build_data(args.rows)
    out_dir = DATA / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    warm = [data, MODEL_DIR / "model.safetensors", MODEL_DIR / "tokenizer.json"]
    threads = str(args.threads)
    # Both sides get the same thread count: rayon (savant; the HF tokenizers crate too) and torch.
    env = dict(os.environ, RAYON_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               TOKENIZERS_PARALLELISM="true", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    outs: dict[str, Path] = {}

    tools: list[tuple[str, list[str], object]] = []
    savant, version = None, None
    if not args.only_torch:
        savant = Path(args.savant).resolve() if args.savant else default_savant()
        if not savant.exists():
            sys.exit(f"{savant} does not exist: build it with `cargo build --release -p savant` or pass --savant")
        version = subprocess.run([str(savant), "--version"], capture_output=True, text=True).stdout.strip()
        out, report = DATA / "preds_savant.csv", DATA / "predict_report.json"
        cmd = [str(savant), "predict", "--model", str(MODEL_DIR.relative_to(ROOT)), str(data.relative_to(ROOT)),
               "--text", "text", "-o", str(out.relative_to(ROOT)), "--max-len", str(args.max_len),
               "--batch-size", str(args.batch_size), "--device", "cpu", "--report", str(report.relative_to(ROOT))]

        def savant_report(report=report) -> dict:
            rep = json.loads(report.read_text())
            if rep.get("rows_written") != args.rows or rep.get("rows_skipped"):
                raise SystemExit(f"savant wrote {rep.get('rows_written')} rows, skipped {rep.get('rows_skipped')}: {rep}")
            st = savant.stat()  # someone may rebuild the binary during the benchmark: record which one ran
            return {"texts_per_second": rep["texts_per_second"], "report_seconds": rep["seconds"],
                    "binary_mtime": st.st_mtime, "binary_bytes": st.st_size,
                    "load_s": rep["seconds"] - rep["rows_written"] / rep["texts_per_second"],
                    "truncated": rep.get("truncated"), "device": rep.get("device"),
                    "ignored_weights": rep.get("ignored_weights")}

        tools.append(("savant", cmd, savant_report))
        outs["savant"] = out

    for order in ["file"] + ([] if args.no_sorted else ["sorted"]):
        name = "pytorch" if order == "file" else "pytorch-sorted"
        out, stats = DATA / f"preds_{name}.csv", out_dir / f"{name}.json"
        cmd = worker_cmd("torch", MODEL_DIR, data, out, stats, args.threads, args.batch_size, args.max_len, order)
        tools.append((name, cmd, lambda stats=stats: json.loads(stats.read_text())))
        outs[name] = out

    log(f"{version or 'PyTorch only'}{f' ({savant})' if savant else ''}, {args.threads} threads, {args.rows:,} texts; "
        f"{args.repeat} round(s) of: {', '.join(t[0] for t in tools)}")
    try:
        results = time_tools(tools, env, args.repeat, warm, args.max_wait, args.retries)
    except RuntimeError as e:
        sys.exit(f"a timed command failed:\n{e}")
    if "savant" in results:
        results["savant"]["version"] = version
        if len({(r["binary_mtime"], r["binary_bytes"]) for r in results["savant"]["runs"]}) > 1:
            log(f"WARNING: {savant} changed during the benchmark (someone rebuilt it); the runs timed different binaries")
            results["savant"]["binary_changed"] = True
    for name in [n for n in results if n.startswith("pytorch")]:
        r = results[name]
        for key in ("versions", "torch_config", "threads", "interop_threads", "attn_implementation"):
            r[key] = r["runs"][-1][key]
            for run in r["runs"]:
                run.pop(key, None)

    # --- agreement -----------------------------------------------------------------------------
    agreement = {}
    if "savant" in outs:
        for name in [n for n in outs if n != "savant"]:
            agreement[f"savant_vs_{name}"] = compare(outs["savant"], outs[name], labels)
    if "pytorch-sorted" in outs:
        agreement["pytorch_vs_pytorch-sorted"] = compare(outs["pytorch"], outs["pytorch-sorted"], labels)

    # --- table -----------------------------------------------------------------------------------
    versions = results["pytorch"]["versions"]
    print()
    print(f"predict: {args.rows:,} CFPB complaints ({data_info['mean_chars']:.0f} chars on average), all-MiniLM-L6-v2 + "
          f"8-label head, max_len {args.max_len}, batch {args.batch_size}, {args.threads} threads, median of {args.repeat}")
    print(f"torch {versions['torch']}, transformers {versions['transformers']}; {info['cpus_logical']} CPUs ({info['cpu']})")
    print(f"{'tool':<15} {'texts/s':>9} {'wall s':>8} {'load s':>7} {'CPU s':>8} {'others CPU s':>13} {'peak RSS MiB':>13}")
    for name, r in results.items():
        print(f"{name:<15} {r['texts_per_second']:>9.1f} {r['wall_s']:>8.2f} {r['load_s']:>7.2f} "
              f"{r['cpu_s']:>8.2f} {r['other_cpu_s']:>13.2f} {r['rss_mib']:>13,.0f}")
    contended = {n: sum(x["contended"] for x in r["runs"]) for n, r in results.items()}
    if any(contended.values()):
        print("  WARNING: other processes used > 5 % of the CPUs during " +
              ", ".join(f"{k} of {args.repeat} {n} runs" for n, k in contended.items() if k) + " (see others CPU s)")
    for name in [n for n in results if n.startswith("pytorch")]:
        r = results[name]["runs"][-1]
        print(f"  {name} (last run): tokenise {r['tokenize_s']:.2f} s, model {r['infer_s']:.2f} s, write {r['write_s']:.2f} s, "
              f"import {r['import_s']:.2f} s; padding {r['pad_tokens'] / (r['pad_tokens'] + r['real_tokens']):.0%} of tokens")

    ratios, failed = {}, []
    if "savant" in results:
        s = results["savant"]
        print("\nsavant / pytorch:")
        for name in [n for n in results if n.startswith("pytorch")]:
            p = results[name]
            x = s["texts_per_second"] / p["texts_per_second"]
            # Runs are interleaved, so round i of savant and of PyTorch met the same machine: the
            # per-round ratios show how much of the spread is the machine's.
            per_round = [a["texts_per_second"] / b["texts_per_second"] for a, b in zip(s["runs"], p["runs"])]
            ratios[name] = {"texts_per_second": x, "per_round": per_round, "wall": p["wall_s"] / s["wall_s"],
                            "rss": s["rss_mib"] / p["rss_mib"]}
            if name == "pytorch":
                ratios[name].update(target=TARGET, met=x >= TARGET)
            note = f"(target >= {TARGET}x)  {'met' if x >= TARGET else 'NOT MET'}" if name == "pytorch" else "(informational)"
            print(f"  vs {name:<15} texts/s {x:5.2f}x  wall (pytorch/savant) {ratios[name]['wall']:5.2f}x  "
                  f"RSS {s['rss_mib']:,.0f} / {p['rss_mib']:,.0f} MiB  {note}")
            print(f"     texts/s per round: {', '.join(f'{v:.2f}x' for v in per_round)}")
    if agreement:
        print("\nagreement of the probabilities:")
        for key, a in agreement.items():
            print(f"  {key:<28} max |diff| {a['max_abs_diff']:.2e} (mean {a['mean_abs_diff']:.1e}; log-prob "
                  f"{a['max_abs_logprob_diff']:.1e}), argmax agree {a['argmax_agree']:,}/{a['rows']:,} = {a['argmax_agree_rate']:.2%}")
            if key.startswith("savant_vs_") and a["max_abs_diff"] > FAIL_DIFF:
                failed.append(f"{key}: max abs difference {a['max_abs_diff']:.3g} > {FAIL_DIFF}")
            elif key.startswith("savant_vs_") and a["max_abs_diff"] > EXPECT_DIFF:
                print(f"  WARNING: {key} max abs difference above the expected {EXPECT_DIFF}")

    doc = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "git": git_rev(),
        "machine": info,
        "versions": versions,
        "torch_parallel_info": results["pytorch"]["torch_config"],
        "savant": {"binary": str(savant), "version": results.get("savant", {}).get("version")},
        "model": {"dir": str(MODEL_DIR.relative_to(ROOT)), "source": model_meta["source"], "labels": labels, "seed": SEED},
        "data": data_info,
        "settings": {"threads": args.threads, "batch_size": args.batch_size, "max_len": args.max_len,
                     "repeat": args.repeat, "retries": args.retries, "rss_method": RSS_METHOD,
                     "env": {k: env[k] for k in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "TOKENIZERS_PARALLELISM")}},
        "results": results,
        "ratios_savant_over": ratios,
        "target_texts_per_second_ratio": TARGET,
        "agreement": agreement,
        "failed": failed,
    }
    if failed:
        path = DATA / "predict_vs_transformers.failed.json"
        path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        sys.exit("FAILED: savant's probabilities disagree with PyTorch's:\n  " + "\n  ".join(failed) +
                 f"\n(details in {path.relative_to(ROOT)}; outputs in bench/data/preds_*.csv)")
    if args.only_torch:
        path = DATA / "predict_vs_transformers.torch-only.json"
    else:
        path = BENCH / "results" / "predict_vs_transformers.json"
        path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "build":
            minilm, out, info, labels_json = rest
            Path(info).write_text(json.dumps(worker_build(minilm, out, labels_json)))
        elif kind == "torch":
            model_dir, inp, out, stats, threads, batch, max_len, order = rest
            Path(stats).write_text(json.dumps(worker_torch(model_dir, inp, out, int(threads), int(batch), int(max_len), order)))
        else:
            sys.exit(f"unknown worker {kind}")
    else:
        main()
