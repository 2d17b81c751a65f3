#!/usr/bin/env python3
"""Benchmark `savant clean` against the same job written in pandas and in polars.

One run does everything (see bench/README.md):
  1. makes bench/.venv with pandas/polars/psutil (and re-executes itself inside it),
     builds the savant release binary when it is missing or older than its sources;
  2. builds a --rows CSV (default 1,000,000) by resampling, with a fixed seed, the real CFPB
     complaints of $SAVANT_HOME/datasets/cfpb/train.csv;
  3. times savant / pandas / polars, each in its own subprocess (median wall time of --repeat
     runs; peak RSS from os.wait4);
  4. prints a table and the targets, and writes bench/results/clean_<date>.json;
  5. times `savant clean --dedup near` on the 10,000 real complaints, and datasketch's
     MinHashLSH on the same texts when it can be installed.

The script also runs itself as a worker (`--worker pandas|polars|datasketch IN OUT PHASES`),
so that each library's code lives here but runs in a fresh process whose RSS is its own.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
VENV_PY = VENV / "bin" / "python"
REQUIRED = ("pandas", "polars", "psutil")
SEED = 20240601  # fixed: every run resamples the same 1M rows
TARGETS = {"vs_polars": 1.0, "vs_pandas": 5.0, "near_seconds": 5.0}

csv.field_size_limit(1 << 30)  # complaints can be long; the csv module's default limit is 128 KiB


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Workers: the three non-savant implementations. Each writes its phase timings to a JSON file.
# ---------------------------------------------------------------------------------------------


def worker_pandas(inp: str, out: str) -> dict:
    import pandas as pd

    t = [time.perf_counter()]
    df = pd.read_csv(inp)  # defaults, as a typical pandas user would write it
    t.append(time.perf_counter())
    rows_in = len(df)
    df = df.dropna(subset=["text", "label"])
    # The normalised key, exactly as savant's docs give it (core/src/data/text.rs).
    df["key"] = df["text"].str.lower().str.replace(r"[^\w\s]", "", regex=True).str.split().str.join(" ")
    t.append(time.perf_counter())
    df = df.drop_duplicates(subset="key").drop(columns="key")
    t.append(time.perf_counter())
    df.to_csv(out, index=False)
    t.append(time.perf_counter())
    return {
        "rows_in": rows_in,
        "rows_out": len(df),
        "phases": dict(zip(["read", "key", "dedup", "write"], [b - a for a, b in zip(t, t[1:])])),
        "version": pd.__version__,
        "string_dtype": str(pd.Series(["x"]).dtype),  # pandas 3: "str" (pyarrow or python storage)
    }


def worker_polars(inp: str, out: str) -> dict:
    import polars as pl

    t = [time.perf_counter()]
    df = pl.read_csv(inp)  # eager, all cores (polars' default thread pool)
    t.append(time.perf_counter())
    rows_in = df.height
    df = df.drop_nulls(["text", "label"])
    key = (
        pl.col("text")
        .str.to_lowercase()
        .str.replace_all(r"[^\w\s]", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    df = df.with_columns(key.alias("key"))
    t.append(time.perf_counter())
    df = df.unique(subset="key", keep="first", maintain_order=True).drop("key")
    t.append(time.perf_counter())
    df.write_csv(out)
    t.append(time.perf_counter())
    return {
        "rows_in": rows_in,
        "rows_out": df.height,
        "phases": dict(zip(["read", "key", "dedup", "write"], [b - a for a, b in zip(t, t[1:])])),
        "version": pl.__version__,
        "threads": pl.thread_pool_size(),
    }


def py_key(text: str) -> str:
    """The pandas key in plain Python (used for datasketch and for comparing outputs)."""
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


def worker_datasketch(inp: str, out: str, threshold: float = 0.8, num_perm: int = 128) -> dict:
    """Streaming near-dup like savant's: a text is a duplicate when its normalised key was seen,
    or when an earlier kept text shares an LSH band and its estimated Jaccard >= threshold."""
    from datasketch import MinHash, MinHashLSH

    t = [time.perf_counter()]
    with open(inp, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["text"] and r["label"]]
    t.append(time.perf_counter())
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    seen, sigs, kept, dups = set(), {}, [], 0
    for i, row in enumerate(rows):
        key = py_key(row["text"])
        if key in seen:
            dups += 1
            continue
        words = key.split()
        # Word 5-shingles; a text shorter than 5 words is one shingle (as savant does).
        shingles = [" ".join(words[j : j + 5]) for j in range(max(1, len(words) - 4))] if words else []
        m = MinHash(num_perm=num_perm)
        m.update_batch([s.encode() for s in shingles])
        seen.add(key)
        if any(sigs[c].jaccard(m) >= threshold for c in lsh.query(m)):
            dups += 1
            continue
        lsh.insert(i, m)
        sigs[i] = m
        kept.append(row)
    t.append(time.perf_counter())
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"], extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(kept)
    t.append(time.perf_counter())
    import datasketch

    return {
        "rows_in": len(rows),
        "rows_out": len(kept),
        "duplicates": dups,
        "phases": dict(zip(["read", "minhash_lsh", "write"], [b - a for a, b in zip(t, t[1:])])),
        "version": getattr(datasketch, "__version__", "?"),
    }


WORKERS = {"pandas": worker_pandas, "polars": worker_polars, "datasketch": worker_datasketch}


# ---------------------------------------------------------------------------------------------
# Setup: venv, savant binary, data.
# ---------------------------------------------------------------------------------------------


def importable(py: Path, module: str) -> bool:
    return subprocess.run([str(py), "-c", f"import {module}"], capture_output=True).returncode == 0


def pip_install(py: Path, *pkgs: str) -> bool:
    log(f"pip install {' '.join(pkgs)} into {VENV}")
    return subprocess.run([str(py), "-m", "pip", "install", "-q", *pkgs]).returncode == 0


def ensure_venv() -> None:
    """Re-executes this script with bench/.venv's Python, creating it and installing what's missing."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PY.exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    missing = [m for m in REQUIRED if not importable(VENV_PY, m)]
    if missing and not pip_install(VENV_PY, *missing):
        sys.exit(f"pip install {' '.join(missing)} failed")
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])


def newest_source_mtime() -> float:
    """Newest mtime of anything the savant binary is built from (the CLI and savant-core)."""
    paths = [ROOT / "Cargo.toml", ROOT / "Cargo.lock"]
    for crate in ("core", "native-trainer"):
        paths += [p for p in (ROOT / crate).rglob("*") if p.is_file() and "target" not in p.parts]
    return max(p.stat().st_mtime for p in paths if p.exists())


def ensure_savant(explicit: str | None) -> tuple[Path, str]:
    """The binary to time, and a note on how it was obtained."""
    if explicit:
        return Path(explicit).resolve(), "given with --savant"
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/savant/target"))
    binary = target / "release" / "savant"
    if binary.exists() and binary.stat().st_mtime >= newest_source_mtime():
        return binary, "up to date"
    log(f"building savant (release) into {target}; another cargo may hold the lock, so this can wait")
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    ok = subprocess.run(["cargo", "build", "--release", "-p", "savant"], cwd=ROOT, env=env).returncode == 0
    if ok:
        return binary, "rebuilt"
    if binary.exists():  # e.g. someone's half-finished edit does not compile: time what we have
        log("WARNING: cargo build failed; timing the existing (stale) binary")
        return binary, "stale (build failed)"
    sys.exit("cargo build failed and there is no savant binary")


def savant_home() -> Path:
    return Path(os.environ.get("SAVANT_HOME", Path.home() / ".cache/savant"))


def ensure_cfpb(savant: Path) -> Path:
    train = savant_home() / "datasets" / "cfpb" / "train.csv"
    if not train.exists():
        log("fetching the CFPB dataset")
        subprocess.run([str(savant), "fetch", "dataset", "cfpb"], check=True)
    return train


def human(n: int) -> str:
    for div, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def build_data(src: Path, dst: Path, rows: int) -> int:
    """Resamples `src` (with replacement, fixed seed) to `rows` rows; returns the source row count.

    A sidecar .meta.json records rows/seed/source size, so the (1 GB) CSV is rebuilt only when
    it is missing or its row count (or source) differs, without re-parsing it every run."""
    meta_path = dst.with_name(dst.name + ".meta.json")
    with open(src, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        source = list(reader)
    want = {"rows": rows, "seed": SEED, "source": str(src), "source_bytes": src.stat().st_size}
    if dst.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want and meta.get("bytes") == dst.stat().st_size:
            return len(source)
    log(f"building {dst} ({rows:,} rows resampled from {len(source):,}, seed {SEED})")
    dst.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for start in range(0, rows, 100_000):
            w.writerows(rng.choices(source, k=min(100_000, rows - start)))
    tmp.replace(dst)
    meta_path.write_text(json.dumps({**want, "bytes": dst.stat().st_size}, indent=1))
    return len(source)


# ---------------------------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------------------------


def builds_running() -> list[str]:
    """Running rustc processes (another developer's cargo build would skew every number)."""
    r = subprocess.run(["pgrep", "-x", "rustc"], capture_output=True, text=True)
    return r.stdout.split()


def wait_for_quiet(max_wait: float) -> bool:
    """Waits (up to max_wait s) until no rustc runs; returns True when the machine is quiet."""
    deadline = time.time() + max_wait
    announced = False
    while builds_running():
        if time.time() > deadline:
            log("WARNING: a cargo build is still running; timings will be contended")
            return False
        if not announced:
            log("waiting for a running cargo build (rustc) to finish before timing ...")
            announced = True
        time.sleep(5)
    return True


def warm_cache(path: Path) -> None:
    # Reads the whole file so that every tool starts with it in the page cache.
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)


# Peak RSS. os.wait4's ru_maxrss looks exact but is not: a child forked from this Python process
# starts with Python's RSS (fork shares its pages) and Linux keeps that high-water mark across
# exec, so a 10 MiB tool reads as ~60 MiB. GNU time forks the command from a ~2 MiB process, so
# its %M is the command's own peak. Without it, psutil polls RSS every 5 ms (may miss a spike).
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
RSS_METHOD = "gnu-time" if GNU_TIME else "psutil-poll"


def run_once(cmd: list[str]) -> dict:
    """Runs cmd; returns wall seconds, CPU seconds and peak RSS (MiB) of that process alone."""
    scratch = BENCH / "data" / "out"
    rss_file, err_file = scratch / "time.txt", scratch / "stderr.txt"
    full = [GNU_TIME, "-f", "%M %U %S", "-o", str(rss_file), *cmd] if RSS_METHOD == "gnu-time" else cmd
    with open(err_file, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=err)
        if RSS_METHOD == "gnu-time":
            p.wait()
        else:
            import psutil

            proc, peak_kib = psutil.Process(p.pid), 0
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)  # reaps the child once it exits
                if pid:
                    break
                try:
                    peak_kib = max(peak_kib, proc.memory_info().rss // 1024)
                except psutil.Error:
                    pass
                time.sleep(0.005)
            p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    if p.returncode:
        msg = err_file.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{msg}")
    if RSS_METHOD == "gnu-time":
        kib, user, sys_ = rss_file.read_text().split("\n")[-2].split()  # last line: "%M %U %S"
        return {"wall_s": wall, "cpu_s": float(user) + float(sys_), "rss_mib": int(kib) / 1024}
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "rss_mib": peak_kib / 1024}


def time_tool(name: str, cmd: list[str], repeat: int, inp: Path, phases: Path | None, max_wait: float) -> dict:
    quiet = wait_for_quiet(max_wait)
    warm_cache(inp)
    runs, extra = [], {}
    for i in range(repeat):
        r = run_once(cmd)
        r["build_running_after"] = bool(builds_running())  # flags a run some cargo build overlapped
        runs.append(r)
        if phases and phases.exists():  # a worker's own report: rows, versions, phase timings
            extra = json.loads(phases.read_text())
            r["phases"] = extra.pop("phases")
        log(f"  {name} run {i + 1}/{repeat}: {r['wall_s']:.2f} s, {r['rss_mib']:.0f} MiB")
    return {
        "cmd": cmd,
        "runs": runs,
        "median_s": statistics.median(r["wall_s"] for r in runs),
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "quiet_before": quiet,
        **extra,
    }


def worker_cmd(kind: str, inp: Path, out: Path, phases: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(inp), str(out), str(phases)]


def read_out_keys(path: Path) -> dict[str, str]:
    """normalised key -> text, for the rows of an output CSV (outputs are small here: ~10k rows)."""
    with open(path, newline="", encoding="utf-8") as f:
        return {py_key(r["text"]): r["text"] for r in csv.DictReader(f)}


def compare_outputs(a: Path, b: Path) -> dict:
    ka, kb = read_out_keys(a), read_out_keys(b)
    only_a, only_b = sorted(set(ka) - set(kb)), sorted(set(kb) - set(ka))
    return {
        "only_in_first": len(only_a),
        "only_in_second": len(only_b),
        "examples_first": [ka[k][:100] for k in only_a[:3]],
        "examples_second": [kb[k][:100] for k in only_b[:3]],
    }


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------


def machine_info() -> dict:
    import psutil

    return {
        "cpus_logical": os.cpu_count(),
        "cpus_physical": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
    }


def git_rev() -> str:
    r = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() or "?"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the resampled CSV (default 1000000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per tool; the median is reported")
    ap.add_argument("--savant", help="savant binary to time (default: build/reuse the release binary)")
    ap.add_argument("--only", default="savant,pandas,polars", help="comma-separated tools to time")
    ap.add_argument("--near-repeat", type=int, default=3, help="runs of the 10k near-dup benchmark")
    ap.add_argument("--no-near", action="store_true", help="skip the near-dup benchmark")
    ap.add_argument("--no-datasketch", action="store_true", help="skip the datasketch comparison")
    ap.add_argument("--breakdown", action="store_true", help="also time savant variants (where the time goes)")
    ap.add_argument("--rss", choices=["gnu-time", "psutil-poll"], help="how to measure peak RSS (default: gnu-time if present)")
    ap.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for a running cargo build")
    args = ap.parse_args()

    ensure_venv()  # from here on we run inside bench/.venv
    global RSS_METHOD
    RSS_METHOD = args.rss or RSS_METHOD
    sys.stdout.reconfigure(line_buffering=True)  # keep the table in order with the progress on stderr
    savant, savant_note = ensure_savant(args.savant)
    train = ensure_cfpb(savant)
    data = BENCH / "data" / f"cfpb_{human(args.rows)}.csv"
    source_rows = build_data(train, data, args.rows)
    out_dir = BENCH / "data" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    tools = [t.strip() for t in args.only.split(",") if t.strip()]

    version = subprocess.run([str(savant), "--version"], capture_output=True, text=True).stdout.strip()
    info = machine_info()
    log(f"{version} ({savant_note}), {info['cpus_logical']} CPUs, data {data} ({data.stat().st_size / 2**20:.0f} MiB)")

    # --- 1M-row clean: normalised dedup --------------------------------------------------------
    results: dict[str, dict] = {}
    outs: dict[str, Path] = {}
    failed: dict[str, str] = {}
    for tool in tools:
        out, phases = out_dir / f"clean_{tool}.csv", out_dir / f"clean_{tool}.phases.json"
        phases.unlink(missing_ok=True)
        try:
            if tool == "savant":
                # --report costs one small JSON write at the end; it gives rows in/out and drop reasons.
                cmd = [str(savant), "clean", str(data), "--text", "text", "--label", "label",
                       "--dedup", "normalized", "-o", str(out), "-q", "--report", str(phases)]
                r = time_tool(tool, cmd, args.repeat, data, None, args.max_wait)
                report = json.loads(phases.read_text())
                r.update(rows_in=report["rows_in"], rows_out=report["rows_out"], dropped=report.get("dropped"),
                         modified=report.get("modified"), conflicts=report.get("conflicts"), version=version)
            else:
                r = time_tool(tool, worker_cmd(tool, data, out, phases), args.repeat, data, phases, args.max_wait)
        except RuntimeError as e:  # e.g. pandas killed for memory: report it, time the others
            log(f"WARNING: {tool} failed: {e}")
            failed[tool] = str(e)[-500:]
            continue
        r["rows_per_s"] = args.rows / r["median_s"]
        results[tool], outs[tool] = r, out

    print()
    print(f"clean, normalised dedup: {args.rows:,} rows ({data.stat().st_size / 2**20:.0f} MiB, resampled from "
          f"{source_rows:,} real CFPB complaints), median of {args.repeat}, {info['cpus_logical']} CPUs")
    print(f"{'tool':<8} {'median s':>9} {'CPU s':>8} {'rows/s':>12} {'peak RSS MiB':>13} {'rows out':>9}")
    for tool, r in results.items():
        print(f"{tool:<8} {r['median_s']:>9.2f} {r['cpu_s']:>8.2f} {r['rows_per_s']:>12,.0f} "
              f"{r['rss_mib']:>13,.0f} {r['rows_out']:>9,}")
    for tool in ("pandas", "polars"):
        if tool in results and "phases" in results[tool]["runs"][-1]:
            ph = results[tool]["runs"][-1]["phases"]
            print(f"  {tool} phases (last run): " + ", ".join(f"{k} {v:.2f} s" for k, v in ph.items()))
    for tool in failed:
        print(f"{tool:<8} FAILED (see {tool} in the JSON)")
    contended = [t for t, r in results.items() if any(x["build_running_after"] for x in r["runs"])]
    if contended:
        print(f"  WARNING: a cargo build (rustc) was running during: {', '.join(contended)}")
    if "polars" in results:
        print(f"  polars threads: {results['polars'].get('threads')}")

    targets = {}
    if "savant" in results:
        s = results["savant"]
        print("\ntargets:")
        if "polars" in results:
            x = s["rows_per_s"] / results["polars"]["rows_per_s"]
            targets["vs_polars"] = {"ratio": x, "target": TARGETS["vs_polars"], "met": x >= TARGETS["vs_polars"]}
            print(f"  savant/polars rows/s  {x:6.2f}x  (target >= {TARGETS['vs_polars']}x)  {verdict(x >= 1.0)}")
        if "pandas" in results:
            x = s["rows_per_s"] / results["pandas"]["rows_per_s"]
            targets["vs_pandas"] = {"ratio": x, "target": TARGETS["vs_pandas"], "met": x >= TARGETS["vs_pandas"]}
            print(f"  savant/pandas rows/s  {x:6.2f}x  (target >= {TARGETS['vs_pandas']}x)  {verdict(x >= 5.0)}")
            a, b = s["rss_mib"], results["pandas"]["rss_mib"]
            targets["rss_vs_pandas"] = {"savant_mib": a, "pandas_mib": b, "ratio": a / b, "met": a <= b}
            print(f"  peak RSS savant/pandas {a:,.0f} / {b:,.0f} MiB = {a / b:.3f}  (target <= 1)  {verdict(a <= b)}")

    # Keys are recomputed from each tool's output text; savant writes cleaned text (HTML entities
    # decoded, whitespace collapsed), so a kept row can show up here with a different key.
    print("\nrows out: " + ", ".join(f"{t} {r['rows_out']:,}" for t, r in results.items()))
    diffs = {}
    for a, b in (("savant", "pandas"), ("savant", "polars"), ("pandas", "polars")):
        if a in outs and b in outs:
            d = diffs[f"{a}_vs_{b}"] = compare_outputs(outs[a], outs[b])
            print(f"  normalised keys only in {a}: {d['only_in_first']}, only in {b}: {d['only_in_second']}")
            for e in d["examples_first"]:
                print(f"    only {a}: {e!r}")
            for e in d["examples_second"]:
                print(f"    only {b}: {e!r}")
    if "savant" in results:
        print(f"  savant dropped {results['savant']['dropped']}, modified {results['savant']['modified']}")

    # --- where savant's time goes (optional) ---------------------------------------------------
    breakdown = {}
    if args.breakdown:
        variants = {
            "cat (read only)": ["cat", str(data)],
            "dedup none": ["--dedup", "none"],
            "dedup exact": ["--dedup", "exact"],
            "normalized, no text rules": ["--dedup", "normalized", "--no-nfkc", "--no-html", "--no-whitespace"],
        }
        print("\nsavant breakdown (median of --repeat):")
        for name, extra in variants.items():
            cmd = extra if extra[0] == "cat" else [str(savant), "clean", str(data), "-o",
                                                    str(out_dir / "breakdown.csv"), "-q", *extra]
            r = time_tool(name, cmd, args.repeat, data, None, args.max_wait)
            breakdown[name] = r
            print(f"  {name:<28} {r['median_s']:7.2f} s  {r['rss_mib']:7.0f} MiB")

    # --- near-dup on the 10k real complaints -------------------------------------------------
    near = {}
    if not args.no_near:
        out, rep = out_dir / "near_savant.csv", out_dir / "near_savant.report.json"
        cmd = [str(savant), "clean", str(train), "--dedup", "near", "-o", str(out), "-q", "--report", str(rep)]
        r = time_tool("savant near", cmd, args.near_repeat, train, None, args.max_wait)
        report = json.loads(rep.read_text())
        r.update(rows_in=report["rows_in"], rows_out=report["rows_out"],
                 duplicates=report.get("dropped", {}).get("duplicate_near", 0), dropped=report.get("dropped"))
        near["savant"] = r
        if not args.no_datasketch and (importable(VENV_PY, "datasketch") or pip_install(VENV_PY, "datasketch")):
            dout, dph = out_dir / "near_datasketch.csv", out_dir / "near_datasketch.phases.json"
            near["datasketch"] = time_tool("datasketch", worker_cmd("datasketch", train, dout, dph),
                                           args.near_repeat, train, dph, args.max_wait)
            near["savant_vs_datasketch"] = compare_outputs(out, dout)
        print(f"\nnear-dup (MinHash-LSH, 128 perms, Jaccard >= 0.8 on word 5-shingles), {report['rows_in']:,} "
              f"real complaints, median of {args.near_repeat}:")
        s = near["savant"]
        ok = s["median_s"] < TARGETS["near_seconds"]
        targets["near_10k"] = {"seconds": s["median_s"], "target": TARGETS["near_seconds"], "met": ok}
        print(f"  savant      {s['median_s']:6.2f} s  {s['rss_mib']:6.0f} MiB  {s['duplicates']:4} duplicates "
              f"(target < {TARGETS['near_seconds']:.0f} s: {verdict(ok)})")
        if "datasketch" in near:
            d = near["datasketch"]
            print(f"  datasketch  {d['median_s']:6.2f} s  {d['rss_mib']:6.0f} MiB  {d['duplicates']:4} duplicates "
                  f"(MinHash+LSH itself {d['runs'][-1]['phases']['minhash_lsh']:.2f} s)")
            c = near["savant_vs_datasketch"]
            print(f"  kept by only one: savant {c['only_in_first']}, datasketch {c['only_in_second']}")

    # --- JSON ------------------------------------------------------------------------------------
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    # One file per day; other sizes and --only subsets get a suffix so they don't overwrite it.
    suffix = "" if args.rows == 1_000_000 else f"_{human(args.rows)}"
    suffix += "" if tools == ["savant", "pandas", "polars"] else "_" + "-".join(tools)
    path = results_dir / f"clean_{dt.date.today().isoformat()}{suffix}.json"
    doc = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "git": git_rev(),
        "savant": {"binary": str(savant), "version": version, "how": savant_note},
        "machine": info,
        "data": {"path": str(data), "rows": args.rows, "bytes": data.stat().st_size, "seed": SEED,
                 "source": str(train), "source_rows": source_rows},
        "repeat": args.repeat,
        "rss_method": RSS_METHOD,
        "clean_normalized": results,
        "failed": failed,
        "rows_out_diffs": diffs,
        "targets": targets,
        "breakdown": breakdown,
        "near_10k": near,
    }
    path.write_text(json.dumps(doc, indent=1, default=str))
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        _, _, kind, inp, out, phases = sys.argv
        Path(phases).write_text(json.dumps(WORKERS[kind](inp, out)))
    else:
        main()
