// LoRA fine-tuning speed of all-MiniLM-L6-v2 (max len 64, batch 8) in one run: in headless
// Chromium on WebGPU and on the wasm CPU backend (the page's worker, through its `benchSteps`
// hook: savant-web's createTrainer + step, exactly what the page's Train button runs), and
// natively with `savant train` (2 threads and 1 thread). Real CFPB complaints, all truncated to
// 64 tokens, so every batch is 8 × 64.
//
//   www/build.sh && node bench/browser_train.mjs [--steps-webgpu 3] [--steps-cpu 6] [--rows 400] [--no-webgpu]
//
// Writes bench/results/browser_train.json. On a machine without a GPU, Chromium's WebGPU is
// SwiftShader (a CPU emulation): its figure says nothing about real GPUs — re-run on one.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { DIST, serve } from "../tests/e2e/serve.mjs";

const REPO = resolve(fileURLToPath(import.meta.url), "../..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const STEPS = { webgpu: Number(arg("steps-webgpu", 3)), cpu: Number(arg("steps-cpu", 6)) };
const ROWS = Number(arg("rows", 400));
const BATCH = 8;
const MAX_LEN = 64;
const TARGET = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/savant/target");
const SAVANT = process.env.SAVANT_BIN ?? join(TARGET, "release/savant");
const HOME = process.env.SAVANT_HOME ?? join(homedir(), ".cache/savant");
const MODEL = join(HOME, "models/minilm");
const WORK = join(REPO, "bench/data/browser_train");

if (!existsSync(join(DIST, "models/all-MiniLM-L6-v2/model.safetensors"))) {
  throw new Error("www/dist has no default model: run www/build.sh (without --no-model)");
}
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
// The first ROWS complaints as train, the next 64 as val (python's csv module does the quoting).
execFileSync("python3", [
  "-c",
  `import csv,sys
rows=list(csv.DictReader(open(sys.argv[1], newline='')))
for name, part in (("train", rows[:${ROWS}]), ("val", rows[${ROWS}:${ROWS} + 64])):
    with open(sys.argv[2] + "/" + name + ".csv", "w", newline="") as f:
        w=csv.writer(f); w.writerow(["text","label"]); w.writerows([r["text"], r["label"]] for r in part)`,
  join(HOME, "datasets/cfpb/train.csv"),
  WORK,
]);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { date: new Date().toISOString(), batch: BATCH, max_len: MAX_LEN, rows: ROWS, runs: {} };

// In the browser: the first step (shader compilation, allocation) is reported apart.
const { server, url } = await serve();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--enable-unsafe-webgpu", "--disable-quic"],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Ready"), null, { timeout: 60_000 });
  const train = readFileSync(join(WORK, "train.csv"));
  const val = readFileSync(join(WORK, "val.csv"));
  // The CPU first: WebGPU work left running on a software adapter would slow it. On the CPU the
  // page trains with a helper worker per further core (`workers` unset: the page's default), and
  // once in one worker for comparison.
  const runs = [
    { name: "cpu", backend: "cpu" },
    { name: "cpu_1_worker", backend: "cpu", workers: 1 },
    { name: "webgpu", backend: "webgpu" },
  ].filter((r) => !(r.backend === "webgpu" && process.argv.includes("--no-webgpu")));
  for (const { name, backend, workers } of runs) {
    const out = await page.evaluate(
      async ({ backend, workers, train, val, steps, batch, maxLen }) => {
        const files = {};
        for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) {
          files[f] = await (await fetch(`models/all-MiniLM-L6-v2/${f}`)).arrayBuffer();
        }
        const request = {
          model_name: "all-MiniLM-L6-v2",
          format: "csv",
          backend,
          // log_every 1: each step reads its loss back, so a step's time includes the GPU's work.
          options: { mode: "lora", batch_size: batch, max_len: maxLen, epochs: 1, log_every: 1 },
        };
        const enc = (a) => new Uint8Array(a).buffer;
        try {
          return await window.savantPage.call("benchSteps", {
            files, train: enc(train), val: enc(val), request, steps: steps + 1, workers,
          });
        } catch (e) {
          return { error: e.message };
        }
      },
      { backend, workers, train: [...train], val: [...val], steps: STEPS[backend], batch: BATCH, maxLen: MAX_LEN },
    );
    if (out.error) {
      // Reported, not hidden: e.g. a loss that became NaN on a software WebGPU adapter.
      results.runs[`browser_${name}`] = { error: out.error };
      console.log(`browser ${name}: FAILED: ${out.error}`);
      continue;
    }
    const timed = out.times.slice(1);
    const seconds = median(timed) / 1000;
    results.runs[`browser_${name}`] = {
      backend: out.info.backend,
      adapter: out.info.adapter,
      workers: out.info.workers,
      losses: out.losses,
      first_step_s: out.times[0] / 1000,
      step_s: timed.map((t) => t / 1000),
      median_step_s: seconds,
      samples_per_s: BATCH / seconds,
    };
    console.log(`browser ${name} (${out.info.workers} worker(s)): ${(BATCH / seconds).toFixed(2)} samples/s (median step ${seconds.toFixed(2)} s, first ${(out.times[0] / 1000).toFixed(1)} s)`);
  }
} finally {
  await browser.close();
  server.close();
}

// Natively: `savant train` over the same rows, one epoch; steps timed by the CLI (validation excluded).
for (const threads of [2, 1]) {
  const out = join(WORK, `native-${threads}`);
  execFileSync(SAVANT, [
    "train", "--model", MODEL, "--train", join(WORK, "train.csv"), "--val", join(WORK, "val.csv"),
    "--mode", "lora", "--batch-size", String(BATCH), "--max-len", String(MAX_LEN), "--epochs", "1",
    // --device cpu: a savant built with GPU features would otherwise pick the GPU.
    "--device", "cpu", "--threads", String(threads), "--log-every", "1", "-o", out, "--overwrite",
  ], { stdio: ["ignore", "ignore", "inherit"] });
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  const steps = Math.ceil(m.train_rows / BATCH);
  results.runs[`native_cpu_${threads}_threads`] = {
    median_step_s: m.train_step_seconds / steps,
    samples_per_s: m.train_rows / m.train_step_seconds,
  };
  console.log(`native CPU, ${threads} thread(s): ${(m.train_rows / m.train_step_seconds).toFixed(2)} samples/s`);
}

const r = results.runs;
results.wasm_cpu_vs_native = r.browser_cpu.samples_per_s / r.native_cpu_2_threads.samples_per_s;
results.wasm_cpu_vs_native_1_thread = r.browser_cpu.samples_per_s / r.native_cpu_1_threads.samples_per_s;
// One worker against one thread: the per-core speed of wasm.
results.wasm_1_worker_vs_native_1_thread = r.browser_cpu_1_worker.samples_per_s / r.native_cpu_1_threads.samples_per_s;
results.wasm_bytes = statSync(join(DIST, "savant-web_bg.wasm")).size;
console.log(
  `wasm CPU / native CPU: ${results.wasm_cpu_vs_native.toFixed(2)}× ` +
    `(one worker vs one native thread: ${results.wasm_1_worker_vs_native_1_thread.toFixed(2)}×)`,
);
writeFileSync(join(REPO, "bench/results/browser_train.json"), JSON.stringify(results, null, 2) + "\n");
