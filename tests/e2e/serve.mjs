// A static file server for the built page (www/dist), on 127.0.0.1 — what any static host does:
// GET/HEAD of files with their MIME types, nothing else. `node tests/e2e/serve.mjs [port]` serves
// it by hand; the tests and the benchmark import `serve`.
import { createServer } from "node:http";
import { createReadStream, statSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".safetensors": "application/octet-stream",
  ".mjs": "text/javascript; charset=utf-8",
  ".onnx": "application/octet-stream",
};

export const DIST = resolve(fileURLToPath(import.meta.url), "../../../www/dist");

// `mounts` (the browser benchmark's peers): URL prefix → another folder served beside the page.
// `isolate`: COOP/COEP headers, which SharedArrayBuffer (onnxruntime-web's threads) needs.
export function serve(root = DIST, port = 0, { mounts = {}, isolate = false } = {}) {
  const server = createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end();
      return;
    }
    let path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (path.endsWith("/")) path += "index.html";
    let base = root;
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (path.startsWith(prefix)) [base, path] = [dir, path.slice(prefix.length - 1)];
    }
    const file = normalize(join(base, path));
    if (!file.startsWith(base)) {
      res.writeHead(403).end();
      return;
    }
    let size;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error("not a file");
      size = st.size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": size,
      "cache-control": "no-store",
      ...(isolate ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" } : {}),
    });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((ok) =>
    server.listen(port, "127.0.0.1", () => ok({ server, url: `http://127.0.0.1:${server.address().port}/` })),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await serve(DIST, Number(process.argv[2] ?? 8080));
  console.log(`serving ${DIST} at ${url}`);
}
