// node simulcast-switch.mjs <publisher-url> <viewer-url>
// A demo-page tab publishes its fake 640x480 camera as two simulcast layers (h, and l at half
// size); a viewer tab watches layer h, then moves to l, then back to h, with the page's
// window.ternSwitchLayer (POST <session>/layer). After each move it waits until it decodes
// frames of the new size, and more than FRAMES of them; a move to a layer the publisher does
// not send (x) must be refused with 400 and change nothing. Prints, as JSON, each step: the HTTP
// statuses, frame width, frames and keyframes decoded, freezes, and the inbound SSRC.
import { launch, openTab, fail, videoSteps } from "./tabs.mjs";

const FRAMES = 30;
const STEP_MS = 20_000;

const urls = process.argv.slice(2);
if (urls.length !== 2) await fail("usage: node simulcast-switch.mjs <publisher-url> <viewer-url>");
const publisherName = new URL(urls[0]).searchParams.get("name");
const browser = await launch();
const publisher = await openTab(browser, "publisher", urls[0]);
const viewer = await openTab(browser, "viewer", urls[1]);
const tabs = [publisher, viewer];

const video = videoSteps({ tab: viewer, stream: publisherName, tabs, browser, ms: STEP_MS, frames: FRAMES });
await video.reach("start on h", 640, 0);
for (const [layer, width] of [["l", 320], ["h", 640]]) {
  const statuses = await viewer.page.evaluate((l) => window.ternSwitchLayer(l), layer);
  if (statuses[publisherName] !== 204) await fail(`switch to ${layer}: ${JSON.stringify(statuses)}`, tabs, browser);
  await video.reach(`switched to ${layer}`, width, video.now.frames);
}
// A layer the publisher does not send is refused, and the viewer stays where it is.
const unknown = await viewer.page.evaluate(() => window.ternSwitchLayer("x"));
if (unknown[publisherName] !== 400) await fail(`switch to x: ${JSON.stringify(unknown)}`, tabs, browser);
await video.reach("after refused x", 640, video.now.frames);
console.log(JSON.stringify(video.steps));
await browser.close();
