// The page end to end in real Chromium (software WebGPU: SwiftShader), driven by playwright-core:
// clean the real drug-review CSV and compare with `savant clean`; split; fine-tune a tiny BERT
// with LoRA on WebGPU and on the CPU (wasm); evaluate; predict; export the adapter and check that
// `savant predict --adapter` on those bytes gives the page's probabilities; and check that the
// page made no request but same-origin GETs of its own files. Then the bad inputs.
//
//   node --test tests/e2e/page.test.mjs      (after www/build.sh; tests/run does both)
//
// Env: SAVANT_BIN (the CLI), SAVANT_HOME (fetched datasets), CHROMIUM (/usr/bin/chromium).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { chromium } from "playwright-core";
import { DRUGS, MODELS, REPO, SAVANT, TINY, TINY_FILES, download, noError, openPage, pageUrl, shot as shotAt, start, stop, storedByThePage } from "./harness.mjs";
import { DIST } from "./serve.mjs";

const OUT = join(REPO, "target/e2e/page");

before(() => start(OUT));
after(stop);

const shot = (page, name) => shotAt(page, join(OUT, `${name}.png`));

// The page's clean + split steps on `file`; returns the page's clean report.
async function loadAndClean(page, file, { testShare = "0" } = {}) {
  await page.setInputFiles("#data-file", file);
  await page.waitForSelector("#preview table");
  await page.selectOption("#text-col", "text");
  await page.selectOption("#label-col", "label");
  await page.click("#clean-btn");
  await page.waitForSelector("#clean-report table");
  await page.fill("#val-share", "0.2");
  await page.fill("#test-share", testShare);
  await page.click("#split-btn");
  await page.waitForFunction(() => window.savantPage.state.splits != null);
}

async function pickTinyModel(page) {
  await page.setInputFiles("#model-files", TINY_FILES.map((f) => join(TINY, f)));
  await page.waitForFunction(() => window.savantPage.state.model != null);
}

async function train(page, logs, { backend, epochs = "3", batch = "16", lr = "0.01", long = "truncate", stride = "", aggregate = "mean-logits" }) {
  await page.selectOption("#mode", "lora");
  await page.selectOption("#long", long);
  await page.selectOption("#aggregate", aggregate);
  await page.fill("#stride", stride);
  await page.selectOption("#backend", backend);
  await page.fill("#epochs", epochs);
  await page.fill("#lr", lr);
  await page.fill("#batch-size", batch);
  await page.fill("#max-len", "24");
  await page.fill("#log-every", "1");
  await page.click("#train-btn");
  await page.waitForFunction(
    () => /finished|Stopped/.test(document.getElementById("status").textContent) || !document.getElementById("error").hidden,
    null,
    { timeout: 600_000 },
  );
  await noError(page, logs);
}

const TEXTS = [
  "This medicine worked great and I have no side effects",
  "Terrible headaches and nausea since I started taking it",
  "It was okay but the weight gain bothers me",
  "Après deux semaines je me sens beaucoup mieux",
  "I stopped after three days because of the rash and the dizziness and I would never take it again even if my doctor insisted that it is the best option",
];

// The page's probabilities for TEXTS, and `savant predict --adapter` on the exported files
// (with `model` as the base, the folder the page trained from).
async function predictAndExport(page, name, model = TINY, extra = []) {
  await page.fill("#predict-input", TEXTS.join("\n"));
  assert.equal(await page.evaluate(() => window.savantPage.state.predictions), null, "a new run clears old predictions");
  // The model's own probabilities first; the average with TF-IDF + LR below.
  const averaged = !(await page.locator("#predict-ensemble-box").isHidden());
  if (averaged) await page.uncheck("#predict-ensemble");
  await page.click("#predict-btn");
  await page.waitForFunction(() => window.savantPage.state.predictions != null);
  await page.waitForSelector("#predictions table");
  const pagePred = await page.evaluate(() => window.savantPage.state.predictions);
  const dir = join(OUT, name);
  const links = page.locator("#exports a");
  const n = await links.count();
  const names = [];
  for (let i = 0; i < n; i++) {
    const file = await links.nth(i).getAttribute("data-file");
    names.push(file);
    await download(page, links.nth(i), join(dir, file));
  }
  assert.deepEqual(
    names.sort(),
    ["adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/config.json",
      "adapter/sentence_bert_config.json", "metrics.json", ...(averaged ? ["savant_ensemble.json"] : [])],
  );
  const config = JSON.parse(readFileSync(join(dir, "adapter/adapter_config.json"), "utf8"));
  assert.equal(config.peft_type, "LORA");
  const input = join(dir, "texts.csv");
  writeFileSync(input, "text\n" + TEXTS.join("\n") + "\n");
  // The trained length travels with the adapter: savant predict reads texts at it unasked.
  const trained = JSON.parse(readFileSync(join(dir, "adapter/sentence_bert_config.json"), "utf8")).max_seq_length;
  assert.equal(trained, 24);
  const cliProbs = (file, more) => {
    const out = join(dir, file);
    execFileSync(SAVANT, ["predict", "--model", model, "--adapter", join(dir, "adapter"), input, "--text", "text", "-o", out, ...more, ...extra]);
    const lines = readFileSync(out, "utf8").trim().split("\n");
    const header = lines[0].split(",");
    assert.equal(lines.length - 1, TEXTS.length);
    return lines.slice(1).map((line) => pagePred.labels.map((label) => Number(line.split(",")[header.indexOf(`prob_${label}`)])));
  };
  const differ = (a, b) => Math.max(...a.flatMap((row, i) => row.map((p, j) => Math.abs(p - b[i][j]))));
  const worst = differ(cliProbs("cli_predictions.csv", []), pagePred.probs);
  assert.ok(worst <= 1e-4, `${name}: page vs savant predict --adapter differ by ${worst}`);
  if (averaged) {
    // The page's average with TF-IDF + LR is savant predict --ensemble with the exported file.
    await page.check("#predict-ensemble");
    await page.click("#predict-btn");
    await page.waitForFunction(() => window.savantPage.state.predictions?.ensemble === true);
    const mixed = (await page.evaluate(() => window.savantPage.state.predictions)).probs;
    const ens = differ(cliProbs("cli_ensemble.csv", ["--ensemble", join(dir, "savant_ensemble.json")]), mixed);
    assert.ok(ens <= 1e-4, `${name}: page vs savant predict --ensemble differ by ${ens}`);
    assert.ok(differ(mixed, pagePred.probs) > 0 || JSON.parse(readFileSync(join(dir, "savant_ensemble.json"), "utf8")).weight === 1);
  }
  return worst;
}

function lossFell(losses) {
  const k = Math.min(3, Math.floor(losses.length / 2));
  const mean = (xs) => xs.reduce((s, [, y]) => s + y, 0) / xs.length;
  return { first: mean(losses.slice(0, k)), last: mean(losses.slice(-k)) };
}

test("clean, split, LoRA on WebGPU and CPU, evaluate, export, predict — with no outside request", async () => {
  const { context, page, requests, logs } = await openPage();
  await shot(page, "0-start");
  // Loaded once, the page needs no network: everything below runs offline.
  await context.setOffline(true);

  // Clean the real drug reviews as `savant clean --dedup near --redact` does, byte for byte.
  await page.setInputFiles("#data-file", DRUGS);
  await page.waitForSelector("#preview table");
  await page.click("#clean-btn");
  await page.waitForSelector("#clean-report table");
  await noError(page, logs);
  const pageReport = JSON.parse(await download(page, page.locator("#report-download"), join(OUT, "clean/report.json")));
  const pageCleaned = await download(page, page.locator("#clean-download"), join(OUT, "clean/cleaned.csv"));
  execFileSync(SAVANT, [
    "clean", DRUGS, "--text", "text", "--label", "label", "--dedup", "near", "--redact", "--spreadsheet-safe",
    "-o", join(OUT, "clean/cli.csv"), "--report", join(OUT, "clean/cli_report.json"), "--quiet",
  ]);
  const cliReport = JSON.parse(readFileSync(join(OUT, "clean/cli_report.json"), "utf8"));
  assert.equal(pageReport.source, "train.csv");
  for (const r of [pageReport, cliReport]) delete r.source;
  assert.deepEqual(pageReport, cliReport);
  assert.ok(pageReport.rows_in === 600 && pageReport.modified.html_entities > 0, JSON.stringify(pageReport));
  assert.ok(pageCleaned.equals(readFileSync(join(OUT, "clean/cli.csv"))), "the cleaned files differ");
  await shot(page, "1-cleaned");

  // 20% val, 60% test left out: ~120 training rows keep the software GPU's run short.
  await page.fill("#val-share", "0.2");
  await page.fill("#test-share", "0.6");
  await page.click("#split-btn");
  await page.waitForFunction(() => window.savantPage.state.splits != null);
  await pickTinyModel(page);
  await shot(page, "2-ready");

  const worst = {};
  for (const backend of ["webgpu", "cpu"]) {
    await train(page, logs, { backend });
    assert.equal(await page.locator("#train-info").getAttribute("data-backend"), backend);
    // The CPU run shares its steps with a helper worker per further core (2 cores here).
    assert.equal(await page.locator("#train-info").getAttribute("data-workers"), backend === "cpu" ? "2" : "1");
    const losses = await page.evaluate(() => window.savantPage.state.losses);
    const { first, last } = lossFell(losses);
    assert.ok(losses.length >= 10 && last < first, `${backend}: loss did not fall: ${JSON.stringify(losses)}`);
    const metrics = await page.evaluate(() => window.savantPage.state.metrics);
    // Epoch 0 is the probe-initialised head before any step, then one point per epoch.
    assert.deepEqual(metrics.map(([e]) => e), [0, 1, 2, 3], `${backend}: the probe, then one validation point per epoch`);
    // The specialist, TF-IDF + LR and the probe, as metrics.json has them.
    const saved = await page.evaluate(() => window.savantPage.state.metricsJson);
    const cmp = page.locator("#comparison");
    assert.match(await cmp.textContent(), /specialist 0\.\d{4}, TF-IDF \+ logistic regression 0\.\d{4}, the untrained encoder \(linear probe\) 0\.\d{4}, the specialist averaged with TF-IDF \+ LR \(weight [01]\.\d\) 0\.\d{4}; best: /);
    for (const [key, field] of [["specialist", "f1_macro"], ["baseline", "baseline_val_f1_macro"], ["probe", "probe_val_f1_macro"], ["ensemble", "ensemble_val_f1_macro"]]) {
      assert.ok(typeof saved[field] === "number", `${backend}: metrics.json lacks ${field}`);
      assert.equal(Number(await cmp.getAttribute(`data-${key}`)), saved[field], `${backend}: ${key}`);
    }
    assert.equal(metrics[0][1], saved.probe_val_f1_macro, `${backend}: epoch 0 is the probe`);
    assert.ok(await page.locator("#metric-chart svg polyline").count() >= 1);
    assert.ok(await page.locator("#loss-chart svg polyline").count() >= 1);
    assert.match(await page.locator("#eval h3").textContent(), /macro-F1 0\.\d{4}/);
    assert.ok((await page.locator("#eval svg").count()) >= 3, "ROC, PR and confusion plots");
    await shot(page, `3-trained-${backend}`);
    worst[backend] = await predictAndExport(page, `export-${backend}`);
    await shot(page, `4-results-${backend}`);
  }
  console.log(`page vs savant predict --adapter: max |Δp| ${JSON.stringify(worst)}`);

  // Only same-origin GETs of the page's own files, the worker's included.
  const own = new Set(listFiles(DIST).map((f) => "/" + f));
  own.add("/");
  const outside = requests.filter((r) => {
    if (r.url.startsWith("blob:") || r.url.startsWith("data:")) return false; // in-page downloads
    const u = new URL(r.url);
    return r.method !== "GET" || u.origin !== new URL(pageUrl()).origin || !own.has(u.pathname);
  });
  assert.deepEqual(outside, [], "requests other than same-origin GETs of the page's files");
  const seen = new Set(requests.map((r) => new URL(r.url).pathname));
  for (const f of ["/", "/app.js", "/worker.js", "/savant-web.js", "/savant-web_bg.wasm"]) {
    assert.ok(seen.has(f), `the request log misses ${f} (so it would miss others too): ${[...seen]}`);
  }
  writeFileSync(join(OUT, "requests.json"), JSON.stringify(requests, null, 1));
  // Nothing was kept in the browser: the user asked for no labelling work.
  assert.deepEqual(await storedByThePage(page, context), { cookies: 0, local: 0, session: 0, caches: [], databases: [] });
  await context.close();
});



// A sentence-transformers folder (1_Pooling: mean) picked whole: `auto` heads the run with its
// pooling, and the export — PEFT's adapter with the mean-pooled head — reads back in `savant
// predict` with the page's probabilities.
test("a pooled head: a sentence-transformers folder trains a mean-pooled LoRA head that savant predict reads back", async () => {
  const { context, page, logs } = await openPage();
  await loadAndClean(page, DRUGS, { testShare: "0.6" });
  const folder = join(MODELS, "tiny-base");
  await page.setInputFiles("#model-folder", folder);
  await page.waitForFunction(() => window.savantPage.state.model != null);
  await train(page, logs, { backend: "cpu", epochs: "1" });
  const saved = await page.evaluate(() => window.savantPage.state.metricsJson);
  assert.equal(saved.head, "mean", "the folder's 1_Pooling picks the mean-pooled head");
  assert.equal(saved.head_init, "probe");
  const worst = await predictAndExport(page, "export-pooled", folder);
  const config = JSON.parse(readFileSync(join(OUT, "export-pooled/adapter/config.json"), "utf8"));
  assert.equal(config.classifier_pooling, "mean", "the exported config names the head");
  console.log(`pooled head: page vs savant predict --adapter: max |Δp| ${worst}`);
  await context.close();
});

// Long texts in windows: the page trains on every window of its reviews (24 tokens, stride 6),
// says how many, and scores each text from its windows' mean logits — the probabilities that
// `savant predict --long windows` gives with the exported adapter.
// Trained with mean-pool (whole texts, a text's mean window features classified); at inference
// that is the mean of the windows' logits, so savant predict's default aggregation must agree.
test("long texts in windows: trained on every window, predicted per text as savant predict does", async () => {
  const { context, page, logs } = await openPage();
  await loadAndClean(page, DRUGS, { testShare: "0.6" });
  const folder = join(MODELS, "tiny-base");
  await page.setInputFiles("#model-folder", folder);
  await page.waitForFunction(() => window.savantPage.state.model != null);
  await train(page, logs, { backend: "cpu", epochs: "1", long: "windows", stride: "6", aggregate: "mean-pool" });
  const saved = await page.evaluate(() => window.savantPage.state.metricsJson);
  assert.equal(saved.long, "windows");
  assert.equal(saved.aggregate, "mean-pool");
  assert.ok(saved.windows > saved.train_rows + saved.val_rows, `more windows than texts: ${JSON.stringify(saved)}`);
  assert.match(await page.textContent("#train-info"), /Long texts in windows: \d+ windows/);
  const worst = await predictAndExport(page, "export-windows", folder, ["--long", "windows", "--stride", "6"]);
  // Selecting the longest text shows its windows, as many as its row counts.
  const pred = await page.evaluate(() => window.savantPage.state.predictions);
  const longest = TEXTS.length - 1;
  const own = pred.windows.filter((w) => w.text === longest);
  assert.ok(own.length > 1, `the longest text has several windows: ${JSON.stringify(pred.windows)}`);
  await page.locator("#predictions table tr").nth(longest + 1).click();
  assert.equal(await page.locator("#window-detail tr").count(), own.length + 1);
  console.log(`windows: page vs savant predict --long windows: max |Δp| ${worst}`);
  await context.close();
});

// Multi-label rows in the page: a label separator makes clean keep sets, split stratify them,
// training use sigmoid + BCE with thresholds tuned on val; predict shows each text's set; the
// exported adapter (with its thresholds) gives `savant predict` the page's sets and probabilities.
test("label sets: clean, split, train, predict and export multi-label as savant does", async () => {
  const { context, page, logs } = await openPage();
  const topics = [["billing charge", "billing"], ["fraud stolen", "fraud"], ["fee", "fees"]];
  const rows = ["text,label"];
  for (let i = 0; i < 60; i++) {
    const on = [0, 1, 2].filter((j) => ((i % 7) + 1) & (1 << j));
    rows.push(`${on.map((j) => topics[j][0]).join(" ")} ${["the", "a", "my", "this"][i % 4]} ${i},${on.map((j) => topics[j][1]).join("|")}`);
  }
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, "label_sets.csv");
  writeFileSync(file, rows.join("\n") + "\n");
  await page.fill("#label-sep", "|");
  await loadAndClean(page, file);
  const split = await page.evaluate(() => window.savantPage.state.splits.report);
  assert.equal(split.label_sep, "|");
  assert.ok(split.rows_with_several_labels > 0, JSON.stringify(split));
  await pickTinyModel(page);
  await train(page, logs, { backend: "cpu", epochs: "4", batch: "8", lr: "0.02" });
  const metrics = await page.evaluate(() => window.savantPage.state.metricsJson);
  assert.equal(metrics.label_sep, "|");
  assert.equal(metrics.thresholds.length, 3);
  assert.ok(metrics.f1_micro != null && metrics.baseline_val_f1_micro != null, JSON.stringify(metrics));
  assert.match(await page.textContent("#comparison"), /Validation micro-F1: the fine-tuned specialist/);
  assert.match(await page.textContent("#eval h3"), /micro-F1 .* subset accuracy/);
  // The average with the one-vs-rest baseline is offered (weight and thresholds chosen on val);
  // the model's own sets first.
  assert.ok(metrics.ensemble_weight != null && metrics.ensemble_val_f1_micro != null, JSON.stringify(metrics));
  assert.ok(!(await page.locator("#predict-ensemble-box").isHidden()));
  await page.uncheck("#predict-ensemble");
  await page.fill("#predict-input", TEXTS.join("\n"));
  await page.click("#predict-btn");
  await page.waitForFunction(() => window.savantPage.state.predictions?.sets != null);
  const pred = await page.evaluate(() => window.savantPage.state.predictions);
  const dir = join(OUT, "export-label-sets");
  const links = page.locator("#exports a");
  const names = [];
  for (let i = 0; i < (await links.count()); i++) {
    const name = await links.nth(i).getAttribute("data-file");
    names.push(name);
    await download(page, links.nth(i), join(dir, name));
  }
  assert.ok(names.includes("adapter/savant_thresholds.json") && names.includes("savant_ensemble.json"), names.join(", "));
  assert.equal(JSON.parse(readFileSync(join(dir, "adapter/config.json"), "utf8")).problem_type, "multi_label_classification");
  const input = join(dir, "texts.csv");
  writeFileSync(input, "text\n" + TEXTS.map((t) => `"${t}"`).join("\n") + "\n");
  const same = (file, more, shown) => {
    const out = join(dir, file);
    execFileSync(SAVANT, ["predict", "--model", TINY, "--adapter", join(dir, "adapter"), input, "-o", out, ...more]);
    const lines = readFileSync(out, "utf8").trim().split("\n");
    const header = lines[0].split(",");
    const cells = lines.slice(1).map((l) => l.split(","));
    assert.deepEqual(cells.map((c) => c[header.indexOf("pred")]), shown.sets);
    const worst = Math.max(...cells.flatMap((c, i) => shown.labels.map((l, j) => Math.abs(Number(c[header.indexOf(`prob_${l}`)]) - shown.probs[i][j]))));
    assert.ok(worst <= 1e-4, `page vs savant predict ${more.join(" ")}: ${worst}`);
  };
  same("cli.csv", [], pred);
  // The page's average is savant predict --ensemble with the exported file: the same sets.
  await page.check("#predict-ensemble");
  await page.click("#predict-btn");
  await page.waitForFunction(() => window.savantPage.state.predictions?.ensemble === true);
  same("cli_ensemble.csv", ["--ensemble", join(dir, "savant_ensemble.json")], await page.evaluate(() => window.savantPage.state.predictions));
  await context.close();
});

// Training on the CPU uses a helper worker per further core: each step's parts go to the workers
// and come back as gradients. The run must be the one a single worker trains with the same parts:
// the same losses, to the last bit.
test("helper workers take the very steps one worker takes", async () => {
  const { context, page, logs } = await openPage();
  const tiny = Object.fromEntries(TINY_FILES.map((f) => [f, [...readFileSync(join(TINY, f))]]));
  const words = [["billing charge fee", "billing"], ["fraud stolen card", "fraud"], ["other question", "misc"]];
  const csv = "text,label\n" + Array.from({ length: 48 }, (_, i) => `${words[i % 3][0]} ${["the", "a", "my", "this", "our"][i % 5]},${words[i % 3][1]}`).join("\n") + "\n";
  const out = await page.evaluate(
    async ({ tiny, csv }) => {
      const files = () => Object.fromEntries(Object.entries(tiny).map(([k, v]) => [k, new Uint8Array(v).buffer]));
      const table = () => new TextEncoder().encode(csv).buffer;
      // A random head: the probe's embedding calls of step() would take the 5 calls counted here.
      const options = { mode: "lora", batch_size: 8, max_len: 16, epochs: 1, log_every: 1, parts: 2, lr: 0.01, head_init: "random" };
      const request = { model_name: "tiny", format: "csv", backend: "cpu", options };
      const run = (workers) =>
        window.savantPage.call("benchSteps", { files: files(), train: table(), val: table(), request, steps: 5, workers });
      return { cores: navigator.hardwareConcurrency, one: await run(1), two: await run(2) };
    },
    { tiny, csv },
  );
  assert.ok(out.cores >= 2, `this test needs 2 cores; Chromium reports ${out.cores}`);
  assert.equal(out.one.info.workers, 1);
  assert.equal(out.two.info.workers, 2, `two workers: ${JSON.stringify(out.two.info)}`);
  assert.equal(out.two.info.parts, 2);
  assert.equal(out.one.losses.length, 5);
  assert.ok(out.one.losses.every(Number.isFinite), JSON.stringify(out.one.losses));
  assert.deepEqual(out.two.losses, out.one.losses, "the helped run took other steps");

  // The page's log lines are savant train's train_log.jsonl lines for the same run, less the
  // clock's fields (the page has no clock in core): the same keys, batches, schedule and FLOPs,
  // and the same losses up to the wasm and native matrix kernels' rounding.
  const dir = join(OUT, "events");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "t.csv"), csv);
  execFileSync(SAVANT, ["train", "--model", TINY, "--train", join(dir, "t.csv"), "--val", join(dir, "t.csv"), "--mode", "lora",
    "--batch-size", "8", "--max-len", "16", "--epochs", "1", "--log-every", "1", "--threads", "2", "--lr", "0.01",
    "--head-init", "random", "--device", "cpu", "--overwrite", "-o", join(dir, "run")], { stdio: "ignore" });
  const cli = readFileSync(join(dir, "run/train_log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const clock = ["tokens_per_second", "samples_per_second", "model_tflops_per_second", "mfu", "seconds"];
  const pageSteps = out.one.events.filter((e) => e.event === "step");
  assert.equal(pageSteps.length, 5);
  pageSteps.forEach((line, i) => {
    const want = { ...cli[i] };
    for (const k of clock) delete want[k];
    assert.deepEqual(Object.keys(line).sort(), Object.keys(want).sort(), `step ${i + 1}: keys`);
    for (const k of Object.keys(want)) {
      if (k === "loss") assert.ok(Math.abs(line.loss - want.loss) <= 1e-4 * Math.abs(want.loss), `step ${i + 1}: loss ${line.loss} vs ${want.loss}`);
      else assert.deepEqual(line[k], want[k], `step ${i + 1}: ${k}`);
    }
  });
  await noError(page, logs);
  await context.close();
});

// Masked-LM pretraining in the page: core's run (savant pretrain's), on a table of unlabelled
// texts. The held-out perplexity falls; the steps mask the same windows as the CLI's run with the
// same settings (same counts in each log line, the same perplexity before up to the wasm and
// native kernels' rounding); the exported BertForMaskedLM folder loads in savant embed.
test("pretraining in the page: the loss falls, the steps are savant pretrain's, the folder loads", async () => {
  const { context, page, logs } = await openPage();
  const folder = join(MODELS, "tiny-base");
  const files = Object.fromEntries(
    ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"].map((f) => [f, [...readFileSync(join(folder, f))]]),
  );
  const words = ["bank", "loan", "card", "fee", "charge", "refund", "patient", "dose", "pain", "contract", "clause", "court"];
  const doc = (i) => Array.from({ length: 6 }, (_, j) => words[(i * 5 + j * 7) % words.length]).join(" ");
  const long = Array.from({ length: 30 }, (_, i) => doc(i)).join(" ");
  const csv = "text\n" + [...Array.from({ length: 60 }, (_, i) => doc(i)), long, ""].join("\n") + "\n";
  const options = { steps: 40, batch_size: 8, max_len: 16, lr: 3e-3, warmup: 0, eval_docs: 8, log_every: 10, shuffle_buffer: 16 };
  const out = await page.evaluate(
    async ({ files, csv, options }) => {
      const bytes = (v) => new Uint8Array(v).buffer;
      const request = { model_name: "tiny-base", format: "csv", backend: "cpu", options };
      const r = await window.savantPage.call("pretrain", {
        files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, bytes(v)])),
        corpus: new TextEncoder().encode(csv).buffer,
        request,
      });
      return { ...r, files: Object.fromEntries(Object.entries(r.files).map(([k, v]) => [k, [...v]])) };
    },
    { files, csv, options },
  );
  const before = out.info.perplexity_before;
  assert.ok(out.perplexity_after < 0.7 * before, `held-out perplexity ${before} → ${out.perplexity_after}`);
  assert.equal(out.lines.length, 4);
  assert.ok(out.lines[3].loss < out.lines[0].loss, JSON.stringify(out.lines.map((l) => l.loss)));

  const dir = join(OUT, "pretrain");
  mkdirSync(join(dir, "page/model"), { recursive: true });
  writeFileSync(join(dir, "corpus.csv"), csv);
  for (const [name, bytes] of Object.entries(out.files)) writeFileSync(join(dir, "page", name), Buffer.from(bytes));
  execFileSync(SAVANT, ["pretrain", "--model", folder, "--corpus", join(dir, "corpus.csv"), "--steps", "40", "--batch-size", "8",
    "--max-len", "16", "--lr", "3e-3", "--warmup", "0", "--eval-docs", "8", "--log-every", "10", "--shuffle-buffer", "16",
    "--threads", "1", "--device", "cpu", "--overwrite", "-o", join(dir, "cli")], { stdio: "ignore" });
  const cli = readFileSync(join(dir, "cli/pretrain_log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const metrics = JSON.parse(readFileSync(join(dir, "cli/metrics.json"), "utf8"));
  const pageMetrics = JSON.parse(readFileSync(join(dir, "page/metrics.json"), "utf8"));
  assert.ok(Math.abs(metrics.perplexity_before - before) <= 1e-4 * before, `perplexity before: cli ${metrics.perplexity_before}, page ${before}`);
  assert.deepEqual(out.lines.map((l) => [l.step, l.tokens, l.predicted_tokens]), cli.map((l) => [l.step, l.tokens, l.predicted_tokens]));
  for (const k of ["documents", "windows", "split_into_windows", "skipped", "held_out_windows", "windows_trained"]) {
    assert.deepEqual(pageMetrics[k], metrics[k], k);
  }
  const config = JSON.parse(readFileSync(join(dir, "page/model/config.json"), "utf8"));
  assert.equal(config.architectures[0], "BertForMaskedLM");
  writeFileSync(join(dir, "texts.csv"), "text\nthe bank charged a fee\n");
  execFileSync(SAVANT, ["embed", "--model", join(dir, "page/model"), join(dir, "texts.csv"), "-o", join(dir, "emb.jsonl")]);
  await noError(page, logs);
  await context.close();
});

function listFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...listFiles(p).map((f) => `${e}/${f}`));
    else out.push(e);
  }
  return out;
}

// A fine-tuned folder predicts in the page without training (savant predict --model), and a base
// with an adapter folder on it (--adapter), with int8 projections (--int8, the page's wasm SIMD
// kernel): the same probabilities as the CLI's, within 1e-4 (the integer sums are exact; the rest
// is float rounding).
test("a model folder and an adapter predict in the page as savant predict does, in f32 and int8, and quantise as savant quantize does", async () => {
  const { context, page, logs } = await openPage();
  const dir = join(OUT, "folder-predict");
  mkdirSync(dir, { recursive: true });
  const words = [["billing charge fee", "billing"], ["fraud stolen card", "fraud"], ["other question", "misc"]];
  writeFileSync(join(dir, "t.csv"), "text,label\n" + Array.from({ length: 24 }, (_, i) => `${words[i % 3][0]} ${i},${words[i % 3][1]}`).join("\n") + "\n");
  execFileSync(SAVANT, ["train", "--model", TINY, "--train", join(dir, "t.csv"), "--val", join(dir, "t.csv"), "--mode", "lora",
    "--batch-size", "8", "--max-len", "16", "--epochs", "1", "--lr", "0.01", "--device", "cpu", "--overwrite", "-o", join(dir, "run")],
    { stdio: "ignore" });
  const input = join(dir, "texts.csv");
  writeFileSync(input, "text\n" + TEXTS.map((t) => JSON.stringify(t)).join("\n") + "\n");
  const cliProbs = (name, labels, more) => {
    const out = join(dir, name);
    execFileSync(SAVANT, ["predict", "--model", TINY, input, "--text", "text", "-o", out, "--device", "cpu", ...more], { stdio: "ignore" });
    const lines = readFileSync(out, "utf8").trim().split("\n");
    const header = lines[0].split(",");
    assert.equal(lines.length - 1, TEXTS.length);
    // The probabilities are the last columns (texts may hold commas).
    return lines.slice(1).map((line) => {
      const cells = line.split(",").slice(-labels.length);
      return labels.map((l) => Number(cells[header.slice(-labels.length).indexOf(`prob_${l}`)]));
    });
  };
  const differ = (a, b) => Math.max(...a.flatMap((row, i) => row.map((p, j) => Math.abs(p - b[i][j]))));

  await pickTinyModel(page);
  await page.fill("#predict-input", TEXTS.join("\n"));
  const predict = async (int8) => {
    await page.evaluate(() => (window.savantPage.state.predictions = null));
    await page.setChecked("#predict-int8", int8);
    await page.click("#predict-folder-btn");
    await page.waitForFunction(() => window.savantPage.state.predictions != null || !document.getElementById("error").hidden);
    await noError(page, logs);
    return page.evaluate(() => window.savantPage.state.predictions);
  };
  // The folder's own head, in f32 (auto: WebGPU here) and int8 (the CPU).
  const f32 = await predict(false);
  assert.equal(f32.probs.length, TEXTS.length);
  const worst = differ(cliProbs("f32.csv", f32.labels, []), f32.probs);
  assert.ok(worst <= 1e-4, `folder f32: page vs savant predict differ by ${worst}`);
  const int8 = await predict(true);
  assert.match(await page.locator("#predict-folder-status").textContent(), /on cpu, int8 projections/);
  // On the CPU the texts are shared with the helper workers (one per further core, up to 3).
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  if (cores > 1) assert.match(await page.locator("#predict-folder-status").textContent(), new RegExp(`${Math.min(cores, 4)} workers`));
  const worst8 = differ(cliProbs("int8.csv", int8.labels, ["--int8"]), int8.probs);
  assert.ok(worst8 <= 1e-4, `folder int8: page vs savant predict --int8 differ by ${worst8}`);
  assert.ok(differ(int8.probs, f32.probs) > 0, "int8 gave f32's probabilities to the bit: not quantised");
  // The adapter folder on the same base, int8.
  await page.setInputFiles("#adapter-folder", join(dir, "run/adapter"));
  const adapted = await predict(true);
  assert.match(await page.locator("#predict-folder-status").textContent(), /\+ adapter: .* on cpu, int8 projections/);
  const worstA = differ(cliProbs("adapter_int8.csv", adapted.labels, ["--adapter", join(dir, "run/adapter"), "--int8"]), adapted.probs);
  assert.ok(worstA <= 1e-4, `adapter int8: page vs savant predict --adapter --int8 differ by ${worstA}`);
  assert.ok(differ(adapted.probs, int8.probs) > 0, "the adapter changed nothing");
  console.log(`folder predict: f32 ${worst.toExponential(2)}, int8 ${worst8.toExponential(2)}, adapter int8 ${worstA.toExponential(2)}`);
  // "Save an int8 copy": the base with its adapter quantised in the page, byte for byte the folder
  // `savant quantize --model <base> --adapter <adapter>` writes (its savant_quantize.json aside).
  await page.click("#quantize-btn");
  await page.waitForFunction(() => window.savantPage.state.quantized != null || !document.getElementById("error").hidden);
  await noError(page, logs);
  const pageFiles = await page.evaluate(() =>
    Object.fromEntries(Object.entries(window.savantPage.state.quantized).map(([n, b]) => [n, Array.from(b)])),
  );
  const qdir = join(dir, "int8");
  execFileSync(SAVANT, ["quantize", "--model", TINY, "--adapter", join(dir, "run/adapter"), "-o", qdir], { stdio: "ignore" });
  // (The page was given TINY_FILES: the folder's vocab.txt stays behind, as it was never picked.)
  const cliNames = readdirSync(qdir).filter((n) => n !== "savant_quantize.json" && n !== "vocab.txt").sort();
  assert.deepEqual(Object.keys(pageFiles).sort(), cliNames);
  for (const n of cliNames) assert.ok(Buffer.from(pageFiles[n]).equals(readFileSync(join(qdir, n))), `${n}: page and savant quantize differ`);
  assert.equal(await page.locator("#quantize-downloads a").count(), cliNames.length);
  await context.close();
});


test("bad input: a message on the page, the data kept, the tab responsive", async () => {
  const { context, page, logs } = await openPage();
  // Keep the worker's GPU device reachable (before it is requested) to lose it later.
  page.on("worker", (w) => instrumentGpu(w));
  for (const w of page.workers()) await instrumentGpu(w);
  const bad = join(OUT, "bad");
  mkdirSync(bad, { recursive: true });
  const expectError = async (pattern) => {
    await page.waitForSelector("#error:not([hidden])", { timeout: 120_000 });
    const text = await page.locator("#error").textContent();
    assert.match(text, pattern);
    return text;
  };

  // A file that is not text.
  const binary = join(bad, "scan.csv");
  writeFileSync(binary, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0xff, 0xfe, 0x00, 0x01]));
  await page.setInputFiles("#data-file", binary);
  console.log("not text:", await expectError(/scan\.csv/));
  await shot(page, "bad-1-binary");

  // A good file afterwards works; then a label column the file does not have.
  await page.setInputFiles("#data-file", DRUGS);
  await page.waitForSelector("#preview table");
  await page.waitForSelector("#error", { state: "hidden" });
  await page.evaluate(() => {
    const s = document.getElementById("label-col");
    s.append(new Option("category", "category"));
    s.value = "category";
  });
  await page.click("#clean-btn");
  console.log("missing column:", await expectError(/no column named 'category'/));
  await page.selectOption("#label-col", "label");
  await loadAndClean(page, DRUGS, { testShare: "0.6" });
  await noError(page, logs);

  // A model folder missing its weights.
  await page.setInputFiles("#model-files", [join(TINY, "config.json"), join(TINY, "tokenizer.json")]);
  console.log("model without weights:", await expectError(/missing model\.safetensors/));
  await pickTinyModel(page);

  // A batch too large for the GPU's buffers is lowered, and the page says so.
  await train(page, logs, { backend: "webgpu", epochs: "1", batch: "200000" });
  const info = await page.locator("#train-info").textContent();
  assert.match(info, /using batch size \d+ × 24 tokens/);

  // The GPU device lost mid-training (destroyed under the worker's feet).
  await page.selectOption("#backend", "webgpu");
  await page.fill("#epochs", "3");
  await page.fill("#batch-size", "8");
  await page.click("#train-btn");
  await page.waitForFunction(() => window.savantPage.state.losses.length >= 2, null, { timeout: 300_000 });
  let destroyed = false;
  for (const w of page.workers()) destroyed ||= await w.evaluate(() => (self.__gpuDevice ? (self.__gpuDevice.destroy(), true) : false));
  assert.ok(destroyed, "no GPU device to destroy");
  console.log("device lost:", await expectError(/Training: [^]+The GPU device was lost/));
  await shot(page, "bad-2-device-lost");
  // The data is still there and the page trains again on a fresh GPU device.
  assert.ok(await page.evaluate(() => window.savantPage.state.splits != null && window.savantPage.state.model != null));
  assert.equal(await page.locator("#train-btn").isDisabled(), false);
  await train(page, logs, { backend: "webgpu", epochs: "1" });
  assert.equal(await page.locator("#train-info").getAttribute("data-backend"), "webgpu");
  await context.close();
});

// Keeps the worker's GPUDevice reachable so the test can destroy it.
async function instrumentGpu(worker) {
  await worker.evaluate(() => {
    if (!self.GPUAdapter || self.__gpuPatched) return;
    self.__gpuPatched = true;
    const original = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await original.apply(this, args);
      self.__gpuDevice = device;
      return device;
    };
  });
}

test("auto falls back to the CPU, and says why, where WebGPU does not start", async () => {
  // Without --enable-unsafe-webgpu this Chromium has navigator.gpu but no adapter.
  const plain = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium" });
  try {
    const context = await plain.newContext();
    const page = await context.newPage();
    const logs = [];
    page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(pageUrl());
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Ready"));
    await loadAndClean(page, DRUGS, { testShare: "0.6" });
    await pickTinyModel(page);
    await train(page, logs, { backend: "auto", epochs: "1" });
    assert.equal(await page.locator("#train-info").getAttribute("data-backend"), "cpu");
    const info = await page.locator("#train-info").textContent();
    assert.match(info, /on cpu — WebGPU not used: WebGPU did not start/);
    console.log("auto:", info);
  } finally {
    await plain.close();
  }
});

test("a dropped file loads, and Stop ends a run mid-epoch with its results", async () => {
  const { context, page, logs } = await openPage();
  const bytes = [...readFileSync(DRUGS)];
  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], "dropped.csv", { type: "text/csv" }));
    const section = document.getElementById("data");
    section.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
    section.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, bytes);
  await page.waitForFunction(() => window.savantPage.state.file?.name === "dropped.csv");
  await page.waitForSelector("#preview table");
  await page.click("#clean-btn");
  await page.waitForSelector("#clean-report table");
  await page.fill("#test-share", "0.6");
  await page.click("#split-btn");
  await page.waitForFunction(() => window.savantPage.state.splits != null);
  await pickTinyModel(page);
  await page.selectOption("#backend", "cpu");
  await page.fill("#epochs", "20");
  await page.fill("#batch-size", "8");
  await page.fill("#max-len", "24");
  await page.fill("#log-every", "1");
  await page.click("#train-btn");
  await page.waitForFunction(() => window.savantPage.state.losses.length >= 3);
  await page.click("#stop-btn");
  await page.waitForFunction(() => /Stopped/.test(document.getElementById("status").textContent), null, { timeout: 120_000 });
  await noError(page, logs);
  const progress = await page.locator("#train-progress");
  const [value, max] = [Number(await progress.getAttribute("value")), Number(await progress.getAttribute("max"))];
  assert.ok(value >= 3 && value < max / 2, `stopped at step ${value} of ${max}`);
  assert.match(await page.locator("#eval h3").textContent(), /macro-F1/);
  assert.ok((await page.locator("#exports a").count()) >= 3, "the adapter can be downloaded after a stop");
  await shot(page, "5-stopped");
  await context.close();
});
