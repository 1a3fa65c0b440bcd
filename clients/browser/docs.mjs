// Docs in a real browser: opens the service's /docs (Swagger UI) and /redoc
// (ReDoc) in headless Chromium and checks what a person would see and what
// the browser really requests.
//
//   BASE_URL=http://127.0.0.1:8000 node docs.mjs
//
// Environment: BASE_URL (the running service), CHROMIUM (the browser binary,
// default Debian's /usr/bin/chromium: playwright-core downloads no browser),
// SCREENSHOTS (a directory that receives docs.png and redoc.png, optional).
//
// Checks, each counted in the closing "N passed, N failed" line:
//   - /docs renders one operation block per operation of /openapi.json;
//   - "Try it out" + "Execute" on POST /api/v1/analyses sends the schema
//     examples (url https://example.com/article) and gets 201 with them;
//   - /redoc renders one section per operation;
//   - no request leaves the service's origin: every request is routed here,
//     a request to another origin is recorded and aborted, and any recorded
//     one fails the run (so do uncaught page errors).
// Exit status: 0 when every check passed.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
if (!base) {
  console.error("BASE_URL is not set");
  process.exit(2);
}
const origin = new URL(base).origin;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const screenshots = process.env.SCREENSHOTS || "";
// Generous: the machine running this may be heavily loaded.
const timeout = 90_000;

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? ": " + detail : ""}`);
  }
}

// The operations of the served document, as "METHOD path" → operationId.
const spec = await (await fetch(`${base}/openapi.json`)).json();
const operations = new Map();
for (const [path, item] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(item)) {
    operations.set(`${method.toUpperCase()} ${path}`, op.operationId);
  }
}

const userDataDir = mkdtempSync(join(tmpdir(), "docs-browser-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  timeout,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
context.setDefaultTimeout(timeout);

// Every request of every page goes through here; data: and blob: URLs make
// no request and never reach a route.
const foreign = [];
await context.route("**/*", (route) => {
  const url = route.request().url();
  if (new URL(url).origin === origin) {
    return route.continue();
  }
  foreign.push(`${route.request().method()} ${url}`);
  return route.abort("blockedbyclient");
});
const pageErrors = [];

try {
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(`${page.url()}: ${err.message}`));

  // --- Swagger UI -------------------------------------------------------
  await page.goto(`${base}/docs`);
  await page.locator(".opblock").first().waitFor();
  const rendered = await page.$$eval(".opblock", (blocks) =>
    blocks.map((b) => {
      const method = b.querySelector(".opblock-summary-method")?.textContent?.trim() ?? "";
      const path = b.querySelector(".opblock-summary-path")?.getAttribute("data-path") ?? "";
      return `${method} ${path}`;
    }),
  );
  const want = [...operations.keys()].sort();
  check(
    "/docs renders every operation",
    JSON.stringify([...rendered].sort()) === JSON.stringify(want),
    `rendered ${JSON.stringify(rendered.sort())}, want ${JSON.stringify(want)}`,
  );

  const createOp = operations.get("POST /api/v1/analyses");
  const block = page.locator(`#operations-analyses-${createOp}`);
  await block.locator(".opblock-summary").click();
  await block.locator(".try-out__btn").click();
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${base}/api/v1/analyses` && r.request().method() === "POST"),
    block.locator(".execute").click(),
  ]);
  const sent = response.request().postDataJSON();
  const answer = await response.json();
  check(
    "Try it out: POST /api/v1/analyses with the example body answers 201",
    response.status() === 201 && sent.url === "https://example.com/article" && answer.url === sent.url && answer.title === sent.title,
    `status ${response.status()}, sent ${JSON.stringify(sent)}, answer ${JSON.stringify(answer)}`,
  );
  const shownStatus = block.locator(".live-responses-table tr.response .response-col_status");
  await shownStatus.waitFor();
  check("Try it out: Swagger UI shows the 201", (await shownStatus.textContent()).trim() === "201", await shownStatus.textContent());
  if (screenshots) await page.screenshot({ path: join(screenshots, "docs.png"), fullPage: false });

  // --- ReDoc ------------------------------------------------------------
  await page.goto(`${base}/redoc`);
  await page.locator(`[data-section-id="operation/${createOp}"]`).waitFor();
  const sections = await page.$$eval('[data-section-id^="operation/"]', (els) =>
    els.map((e) => e.getAttribute("data-section-id").slice("operation/".length)),
  );
  const wantIDs = [...operations.values()].sort();
  check(
    "/redoc renders every operation",
    JSON.stringify([...new Set(sections)].sort()) === JSON.stringify(wantIDs),
    `rendered ${JSON.stringify(sections)}, want ${JSON.stringify(wantIDs)}`,
  );
  // Let late loads (images, fonts, the search worker) happen before counting.
  await page.waitForLoadState("networkidle");
  if (screenshots) await page.screenshot({ path: join(screenshots, "redoc.png"), fullPage: false });
  await page.close();
} catch (err) {
  check("the pages load and respond", false, err.stack || String(err));
} finally {
  check("no request leaves the service's origin", foreign.length === 0, foreign.join(", "));
  check("no uncaught error on the pages", pageErrors.length === 0, pageErrors.join(" | "));
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
