// node simulcast-fallback.mjs <publisher-url> <viewer-url>
// A demo-page tab publishes its fake 640x480 camera as two simulcast layers (h, and l at half
// size); a viewer tab watches layer h. The publisher then stops sending h
// (RTCRtpSender.setParameters, encodings[0].active = false), as a browser does when its
// bandwidth or CPU cannot carry it: the viewer must go on decoding, from l (320 wide), without
// asking. Then h comes back, and so must the viewer. Prints, as JSON, each step: frame width,
// frames decoded, freezes and the inbound SSRC.
import { launch, openTab, fail, videoSteps } from "./tabs.mjs";

const FRAMES = 30;
const STEP_MS = 20_000;

const urls = process.argv.slice(2);
if (urls.length !== 2) await fail("usage: node simulcast-fallback.mjs <publisher-url> <viewer-url>");
const publisherName = new URL(urls[0]).searchParams.get("name");
const browser = await launch();
const publisher = await openTab(browser, "publisher", urls[0]);
const viewer = await openTab(browser, "viewer", urls[1]);
const tabs = [publisher, viewer];

const sendH = (active) => publisher.page.evaluate(async ([name, on]) => {
  const sender = window.ternState.pcs.get(name).getSenders().find((s) => s.track && s.track.kind === "video");
  const params = sender.getParameters();
  params.encodings[0].active = on;
  await sender.setParameters(params);
  return params.encodings.map((e) => `${e.rid}:${e.active}`).join(",");
}, [publisherName, active]);

const video = videoSteps({ tab: viewer, stream: publisherName, tabs, browser, ms: STEP_MS, frames: FRAMES });

await video.reach("watching h", 640, 0);
const off = await sendH(false);
await video.reach(`publisher sends ${off}`, 320, video.now.frames);
const on = await sendH(true);
await video.reach(`publisher sends ${on}`, 640, video.now.frames);
console.log(JSON.stringify(video.steps));
await browser.close();
