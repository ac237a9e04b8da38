// node dd-temporal.mjs <publisher-url> <viewer-url>
// A demo-page tab publishes its fake 640x480 camera as one stream with three temporal layers
// (the publisher URL's &svc=L1T3&codec=AV1 or H264); the relay reads the layers from the
// dependency descriptor. A viewer tab watches it whole, then limits itself to the base temporal
// layer (window.ternLimitLayers, POST <session>/layer {"temporal": 0}) and must go on decoding
// at a lower frame rate, then lifts the limit and must get the full rate back. Prints, as JSON,
// each step: the frame rate measured over WINDOW_MS, frames decoded, freezes, inbound SSRC and
// codec.
import { launch, openTab, fail, until, watchedVideo } from "./tabs.mjs";

const FRAMES = 30;
const STEP_MS = 25_000;
const SETTLE_MS = 1_500;
const WINDOW_MS = 3_000;

const urls = process.argv.slice(2);
if (urls.length !== 2) await fail("usage: node dd-temporal.mjs <publisher-url> <viewer-url>");
const publisherName = new URL(urls[0]).searchParams.get("name");
const browser = await launch();
const publisher = await openTab(browser, "publisher", urls[0]);
const viewer = await openTab(browser, "viewer", urls[1]);
const tabs = [publisher, viewer];

// The inbound video's codec, as the viewer negotiated it.
const codec = () => viewer.page.evaluate(async (name) => {
  const pc = window.ternState.pcs.get(name);
  if (!pc) return null;
  const stats = await pc.getStats();
  let mime = null;
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video" && r.codecId) mime = stats.get(r.codecId)?.mimeType ?? null;
  });
  return mime;
}, publisherName);

const steps = [];
// Lets the rate settle, then records frames decoded per second over WINDOW_MS.
async function step(name) {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const a = await watchedVideo(viewer, publisherName);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const b = await watchedVideo(viewer, publisherName);
  const fps = ((b.frames - a.frames) * 1000) / (Date.now() - t0);
  steps.push({ step: name, fps: Math.round(fps * 10) / 10, codec: await codec(), ...b });
}

const decoding = await until(STEP_MS, async () => (await watchedVideo(viewer, publisherName)).frames > FRAMES);
if (!decoding) await fail(`no video decoded: ${JSON.stringify(await watchedVideo(viewer, publisherName))}`, tabs, browser);
await step("all layers");
const limited = await viewer.page.evaluate(() => window.ternLimitLayers({ temporal: 0 }));
if (limited[publisherName] !== 204) await fail(`limit: ${JSON.stringify(limited)}`, tabs, browser);
await step("base layer");
await step("base layer, steady");
const lifted = await viewer.page.evaluate(() => window.ternLimitLayers({ temporal: 255 }));
if (lifted[publisherName] !== 204) await fail(`lift: ${JSON.stringify(lifted)}`, tabs, browser);
await step("all layers again");
console.log(JSON.stringify(steps));
await browser.close();
