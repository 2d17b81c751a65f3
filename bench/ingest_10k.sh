#!/usr/bin/env bash
# `savant ingest` on 10,000 HTML files: the real CFPB complaints, each wrapped in an HTML page
# (head, style, script, a heading, the complaint as paragraphs) in a folder per product, so
# the label comes from the folder. Reports files/s and MB/s of the whole run (walk, read, strip,
# write), and the counts. Writes bench/results/ingest_10k.json; the files are rebuilt when missing
# (bench/data/ingest/, not committed). Needs `savant fetch dataset cfpb` and a release build.
#   bench/ingest_10k.sh [--files 10000]
set -euo pipefail
cd "$(dirname "$0")/.."
files=10000
while [ $# -gt 0 ]; do case "$1" in --files) files=$2; shift 2;; *) echo "unknown $1"; exit 2;; esac; done
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/savant/target}
SAVANT=${SAVANT_BIN:-$TARGET/release/savant}
HOME_DIR=${SAVANT_HOME:-$HOME/.cache/savant}
work=bench/data/ingest
mkdir -p bench/results
if [ "$(cat "$work/.files" 2>/dev/null)" != "$files" ]; then
    rm -rf "$work/docs"
    python3 - "$HOME_DIR/datasets/cfpb/train.csv" "$work/docs" "$files" <<'PY'
import csv, html, os, re, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
out, n = sys.argv[2], int(sys.argv[3])
for i in range(n):
    row = rows[i % len(rows)]
    label = re.sub(r"[^a-z0-9]+", "_", row["label"].lower()).strip("_")
    folder = os.path.join(out, label)
    os.makedirs(folder, exist_ok=True)
    paragraphs = "".join(f"<p>{html.escape(p)}</p>\n" for p in row["text"].split(". ") if p)
    page = (f"<!DOCTYPE html><html><head><title>Complaint {i}</title>"
            f"<style>body {{ font-family: serif; }}</style><script>var id = {i};</script></head>"
            f"<body><h1>Complaint {i}</h1>\n{paragraphs}<!-- exported --></body></html>\n")
    with open(os.path.join(folder, f"complaint-{i:05}.html"), "w") as f:
        f.write(page)
print(f"{out}: {n} HTML files")
PY
    echo "$files" > "$work/.files"
fi
bytes=$(du -sb "$work/docs" | cut -f1)
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss.txt" "$SAVANT" ingest "$work/docs" -o "$work/out.jsonl" --report "$work/report.json"
end=$(date +%s.%N)
python3 - "$work" "$start" "$end" "$bytes" "$files" <<'PY'
import json, sys
work, start, end, size, files = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
report = json.load(open(f"{work}/report.json"))
seconds = end - start
result = {"files": files, "bytes": size, "seconds": round(seconds, 3), "files_per_second": round(files / seconds),
          "mb_per_second": round(size / 1e6 / seconds, 1), "peak_rss_mib": int(open(f"{work}/rss.txt").read()) // 1024,
          "rows_in": report["rows_in"], "rows_out": report["rows_out"], "dropped": report["dropped"],
          "labels": len(report["label_counts"])}
json.dump(result, open("bench/results/ingest_10k.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
