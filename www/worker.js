// The page's worker: every call into savant-web (cleaning, training, evaluation) runs here so the
// page stays responsive. The page sends {id, cmd, ...}; the worker answers {id, ok, result} or
// {id, ok: false, error, fatal}, and posts {type: "progress", ...} while training. A Rust panic
// (a lost GPU device, an allocation the tab cannot make) is fatal: the page then replaces this
// worker, keeping its data.
//
// Training on the CPU uses every core: this worker keeps helper workers (this same file, named
// "savant-helper", answering the `helper*` commands), each building the run's model from the
// model files and the trainer's part spec (no split read), and each step's batch is cut into
// one part per worker. Helpers get the trainable values with their
// part and answer its gradients; the run is the one a single worker would train with the same
// parts (savant-web's `Trainer.run(onProgress, helpers)`), so they change only its speed. They
// start with this worker, so their scripts load while the page is online, and they reuse this
// worker's compiled wasm module instead of fetching it.
import init, * as savant from "./savant-web.js";

const WASM = new URL("./savant-web_bg.wasm", import.meta.url);
const isHelper = self.name === "savant-helper";
let resolveModule;
const compiled = isHelper ? new Promise((resolve) => (resolveModule = resolve)) : compile(WASM);
const ready = compiled.then((module) => init({ module_or_path: module }));
let trainer = null;
let partHelper = null; // a helper's copy of the run

async function compile(url) {
  try {
    return await WebAssembly.compileStreaming(fetch(url));
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    // A host that does not serve .wasm as application/wasm.
    return WebAssembly.compile(await (await fetch(url)).arrayBuffer());
  }
}

// A helper worker, called as the page calls this one.
class Helper {
  constructor() {
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "savant-helper" });
    this.pending = new Map();
    this.next = 0;
    this.worker.onmessage = ({ data }) => {
      const waiting = this.pending.get(data.id);
      if (!waiting) return;
      this.pending.delete(data.id);
      if (data.ok) return waiting.resolve(data.result);
      if (data.fatal) this.retire();
      waiting.reject(new Error(data.error));
    };
    this.worker.onerror = (e) => {
      this.retire();
      for (const waiting of this.pending.values()) waiting.reject(new Error(`a helper worker failed: ${e.message}`));
      this.pending.clear();
    };
  }

  call(cmd, args) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, cmd, ...args });
    });
  }

  // A helper that trapped is not trusted again.
  retire() {
    const i = pool.indexOf(this);
    if (i >= 0) pool.splice(i, 1);
    this.worker.terminate();
  }
}

function startPool(n) {
  const helpers = Array.from({ length: Math.max(n, 0) }, () => new Helper());
  compiled.then((module) => helpers.forEach((h) => h.worker.postMessage({ cmd: "module", module })));
  return helpers;
}

const pool = isHelper ? [] : startPool(Math.min(self.navigator.hardwareConcurrency || 1, 4) - 1);

// Helpers for a run on the CPU (none on WebGPU: one device), `workers` in all with this one
// (default: every helper). Each builds the run's model; `t` cuts batches into one part each.
async function helpersFor(t, workers, files) {
  if (t.info().backend !== "cpu") return null;
  const chosen = pool.slice(0, Math.max((workers ?? pool.length + 1) - 1, 0));
  if (chosen.length === 0) return null;
  try {
    const spec = t.partSpec();
    await Promise.all(chosen.map((h) => h.call("helperInit", { files, spec })));
  } catch (e) {
    // Not fatal: the run trains in this worker alone, and says so.
    return { count: 0, note: `helper workers not used: ${e.message}` };
  }
  t.setParts(chosen.length + 1);
  return { count: chosen.length, send: (index, part) => chosen[index].call("helperPart", part) };
}

// The helpers' copies of a finished run are dropped (their memory back to the tab).
function releaseHelpers(shared) {
  if (shared) for (const h of pool) h.call("helperFree", {}).catch(() => {});
}

const handlers = {
  async preview({ bytes, format, source }) {
    return savant.preview(new Uint8Array(bytes), { format, source, rows: 20 });
  },

  async clean({ bytes, format, source, options }) {
    return savant.clean(new Uint8Array(bytes), { format, output_format: format, source, options });
  },

  async split({ bytes, format, source, options }) {
    return savant.split(new Uint8Array(bytes), { format, source, options });
  },

  // ---- the annotator, the folder picker and the encoder comparison ----

  async annotateLoad({ bytes, request }) {
    return savant.annotateLoad(new Uint8Array(bytes), request);
  },

  async annotateExport({ table, marks, request }) {
    return savant.annotateExport(table, marks, request);
  },

  async spreadsheetSafe({ bytes, format, source }) {
    return savant.spreadsheetSafe(new Uint8Array(bytes), format, source);
  },

  async labelSet({ names }) {
    return savant.labelSet(names);
  },

  async uncertainFirst({ embeddings, dim, labelled, classes, unlabelled }) {
    return savant.uncertainFirst(embeddings, dim, labelled, classes, Uint32Array.from(unlabelled));
  },

  async ingest({ files, request }) {
    return savant.ingestFiles(files, request);
  },

  // Sentence vectors of `texts` under the model in `files` (kept loaded for the next call).
  async embed({ files, modelName, texts }) {
    const encoder = await encoderFor(modelName, files);
    const values = await encoder.embed(texts);
    return { values, dim: encoder.info().hidden };
  },

  // `savant probe` over the page's table: the first `sample` texts (with a label, when
  // `labelColumn`), each candidate's tokenizer fit and, with labels, its linear probe; ranked.
  async probe({ candidates, bytes, format, textColumn, labelColumn, sample, maxLen, seed }, id) {
    const { texts, labels } = savant.probeSample(new Uint8Array(bytes), {
      format,
      source: "the data",
      text_column: textColumn,
      label_column: labelColumn,
      sample,
    });
    const ranked = [];
    for (const c of candidates) {
      postMessage({ type: "progress", id, note: `Measuring ${c.name} on ${texts.length} texts…` });
      let encoder;
      try {
        encoder = await savant.createEncoder(asBytes(c.files), { model_name: c.name, max_len: maxLen, backend: "auto" });
      } catch (e) {
        throw new Error(`${c.name}: not a model folder: ${e.message}`);
      }
      try {
        const fit = encoder.tokenizerFit(texts, maxLen);
        let probe = null;
        if (labelColumn) {
          const started = performance.now();
          const values = await encoder.embed(texts);
          const embedded = performance.now();
          probe = savant.probeScore(values, encoder.info().hidden, labels, seed, (embedded - started) / 1000);
          probe.fit_seconds = (performance.now() - embedded) / 1000;
        }
        ranked.push({ model: c.name, tokenizer_fit: fit, linear_probe: probe });
      } finally {
        encoder.free();
      }
    }
    return savant.probeRanking(ranked);
  },

  async chart({ title, xLabel, yLabel, series }) {
    return savant.lineChart(title, xLabel, yLabel, series);
  },

  // Builds the trainer and runs it to the end (or to Stop), posting progress; resolves with the
  // run's info and the evaluation of its best weights.
  // `workers`: how many workers train on the CPU (default: one per core, at most 4).
  async train({ files, train, val, request, workers }, id) {
    trainer?.free();
    trainer = null;
    trainer = await savant.createTrainer(asBytes(files), new Uint8Array(train), new Uint8Array(val), request);
    const shared = await helpersFor(trainer, workers, files);
    const info = { ...trainer.info(), workers: (shared?.count ?? 0) + 1, workers_note: shared?.note ?? null };
    postMessage({ type: "progress", id, info });
    let last = performance.now();
    try {
      const result = await trainer.run((step) => {
        const now = performance.now();
        postMessage({ type: "progress", id, step, ms: now - last });
        last = now;
      }, shared);
      const evaluation = await trainer.evaluate();
      return { info, evaluation, stopped: result.stopped };
    } finally {
      releaseHelpers(shared);
    }
  },

  // Helper side: this worker's part of the run (its model), and one part of a step.
  async helperInit({ files, spec }) {
    partHelper?.free();
    partHelper = await savant.createPartHelper(asBytes(files), spec);
    return true;
  },

  async helperPart({ params, request }) {
    if (!partHelper) throw new Error("helperInit first");
    return partHelper.gradients(params, request);
  },

  async helperFree() {
    partHelper?.free();
    partHelper = null;
    return true;
  },

  async predict({ texts, ensemble }) {
    if (!trainer) throw new Error("train a model first");
    return trainer.predict(texts, !!ensemble);
  },

  // `savant predict` (`--adapter`, `--int8`) over a model folder picked in the page, without
  // training; the predictor stays loaded for the next call with the same `key` (the page's
  // model and adapter, else `name`) and settings, which may then leave `files` out (without
  // them a call for another predictor fails with "no model files"). No texts: only load it
  // (the benchmark times loading apart).
  // On the CPU the texts are shared with the helper workers, `workers` in all with this one
  // (default: every helper), each holding its own copy of the predictor.
  async predictFolder({ name, key: modelKey, files, adapter, adapterName, int8, backend, batchSize, maxLen, workers, texts }) {
    const key = JSON.stringify([modelKey ?? name, adapterName ?? null, !!int8, backend ?? "auto", batchSize ?? 32, maxLen ?? null]);
    const wanted = Math.min(Math.max((workers ?? pool.length + 1) - 1, 0), pool.length);
    if (predictor?.key !== key || (predictor.helpers.length < wanted && predictor.info.backend === "cpu" && files)) {
      if (!files) throw new Error("predictFolder: no model files (the first call with these settings loads them)");
      releasePredictor();
      const request = { model_name: name, int8: !!int8, backend: backend ?? "auto", batch_size: batchSize ?? 32 };
      if (adapter) request.adapter_name = adapterName ?? "adapter";
      if (maxLen) request.max_len = maxLen;
      const loaded = await savant.createPredictor(asBytes(files), adapter ? asBytes(adapter) : undefined, request);
      const info = loaded.info();
      predictor = { key, predictor: loaded, info, helpers: [], note: null };
      const chosen = info.backend === "cpu" ? pool.slice(0, wanted) : [];
      // The helpers load the same folder on the CPU; one that fails leaves the work to the rest.
      const cpu = { ...request, backend: "cpu" };
      const loads = await Promise.allSettled(chosen.map((h) => h.call("helperPredictor", { key, files, adapter, request: cpu })));
      predictor.helpers = chosen.filter((_, i) => loads[i].status === "fulfilled");
      const failed = loads.find((l) => l.status === "rejected");
      if (failed) predictor.note = `helper workers not used: ${failed.reason?.message ?? failed.reason}`;
    }
    const helpers = predictor.helpers.slice(0, wanted);
    const info = { ...predictor.info, workers: helpers.length + 1, ...(predictor.note ? { note: predictor.note } : {}) };
    if (!texts?.length) return { info };
    if (!helpers.length || texts.length < 2) return { info, ...(await predictor.predictor.predict(texts)) };
    // Text i goes to worker i mod n (so each gets the same mix of lengths); rows come back in order.
    const n = helpers.length + 1;
    const shards = Array.from({ length: n }, (_, w) => texts.filter((_, i) => i % n === w));
    const parts = await Promise.all([
      predictor.predictor.predict(shards[0]),
      ...helpers.map((h, w) => h.call("helperPredict", { key, texts: shards[w + 1] })),
    ]);
    const probs = texts.map((_, i) => parts[i % n].probs[Math.floor(i / n)]);
    const sets = parts[0].sets ? texts.map((_, i) => parts[i % n].sets[Math.floor(i / n)]) : null;
    return { info, labels: parts[0].labels, probs, sets };
  },

  // Helper side of predictFolder: this worker's copy of the predictor, and its share of texts.
  async helperPredictor({ key, files, adapter, request }) {
    helperPredictorState?.predictor.free();
    helperPredictorState = null;
    const loaded = await savant.createPredictor(asBytes(files), adapter ? asBytes(adapter) : undefined, request);
    helperPredictorState = { key, predictor: loaded };
    return {};
  },

  async helperPredict({ key, texts }) {
    if (helperPredictorState?.key !== key) throw new Error("helperPredictor first");
    return helperPredictorState.predictor.predict(texts);
  },

  async helperPredictorFree() {
    helperPredictorState?.predictor.free();
    helperPredictorState = null;
    return {};
  },

  // `savant quantize --model <folder> [--adapter <folder>]`: the int8 folder's files.
  async quantizeFolder({ name, files, adapter, adapterName }) {
    const request = { model_name: name };
    if (adapter) request.adapter_name = adapterName ?? "adapter";
    const { files: out } = await savant.quantizeFolder(asBytes(files), adapter ? asBytes(adapter) : undefined, request);
    return out;
  },

  async exportFiles() {
    if (!trainer) throw new Error("train a model first");
    const { files } = await trainer.exportFiles();
    return files;
  },

  // Masked-LM pretraining (savant pretrain's run) on a table of unlabelled texts: every step,
  // progress events as they go, then the perplexity after and the model folder's files.
  async pretrain({ files, corpus, request }, id) {
    const p = await savant.createPretrainer(asBytes(files), new Uint8Array(corpus), request);
    try {
      const info = p.info();
      const lines = [];
      for (;;) {
        const out = await p.step();
        if (out.line) {
          lines.push(out.line);
          postMessage({ type: "progress", id, step: out.step, loss: out.line.loss });
        }
        if (out.finished) break;
      }
      const perplexity_after = await p.perplexity();
      const { files: exported } = await p.exportFiles();
      return { info, lines, perplexity_after, files: exported };
    } finally {
      p.free();
    }
  },

  // Benchmark hook: `steps` optimiser steps of a fresh run, timed here (bench/browser_train.mjs).
  async benchSteps({ files, train, val, request, steps, workers }) {
    const t = await savant.createTrainer(asBytes(files), new Uint8Array(train), new Uint8Array(val), request);
    const shared = await helpersFor(t, workers, files);
    const info = { ...t.info(), workers: (shared?.count ?? 0) + 1, workers_note: shared?.note ?? null };
    const times = [];
    const losses = [];
    const events = [];
    try {
      for (let i = 0; i < steps; i++) {
        const started = performance.now();
        const out = await t.step(shared);
        times.push(performance.now() - started);
        events.push(...out.events);
        for (const e of out.events) if (e.event === "step") losses.push(e.loss);
      }
    } finally {
      t.free();
      releaseHelpers(shared);
    }
    return { info, times, losses, events };
  },
};

onmessage = async (event) => {
  const { id, cmd, ...args } = event.data;
  if (cmd === "module") {
    resolveModule(args.module); // a helper's first message: its parent's compiled wasm
    return;
  }
  if (cmd === "stop") {
    trainer?.stop(); // takes effect between two steps of trainer.run()
    return;
  }
  try {
    await ready;
    const result = await handlers[cmd](args, id);
    postMessage({ id, ok: true, result });
  } catch (e) {
    const panic = savant.lastPanic ? safe(() => savant.lastPanic()) : null;
    const trapped = e instanceof WebAssembly.RuntimeError || panic != null;
    const message = panic ? `${panic}` : e && e.message ? e.message : String(e);
    postMessage({ id, ok: false, error: message, fatal: trapped });
  }
};

// The predictor of `predictFolder`, loaded once per settings, with the helpers holding copies.
let predictor = null; // { key, predictor, info, helpers, note }
let helperPredictorState = null; // a helper's copy: { key, predictor }

function releasePredictor() {
  if (!predictor) return;
  predictor.predictor.free();
  for (const h of predictor.helpers) h.call("helperPredictorFree", {}).catch(() => {});
  predictor = null;
}

// The annotator's encoder, loaded once per model.
let encoder = null; // { name, encoder }
async function encoderFor(name, files) {
  if (encoder?.name !== name) {
    encoder?.encoder.free();
    encoder = null;
    encoder = { name, encoder: await savant.createEncoder(asBytes(files), { model_name: name, backend: "auto" }) };
  }
  return encoder.encoder;
}

// { name: ArrayBuffer } from the page → { name: Uint8Array } for createTrainer.
function asBytes(files) {
  return Object.fromEntries(Object.entries(files).map(([name, buf]) => [name, new Uint8Array(buf)]));
}

function safe(f) {
  try {
    return f();
  } catch {
    return null;
  }
}
