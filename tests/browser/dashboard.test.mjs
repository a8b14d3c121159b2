// tests/browser/dashboard.test.mjs — trackerd's dashboard in a real browser:
// Debian's headless Chromium (/usr/bin/chromium) driven by playwright-core
// (no browser download). Starts the real trackerd and fake peers on
// 127.0.0.1 and checks, without reloading the page: no console errors, a peer
// started after the page opened appears within 2 s, a publish shows in the
// event feed, the ping button shows a round trip, search filters the index,
// and after the tracker restarts on the same port a ping still works.
// Saves screenshots of the page (wide and phone) for the README.
//
// Usage: node dashboard.test.mjs TRACKERD FAKE_PEER TRACKERCTL OUT_DIR
// Exit: 0 passed, 1 failed, 77 skipped (Chromium cannot start here).
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [trackerd, fakePeer, trackerctl, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error("usage: node dashboard.test.mjs TRACKERD FAKE_PEER TRACKERCTL OUT_DIR");
  process.exit(2);
}
const chromiumPath = "/usr/bin/chromium";
const dir = mkdtempSync(join(tmpdir(), "dash-"));
const children = [];

function start(binary, args, readyText) {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let output = "";
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(binary + " did not get ready: " + output)), 10000);
    const look = (chunk) => {
      output += chunk;
      const m = readyText.exec(output);
      if (m) { clearTimeout(timer); resolve(m); }
    };
    child.stdout.on("data", look);
    child.stderr.on("data", look);
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(binary + " exited " + code + ": " + output)); });
  });
  return { child, ready };
}

async function startTracker(httpPort = 0) {
  const t = start(trackerd, ["--config", "/dev/null", "--listen", "127.0.0.1:0", "--admin-socket", join(dir, "t.sock"),
                             "--http-listen", "127.0.0.1:" + httpPort],
                  /dashboard, \/metrics and API on http:\/\/127\.0\.0\.1:(\d+)\/[\s\S]*listening for peers on 127\.0\.0\.1:(\d+)/);
  const m = await t.ready;
  return { http: Number(m[1]), peers: Number(m[2]), child: t.child };
}

// SIGTERM, then waits (at most 5 s) until the process has exited.
async function stop(child) {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error("tracker did not stop")), 5000))]);
}

async function startPeer(port, name, publish = []) {
  const args = ["--tracker", "127.0.0.1:" + port, "--name", name, "--port", String(7000 + children.length)];
  for (const p of publish) args.push("--publish", p);
  await start(fakePeer, args, /ready\n/).ready;
}

// Polls `condition` (async) every 50 ms until it is true or `ms` passed. The
// page's content policy forbids eval, which page.waitForFunction needs.
async function waitFor(what, condition, ms) {
  const until = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > until) throw new Error("timed out after " + ms + " ms waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function cleanup() {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

let browser;
try {
  const ports = await startTracker();
  const base = "http://127.0.0.1:" + ports.http + "/";
  const MiB = 1 << 20;
  await startPeer(ports.peers, "alice", ["holiday-photos.tar:" + 734 * MiB, "song.ogg:" + 4 * MiB, "notes.txt:2048"]);
  await startPeer(ports.peers, "bob", ["song.ogg:" + 4 * MiB, "debian-12.iso:" + 658 * MiB]);

  try {
    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", "--disable-gpu"] });
  } catch (e) {
    console.log("SKIP: Chromium cannot start here: " + e.message.split("\n")[0]);
    cleanup();
    process.exit(77);
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base);
  await page.waitForSelector("#status.live", { timeout: 5000 });
  await page.waitForSelector('#peers tr[data-peer="bob"]', { timeout: 5000 });

  // A peer started after the page opened appears within 2 s, without a reload.
  const before = Date.now();
  await startPeer(ports.peers, "carol", ["lecture-01.mp4:" + 212 * MiB]);
  await page.waitForSelector('#peers tr[data-peer="carol"]', { timeout: 2000 });
  console.log("ok: carol appeared " + (Date.now() - before) + " ms after she started");

  // A publish shows in the event feed.
  await startPeer(ports.peers, "dave", ["new-release.tar.gz:" + 31 * MiB]);
  await page.locator("#events li").filter({ hasText: "published" }).filter({ hasText: "new-release.tar.gz" })
    .first().waitFor({ timeout: 2000 });
  console.log("ok: dave's publish is in the event feed");

  // The ping button shows a round trip.
  await page.click('#peers tr[data-peer="alice"] button');
  await page.locator('#peers tr[data-peer="alice"] td:nth-child(5)').filter({ hasText: /yes · \d+\.\d\d ms/ })
    .waitFor({ timeout: 3000 });
  console.log("ok: ping shows " + await page.textContent('#peers tr[data-peer="alice"] td:nth-child(5)'));

  // Search filters the index (once it shows dave's publish: the page
  // refreshes the index at most once a second while publishes come in).
  await page.locator("#index tbody tr").filter({ hasText: "new-release.tar.gz" }).waitFor({ timeout: 2000 });
  const all = await page.locator("#index tbody tr").count();
  await page.fill("#search", "song");
  const rows = page.locator("#index tbody tr");
  await waitFor("one row, song.ogg", async () => await rows.count() === 1 &&
    await rows.first().locator("td").first().textContent() === "song.ogg", 2000);
  assert.ok(all > 1, "the index had " + all + " rows before the search");
  await page.fill("#search", "");
  await waitFor(all + " rows again", async () => await rows.count() === all, 2000);
  console.log("ok: search narrowed " + all + " rows to 1 and back");

  // Some traffic for the charts, then the screenshots.
  for (let i = 0; i < 4; i++) {
    for (const host of ["alice", "bob", "carol"]) execFileSync(trackerctl, ["--socket", join(dir, "t.sock"), "discover", host]);
    await page.waitForTimeout(2100);   // one history period: a new point on the charts (a picture, not a sync)
  }
  await page.click('#peers tr[data-peer="bob"] button');
  await page.locator('#peers tr[data-peer="bob"] td:nth-child(5)').filter({ hasText: /ms/ }).waitFor({ timeout: 3000 });
  await page.screenshot({ path: join(outDir, "dashboard.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(outDir, "dashboard-phone.png"), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, "on a phone the page is " + overflow + " px wider than the screen");
  console.log("ok: screenshots in " + outDir + "; no sideways scrolling on a phone");

  // The tracker restarts on the same port (a new page token): the page sees
  // the stream drop and come back, takes the new token, and a ping of a peer
  // of the new tracker shows a round trip, not a 403. The only console errors
  // allowed meanwhile are the page's requests refused while no tracker listened.
  const errorsBefore = errors.length;
  await stop(ports.child);
  await page.waitForSelector("#status.down", { timeout: 5000 });
  const again = await startTracker(ports.http);
  assert.equal(again.http, ports.http);
  await page.waitForSelector("#status.live", { timeout: 5000 });
  await startPeer(again.peers, "erin", ["after-restart.bin:" + MiB]);
  await page.waitForSelector('#peers tr[data-peer="erin"]', { timeout: 3000 });
  await page.click('#peers tr[data-peer="erin"] button');
  await page.locator('#peers tr[data-peer="erin"] td:nth-child(5)').filter({ hasText: /yes · \d+\.\d\d ms/ })
    .waitFor({ timeout: 3000 });
  const refused = errors.splice(errorsBefore).filter((text) => !/ERR_CONNECTION_REFUSED/.test(text));
  errors.push(...refused);
  console.log("ok: after a tracker restart the ping shows " +
              await page.textContent('#peers tr[data-peer="erin"] td:nth-child(5)'));

  assert.deepEqual(errors, [], "console errors");
  console.log("ok: no console errors");
  await browser.close();
  cleanup();
  console.log("1 passed, 0 failed");
} catch (e) {
  console.error("FAILED: " + (e.stack || e));
  if (browser) await browser.close().catch(() => {});
  cleanup();
  process.exit(1);
}
