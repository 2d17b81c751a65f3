// The annotator: label a table's rows one at a time by keyboard, in table order or the rows the
// loaded model is least sure of first, keep the work in this browser (IndexedDB, never sent
// anywhere) across reloads, and export the labelled rows for `savant clean`. What a label, an
// export or an order means is savant-core's (`annotate`); this file keeps state and draws it.

const DB = "savant-annotate";
const STORE = "work";
// Labels between two automatic re-scorings of the "least sure first" order.
const RESCORE_EVERY = 200;

// ---- IndexedDB: two records, the table (written once) and the progress (after each key) ------

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function dbDo(mode, f) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = f(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("the browser refused to store the labelling work"));
    });
  } finally {
    db.close();
  }
}

const dbGet = (key) => dbDo("readonly", (s) => s.get(key));
const dbPut = (key, value) => dbDo("readwrite", (s) => s.put(value, key));
const dbClear = () => dbDo("readwrite", (s) => s.clear());

// ---- the annotator ---------------------------------------------------------------------------

export function initAnnotator(page) {
  const { $, call, el, table, guarded, status, showError, downloadLink, loadDataFile } = page;
  // { table, source, format, marks, labels, order, pos, history, mode, sinceScore, hints }
  let work = null;
  let embeddings = null; // { model, values: Float32Array, dim } — recomputed after a reload

  const textAt = () => work.table.columns.indexOf(work.table.text_column);
  const row = () => work.order[work.pos];
  // Multi-label rows (the page's Label separator set): number keys toggle labels into the row's
  // set, Enter confirms it; a mark's label is then the set joined by the separator.
  const sep = () => $("label-sep").value;
  let pending = null; // the set being built for the current row (multi-label), or null
  const setOf = (mark) => (mark ? (sep() ? mark.label.split(sep()).filter((l) => l !== "") : [mark.label]) : []);
  const labelledCount = () => work.marks.filter((m) => m != null).length;

  function progress() {
    return {
      marks: work.marks,
      labels: work.labels,
      order: work.order,
      pos: work.pos,
      history: work.history.slice(-500),
      mode: work.mode,
      sinceScore: work.sinceScore,
      hints: work.hints,
      by: $("ann-by").value,
    };
  }

  // Every change is stored before the next key is handled: a reload loses nothing.
  let saving = Promise.resolve();
  function save() {
    const snapshot = progress();
    saving = saving.then(() => dbPut("progress", snapshot)).catch((err) => showError("Keeping the labelling work", err));
    return saving;
  }

  // The text with redaction placeholders ([EMAIL], [PHONE], ...) marked, built as text nodes.
  function renderText(text) {
    const box = $("ann-text");
    box.replaceChildren();
    let last = 0;
    for (const m of text.matchAll(/\[(EMAIL|PHONE|SSN|DATE|MRN|URL|IP|CARD|IBAN|ZIP|ACCOUNT)\]/g)) {
      box.append(text.slice(last, m.index), el("mark", { text: m[0], title: "redacted" }));
      last = m.index + m[0].length;
    }
    box.append(text.slice(last));
  }

  function render() {
    $("ann-box").hidden = work == null;
    $("ann-clear-btn").hidden = work == null;
    if (!work) return;
    const n = work.table.rows.length;
    const done = labelledCount();
    $("ann-progress").textContent = `${done} / ${n} labelled · ${work.table.source}`;
    const counts = Object.fromEntries(work.labels.map((l) => [l, 0]));
    for (const m of work.marks) for (const l of setOf(m)) counts[l] = (counts[l] ?? 0) + 1;
    $("ann-counts").replaceChildren(table(["label", "rows"], Object.entries(counts)));
    $("ann-order").value = work.mode;
    const buttons = work.labels.map((l, i) => {
      const b = el("button", { "data-label": l, text: `${i < 9 ? `${i + 1} ` : ""}${l}` });
      b.addEventListener("click", () => act(() => (sep() ? toggle(l) : label(l))));
      return b;
    });
    $("ann-buttons").replaceChildren(...buttons);
    if (work.pos >= work.order.length) {
      $("ann-where").textContent = `End of the ${work.mode === "uncertain" ? "scored rows" : "table"}.`;
      $("ann-text").replaceChildren();
      $("ann-current").textContent = "";
      return;
    }
    const r = row();
    const mark = work.marks[r];
    const hint = work.hints?.[r];
    $("ann-where").textContent =
      `row ${r + 1} of ${n} (${work.pos + 1} of ${work.order.length} in ${work.mode === "uncertain" ? "least-sure-first" : "table"} order)` +
      (hint ? ` · the model's guess: ${work.labels[hint.predicted]} (entropy ${hint.entropy.toFixed(3)})` : "");
    $("ann-card").dataset.row = r;
    renderText(work.table.rows[r][textAt()]);
    $("ann-current").textContent =
      (mark ? `labelled ${mark.label} by ${mark.by} at ${mark.at}` : "not labelled yet") +
      (pending ? ` · this row's set: ${[...pending].join(sep()) || "(none yet)"} — Enter confirms` : "");
    const chosen = pending ?? new Set(setOf(mark));
    for (const b of buttons) b.classList.toggle("chosen", chosen.has(b.dataset.label));
  }

  // The next row in the order that is not labelled, after the current one (or the end).
  function advance() {
    let p = work.pos + 1;
    while (p < work.order.length && work.marks[work.order[p]] != null) p++;
    work.pos = p;
  }

  function label(name) {
    if (work.pos >= work.order.length) return;
    const r = row();
    work.history.push({ row: r, before: work.marks[r], pos: work.pos });
    work.marks[r] = { label: name, by: $("ann-by").value.trim() || "annotator", at: new Date().toISOString() };
    work.sinceScore++;
    advance();
    if (work.mode === "uncertain" && work.sinceScore >= RESCORE_EVERY) rescore().catch((e) => showError("Re-scoring", e));
  }

  // Multi-label: `name` in or out of the current row's set (which starts as the row's mark).
  function toggle(name) {
    if (work.pos >= work.order.length) return;
    pending ??= new Set(setOf(work.marks[row()]));
    if (pending.has(name)) pending.delete(name);
    else pending.add(name);
  }

  // Multi-label: the built set becomes the row's label (in the label set's order).
  function confirmSet() {
    if (!pending || pending.size === 0) return;
    const set = work.labels.filter((l) => pending.has(l)).join(sep());
    pending = null;
    label(set);
  }

  function skip() {
    if (work.pos >= work.order.length) return;
    work.history.push({ row: null, pos: work.pos });
    work.pos++;
  }

  function undo() {
    const h = work.history.pop();
    if (!h) return;
    if (h.row != null) {
      work.marks[h.row] = h.before ?? null;
      work.sinceScore = Math.max(0, work.sinceScore - 1);
    }
    work.pos = h.pos;
  }

  function move(delta) {
    work.pos = Math.min(Math.max(work.pos + delta, 0), work.order.length);
  }

  function act(change) {
    if (!work) return;
    const at = work.pos;
    change();
    if (work.pos !== at) pending = null;
    render();
    save();
  }

  document.addEventListener("keydown", (event) => {
    if (!work || event.ctrlKey || event.metaKey || event.altKey) return;
    const t = event.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    const k = event.key;
    if (/^[1-9]$/.test(k) && Number(k) <= work.labels.length) {
      const name = work.labels[Number(k) - 1];
      act(() => (sep() ? toggle(name) : label(name)));
    } else if (k === "Enter" && sep()) act(confirmSet);
    else if (k === "s" || k === "S") act(skip);
    else if (k === "u" || k === "U") act(undo);
    else if (k === "ArrowRight") act(() => move(1));
    else if (k === "ArrowLeft") act(() => move(-1));
    else return;
    event.preventDefault();
  });

  // ---- start, continue, clear ----

  $("ann-start-btn").addEventListener("click", () =>
    guarded($("ann-start-btn"), "Labelling", async () => {
      const f = page.state.file;
      if (!f) throw new Error("load a table first");
      const textColumn = $("text-col").value;
      // Its labels so far, if the file has the column (a partly labelled file continues).
      const labelColumn = $("ann-label-col").value.trim() || "label";
      const loaded = await call("annotateLoad", {
        bytes: f.bytes.slice(0),
        request: {
          format: f.format,
          source: f.name,
          text_column: textColumn,
          label_column: labelColumn,
          redact: $("ann-redact").checked ? page.REDACT_ALL : [],
        },
      });
      const typed = $("ann-labels").value.split(",").map((s) => s.trim()).filter((s) => s !== "");
      // Multi-label: the labels inside the file's sets.
      const found = sep() ? [...new Set(loaded.labels_found.flatMap((l) => l.split(sep()).map((x) => x.trim()).filter((x) => x !== "")))] : loaded.labels_found;
      // The typed set, plus any label the file already uses; else the file's own.
      const names = typed.length ? [...typed, ...found.filter((l) => !typed.includes(l))] : found;
      const labels = await call("labelSet", { names });
      loaded.source = f.name;
      loaded.format = f.format;
      const order = loaded.rows.map((_, i) => i);
      work = { table: loaded, marks: loaded.marks, labels, order, pos: 0, history: [], mode: "table", sinceScore: 0, hints: null };
      if (work.marks[0] != null) advance();
      embeddings = null;
      await dbClear();
      await dbPut("table", loaded);
      await save();
      render();
      $("ann-card").focus();
      const bad = loaded.malformed.length ? ` ${loaded.malformed.length} malformed rows were not loaded (first at line ${loaded.malformed[0][0]}: ${loaded.malformed[0][1]}).` : "";
      const keys = sep() ? `Keys 1–${Math.min(labels.length, 9)} toggle labels into the row's set, Enter confirms it.` : `Keys 1–${Math.min(labels.length, 9)} label the row.`;
      status(`Labelling ${f.name}: ${loaded.rows.length} rows, ${labelledCount()} already labelled.${bad} ${keys}`);
    }),
  );

  $("ann-clear-btn").addEventListener("click", () =>
    guarded($("ann-clear-btn"), "Clearing the labelling work", async () => {
      await saving;
      await dbClear();
      work = null;
      embeddings = null;
      render();
      status("The labelling work was cleared from this browser.");
    }),
  );

  // ---- active learning ----

  async function rescore() {
    const model = page.state.model;
    if (!model) throw new Error("load a model (section 2) to order rows by how sure it is");
    const texts = work.table.rows.map((r) => r[textAt()]);
    if (!embeddings || embeddings.model !== model.name || embeddings.rows !== texts.length) {
      $("ann-score-status").textContent = `embedding ${texts.length} rows with ${model.name}…`;
      const files = {};
      for (const [k, v] of Object.entries(model.files)) files[k] = v.slice(0);
      const out = await call("embed", { files, modelName: model.name, texts });
      embeddings = { model: model.name, rows: texts.length, values: out.values, dim: out.dim };
    }
    const classes = work.labels;
    const labelled = [];
    const unlabelled = [];
    work.marks.forEach((m, r) => {
      if (m == null) unlabelled.push(r);
      else if (classes.includes(m.label)) labelled.push([r, classes.indexOf(m.label)]);
    });
    const order = await call("uncertainFirst", {
      embeddings: embeddings.values,
      dim: embeddings.dim,
      labelled,
      classes: classes.length,
      unlabelled,
    });
    work.order = order.map((u) => u.row);
    work.hints = Object.fromEntries(order.map((u) => [u.row, { entropy: u.entropy, predicted: u.predicted }]));
    work.pos = 0;
    work.mode = "uncertain";
    work.sinceScore = 0;
    $("ann-score-status").textContent = `${order.length} unlabelled rows ordered by the model's uncertainty (from ${labelled.length} labels).`;
    render();
    await save();
  }

  $("ann-rescore-btn").addEventListener("click", () => guarded($("ann-rescore-btn"), "Ordering by uncertainty", rescore));
  $("ann-order").addEventListener("change", () =>
    guarded(null, "Changing the order", async () => {
      if ($("ann-order").value === "uncertain") return rescore();
      work.mode = "table";
      work.order = work.table.rows.map((_, i) => i);
      work.hints = null;
      work.pos = -1;
      advance();
      render();
      await save();
    }),
  );

  // ---- export ----

  async function exported(format, labelledOnly) {
    if (labelledOnly && labelledCount() === 0) throw new Error("no row is labelled yet");
    const { output } = await call("annotateExport", {
      table: work.table,
      marks: work.marks,
      request: { format, labelled_only: labelledOnly, spreadsheet_safe: $("csv-safe").checked },
    });
    return output;
  }

  const base = () => work.table.source.replace(/\.[^.]*$/, "");
  for (const [id, format, labelledOnly, suffix] of [
    ["ann-export-csv", "csv", true, "labelled.csv"],
    ["ann-export-jsonl", "jsonl", true, "labelled.jsonl"],
    ["ann-export-all", work0Format, false, "annotations"],
  ]) {
    $(id).addEventListener("click", () =>
      guarded($(id), "Exporting the labels", async () => {
        const fmt = typeof format === "function" ? format() : format;
        const name = `${base()}.${suffix === "annotations" ? `annotations.${fmt}` : suffix}`;
        const out = await exported(fmt, labelledOnly);
        downloadLink($("ann-download"), name, out, "text/plain");
        $("ann-download").textContent = `Download ${name}`;
        $("ann-download").click();
      }),
    );
  }

  function work0Format() {
    return work.table.format === "jsonl" ? "jsonl" : "csv";
  }

  $("ann-use-btn").addEventListener("click", () =>
    guarded($("ann-use-btn"), "Using the labelled rows", async () => {
      const out = await exported("csv", true);
      const name = `${base()}.labelled.csv`;
      await loadDataFile(new File([out], name, { type: "text/csv" }));
      $("label-col").value = work.table.label_column;
      $("text-col").value = work.table.text_column;
    }),
  );

  // ---- a reload continues where the user stopped ----

  (async () => {
    try {
      // Opening creates the database: look first, so a visit that labels nothing stores nothing.
      if (!(await indexedDB.databases()).some((d) => d.name === DB)) return;
      const [stored, p] = await Promise.all([dbGet("table"), dbGet("progress")]);
      if (!stored || !p) return;
      work = { table: stored, ...p, history: p.history ?? [] };
      if (p.by) $("ann-by").value = p.by;
      render();
      status(`Continuing the labelling of ${stored.source}: ${labelledCount()} of ${stored.rows.length} rows labelled.`);
    } catch (err) {
      showError("Reading the kept labelling work", err);
    }
  })();

  return {
    refresh: () => ($("ann-start-btn").disabled = !page.state.file),
    get work() {
      return work;
    },
  };
}
