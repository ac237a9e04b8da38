// node simulcast-fallback.mjs <publisher-url> <viewer-url>
// A demo-page tab publishes its fake 640x480 camera as two simulcast layers (h, and l at half
// size); a viewer tab watches layer h. The publisher then stops sending h
// (RTCRtpSender.setParameters, encodings[0].active = false), as a browser does when its
// bandwidth or CPU cannot carry it: the viewer must go on decoding, from l (320 wide), without
// asking. Then h comes back, and so must the viewer. Prints, as JSON, each step: frame width,
// frames decoded, freezes and the inbound SSRC.
import { launch, openTab, until, fail } from "./tabs.mjs";

const FRAMES = 30;
const STEP_MS = 20_000;

const urls = process.argv.slice(2);
if (urls.length !== 2) await fail("usage: node simulcast-fallback.mjs <publisher-url> <viewer-url>");
const publisherName = new URL(urls[0]).searchParams.get("name");
const browser = await launch();
const publisher = await openTab(browser, "publisher", urls[0]);
const viewer = await openTab(browser, "viewer", urls[1]);
const tabs = [publisher, viewer];

const watched = () => viewer.page.evaluate(async (name) => {
  const pc = window.ternState.pcs.get(name);
  const out = { frames: 0, width: null, freezes: 0, ssrc: null };
  if (!pc) return out;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      Object.assign(out, { frames: r.framesDecoded || 0, width: r.frameWidth, freezes: r.freezeCount, ssrc: r.ssrc });
    }
  });
  return out;
}, publisherName);
const sendH = (active) => publisher.page.evaluate(async ([name, on]) => {
  const sender = window.ternState.pcs.get(name).getSenders().find((s) => s.track && s.track.kind === "video");
  const params = sender.getParameters();
  params.encodings[0].active = on;
  await sender.setParameters(params);
  return params.encodings.map((e) => `${e.rid}:${e.active}`).join(",");
}, [publisherName, active]);

const steps = [];
let now = await watched();
async function reach(name, width, after) {
  const ok = await until(STEP_MS, async () => {
    now = await watched();
    return now.width === width && now.frames > after + FRAMES;
  });
  if (!ok) await fail(`${name}: want ${width}-wide frames, more than ${FRAMES} after ${after}; have ${JSON.stringify(now)}; steps ${JSON.stringify(steps)}`, tabs, browser);
  steps.push({ step: name, ...now });
}

await reach("watching h", 640, 0);
const off = await sendH(false);
await reach(`publisher sends ${off}`, 320, now.frames);
const on = await sendH(true);
await reach(`publisher sends ${on}`, 640, now.frames);
console.log(JSON.stringify(steps));
await browser.close();
