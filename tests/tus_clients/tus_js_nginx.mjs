// tus-js-client under Node through nginx, for tests/topology/test_tus_nginx.py:
//   node tus_js_nginx.mjs ENDPOINT TOKEN FILE SHA256 PORT CAFILE
// Uploads FILE (read from disk as it is sent) with the client's defaults: one PATCH for the
// whole file, no retries. ENDPOINT names the site (https://portal.example.com/...); every
// request goes to 127.0.0.1:PORT instead, trusting CAFILE, with that name as Host and SNI.
// Prints "done <url> <seconds>".
import { createReadStream, readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, token, path, sha256, port, cafile] = process.argv.slice(2);
const site = new URL(endpoint).hostname;
const started = performance.now();

const upload = new tus.Upload(createReadStream(path), {
  endpoint,
  headers: { Authorization: `Bearer ${token}`, Host: site },
  metadata: { filename: "big.bin", filetype: "application/octet-stream", sha256 },
  retryDelays: null,
  httpStack: new tus.DefaultHttpStack({
    host: "127.0.0.1",
    hostname: "127.0.0.1",
    port: Number(port),
    servername: site,
    ca: readFileSync(cafile),
  }),
  onSuccess() {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`done ${upload.url} ${seconds}`);
  },
  onError(error) {
    console.error(String(error));
    process.exit(1);
  },
});
upload.start();
setTimeout(() => {
  console.error("timed out");
  process.exit(2);
}, 300_000).unref();
