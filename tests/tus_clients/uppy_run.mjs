// Drives Uppy in headless Chromium for tests/test_tus_browser.py:
//   node uppy_run.mjs CHROMIUM PAGE_PORT ENDPOINT TOKEN SIZE PAUSE_AT CHUNK_SIZE
// Bundles uppy_page.mjs, serves it on http://127.0.0.1:PAGE_PORT (an origin other than
// the portal's), opens it and prints the page's window.result as JSON.
import http from "node:http";
import * as esbuild from "esbuild";
import puppeteer from "puppeteer-core";

const [chromium, pagePort, endpoint, token, size, pauseAt, chunkSize] = process.argv.slice(2);
const bundle = await esbuild.build({
  entryPoints: ["uppy_page.mjs"],
  bundle: true,
  format: "iife",
  write: false,
  logLevel: "error",
});
const script = bundle.outputFiles[0].text;
const page = "<!doctype html><meta charset=utf-8><title>uppy</title><script src=/bundle.js></script>";
const server = http.createServer((request, response) => {
  const js = request.url.startsWith("/bundle.js");
  response.writeHead(200, { "Content-Type": js ? "text/javascript" : "text/html" });
  response.end(js ? script : page);
});
await new Promise((resolve) => server.listen(Number(pagePort), "127.0.0.1", resolve));

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const tab = await browser.newPage();
  const consoleLines = [];
  tab.on("console", (message) => consoleLines.push(message.text()));
  const query = new URLSearchParams({ endpoint, token, size, pauseAt, chunkSize });
  await tab.goto(`http://127.0.0.1:${pagePort}/?${query}`);
  await tab.waitForFunction("window.result !== undefined", { timeout: 90_000 });
  const result = await tab.evaluate("window.result");
  console.log(JSON.stringify({ ...result, console: consoleLines }));
} finally {
  await browser.close();
  server.close();
}
