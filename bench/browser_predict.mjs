// In-browser inference of the fine-tuned MiniLM classifier, in one run: the page's predictor
// (savant-web's createPredictor in the page's worker — what "Predict with the model folder" runs —
// on the wasm CPU in f32 and with int8 projections, and on WebGPU) against onnxruntime-web (wasm,
// SIMD) and transformers.js (its text-classification pipeline, which runs onnxruntime-web) on the
// same model, in headless Chromium, every file served from the same origin, no network.
//
//   www/build.sh && python3 bench/predict_vs_onnxruntime.py --savant ... (the model and its ONNX files)
//   (cd bench/browser && npm ci --ignore-scripts)        the peers (not installed by the tests)
//   node bench/browser_predict.mjs [--rows 200] [--rounds 2] [--latency 20] [--webgpu-rows 32] [--tjs-rows 64]
//
// The model, data and ONNX files are bench/predict_vs_onnxruntime.py's: all-MiniLM-L6-v2 with a
// seeded 8-label BertForSequenceClassification head (bench/data/minilm-cls), exported with
// torch.onnx.export and optimised by onnxruntime.transformers (minilm-cls.onnx), and ORT's
// quantize_dynamic of it (minilm-cls.int8.onnx: what native ORT int8 runs). The texts are the first
// --rows CFPB test complaints (bench/data/cfpb_2000.csv), cut at 128 tokens, batch 32; one thread
// everywhere (the page in one worker), then two: the page sharing the texts with a helper worker
// (each holding the model), onnxruntime-web with 2 threads (the page is served cross-origin
// isolated so that it can). onnxruntime-web gets savant's batches (sorted by
// token length, tokenised by transformers.js's tokenizer and cut as HF tokenizers cut, inside the
// timing); transformers.js batches 32 texts in file order, as its users call it (its truncation
// drops the final [SEP] of a cut text: its probabilities differ on those rows). Each tool runs in its own browser,
// rounds interleaved; texts/s and the load time are medians over rounds, latency is the median
// ms per text at batch 1 over the first --latency texts (after one warm-up text), memory the peak
// RSS summed over the browser's processes (sampled every 50 ms, shared pages counted in each).
// WebGPU runs on Chromium's software adapter here (SwiftShader, a CPU emulation): its row says
// nothing about real GPUs, and covers only --webgpu-rows texts; transformers.js (several times
// slower) covers --tjs-rows.
//
// Writes bench/results/browser_predict.json and prints the table.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { DIST, serve } from "../tests/e2e/serve.mjs";

const REPO = resolve(fileURLToPath(import.meta.url), "../..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ROWS = Number(arg("rows", 200));
const ROUNDS = Number(arg("rounds", 2));
const LATENCY = Number(arg("latency", 20));
const WEBGPU_ROWS = Number(arg("webgpu-rows", 32));
const TJS_ROWS = Number(arg("tjs-rows", 64));
const BATCH = 32;
const MAX_LEN = 128;
const DATA = join(REPO, "bench/data");
const PEERS = join(REPO, "bench/browser/node_modules");
const MODEL = join(DATA, "minilm-cls");
const MODEL_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

for (const need of [join(DIST, "index.html"), join(MODEL, "model.safetensors"), join(DATA, "minilm-cls.onnx"), join(DATA, "minilm-cls.int8.onnx"),
  join(PEERS, "onnxruntime-web/dist/ort.wasm.min.mjs"), join(PEERS, "@huggingface/transformers/dist/transformers.min.js")]) {
  if (!existsSync(need)) throw new Error(`${need}: missing (see the usage at the top of bench/browser_predict.mjs)`);
}

// The peers' folder, served at /peers/: the libraries as npm ships them, and the model as
// transformers.js reads it (config and tokenizer beside onnx/model.onnx, onnx/model_quantized.onnx).
const SERVED = join(DATA, "browser_peers");
rmSync(SERVED, { recursive: true, force: true });
mkdirSync(join(SERVED, "models/minilm-cls/onnx"), { recursive: true });
symlinkSync(join(PEERS, "onnxruntime-web/dist"), join(SERVED, "ort"));
symlinkSync(join(PEERS, "@huggingface/transformers/dist"), join(SERVED, "transformers"));
// transformers.js brings its own onnxruntime-web build; its wasm files are fetched beside it.
const tjsOrt = join(PEERS, "@huggingface/transformers/node_modules/onnxruntime-web/dist");
symlinkSync(existsSync(tjsOrt) ? tjsOrt : join(PEERS, "onnxruntime-web/dist"), join(SERVED, "tjs-ort"));
for (const f of MODEL_FILES) symlinkSync(join(MODEL, f), join(SERVED, "models/minilm-cls", f));
symlinkSync(join(DATA, "minilm-cls.onnx"), join(SERVED, "models/minilm-cls/onnx/model.onnx"));
symlinkSync(join(DATA, "minilm-cls.int8.onnx"), join(SERVED, "models/minilm-cls/onnx/model_quantized.onnx"));

// The texts (python's csv module reads the quoting).
const texts = JSON.parse(
  execFileSync("python3", ["-c", `import csv,json,sys
rows=list(csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')))
print(json.dumps([r["text"] for r in rows[:int(sys.argv[2])]]))`, join(DATA, "cfpb_2000.csv"), String(ROWS)], { maxBuffer: 1 << 28 }).toString(),
);
const labels = Object.entries(JSON.parse(readFileSync(join(MODEL, "config.json"), "utf8")).id2label)
  .sort((a, b) => Number(a[0]) - Number(b[0]))
  .map(([, l]) => l);

// Each tool: `load()` and `run(texts, batch)` evaluated in the page, returning
// { probs: [[...]], info }; the probabilities' columns in `labels` order.
const TOOLS = {
  "savant-cpu": { kind: "savant", backend: "cpu", int8: false, workers: 1 },
  "savant-cpu-int8": { kind: "savant", backend: "cpu", int8: true, workers: 1 },
  "ort-web-fp32": { kind: "ort", model: "model.onnx", threads: 1 },
  "ort-web-int8": { kind: "ort", model: "model_quantized.onnx", threads: 1 },
  "savant-cpu-2workers": { kind: "savant", backend: "cpu", int8: false, workers: 2 },
  "savant-cpu-int8-2workers": { kind: "savant", backend: "cpu", int8: true, workers: 2 },
  "ort-web-fp32-2threads": { kind: "ort", model: "model.onnx", threads: 2 },
  "ort-web-int8-2threads": { kind: "ort", model: "model_quantized.onnx", threads: 2 },
  "transformers.js-fp32": { kind: "tjs", dtype: "fp32", threads: 1, rows: TJS_ROWS },
  "transformers.js-int8": { kind: "tjs", dtype: "q8", threads: 1, rows: TJS_ROWS },
  "savant-webgpu": { kind: "savant", backend: "webgpu", int8: false, rows: WEBGPU_ROWS },
};

// In the page: sets up `window.bench = { load, run }` for one tool.
async function install(page, tool) {
  await page.evaluate(
    async ({ tool, labels, maxLen, modelFiles }) => {
      const model = "/peers/models/minilm-cls/";
      const softmax = (row) => {
        const m = Math.max(...row);
        const e = row.map((x) => Math.exp(x - m));
        const s = e.reduce((a, b) => a + b, 0);
        return e.map((x) => x / s);
      };
      if (tool.kind === "savant") {
        let files = {};
        for (const f of modelFiles) files[f] = await (await fetch(model + f)).arrayBuffer();
        const request = (batch, texts) => ({
          name: "minilm-cls", int8: tool.int8, backend: tool.backend, workers: tool.workers ?? 1, batchSize: batch, maxLen, texts,
        });
        window.bench = {
          load: async (batch) => {
            const { info } = await window.savantPage.call("predictFolder", { ...request(batch, []), files });
            return info;
          },
          run: async (texts, batch) => (await window.savantPage.call("predictFolder", request(batch, texts))).probs,
        };
        return;
      }
      const T = await import("/peers/transformers/transformers.min.js");
      T.env.allowRemoteModels = false;
      T.env.allowLocalModels = true;
      T.env.localModelPath = "/peers/models/";
      T.env.useBrowserCache = false;
      if (tool.kind === "tjs") {
        T.env.backends.onnx.wasm.wasmPaths = "/peers/tjs-ort/";
        T.env.backends.onnx.wasm.numThreads = tool.threads;
        let clf;
        window.bench = {
          load: async () => {
            clf = await T.pipeline("text-classification", "minilm-cls", { dtype: tool.dtype, device: "wasm" });
            clf.tokenizer.model_max_length = maxLen;
            return { threads: tool.threads, dtype: tool.dtype };
          },
          // Batches in file order, as its users call it; every label's score.
          run: async (texts, batch) => {
            const out = [];
            for (let i = 0; i < texts.length; i += batch) {
              const part = await clf(texts.slice(i, i + batch), { top_k: null });
              for (const row of part.length && Array.isArray(part[0]) ? part : [part]) {
                out.push(labels.map((l) => row.find((x) => x.label === l).score));
              }
            }
            return out;
          },
        };
        return;
      }
      // onnxruntime-web, fed as savant batches: texts sorted by token length, padded per batch.
      const ort = await import("/peers/ort/ort.wasm.min.mjs");
      ort.env.wasm.wasmPaths = "/peers/ort/";
      ort.env.wasm.numThreads = tool.threads;
      let session, tokenizer;
      window.bench = {
        load: async () => {
          tokenizer = await T.AutoTokenizer.from_pretrained("minilm-cls");
          session = await ort.InferenceSession.create(model + "onnx/" + tool.model, {
            executionProviders: ["wasm"],
            graphOptimizationLevel: "all",
          });
          return { threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated };
        },
        run: async (texts, batch) => {
          // Cut as HF tokenizers cut ([CLS] + the first maxLen - 2 tokens + [SEP]): transformers.js's
          // own truncation drops the final [SEP], which its pipeline row below shows.
          const ids = texts.map((t) => {
            const full = Array.from(tokenizer(t).input_ids.data, Number);
            return full.length > maxLen ? [...full.slice(0, maxLen - 1), full[full.length - 1]] : full;
          });
          const order = [...ids.keys()].sort((a, b) => ids[b].length - ids[a].length);
          const probs = new Array(texts.length);
          for (let s = 0; s < order.length; s += batch) {
            const sel = order.slice(s, s + batch);
            const width = ids[sel[0]].length;
            const n = sel.length * width;
            const input = new BigInt64Array(n), mask = new BigInt64Array(n), types = new BigInt64Array(n);
            sel.forEach((i, r) => {
              ids[i].forEach((id, j) => {
                input[r * width + j] = BigInt(id);
                mask[r * width + j] = 1n;
              });
            });
            const dims = [sel.length, width];
            const out = await session.run({
              input_ids: new ort.Tensor("int64", input, dims),
              attention_mask: new ort.Tensor("int64", mask, dims),
              token_type_ids: new ort.Tensor("int64", types, dims),
            });
            const k = out.logits.dims[1];
            sel.forEach((i, r) => (probs[i] = softmax(Array.from(out.logits.data.slice(r * k, (r + 1) * k)))));
          }
          return probs;
        },
      };
    },
    { tool, labels, maxLen: MAX_LEN, modelFiles: MODEL_FILES },
  );
}

// Summed RSS of a process's descendants (MB): this script's children are the browser's processes.
function treeRss(root) {
  const parents = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parents.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {}
  }
  const tree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parents) if (tree.has(ppid) && !tree.has(pid)) tree.add(pid), (grew = true);
  }
  tree.delete(root);
  let kb = 0;
  for (const pid of tree) {
    try {
      const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
      if (m) kb += Number(m[1]);
    } catch {}
  }
  return kb / 1024;
}

const { server, url } = await serve(DIST, 0, { mounts: { "/peers/": SERVED }, isolate: true });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const runs = Object.fromEntries(Object.keys(TOOLS).map((t) => [t, { seconds: [], load_s: [], peak_rss_mb: [] }]));
const outputs = {};

async function oneRun(name, latency) {
  const tool = TOOLS[name];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--enable-unsafe-webgpu", "--disable-quic", "--js-flags=--max-old-space-size=8192"],
  });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, treeRss(process.pid))), 50);
  try {
    const page = await browser.newPage();
    const logs = [];
    page.on("pageerror", (e) => logs.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Ready"), null, { timeout: 120_000 });
    await install(page, tool);
    const batch = latency ? 1 : BATCH;
    const part = texts.slice(0, latency ? LATENCY + 1 : tool.rows ?? texts.length);
    const t0 = Date.now();
    const info = await page.evaluate((batch) => window.bench.load(batch), batch);
    const load_s = (Date.now() - t0) / 1000;
    if (latency) {
      const ms = await page.evaluate(async (part) => {
        await window.bench.run(part.slice(0, 1), 1); // warm-up
        const out = [];
        for (const t of part.slice(1)) {
          const a = performance.now();
          await window.bench.run([t], 1);
          out.push(performance.now() - a);
        }
        return out;
      }, part);
      return { latency_ms: median(ms), info };
    }
    const { seconds, probs } = await page.evaluate(
      async ({ part, batch }) => {
        const a = performance.now();
        const probs = await window.bench.run(part, batch);
        return { seconds: (performance.now() - a) / 1000, probs };
      },
      { part, batch },
    );
    if (logs.length) console.log(`${name}: page errors: ${logs.join("; ")}`);
    return { seconds, probs, load_s, info, rows: part.length };
  } finally {
    clearInterval(sampler);
    runs[name].peak_rss_mb.push(peak);
    await browser.close();
  }
}

const only = arg("tools", null)?.split(",");
const names = Object.keys(TOOLS).filter((n) => !only || only.includes(n));
const failures = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const name of names) {
    if (failures[name]) continue;
    try {
      const r = await oneRun(name, false);
      runs[name].seconds.push(r.seconds);
      runs[name].load_s.push(r.load_s);
      runs[name].rows = r.rows;
      runs[name].info = r.info;
      outputs[name] = r.probs;
      console.log(`round ${round + 1} ${name}: ${(r.rows / r.seconds).toFixed(2)} texts/s (${r.rows} texts, load ${r.load_s.toFixed(1)} s)`);
    } catch (e) {
      failures[name] = String(e.message ?? e).split("\n")[0];
      console.log(`${name}: failed: ${failures[name]}`);
    }
  }
}
const latency = {};
if (LATENCY > 0) {
  for (const name of ["savant-cpu", "savant-cpu-int8", "ort-web-fp32", "ort-web-int8"].filter((n) => names.includes(n) && !failures[n])) {
    try {
      latency[name] = (await oneRun(name, true)).latency_ms;
      console.log(`latency ${name}: ${latency[name].toFixed(1)} ms per text at batch 1`);
    } catch (e) {
      console.log(`latency ${name}: failed: ${e.message}`);
    }
  }
}
server.close();

// Agreement with the page's f32 predictor on the rows both ran.
const ref = outputs["savant-cpu"];
const agreement = (probs) => {
  if (!ref || !probs) return null;
  const n = Math.min(ref.length, probs.length);
  let worst = 0, same = 0;
  const argmax = (r) => r.indexOf(Math.max(...r));
  for (let i = 0; i < n; i++) {
    worst = Math.max(worst, ...probs[i].map((p, j) => Math.abs(p - ref[i][j])));
    same += argmax(probs[i]) === argmax(ref[i]);
  }
  return { rows: n, max_abs_prob_diff: worst, argmax_agreement: same / n };
};
const results = {};
for (const name of names) {
  const r = runs[name];
  if (failures[name]) {
    results[name] = { failed: failures[name] };
    continue;
  }
  const s = median(r.seconds);
  results[name] = {
    rows: r.rows,
    texts_per_second: r.rows / s,
    seconds: r.seconds,
    load_s: median(r.load_s),
    peak_rss_mb: median(r.peak_rss_mb),
    latency_ms_batch1: latency[name] ?? null,
    info: r.info,
    agreement: agreement(outputs[name]),
  };
}
// Rows of tools not run this time (--tools) stay from the run that measured them, marked so.
const resultsFile = join(REPO, "bench/results/browser_predict.json");
if (only && existsSync(resultsFile)) {
  const previous = JSON.parse(readFileSync(resultsFile, "utf8"));
  for (const [name, r] of Object.entries(previous.results ?? {})) {
    if (!(name in results)) results[name] = { ...r, measured: r.measured ?? { git: previous.git, date: previous.date } };
  }
}
const chromiumVersion = await (async () => {
  const b = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium" });
  const v = b.version();
  await b.close();
  return v;
})();
const peerVersion = (p) => JSON.parse(readFileSync(join(PEERS, p, "package.json"), "utf8")).version;
const report = {
  date: new Date().toISOString(),
  git: execFileSync("git", ["-C", REPO, "describe", "--always", "--dirty"]).toString().trim(),
  chromium: chromiumVersion,
  versions: {
    "onnxruntime-web": peerVersion("onnxruntime-web"),
    "@huggingface/transformers": peerVersion("@huggingface/transformers"),
    "transformers.js's onnxruntime-web": existsSync(tjsOrt) ? JSON.parse(readFileSync(join(tjsOrt, "../package.json"), "utf8")).version : null,
  },
  settings: { rows: ROWS, webgpu_rows: WEBGPU_ROWS, tjs_rows: TJS_ROWS, rounds: ROUNDS, batch: BATCH, max_len: MAX_LEN, latency_rows: LATENCY, data: "bench/data/cfpb_2000.csv" },
  results,
};
writeFileSync(join(DATA, "browser_predict_outputs.json"), JSON.stringify({ labels, outputs }));
mkdirSync(join(REPO, "bench/results"), { recursive: true });
writeFileSync(resultsFile, JSON.stringify(report, null, 1) + "\n");
const base = results["ort-web-fp32"]?.texts_per_second;
console.log("\n| tool | texts/s | × ort-web fp32 | ms/text batch 1 | load s | peak RSS MB | max |Δp| vs savant f32 | argmax agree |");
console.log("|---|---|---|---|---|---|---|---|");
for (const [name, r] of Object.entries(results)) {
  if (r.failed) {
    console.log(`| ${name} | failed: ${r.failed} |||||||`);
    continue;
  }
  const a = r.agreement;
  console.log(`| ${name}${r.rows !== ROWS ? ` (${r.rows} texts)` : ""}${r.measured ? ` (earlier run, ${r.measured.git})` : ""} | ${r.texts_per_second.toFixed(2)} | ${base ? (r.texts_per_second / base).toFixed(2) : "-"} | ${r.latency_ms_batch1?.toFixed(1) ?? "-"} | ${r.load_s.toFixed(1)} | ${r.peak_rss_mb.toFixed(0)} | ${a ? a.max_abs_prob_diff.toExponential(1) : "-"} | ${a ? (100 * a.argmax_agreement).toFixed(1) + "%" : "-"} |`);
}
console.log("wrote bench/results/browser_predict.json");
