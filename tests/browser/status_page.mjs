// Drives headless Chromium through /status as an operator would: log in, read the page,
// save a screenshot, press one Requeue button. Prints one JSON object on stdout.
//
// Usage: node status_page.mjs <base url> <username> <password> <event id> <screenshot.png>
// Environment: CHROMIUM (the browser binary), NODE_PATH (where puppeteer-core is).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const puppeteer = require(require.resolve("puppeteer-core", { paths: (process.env.NODE_PATH || "").split(":") }));
const [base, username, password, eventId, screenshot] = process.argv.slice(2);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--font-render-hinting=none"],
  timeout: 30_000,
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  await page.setViewport({ width: 1200, height: 900 });
  const first = await page.goto(`${base}/status`, { waitUntil: "load" });
  const loginUrl = page.url();
  await page.type("#id_username", username);
  await page.type("#id_password", password);
  const [landed] = await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.click("input[type=submit], button[type=submit]"),
  ]);
  const read = () =>
    page.evaluate(() => ({
      url: location.pathname + location.hash,
      text: document.body.innerText,
      svgs: [...document.querySelectorAll("#trend ~ figure svg")].map((svg) => ({
        bars: svg.querySelectorAll("rect").length,
        title: svg.querySelector("title")?.textContent,
        height: svg.getBoundingClientRect().height,
      })),
      runRows: Object.fromEntries(
        [...document.querySelectorAll("section[id^=job-]")].map((s) => [
          s.id,
          s.querySelectorAll("tbody tr").length,
        ]),
      ),
      requeueButtons: document.querySelectorAll("form[action$='/requeue'] button").length,
      hoverTimes: [...document.querySelectorAll("time[datetime]")].slice(0, 3).map((t) => t.title),
    }));
  const before = await read();
  await page.screenshot({ path: screenshot, fullPage: true });
  const [requeued] = await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.click(`button[aria-label="Requeue event ${eventId}"]`),
  ]);
  const after = await read();
  console.log(
    JSON.stringify({
      firstStatus: first.status(),
      loginUrl,
      landedStatus: landed.status(),
      requeuedStatus: requeued.status(),
      before,
      after,
    }),
  );
} finally {
  await browser.close();
}
