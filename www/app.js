// The page: holds the user's data (so a failed worker never loses it), renders what the worker
// computes, and offers the results as downloads. All computation happens in worker.js; the
// annotator is annotate.js.
import { initAnnotator } from "./annotate.js";

const $ = (id) => document.getElementById(id);

const REDACT_ALL = ["EMAIL", "PHONE", "SSN", "DATE", "MRN", "URL", "IP", "CARD", "IBAN", "ZIP", "ACCOUNT"];

// Everything the user loaded or made, kept here.
const state = {
  file: null, // { name, format, bytes: ArrayBuffer }
  cleaned: null, // { bytes, report }
  splits: null, // { train, val, test: ArrayBuffer, report }
  model: null, // { name, files: { relativePath: ArrayBuffer } }
  losses: [],
  metrics: [],
  predictions: null,
  exported: null,
};

// ---- the worker ------------------------------------------------------------------------------

let worker = null;
let nextId = 1;
const pending = new Map();
const progressHandlers = new Map();

function startWorker() {
  const started = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  let answered = false;
  worker = started;
  worker.onmessage = (event) => {
    answered = true;
    const msg = event.data;
    if (msg.type === "progress") {
      progressHandlers.get(msg.id)?.(msg);
      return;
    }
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    progressHandlers.delete(msg.id);
    if (msg.ok) p.resolve(msg.result);
    else {
      const err = new Error(msg.error);
      err.fatal = msg.fatal;
      if (msg.fatal) restartWorker();
      p.reject(err);
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    failAll(new Error(`the worker stopped: ${event.message || "unknown error"}`));
    // A worker that failed before it ever answered would fail again: no restart loop.
    if (answered) restartWorker();
    else started.terminate();
  };
}

function failAll(err) {
  for (const [, p] of pending) p.reject(err);
  pending.clear();
  progressHandlers.clear();
}

// After a panic the wasm instance may be broken: drop it and start a fresh one (the data stays here).
function restartWorker() {
  worker?.terminate();
  const err = new Error("the worker was restarted");
  err.restarted = true; // calls in flight: the action that restarted it reports why
  failAll(err);
  startWorker();
}

function call(cmd, args = {}, { onProgress, transfer = [] } = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    if (onProgress) progressHandlers.set(id, onProgress);
    worker.postMessage({ id, cmd, ...args }, transfer);
  });
}

// ---- status and errors -----------------------------------------------------------------------

function status(text) {
  $("status").textContent = text;
}

function showError(context, err) {
  const box = $("error");
  box.hidden = false;
  box.textContent = `${context}: ${err && err.message ? err.message : err}`;
  console.error(context, err);
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// Runs an action with its button disabled, showing any error on the page.
async function guarded(button, context, action) {
  clearError();
  if (button) button.disabled = true;
  try {
    await action();
  } catch (err) {
    showError(context, err);
  } finally {
    if (button) button.disabled = false;
    refreshButtons();
  }
}

function refreshButtons() {
  $("clean-btn").disabled = !state.file;
  $("split-btn").disabled = !state.cleaned;
  $("train-btn").disabled = !(state.splits && state.model) || training;
  $("predict-btn").disabled = !state.trained || training;
  $("predict-folder-btn").disabled = !state.model || training;
  $("quantize-btn").disabled = !state.model || training;
  $("probe-add-loaded-btn").disabled = !state.model;
  $("probe-btn").disabled = !(state.file && probeCandidates.length);
  annotator?.refresh();
}

// ---- helpers ---------------------------------------------------------------------------------

function formatOf(name) {
  const ext = name.toLowerCase().split(".").pop();
  if (ext === "tsv") return "tsv";
  if (ext === "jsonl" || ext === "json") return "jsonl";
  return "csv";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function table(header, rows) {
  const t = el("table");
  t.append(el("tr", {}, ...header.map((h) => el("th", { text: h }))));
  for (const r of rows) t.append(el("tr", {}, ...r.map((c) => el("td", { text: String(c) }))));
  return t;
}

function downloadLink(anchor, name, bytes, type) {
  if (anchor.href) URL.revokeObjectURL(anchor.href);
  anchor.href = URL.createObjectURL(new Blob([bytes], { type }));
  anchor.download = name;
  anchor.hidden = false;
}

// Markup made by savant-core's SVG/HTML writers (escaped there; no scripts or styles), parsed
// inertly and adopted, never evaluated.
function insertMarkup(container, markup) {
  const doc = new DOMParser().parseFromString(`<div>${markup}</div>`, "text/html");
  for (const bad of doc.querySelectorAll("script,style,iframe,object,embed")) bad.remove();
  container.replaceChildren(...doc.body.firstChild.childNodes);
}

// ---- 1. data ---------------------------------------------------------------------------------

$("data-file").addEventListener("change", () => loadDataFile($("data-file").files[0]));

// A file dropped anywhere on the data section loads like a picked one.
$("data").addEventListener("dragover", (event) => {
  event.preventDefault();
  $("data").classList.add("dropping");
});
$("data").addEventListener("dragleave", () => $("data").classList.remove("dropping"));
$("data").addEventListener("drop", (event) => {
  event.preventDefault();
  $("data").classList.remove("dropping");
  loadDataFile(event.dataTransfer.files[0]);
});

function loadDataFile(f) {
  return guarded(null, "Reading the file", async () => {
    if (!f) return;
    state.file = null;
    state.cleaned = null;
    state.splits = null;
    $("clean-report").replaceChildren();
    $("split-report").replaceChildren();
    $("clean-download").hidden = true;
    $("report-download").hidden = true;
    const bytes = await f.arrayBuffer();
    const format = formatOf(f.name);
    const p = await call("preview", { bytes: bytes.slice(0), format, source: f.name });
    state.file = { name: f.name, format, bytes };
    for (const id of ["text-col", "label-col"]) {
      const select = $(id);
      select.replaceChildren(...p.columns.map((c) => el("option", { value: c, text: c })));
    }
    const guess = (names) => p.columns.find((c) => names.includes(c.toLowerCase()));
    $("text-col").value = guess(["text", "review", "note", "narrative", "sentence", "body"]) ?? p.columns[0];
    $("label-col").value = guess(["label", "category", "class", "product", "target"]) ?? p.columns[p.columns.length - 1];
    $("preview").replaceChildren(
      el("p", { text: `${p.total} rows (${p.malformed} malformed), ${p.columns.length} columns; the first ${p.rows.length}:` }),
      table(p.columns, p.rows.map((r) => r.map((c) => (c.length > 120 ? c.slice(0, 119) + "…" : c)))),
    );
    $("preview-box").open = true;
    status(`Loaded ${f.name}: ${p.total} rows. Choose the columns and clean it.`);
  });
}

// A folder of documents becomes the data table (`savant ingest`'s rows, made in the worker).
$("doc-folder").addEventListener("change", () =>
  guarded(null, "Reading the folder", async () => {
    const files = [...$("doc-folder").files];
    if (!files.length) throw new Error("the folder holds no file");
    const folder = files[0].webkitRelativePath.split("/")[0] || "folder";
    status(`Reading ${files.length} files of ${folder}…`);
    const out = await call("ingest", {
      files,
      request: { label_from: $("doc-label-from").value, max_file_mib: Number($("doc-max-mib").value), format: "jsonl", source: folder },
    });
    const r = out.report;
    state.ingest = out.report;
    renderReport($("ingest-report"), `Folder ${folder}: ${r.rows_out} of ${r.rows_in} files read, ${out.rows} rows`, r, "files");
    if (out.rows === 0) throw new Error(`${folder}: no document gave any text (see the report above)`);
    await loadDataFile(new File([out.output], `${folder}.jsonl`, { type: "application/jsonl" }));
    $("text-col").value = "text";
    if ([...$("label-col").options].some((o) => o.value === "label")) $("label-col").value = "label";
  }),
);

// A report of savant-core's shape (clean's, ingest's): counts, then the first warnings.
function renderReport(box, title, r, unit) {
  const rows = [
    [`${unit} in`, r.rows_in],
    [`${unit} out`, r.rows_out],
    ...Object.entries(r.dropped).map(([k, v]) => [`dropped: ${k}`, v]),
    ...Object.entries(r.modified).map(([k, v]) => [`modified: ${k}`, v]),
    ...Object.entries(r.redactions).map(([k, v]) => [`redacted: ${k}`, v]),
    ...Object.entries(r.label_counts).map(([k, v]) => [`label: ${k}`, v]),
  ];
  box.replaceChildren(el("h3", { text: title }), table(["", unit], rows));
  if (r.warnings_total > 0) {
    box.append(el("p", { text: `${r.warnings_total} warnings; the first ${r.warnings.length}:` }));
    const ul = el("ul");
    for (const w of r.warnings) ul.append(el("li", { text: JSON.stringify(w) }));
    box.append(ul);
  }
}

function renderCleanReport(r) {
  renderReport($("clean-report"), "Cleaning report", r, "rows");
}

$("clean-btn").addEventListener("click", () =>
  guarded($("clean-btn"), "Cleaning", async () => {
    const f = state.file;
    status(`Cleaning ${f.name}…`);
    const options = {
      text_column: $("text-col").value,
      label_column: $("label-col").value,
      dedup: $("dedup").value,
      redact: $("redact").checked ? REDACT_ALL : [],
      label_sep: labelSep(),
      conflicts: labelSep() ? "union" : "majority",
    };
    const { output, report } = await call("clean", { bytes: f.bytes.slice(0), format: f.format, source: f.name, options });
    state.cleaned = { bytes: output.buffer.slice(output.byteOffset, output.byteOffset + output.byteLength), report };
    state.splits = null;
    renderCleanReport(report);
    const base = f.name.replace(/\.[^.]*$/, "");
    downloadLink($("clean-download"), `${base}.clean.${f.format}`, await forSpreadsheets(output, f.format), "text/plain");
    downloadLink($("report-download"), `${base}.report.json`, JSON.stringify(report, null, 2), "application/json");
    const p = await call("preview", { bytes: state.cleaned.bytes.slice(0), format: f.format, source: "cleaned" });
    $("preview").replaceChildren(
      el("p", { text: `cleaned: ${p.total} rows; the first ${p.rows.length}:` }),
      table(p.columns, p.rows.map((r) => r.map((c) => (c.length > 120 ? c.slice(0, 119) + "…" : c)))),
    );
    status(`Cleaned: ${report.rows_out} of ${report.rows_in} rows kept. Split it next.`);
  }),
);

$("split-btn").addEventListener("click", () =>
  guarded($("split-btn"), "Splitting", async () => {
    const f = state.file;
    const options = {
      val: Number($("val-share").value),
      test: Number($("test-share").value),
      seed: Number($("split-seed").value),
      label_column: $("label-col").value,
      text_column: $("text-col").value,
      label_sep: labelSep(),
    };
    const out = await call("split", { bytes: state.cleaned.bytes.slice(0), format: f.format, source: "cleaned", options });
    const buf = (u8) => u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);
    state.splits = { train: buf(out.train), val: buf(out.val), test: buf(out.test), report: out.report };
    const r = out.report;
    const part = (k) => r.splits[k]?.rows ?? 0;
    $("split-report").replaceChildren(
      el("p", { text: `train ${part("train")} · val ${part("val")} · test ${part("test")} rows (near-duplicates kept in one split)` }),
    );
    status("Split. Load a model next (or train, if one is loaded).");
  }),
);

// A CSV/TSV download with cells that a spreadsheet would run as formulas (=, +, -, @) written as
// text, when "Spreadsheet-safe CSV downloads" is ticked; the page keeps the bytes it trains on.
async function forSpreadsheets(bytes, format) {
  if (!$("csv-safe").checked || format === "jsonl") return bytes;
  const { output } = await call("spreadsheetSafe", { bytes: bytes.slice(0), format, source: "download" });
  return output;
}

// ---- 2. model --------------------------------------------------------------------------------

const DEFAULT_MODEL = "models/all-MiniLM-L6-v2/";
const DEFAULT_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

// A model folder needs its config, weights and a tokenizer: say which are missing.
function checkModelFiles(name, files) {
  const names = Object.keys(files);
  const missing = [];
  if (!names.includes("config.json")) missing.push("config.json");
  if (!names.includes("model.safetensors")) missing.push("model.safetensors");
  if (!names.includes("tokenizer.json") && !names.includes("vocab.txt")) missing.push("tokenizer.json or vocab.txt");
  if (missing.length) {
    throw new Error(
      `${name} is not a complete Hugging Face model folder: missing ${missing.join(", ")} (found: ${names.join(", ") || "nothing"})`,
    );
  }
}

async function setModel(name, files) {
  checkModelFiles(name, files);
  const names = Object.keys(files);
  state.model = { name, files, id: (state.model?.id ?? 0) + 1 };
  const mb = Object.values(files).reduce((s, b) => s + b.byteLength, 0) / 1e6;
  $("model-status").textContent = `Model: ${name} (${names.length} files, ${mb.toFixed(1)} MB), held in this tab.`;
  status("Model loaded.");
}

$("default-model-btn").addEventListener("click", () =>
  guarded($("default-model-btn"), "Loading the default model", async () => {
    status("Downloading all-MiniLM-L6-v2 from this page's server…");
    const files = {};
    for (const f of DEFAULT_FILES) {
      const res = await fetch(DEFAULT_MODEL + f);
      if (!res.ok) {
        if (f === "config.json" || f === "model.safetensors" || f === "tokenizer.json") {
          throw new Error(`${DEFAULT_MODEL}${f}: HTTP ${res.status} (the page was built without the default model; pick a model folder instead)`);
        }
        continue;
      }
      files[f] = await res.arrayBuffer();
    }
    await setModel("sentence-transformers/all-MiniLM-L6-v2", files);
  }),
);

// The files of a folder (or file) picker: { folder, files: { relativePath: ArrayBuffer } }.
async function readPicked(input, relative) {
  const list = [...input.files];
  if (!list.length) throw new Error("nothing was picked");
  const files = {};
  let folder = "picked files";
  for (const f of list) {
    let name = f.name;
    if (relative && f.webkitRelativePath) {
      // "folder/1_Pooling/config.json" → "1_Pooling/config.json"
      const parts = f.webkitRelativePath.split("/");
      folder = parts[0];
      name = parts.slice(1).join("/");
    }
    files[name] = await f.arrayBuffer();
  }
  return { folder, files };
}

async function pickModel(input, relative) {
  if (!input.files.length) return;
  const { folder, files } = await readPicked(input, relative);
  await setModel(folder, files);
}

$("model-folder").addEventListener("change", () => guarded(null, "Loading the model folder", () => pickModel($("model-folder"), true)));
$("model-files").addEventListener("change", () => guarded(null, "Loading the model files", () => pickModel($("model-files"), false)));

// ---- choosing an encoder ----------------------------------------------------------------------

// Candidate models: { name, files } (the loaded one, or folders picked here).
const probeCandidates = [];

function renderCandidates() {
  $("probe-candidates").textContent = probeCandidates.length
    ? `Candidates: ${probeCandidates.map((c) => c.name).join(", ")}`
    : "No candidates yet.";
  refreshButtons();
}

function addCandidate(name, files) {
  checkModelFiles(name, files);
  if (probeCandidates.some((c) => c.name === name)) throw new Error(`${name} is already a candidate`);
  probeCandidates.push({ name, files });
  renderCandidates();
}

$("probe-add-loaded-btn").addEventListener("click", () =>
  guarded($("probe-add-loaded-btn"), "Adding the candidate", async () => addCandidate(state.model.name, state.model.files)),
);
$("probe-folder").addEventListener("change", () =>
  guarded(null, "Adding the candidate folder", async () => {
    const { folder, files } = await readPicked($("probe-folder"), true);
    addCandidate(folder, files);
  }),
);
$("probe-clear-btn").addEventListener("click", () => {
  probeCandidates.length = 0;
  $("probe-result").replaceChildren();
  $("probe-download").hidden = true;
  renderCandidates();
});

$("probe-btn").addEventListener("click", () =>
  guarded($("probe-btn"), "Comparing the encoders", async () => {
    const data = state.cleaned ? { bytes: state.cleaned.bytes, format: state.file.format } : state.file;
    const linear = $("probe-linear").checked;
    const labelColumn = $("label-col").value;
    if (linear && (!labelColumn || labelColumn === $("text-col").value)) {
      throw new Error("the linear probe needs a label column: choose one in section 1, or untick the linear probe");
    }
    const ranked = await call(
      "probe",
      {
        candidates: probeCandidates.map((c) => ({ name: c.name, files: Object.fromEntries(Object.entries(c.files).map(([k, v]) => [k, v.slice(0)])) })),
        bytes: data.bytes.slice(0),
        format: data.format,
        textColumn: $("text-col").value,
        labelColumn: linear ? labelColumn : null,
        sample: Number($("probe-sample").value),
        maxLen: Number($("probe-max-len").value),
        seed: 42,
      },
      { onProgress: (msg) => status(msg.note) },
    );
    const box = $("probe-result");
    box.replaceChildren(el("p", { id: "probe-recommendation", text: `Recommended: ${ranked.ranking.recommendation}.` }));
    const body = el("div", { class: "report" });
    insertMarkup(body, ranked.html.replace(/^[^]*<body[^>]*>/i, "").replace(/<\/body>[^]*$/i, ""));
    box.append(body);
    state.probe = ranked.ranking;
    downloadLink($("probe-download"), "probe.html", ranked.html, "text/html");
    status(`Compared ${probeCandidates.length} encoder(s): ${ranked.ranking.recommendation} fits best.`);
  }),
);

// ---- 3. training -----------------------------------------------------------------------------

let training = false;

async function drawCharts() {
  const metric = state.metricName || "f1_macro";
  const loss = await call("chart", {
    title: "Training loss",
    xLabel: "step",
    yLabel: "loss",
    series: [{ name: "train loss", points: state.losses }],
  });
  insertMarkup($("loss-chart"), loss);
  if (state.metrics.length) {
    const m = await call("chart", {
      title: `Validation ${metric}`,
      xLabel: "epoch",
      yLabel: metric,
      series: [{ name: `val ${metric}`, points: state.metrics }],
    });
    insertMarkup($("metric-chart"), m);
  }
}

function trainRequest() {
  const f = state.file;
  const lr = $("lr").value.trim();
  return {
    model_name: state.model.name,
    format: f.format,
    text_column: $("text-col").value,
    label_column: $("label-col").value,
    backend: $("backend").value,
    options: {
      mode: $("mode").value,
      epochs: Number($("epochs").value),
      lr: lr === "" ? null : Number(lr),
      batch_size: Number($("batch-size").value),
      max_len: Number($("max-len").value),
      long: $("long").value,
      stride: $("stride").value.trim() === "" ? null : Number($("stride").value),
      aggregate: $("aggregate").value,
      lora_r: Number($("lora-r").value),
      log_every: Number($("log-every").value),
      label_sep: labelSep(),
      // Multi-label rows: thresholds and the best epoch by micro-F1 (savant train --metric f1_micro).
      ...(labelSep() ? { metric: "f1_micro" } : {}),
    },
  };
}

// Multi-label rows: what joins a row's labels (null: one label per row).
function labelSep() {
  return $("label-sep").value === "" ? null : $("label-sep").value;
}

$("train-btn").addEventListener("click", () =>
  guarded(null, "Training", async () => {
    training = true;
    state.trained = false;
    state.losses = [];
    state.metrics = [];
    $("stop-btn").disabled = false;
    $("train-btn").disabled = true;
    $("train-log").textContent = "";
    $("train-info").textContent = "";
    delete $("train-info").dataset.backend;
    $("eval").replaceChildren();
    $("exports").replaceChildren();
    $("predictions").replaceChildren();
    state.predictions = null;
    $("predict-ensemble-box").hidden = true;
    $("loss-chart").replaceChildren();
    $("metric-chart").replaceChildren();
    const request = trainRequest();
    state.metricName = request.options.metric ?? "f1_macro";
    status("Setting up the run (loading the model into the backend)…");
    const files = {};
    for (const [k, v] of Object.entries(state.model.files)) files[k] = v.slice(0);
    try {
      const result = await call(
        "train",
        { files, train: state.splits.train.slice(0), val: state.splits.val.slice(0), request },
        {
          onProgress: (msg) => {
            if (msg.info) {
              const i = msg.info;
              const why = i.fallback ? ` — WebGPU not used: ${i.fallback}` : "";
              const fitted = i.fitted ? ` — ${i.fitted}` : "";
              $("train-info").textContent =
                `${i.mode} on ${i.backend}${i.adapter ? ` (${i.adapter})` : ""}${why}${fitted}. ${i.params}. ` +
                `${i.train_rows} train / ${i.val_rows} val rows, ${i.labels.length} labels, ${i.total_steps} steps of ${i.batch_size} × ≤${i.max_len} tokens.` +
                (i.windows !== i.train_rows + i.val_rows ? ` Long texts in windows: ${i.windows} windows, ${i.windows_per_text.toFixed(2)} a text.` : "") +
                (i.workers > 1 ? ` ${i.workers} workers share each step.` : "") +
                (i.workers_note ? ` (${i.workers_note})` : "");
              $("train-info").dataset.backend = i.backend;
              $("train-info").dataset.workers = i.workers;
              $("train-progress").max = i.total_steps;
              return;
            }
            const s = msg.step;
            $("train-progress").value = s.step;
            $("train-status").textContent = `step ${s.step}/${s.total_steps} (${(msg.ms / 1000).toFixed(2)} s)`;
            for (const e of s.events) {
              if (e.event === "probe") {
                $("train-status").textContent = `linear probe of the frozen model: ${e.embedded}/${e.total} training rows embedded`;
                continue;
              }
              $("train-log").textContent += JSON.stringify(e) + "\n";
              if (e.event === "step") state.losses.push([e.step, e.loss]);
              if (e.event === "epoch" && e.val_metric != null) state.metrics.push([e.epoch, e.val_metric]);
            }
            if (s.events.length) drawCharts().catch((err) => err.restarted || showError("Drawing the charts", err));
          },
        },
      );
      state.trained = true;
      renderEvaluation(result.evaluation);
      await renderExports();
      status(result.stopped ? "Stopped. The results below are for the weights so far." : "Training finished.");
    } catch (err) {
      status("Training failed; your data and model are still loaded.");
      if ($("train-info").dataset.backend === "webgpu") {
        // The worker's GPU device is gone or broken: the next run gets a fresh worker and device.
        if (!err.fatal) restartWorker();
        err.message +=
          "\n\nThe GPU device was lost or ran out of memory. Train again (a fresh GPU device is requested), lower the batch size or max tokens, or choose the CPU backend.";
      }
      throw err;
    } finally {
      training = false;
      $("stop-btn").disabled = true;
    }
  }),
);

$("stop-btn").addEventListener("click", () => {
  worker.postMessage({ cmd: "stop" });
  $("stop-btn").disabled = true;
  status("Stopping after this step…");
});

// ---- 4. results ------------------------------------------------------------------------------

function renderEvaluation(evaluation) {
  const box = $("eval");
  const r = evaluation.report;
  const summary = r.subset_accuracy !== undefined
    ? `micro-F1 ${fmt(r.f1_micro)}, macro-F1 ${fmt(r.f1_macro)}, subset accuracy ${fmt(r.subset_accuracy)} (labels over their tuned thresholds)`
    : `accuracy ${fmt(r.accuracy)}, macro-F1 ${fmt(r.f1_macro)}`;
  box.replaceChildren(el("h3", { text: `Validation (${r.n} rows): ${summary}` }));
  const comparison = comparisonOf(evaluation.metrics);
  if (comparison) box.append(comparison);
  const body = el("div", { class: "report" });
  insertMarkup(body, evaluation.html);
  box.append(body);
  state.metricsJson = evaluation.metrics;
  // The average with TF-IDF + LR (savant predict --ensemble): offered when the run chose one,
  // ticked when it beat the specialist alone on val.
  const m = evaluation.metrics;
  const averaged = m != null && m.ensemble_weight != null;
  $("predict-ensemble-box").hidden = !averaged;
  // Label sets compare micro-F1, each at its own thresholds; one label per row macro-F1.
  const [mine, theirs, what] = m?.label_sep != null
    ? [m.val_at_thresholds?.f1_micro, m.ensemble_val_f1_micro, "micro-F1"]
    : [m?.f1_macro, m?.ensemble_val_f1_macro, "macro-F1"];
  $("predict-ensemble").checked = averaged && theirs > mine;
  if (averaged) {
    $("predict-ensemble-text").textContent =
      `averaged with TF-IDF + logistic regression (weight ${m.ensemble_weight.toFixed(1)} on the specialist; val ${what} ${fmt(theirs)})`;
  }
}

// The specialist beside what it must beat, on the same validation rows (savant train's closing
// line): TF-IDF + logistic regression and the untrained encoder's linear probe (epoch 0).
function comparisonOf(metrics) {
  if (!metrics) return null;
  if (metrics.label_sep != null) {
    // Label sets: micro-F1, each at its own tuned thresholds (savant train's closing line).
    const rows = [["the fine-tuned specialist", metrics.val_at_thresholds?.f1_micro, "specialist"]];
    if (metrics.baseline_val_f1_micro != null) rows.push(["TF-IDF + one-vs-rest logistic regression", metrics.baseline_val_f1_micro, "baseline"]);
    if (metrics.ensemble_val_f1_micro != null) {
      rows.push([`the specialist averaged with it (weight ${metrics.ensemble_weight.toFixed(1)})`, metrics.ensemble_val_f1_micro, "ensemble"]);
    }
    const best = rows.reduce((a, b) => (b[1] > a[1] ? b : a));
    const p = el("p", { id: "comparison", text: `Validation micro-F1: ${rows.map(([n, v]) => `${n} ${fmt(v)}`).join(", ")}; best: ${best[0]}.` });
    for (const [, v, key] of rows) p.dataset[key] = v;
    p.dataset.best = best[2];
    return p;
  }
  const rows = [["the fine-tuned specialist", metrics.f1_macro, "specialist"]];
  if (metrics.baseline_val_f1_macro != null) rows.push(["TF-IDF + logistic regression", metrics.baseline_val_f1_macro, "baseline"]);
  if (metrics.probe_val_f1_macro != null) rows.push(["the untrained encoder (linear probe)", metrics.probe_val_f1_macro, "probe"]);
  if (metrics.ensemble_val_f1_macro != null) {
    rows.push([`the specialist averaged with TF-IDF + LR (weight ${metrics.ensemble_weight.toFixed(1)})`, metrics.ensemble_val_f1_macro, "ensemble"]);
  }
  const best = rows.reduce((a, b) => (b[1] > a[1] ? b : a));
  const p = el("p", { id: "comparison", text: `Validation macro-F1: ${rows.map(([n, v]) => `${n} ${fmt(v)}`).join(", ")}; best: ${best[0]}.` });
  for (const [, v, key] of rows) p.dataset[key] = v;
  p.dataset.best = best[2];
  return p;
}

function fmt(v) {
  return v == null ? "undefined" : v.toFixed(4);
}

async function renderExports() {
  const files = await call("exportFiles");
  state.exported = files;
  const box = $("exports");
  box.replaceChildren(el("span", { text: "Download: " }));
  for (const [name, bytes] of Object.entries(files)) {
    const a = el("a", { class: "button", "data-file": name });
    a.textContent = name;
    downloadLink(a, name.replaceAll("/", "_"), bytes, name.endsWith(".json") ? "application/json" : "application/octet-stream");
    box.append(a);
  }
}

function predictTexts() {
  const texts = $("predict-input").value.split("\n").filter((t) => t.trim() !== "");
  if (!texts.length) throw new Error("type at least one text");
  return texts;
}

$("predict-btn").addEventListener("click", () =>
  guarded($("predict-btn"), "Predicting", async () => {
    const texts = predictTexts();
    const ensemble = !$("predict-ensemble-box").hidden && $("predict-ensemble").checked;
    const result = await call("predict", { texts, ensemble });
    showPredictions(texts, { ...result, ensemble });
  }),
);

// `savant predict --model <folder> [--adapter <folder>] [--int8]` in the page.
$("predict-folder-btn").addEventListener("click", () =>
  guarded($("predict-folder-btn"), "Predicting with the model folder", async () => {
    const texts = predictTexts();
    const int8 = $("predict-int8").checked;
    const picked = $("adapter-folder").files.length ? await readPicked($("adapter-folder"), true) : null;
    // The worker keeps the loaded predictor under this key (which model, which adapter files,
    // which settings); the files travel only when it does not hold that one yet.
    const adapterKey = picked && Object.entries(picked.files).map(([n, b]) => `${n}:${b.byteLength}`).sort().join(",");
    const request = {
      name: state.model.name,
      key: `${state.model.id}|${picked?.folder ?? ""}|${adapterKey ?? ""}`,
      adapterName: picked?.folder,
      int8,
      backend: int8 ? "cpu" : "auto",
      texts,
    };
    const withFiles = () => call("predictFolder", { ...request, files: state.model.files, adapter: picked?.files });
    const { info, labels, probs, sets } = await call("predictFolder", request).catch((e) =>
      /no model files/.test(e.message ?? String(e)) ? withFiles() : Promise.reject(e),
    );
    $("predict-folder-status").textContent =
      `${info.model}${picked ? ` + ${picked.folder}` : ""}: ${labels.length} labels, ${info.max_len} tokens, on ${info.backend}` +
      `${info.int8 ? ", int8 projections" : ""}${info.workers > 1 ? `, ${info.workers} workers` : ""}` +
      `${info.fallback ? ` (${info.fallback})` : ""}${info.note ? ` (${info.note})` : ""}.`;
    showPredictions(texts, { labels, probs, windows: null, ensemble: false, sets });
  }),
);

// `savant quantize --model <folder> [--adapter <folder>]` in the page: the int8 folder's files as
// downloads (load them back with the model picker; they run int8 on the CPU).
$("quantize-btn").addEventListener("click", () =>
  guarded($("quantize-btn"), "Quantising the model folder to int8", async () => {
    const picked = $("adapter-folder").files.length ? await readPicked($("adapter-folder"), true) : null;
    const files = await call("quantizeFolder", {
      name: state.model.name,
      files: state.model.files,
      adapter: picked?.files,
      adapterName: picked?.folder,
    });
    state.quantized = files;
    const box = $("quantize-downloads");
    const what = `${state.model.name}${picked ? ` + ${picked.folder}` : ""}`;
    box.replaceChildren(el("span", { text: `int8 copy of ${what}: ` }));
    for (const [name, bytes] of Object.entries(files)) {
      const a = el("a", { class: "button", "data-file": name });
      a.textContent = name;
      downloadLink(a, name.replaceAll("/", "_"), bytes, name.endsWith(".json") ? "application/json" : "application/octet-stream");
      box.append(a);
    }
  }),
);

function showPredictions(texts, { labels, probs, windows, ensemble, sets }) {
  state.predictions = { texts, labels, probs, windows, ensemble, sets };
  const short = (t) => (t.length > 80 ? t.slice(0, 79) + "…" : t);
  const argmax = (p) => labels[p.indexOf(Math.max(...p))];
  // A multi-label model: every label over its threshold (sigmoid probabilities).
  const predicted = (i) => (sets ? sets[i] : argmax(probs[i]));
  const rows = texts.map((t, i) => [short(t), predicted(i), ...probs[i].map((p) => p.toFixed(4))]);
  const header = ["text", "prediction", ...labels.map((l) => `p(${l})`)];
  if (!windows) {
    $("predictions").replaceChildren(table(header, rows));
    return;
  }
  // Texts read in windows: a row per text (its windows' aggregated logits); selecting a row
  // shows its windows — which part of the text drove the label (spans count code points).
  const counts = texts.map((_, i) => windows.filter((w) => w.text === i).length);
  const t = table([...header, "windows"], rows.map((r, i) => [...r, counts[i]]));
  const detail = el("div", { id: "window-detail" });
  [...t.rows].slice(1).forEach((tr, i) => {
    tr.classList.add("selectable");
    tr.addEventListener("click", () => {
      const own = windows.filter((w) => w.text === i);
      const wrows = own.map((w, j) => [j + 1, short(Array.from(texts[i]).slice(w.start, w.end).join("")), argmax(w.probs), ...w.probs.map((p) => p.toFixed(4))]);
      detail.replaceChildren(el("p", { text: `Windows of text ${i + 1}:` }), table(["window", "text", "prediction", ...labels.map((l) => `p(${l})`)], wrows));
    });
  });
  $("predictions").replaceChildren(t, detail);
}

// ---- start -----------------------------------------------------------------------------------

startWorker();
const annotator = initAnnotator({ $, call, el, table, guarded, status, showError, downloadLink, loadDataFile, state, REDACT_ALL });
call("chart", { title: "", xLabel: "", yLabel: "", series: [] })
  .then(() => status("Ready. Load a table to begin."))
  .catch((err) => showError("Starting the worker", err));
refreshButtons();

// For tests and the benchmark: the page's state and its worker calls.
window.savantPage = { state, call, annotator };
