// node two-tabs.mjs <page-url-A> <page-url-B>
// Two demo-page tabs in one headless Chromium publish their fake cameras with WHIP and subscribe
// to each other with WHEP; passes when each has decoded more than FRAMES video frames.
import { launch, openTab, decodeEach, fail } from "./tabs.mjs";

const FRAMES = 30;
const TIMEOUT_MS = 30_000;

const urls = process.argv.slice(2);
if (urls.length !== 2) await fail("usage: node two-tabs.mjs <page-url-A> <page-url-B>");
const browser = await launch();
const tabs = [await openTab(browser, "A", urls[0]), await openTab(browser, "B", urls[1])];
const { counts, ms } = await decodeEach(tabs, FRAMES, TIMEOUT_MS, browser);
console.log(`ok: frames decoded ${counts} after ${ms} ms`);
await browser.close();
