// node two-tabs.mjs <page-url-A> <page-url-B>
// Two demo-page tabs in one headless Chromium publish their fake cameras with WHIP and subscribe
// to each other with WHEP; passes when each has decoded more than FRAMES video frames.
import { launch, openTab, framesDecoded, until, fail } from "./tabs.mjs";

const FRAMES = 30;
const TIMEOUT_MS = 30_000;

const urls = process.argv.slice(2);
if (urls.length !== 2) await fail("usage: node two-tabs.mjs <page-url-A> <page-url-B>");
const browser = await launch();
const tabs = [await openTab(browser, "A", urls[0]), await openTab(browser, "B", urls[1])];
const decoded = [0, 0];
const started = Date.now();
const ok = await until(TIMEOUT_MS, async () => {
  for (const [i, tab] of tabs.entries()) decoded[i] = await framesDecoded(tab);
  return decoded.every((n) => n > FRAMES);
});
if (!ok) await fail(`frames decoded A=${decoded[0]} B=${decoded[1]}, want > ${FRAMES} each within ${TIMEOUT_MS} ms`, tabs, browser);
console.log(`ok: frames decoded A=${decoded[0]} B=${decoded[1]} after ${Date.now() - started} ms`);
await browser.close();
