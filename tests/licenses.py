#!/usr/bin/env python3
"""The licence of every crate Savant builds with is on deny.toml's allow list: `cargo deny check
licenses` without cargo-deny (which CI would have to compile), from `cargo metadata`. SPDX
expressions are read as cargo-deny reads them: OR needs one allowed side, AND both, `A/B` is the
old spelling of `A OR B`; a crate without a `license` field needs a [[licenses.clarify]] entry.

    python3 tests/licenses.py        (tests/run runs it)
"""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
deny = tomllib.loads((ROOT / "deny.toml").read_text())
allowed = set(deny["licenses"]["allow"])
clarified = {c["crate"]: c["expression"] for c in deny["licenses"].get("clarify", [])}


def tokens(expr):
    return re.findall(r"\(|\)|[A-Za-z0-9.+\-]+(?: WITH [A-Za-z0-9.+\-]+)?", expr.replace("/", " OR "))


def ok(expr):
    """Whether an SPDX expression is satisfied by the allow list (OR binds looser than AND)."""
    toks = tokens(expr)
    pos = 0

    def atom():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t == "(":
            v = disjunction()
            pos += 1  # ")"
            return v
        return t in allowed

    def conjunction():
        nonlocal pos
        v = atom()
        while pos < len(toks) and toks[pos] == "AND":
            pos += 1
            v = atom() and v
        return v

    def disjunction():
        nonlocal pos
        v = conjunction()
        while pos < len(toks) and toks[pos] == "OR":
            pos += 1
            v = conjunction() or v
        return v

    return disjunction()


meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
    cwd=ROOT, check=True, capture_output=True, text=True,
).stdout)
ours = {p["id"] for p in meta["packages"] if p["source"] is None}
bad = []
for p in meta["packages"]:
    if p["id"] in ours:
        continue
    expr = p.get("license") or clarified.get(p["name"])
    if not expr:
        bad.append(f"{p['name']} {p['version']}: no license field (add a [[licenses.clarify]] entry)")
    elif not ok(expr):
        bad.append(f"{p['name']} {p['version']}: {expr}")
print(f"licences: {len(meta['packages']) - len(ours)} crates checked against deny.toml's allow list")
if bad:
    print("not allowed:\n  " + "\n  ".join(bad))
    sys.exit(1)
