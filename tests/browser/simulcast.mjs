// node simulcast.mjs <publisher-url> <viewer-url-h> <viewer-url-l>
// Three demo-page tabs in one room. The publisher sends its fake 640x480 camera as two
// simulcast layers (h: full size, l: half); the two viewers (sending one stream each) watch it
// on layer h and on layer l. Passes when each viewer has decoded more than FRAMES frames of the
// publisher's video; prints, as JSON, the frame width each viewer decodes and the publisher
// sends per layer.
import { launch, openTab, until, fail, watchedVideo } from "./tabs.mjs";

const FRAMES = 30;
const TIMEOUT_MS = 40_000;

const urls = process.argv.slice(2);
if (urls.length !== 3) await fail("usage: node simulcast.mjs <publisher-url> <viewer-url-h> <viewer-url-l>");
const publisherName = new URL(urls[0]).searchParams.get("name");
const browser = await launch();
const publisher = await openTab(browser, "publisher", urls[0]);
const viewers = [await openTab(browser, "h", urls[1]), await openTab(browser, "l", urls[2])];
const tabs = [publisher, ...viewers];

// The viewer's video from the publisher.
const watched = (tab) => watchedVideo(tab, publisherName);
// What the publisher sends, per layer.
const sent = () => publisher.page.evaluate(async (name) => {
  const out = {};
  (await window.ternState.pcs.get(name).getStats()).forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "video") out[r.rid || "single"] = r.frameWidth;
  });
  return out;
}, publisherName);

let seen = [];
const ok = await until(TIMEOUT_MS, async () => {
  seen = [await watched(viewers[0]), await watched(viewers[1])];
  return seen.every((v) => v.frames > FRAMES);
});
if (!ok) await fail(`frames decoded of ${publisherName}: h=${seen[0]?.frames} l=${seen[1]?.frames}, want > ${FRAMES} each within ${TIMEOUT_MS} ms`, tabs, browser);
// Let both layers settle at their sizes: the encoder starts small and ramps up, and a browser
// starts with its lower layers only (h comes when its bandwidth estimate allows; until then
// the relay serves h's viewer from l). The Rust side judges what this ends with.
await until(TIMEOUT_MS, async () => {
  seen = [await watched(viewers[0]), await watched(viewers[1])];
  return seen[0].width >= 320 && seen[0].width === 2 * seen[1].width;
});
console.log(JSON.stringify({ h: seen[0], l: seen[1], sent: await sent() }));
await browser.close();
