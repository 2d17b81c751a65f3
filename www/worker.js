// The page's worker: every call into savant-web (cleaning, training, evaluation) runs here so the
// page stays responsive. The page sends {id, cmd, ...}; the worker answers {id, ok, result} or
// {id, ok: false, error, fatal}, and posts {type: "progress", ...} while training. A Rust panic
// (a lost GPU device, an allocation the tab cannot make) is fatal: the page then replaces this
// worker, keeping its data.
import init, * as savant from "./savant-web.js";

const ready = init({ module_or_path: new URL("./savant-web_bg.wasm", import.meta.url) });
let trainer = null;

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

  async chart({ title, xLabel, yLabel, series }) {
    return savant.lineChart(title, xLabel, yLabel, series);
  },

  // Builds the trainer and runs it to the end (or to Stop), posting progress; resolves with the
  // run's info and the evaluation of its best weights.
  async train({ files, train, val, request }, id) {
    trainer?.free();
    trainer = null;
    trainer = await savant.createTrainer(asBytes(files), new Uint8Array(train), new Uint8Array(val), request);
    const info = trainer.info();
    postMessage({ type: "progress", id, info });
    let last = performance.now();
    const result = await trainer.run((step) => {
      const now = performance.now();
      postMessage({ type: "progress", id, step, ms: now - last });
      last = now;
    });
    const evaluation = await trainer.evaluate();
    return { info, evaluation, stopped: result.stopped };
  },

  async predict({ texts }) {
    if (!trainer) throw new Error("train a model first");
    return trainer.predict(texts);
  },

  async exportFiles() {
    if (!trainer) throw new Error("train a model first");
    const { files } = await trainer.exportFiles();
    return files;
  },

  // Benchmark hook: `steps` optimiser steps of a fresh run, timed here (bench/browser_train.mjs).
  async benchSteps({ files, train, val, request, steps }) {
    const t = await savant.createTrainer(asBytes(files), new Uint8Array(train), new Uint8Array(val), request);
    const info = t.info();
    const times = [];
    const losses = [];
    try {
      for (let i = 0; i < steps; i++) {
        const started = performance.now();
        const out = await t.step();
        times.push(performance.now() - started);
        for (const e of out.events) if (e.event === "step") losses.push(e.loss);
      }
    } finally {
      t.free();
    }
    return { info, times, losses };
  },
};

onmessage = async (event) => {
  const { id, cmd, ...args } = event.data;
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
