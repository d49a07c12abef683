// tus-js-client under Node, for tests/test_tus_clients.py:
//   node tus_js_upload.mjs ENDPOINT TOKEN FILE SHA256 ABORT_AFTER [UPLOAD_URL]
// Uploads FILE with the client's defaults (one PATCH for the whole file, no retries).
// ABORT_AFTER > 0: abort (the connection breaks) once that many bytes are sent, and print
// "aborted <url>". With UPLOAD_URL: resume it (the client asks HEAD first), print
// "resumed at <offset>" and "done <url>".
import { readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, token, path, sha256, abortAfterText, uploadUrl] = process.argv.slice(2);
const abortAfter = Number(abortAfterText);
const data = readFileSync(path);
let aborted = false;
let reportedStart = false;

const upload = new tus.Upload(data, {
  endpoint,
  uploadUrl: uploadUrl || null,
  headers: { Authorization: `Bearer ${token}` },
  metadata: { filename: "js.bin", filetype: "application/octet-stream", sha256 },
  retryDelays: null,
  onProgress(sent) {
    if (uploadUrl && !reportedStart) {
      reportedStart = true;
      console.log(`resumed at ${upload._offset}`);
    }
    if (abortAfter > 0 && sent >= abortAfter && !aborted) {
      aborted = true;
      upload.abort(false).then(() => {
        console.log(`aborted ${upload.url}`);
        process.exit(0);
      });
    }
  },
  onSuccess() {
    console.log(`done ${upload.url}`);
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
}, 90_000).unref();
