#!/usr/bin/env python3
"""Replaces the quality tables in docs/benchmarks.md (from the first '**finance**' table line to the
end of the last dataset's table) with `bench/quality.py --table`'s output, from the results file."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
doc = ROOT / "docs/benchmarks.md"
table = subprocess.run([sys.executable, str(ROOT / "bench/quality.py"), "--table"], capture_output=True, text=True,
                       check=True).stdout.rstrip("\n").split("\n")
lines = doc.read_text().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("**finance** ("))
end = start
while end < len(lines) and (lines[end].startswith("**") and " rows)" in lines[end] or lines[end].startswith("|")
                            or lines[end] == ""):
    end += 1
# keep the blank line that separates the tables from what follows
doc.write_text("\n".join(lines[:start] + table + [""] + lines[end:]))
print(f"{doc.relative_to(ROOT)}: lines {start + 1}-{end} replaced by {len(table)} table lines")
