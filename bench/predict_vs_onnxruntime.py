#!/usr/bin/env python3
"""`savant predict` vs ONNX Runtime (fp32 and int8) and PyTorch on the same job, in one run.

    bench/predict_vs_onnxruntime.py --savant target/release/savant            # 2,000 CFPB complaints, max_len 128
    bench/predict_vs_onnxruntime.py --savant ... --max-len 256 --repeat 3
    bench/predict_vs_onnxruntime.py --savant ... --latency 200                # + batch-1 latency on 200 texts

The job, the model and the timing rules are bench/predict_vs_transformers.py's (imported from
it): all-MiniLM-L6-v2 with a seeded 8-label BertForSequenceClassification head
(bench/data/minilm-cls), the first 2,000 CFPB test complaints, batch 32, the same thread count
for every tool, each run its own process under GNU time (peak RSS), interleaved rounds after
waiting for a quiet machine, medians.

The peers, made with their own tools (PyPI onnx, onnxruntime, onnxscript in the fixtures venv):
  - onnx export: torch.onnx.export of that model (input_ids, attention_mask, token_type_ids ->
    logits, dynamic batch and sequence axes, opset 17), then onnxruntime.transformers'
    optimize_model(model_type="bert", num_heads=12, hidden_size=384) — the attention, LayerNorm,
    GELU and bias fusions Optimum's O2 level applies — saved as bench/data/minilm-cls.onnx;
  - ort-fp32: an InferenceSession on it with ORT_ENABLE_ALL, intra_op_num_threads = --threads,
    inter_op 1, sequential execution;
  - ort-int8: quantize_dynamic(that model, weight_type=QInt8) — ORT's standard dynamic
    quantisation (per-tensor int8 weights, activations quantised per call) — the same session
    settings;
  - both tokenise with the model's fast tokenizer and batch the texts as savant does (sorted by
    token length within chunks, longest first), so the work per batch is the same; texts/s
    counts tokenisation + inference (model load and the CSV write excluded), as for PyTorch;
  - pytorch, pytorch-sorted: predict_vs_transformers.py's workers;
  - savant-int8: the same savant command with --int8 (per-channel int8 weights, activations per
    row; the AVX-512 VNNI kernel where the CPU has it).
Agreement: every tool's probabilities against savant's (max |difference|, argmax agreement; the
int8 row shows what quantisation costs). --latency N: ms per text at batch 1 on the first N
texts for savant, savant-int8 and ort-fp32 (each its own process, median of rounds).

Writes bench/results/predict_vs_onnxruntime_<max_len>.json and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import predict_vs_transformers as pvt  # noqa: E402  (the shared job, model, data and timing)

ROOT = pvt.ROOT
DATA = pvt.DATA
ONNX_RAW = DATA / "minilm-cls.raw.onnx"
ONNX_FP32 = DATA / "minilm-cls.onnx"
ONNX_INT8 = DATA / "minilm-cls.int8.onnx"


def worker_export(model_dir: str) -> dict:
    """The fp32 export (optimised as Optimum does) and its int8 dynamic quantisation."""
    import onnx
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    # Eager attention: the graph then holds the MatMul/Softmax pattern onnxruntime's optimizer
    # fuses into its Attention op (SDPA's export is left unfused).
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32,
                                                               attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(["an example complaint about a charge", "two"], padding=True, return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    kwargs = dict(input_names=names, output_names=["logits"], dynamic_axes=axes, opset_version=17)
    try:
        torch.onnx.export(model, args, str(ONNX_RAW), dynamo=False, **kwargs)
        exporter = "torch.onnx.export (TorchScript)"
    except TypeError:
        torch.onnx.export(model, args, str(ONNX_RAW), **kwargs)
        exporter = "torch.onnx.export"
    cfg = model.config
    opt = optimize_model(str(ONNX_RAW), model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size)
    fused = opt.get_fused_operator_statistics()
    opt.save_model_to_file(str(ONNX_FP32))
    # The fused graph's com.microsoft ops defeat ONNX shape inference: ORT's own advice is to name
    # the default tensor type (its transformer quantisation examples optimise, then quantise).
    quantize_dynamic(str(ONNX_FP32), str(ONNX_INT8), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"exporter": exporter, "fused_operators": fused, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__, "bytes_fp32": ONNX_FP32.stat().st_size, "bytes_int8": ONNX_INT8.stat().st_size}


def worker_ort(model_dir: str, onnx_path: str, inp: str, out: str, threads: int, batch: int, max_len: int) -> dict:
    """ONNX Runtime on savant's batches; returns timings as the PyTorch worker does."""
    t_start = time.perf_counter()
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer

    t_import = time.perf_counter()
    texts, rows = pvt.read_texts(inp, "text")
    t_read = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.no_truncation()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    labels = [cfg["id2label"][str(i)] for i in range(len(cfg["id2label"]))]
    t_load = time.perf_counter()

    n, k = len(texts), len(labels)
    probs = np.empty((n, k), dtype=np.float32)
    pad_id = tok.pad_token_id
    tokenize_s = infer_s = 0.0
    chunk = pvt.chunk_rows(batch)
    for c0 in range(0, n, chunk):
        part = texts[c0 : c0 + chunk]
        a = time.perf_counter()
        enc = tok(part, truncation=True, max_length=max_len)
        ids, types = enc["input_ids"], enc["token_type_ids"]
        idx = sorted(range(len(part)), key=lambda i: -len(ids[i]))
        tokenize_s += time.perf_counter() - a
        for s in range(0, len(idx), batch):
            a = time.perf_counter()
            sel = idx[s : s + batch]
            width = max(len(ids[i]) for i in sel)
            input_ids = np.full((len(sel), width), pad_id, dtype=np.int64)
            token_types = np.zeros((len(sel), width), dtype=np.int64)
            mask = np.zeros((len(sel), width), dtype=np.int64)
            for r, i in enumerate(sel):
                L = len(ids[i])
                input_ids[r, :L] = ids[i]
                token_types[r, :L] = types[i]
                mask[r, :L] = 1
            b = time.perf_counter()
            (logits,) = sess.run(["logits"], {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": token_types})
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs[[c0 + i for i in sel]] = e / e.sum(axis=1, keepdims=True)
            c = time.perf_counter()
            tokenize_s += b - a
            infer_s += c - b
    t_infer = time.perf_counter()
    preds = probs.argmax(axis=1)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(rows[0].keys()) + ["pred"] + [f"prob_{l}" for l in labels])
        for i, r in enumerate(rows):
            w.writerow([*r.values(), labels[preds[i]], *(str(p) for p in probs[i])])
    return {"rows": n, "import_s": t_import - t_start, "read_s": t_read - t_import, "load_s": t_load - t_read,
            "tokenize_s": tokenize_s, "infer_s": infer_s, "texts_per_second": n / (t_infer - t_load),
            "ms_per_text": 1000 * (t_infer - t_load) / n, "onnxruntime": ort.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--savant", required=True, help="savant binary (a release build)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--latency", type=int, default=0, help="also time batch 1 on the first N texts (savant, ort-fp32)")
    ap.add_argument("--no-torch", action="store_true", help="leave the PyTorch rows out")
    ap.add_argument("--max-wait", type=float, default=1800)
    ap.add_argument("--retries", type=int, default=2)
    args = ap.parse_args()
    ensure_venv()
    sys.stdout.reconfigure(line_buffering=True)
    DATA.mkdir(parents=True, exist_ok=True)
    home = pvt.savant_home()
    labels = pvt.cfpb_labels([home / "datasets/cfpb/test.csv", home / "datasets/cfpb/train.csv"])
    pvt.ensure_model(home / "models/minilm", labels, False)
    model = pvt.MODEL_DIR
    fresh = not ONNX_INT8.exists() or ONNX_INT8.stat().st_mtime < (model / "model.safetensors").stat().st_mtime
    export_info_path = DATA / "onnx_export.json"
    if fresh or not export_info_path.exists():
        pvt.log(f"exporting {model.relative_to(ROOT)} to ONNX (fp32, optimised; int8 dynamic)")
        export_info_path.write_text(json.dumps(worker_export_subprocess(model)))
    export_info = json.loads(export_info_path.read_text())
    data, data_info = pvt.build_data(args.rows)
    out_dir = DATA / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    savant = Path(args.savant).resolve()
    version = subprocess.run([str(savant), "--version"], capture_output=True, text=True).stdout.strip()
    threads = str(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               TOKENIZERS_PARALLELISM="true", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

    def tools_for(inp: Path, batch: int, tag: str) -> tuple[list, dict]:
        tools, outs = [], {}
        out, report = DATA / f"preds_savant{tag}.csv", DATA / f"predict_report{tag}.json"
        cmd = [str(savant), "predict", "--model", str(model), str(inp), "--text", "text", "-o", str(out),
               "--max-len", str(args.max_len), "--batch-size", str(batch), "--device", "cpu", "--report", str(report)]

        def savant_report(report=report, n=sum(1 for _ in open(inp, encoding="utf-8")) - 1) -> dict:
            rep = json.loads(report.read_text())
            return {"texts_per_second": rep["texts_per_second"], "ms_per_text": 1000 / rep["texts_per_second"],
                    "load_s": rep["seconds"] - rep["rows_written"] / rep["texts_per_second"]}

        tools.append((f"savant{tag}", cmd, savant_report))
        outs[f"savant{tag}"] = out
        # The same command with int8 projections (`--int8`), beside ORT's int8.
        out8, report8 = DATA / f"preds_savant-int8{tag}.csv", DATA / f"predict_report-int8{tag}.json"
        cmd8 = [c if c != str(out) else str(out8) for c in cmd]
        cmd8[cmd8.index(str(report))] = str(report8)
        tools.append((f"savant-int8{tag}", cmd8 + ["--int8"], lambda: savant_report(report8)))
        outs[f"savant-int8{tag}"] = out8
        for name, path in [("ort-fp32", ONNX_FP32), ("ort-int8", ONNX_INT8)]:
            if tag and name == "ort-int8":
                continue
            out, stats = DATA / f"preds_{name}{tag}.csv", out_dir / f"{name}{tag}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "ort", str(model), str(path), str(inp),
                   str(out), stats, threads, str(batch), str(args.max_len)]
            tools.append((f"{name}{tag}", [str(c) for c in cmd], lambda stats=stats: json.loads(stats.read_text())))
            outs[f"{name}{tag}"] = out
        return tools, outs

    tools, outs = tools_for(data, args.batch_size, "")
    if not args.no_torch:
        for order, name in [("sorted", "pytorch-sorted"), ("file", "pytorch")]:
            out, stats = DATA / f"preds_{name}.csv", out_dir / f"{name}.json"
            cmd = pvt.worker_cmd("torch", model, data, out, stats, args.threads, args.batch_size, args.max_len, order)
            cmd[1] = str(BENCH / "predict_vs_transformers.py")
            tools.append((name, cmd, lambda stats=stats: json.loads(stats.read_text())))
            outs[name] = out
    if args.latency:
        lat_data = DATA / f"cfpb_{args.latency}_latency.csv"
        with open(data, newline="", encoding="utf-8") as f, open(lat_data, "w", newline="", encoding="utf-8") as g:
            r, w = csv.reader(f), csv.writer(g, lineterminator="\n")
            for i, row in enumerate(r):
                if i > args.latency:
                    break
                w.writerow(row)
        more, lat_outs = tools_for(lat_data, 1, "-batch1")
        tools += more
        outs.update(lat_outs)
    warm = [data, model / "model.safetensors", ONNX_FP32, ONNX_INT8]
    pvt.log(f"{version}, {args.threads} threads, {args.rows:,} texts, max_len {args.max_len}; {args.repeat} round(s) of: "
            + ", ".join(t[0] for t in tools))
    results = pvt.time_tools(tools, env, args.repeat, warm, args.max_wait, args.retries)
    for name, r in results.items():
        r["ms_per_text"] = statistics.median(x.get("ms_per_text", 1000 / x["texts_per_second"]) for x in r["runs"])
    agreement = {name: pvt.compare(outs[("savant-batch1" if name.endswith("-batch1") else "savant")], outs[name], labels)
                 for name in outs if name not in ("savant", "savant-batch1")}

    print()
    print(f"predict: {args.rows:,} CFPB complaints, all-MiniLM-L6-v2 + 8-label head, max_len {args.max_len}, batch "
          f"{args.batch_size}, {args.threads} threads, median of {args.repeat}; onnxruntime {export_info['onnxruntime']}")
    print(f"{'tool':<22} {'texts/s':>9} {'ms/text':>8} {'load s':>7} {'peak RSS MiB':>13} {'vs savant: max |dp|':>20} {'argmax agree':>13}")
    for name, r in results.items():
        a = agreement.get(name)
        print(f"{name:<22} {r['texts_per_second']:>9.1f} {r['ms_per_text']:>8.2f} {r['load_s']:>7.2f} {r['rss_mib']:>13,.0f} "
              + (f"{a['max_abs_diff']:>20.2e} {a['argmax_agree_rate']:>13.2%}" if a else f"{'-':>20} {'-':>13}"))
    s = results["savant"]["texts_per_second"]
    ratios = {name: s / r["texts_per_second"] for name, r in results.items() if not name.endswith("-batch1") and name != "savant"}
    s8 = results["savant-int8"]["texts_per_second"]
    ratios["savant-int8 over ort-int8"] = s8 / results["ort-int8"]["texts_per_second"]
    ratios["savant-int8 over ort-fp32"] = s8 / results["ort-fp32"]["texts_per_second"]
    if args.latency:
        ratios["latency ort-fp32 / savant-int8 (batch 1)"] = results["ort-fp32-batch1"]["ms_per_text"] / results["savant-int8-batch1"]["ms_per_text"]
        ratios["latency ort-fp32 / savant (batch 1)"] = results["ort-fp32-batch1"]["ms_per_text"] / results["savant-batch1"]["ms_per_text"]
    print("\nsavant texts/s over each: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    doc = {"date": dt.datetime.now().isoformat(timespec="seconds"), "git": pvt.git_rev(), "machine": pvt.machine_info(),
           "savant": {"binary": str(savant), "version": version}, "export": export_info, "data": data_info,
           "settings": {"threads": args.threads, "batch_size": args.batch_size, "max_len": args.max_len,
                        "repeat": args.repeat, "latency_rows": args.latency},
           "results": results, "ratios_savant_over": ratios, "agreement": agreement}
    path = BENCH / "results" / f"predict_vs_onnxruntime_{args.max_len}.json"
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def ensure_venv() -> None:
    """Re-executes this script (not the imported one) with the fixtures venv's Python."""
    if Path(sys.prefix).resolve() != pvt.VENV.resolve():
        if not pvt.VENV_PY.exists():
            sys.exit(f"{pvt.VENV} is missing: see tests/fixtures/model/README.md (+ pip install onnx onnxruntime onnxscript)")
        os.execv(str(pvt.VENV_PY), [str(pvt.VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])


def worker_export_subprocess(model: Path) -> dict:
    """The export in its own process (torch and onnxruntime stay out of the timing processes)."""
    out = DATA / "onnx_export.tmp.json"
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", "export", str(model), str(out)], check=True)
    return json.loads(out.read_text())


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "export":
            model_dir, out = rest
            Path(out).write_text(json.dumps(worker_export(model_dir)))
        elif kind == "ort":
            model_dir, onnx_path, inp, out, stats, threads, batch, max_len = rest
            Path(stats).write_text(json.dumps(worker_ort(model_dir, onnx_path, inp, out, int(threads), int(batch), int(max_len))))
        else:
            sys.exit(f"unknown worker {kind}")
    else:
        main()
