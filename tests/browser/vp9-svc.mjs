// node vp9-svc.mjs <publisher-url> <viewer-url>
// A demo-page tab publishes its fake 640x480 camera as one VP9 stream with spatial and
// temporal layers (the publisher URL's &svc=L3T3_KEY); a viewer tab watches it whole, then
// limits itself to the lowest spatial and temporal layer (window.ternLimitLayers, POST
// <session>/layer {"spatial": 0, "temporal": 0}) and must go on decoding smaller frames, then
// lifts the limit and must get full-size frames back. Prints, as JSON, each step: frame width,
// frames and keyframes decoded, freezes, inbound SSRC.
import { launch, openTab, fail, videoSteps, watchedVideo } from "./tabs.mjs";

const FRAMES = 30;
const STEP_MS = 25_000;

const urls = process.argv.slice(2);
if (urls.length !== 2) await fail("usage: node vp9-svc.mjs <publisher-url> <viewer-url>");
const publisherName = new URL(urls[0]).searchParams.get("name");
const browser = await launch();
const publisher = await openTab(browser, "publisher", urls[0]);
const viewer = await openTab(browser, "viewer", urls[1]);
const tabs = [publisher, viewer];

const video = videoSteps({ tab: viewer, stream: publisherName, tabs, browser, ms: STEP_MS, frames: FRAMES });
await video.reach("all layers", 640, 0);
const limited = await viewer.page.evaluate(() => window.ternLimitLayers({ spatial: 0, temporal: 0 }));
if (limited[publisherName] !== 204) await fail(`limit: ${JSON.stringify(limited)}`, tabs, browser);
// The lowest spatial layer is a quarter or half the width, whichever the encoder chose.
let low = null;
const deadline = Date.now() + STEP_MS;
while (Date.now() < deadline && low === null) {
  const now = await watchedVideo(viewer, publisherName);
  if (now.width && now.width < 640) low = now.width;
  else await new Promise((r) => setTimeout(r, 250));
}
if (low === null) await fail(`no smaller frames after the limit: ${JSON.stringify(video.steps)}`, tabs, browser);
await video.reach("lowest layers", low, video.now.frames);
await video.reach("lowest layers, steady", low, video.now.frames);
const lifted = await viewer.page.evaluate(() => window.ternLimitLayers({ spatial: 255, temporal: 255 }));
if (lifted[publisherName] !== 204) await fail(`lift: ${JSON.stringify(lifted)}`, tabs, browser);
await video.reach("all layers again", 640, video.now.frames);
console.log(JSON.stringify(video.steps));
await browser.close();
