// What the page's end-to-end tests share: the built page served on 127.0.0.1, one headless
// Chromium with (software) WebGPU, fresh pages that record their requests and logs, and the
// paths of the CLI, the real data and the fixtures.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { DIST, serve } from "./serve.mjs";

export const REPO = resolve(fileURLToPath(import.meta.url), "../../..");
const TARGET = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/savant/target");
export const SAVANT = process.env.SAVANT_BIN ?? join(TARGET, "debug/savant");
const HOME = process.env.SAVANT_HOME ?? join(homedir(), ".cache/savant");
export const DRUGS = join(HOME, "datasets/drugs/train.csv");
export const MODELS = join(REPO, "tests/fixtures/model");
export const TINY = join(MODELS, "tiny-cls");
export const TINY_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

let browser, server, base;

// Starts the server and the browser; `out` (emptied) receives the test file's artifacts.
export async function start(out) {
  assert.ok(existsSync(join(DIST, "index.html")), `${DIST} has no built page: run www/build.sh first`);
  assert.ok(existsSync(SAVANT), `${SAVANT}: no savant binary (cargo build -p savant, or set SAVANT_BIN)`);
  if (!existsSync(DRUGS)) execFileSync(SAVANT, ["fetch", "dataset", "drugs"], { stdio: "inherit" });
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  ({ server, url: base } = await serve());
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--enable-unsafe-webgpu", "--disable-quic"],
  });
}

// Where the page is served.
export const pageUrl = () => base;

export async function stop() {
  await browser?.close();
  server?.close();
}

// A fresh page (and browser storage) with every request recorded, and console errors kept for
// failure messages.
export async function openPage() {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 900 } });
  const requests = [];
  context.on("request", (r) => requests.push({ url: r.url(), method: r.method() }));
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  page.on("worker", (w) => w.on("console", (m) => logs.push(`worker ${m.type()}: ${m.text()}`)));
  await page.goto(base);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Ready"), null, {
    timeout: 60_000,
  });
  return { context, page, requests, logs, base };
}

export async function noError(page, logs) {
  const err = await page.locator("#error").textContent();
  assert.equal(await page.locator("#error").isHidden(), true, `the page shows an error: ${err}\n${logs.join("\n")}`);
}

// Waits for the page's error box and checks its message.
export async function expectError(page, pattern, timeout = 120_000) {
  await page.waitForSelector("#error:not([hidden])", { timeout });
  const text = await page.locator("#error").textContent();
  assert.match(text, pattern);
  return text;
}

export async function download(page, locator, to) {
  const [d] = await Promise.all([page.waitForEvent("download"), locator.click()]);
  mkdirSync(dirname(to), { recursive: true });
  await d.saveAs(to);
  return readFileSync(to);
}

// Screenshots are kept for people to look at, not checked. Taking one waits on Chromium's
// compositor, which shares the GPU process with software WebGPU: right after a GPU device is
// destroyed under load it can stay busy past the timeout (seen once in CI). The test's checks
// do not depend on the picture, so a late one is logged, not failed.
export async function shot(page, path) {
  try {
    await page.screenshot({ path, fullPage: true, timeout: 60_000 });
  } catch (e) {
    if (e.name !== "TimeoutError") throw e;
    console.log(`screenshot ${path} not taken: ${e.message.split("\n")[0]}`);
  }
}

// What the page left in the browser's storage.
export async function storedByThePage(page, context) {
  const inPage = await page.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    caches: await caches.keys(),
    databases: (await indexedDB.databases()).map((d) => d.name),
  }));
  return { cookies: (await context.cookies()).length, ...inPage };
}
