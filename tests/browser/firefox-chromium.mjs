// node firefox-chromium.mjs <page-url-for-firefox> <page-url-for-chromium>
// Debian's Firefox ESR (driven over WebDriver BiDi by puppeteer-core) and Debian's Chromium
// (playwright-core) open the demo page in one room: each publishes its fake camera with WHIP and
// subscribes to the other's with WHEP. Passes when each has decoded more than FRAMES frames of
// the other's video: two independent WebRTC stacks, with different SDP numbering, through Tern.
import { existsSync } from "node:fs";
import puppeteer from "puppeteer-core";
import { launch, openTab, framesDecoded, diagnose, until, fail } from "./tabs.mjs";

const FIREFOX = process.env.TERN_FIREFOX || "/usr/bin/firefox-esr";
const FRAMES = 30;
const TIMEOUT_MS = 30_000;

const [ffUrl, crUrl] = process.argv.slice(2);
if (!crUrl) await fail("usage: node firefox-chromium.mjs <firefox-page-url> <chromium-page-url>");
if (!existsSync(FIREFOX)) await fail(`${FIREFOX} is missing: apt-get install firefox-esr (scripts/test-all.sh does)`);

const firefox = await puppeteer.launch({
  browser: "firefox",
  executablePath: FIREFOX,
  headless: true,
  extraPrefsFirefox: {
    // A fake camera and microphone, granted without a prompt; host candidates as plain IPs.
    "media.navigator.streams.fake": true,
    "media.navigator.permission.disabled": true,
    "media.peerconnection.ice.obfuscate_host_addresses": false,
  },
});
const ffPage = await firefox.newPage();
// The same shape as tabs.mjs's tabs, so fail() can diagnose it.
const ff = { name: "firefox", url: ffUrl, page: ffPage, logs: [] };
ffPage.on("console", (m) => ff.logs.push(`[${m.type()}] ${m.text()}`));
ffPage.on("pageerror", (e) => ff.logs.push(`[pageerror] ${e.message}`));
await ffPage.goto(ffUrl);

const chromium = await launch();
const cr = await openTab(chromium, "chromium", crUrl);
const decoded = { firefox: 0, chromium: 0 };
const started = Date.now();
const ok = await until(TIMEOUT_MS, async () => {
  decoded.firefox = await ffPage.evaluate(() => window.ternFramesDecoded());
  decoded.chromium = await framesDecoded(cr);
  return decoded.firefox > FRAMES && decoded.chromium > FRAMES;
});
if (!ok) {
  console.error(JSON.stringify({ firefox: await diagnose(ff).catch((e) => String(e)) }));
  await firefox.close().catch(() => {});
  await fail(`frames decoded: Firefox ${decoded.firefox} (of Chromium's video), Chromium ${decoded.chromium} (of Firefox's), want > ${FRAMES} each within ${TIMEOUT_MS} ms`, [cr], chromium);
}
const version = await firefox.version();
console.log(`ok: ${version}: decoded ${decoded.firefox} frames of Chromium's video; Chromium decoded ${decoded.chromium} of Firefox's, after ${Date.now() - started} ms`);
await firefox.close();
await chromium.close();
