// node auto-layer.mjs <publisher-url> <viewer-url> <shaper-port> <control-port>
// A demo-page tab publishes its fake 640x480 camera as two simulcast layers (h, and l at half
// size); a viewer tab watches it through a shaping proxy: its WHEP answer is rewritten so that
// the only candidate is a UDP host candidate at the proxy (127.0.0.1:<shaper-port>), and the
// relay's own UDP address is told to the proxy over its control socket ("relay <ip:port>"),
// which also takes "rate <bps>". The proxy starts at 500 kbit/s.
//
// The viewer's tab opens once the publisher sends layer h above the cap (RAMPED_KBPS), and
// sends a disabled camera of its own (the demo page always publishes).
// Steps: frames 320 wide (layer l) within LOW_MS of the WHEP answer; then over WINDOW_MS the
// viewer's video loss (packetsLost / (packetsReceived + packetsLost)) and its new freezes; then
// the cap lifted ("rate 100000000"): up to HIGH_MS for frames 640 wide (highMs, null if not),
// then the video rate arriving over 2 s (kbpsAfter). Prints, as JSON, what was measured; the
// Rust test asserts on it.
import dgram from "node:dgram";
import { launch, openTab, fail, until, watchedVideo } from "./tabs.mjs";

const LOW_MS = 8_000;
const WINDOW_MS = 15_000;
const HIGH_MS = 20_000;
/// Layer h's target rate, kbit/s, before the viewer comes: above the 500 kbit/s cap.
const RAMPED_KBPS = 600;

const [pubUrl, viewUrl, shaperPort, controlPort] = process.argv.slice(2);
if (!controlPort) await fail("usage: node auto-layer.mjs <publisher-url> <viewer-url> <shaper-port> <control-port>");
const publisherName = new URL(pubUrl).searchParams.get("name");

const control = dgram.createSocket("udp4");
const tell = (line) => new Promise((done) => control.send(line, Number(controlPort), "127.0.0.1", () => done()));

// The viewer's WHEP answers: UDP candidates pointed at the proxy, the passive TCP one dropped.
let answeredAt = null;
async function throughShaper(context) {
  await context.route("**/whep/**", async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    const response = await route.fetch();
    let relay = null;
    const sdp = (await response.text()).split("\r\n").flatMap((line) => {
      if (!line.startsWith("a=candidate:")) return [line];
      const f = line.split(" ");
      if (f[2].toLowerCase() !== "udp") return [];
      relay = `${f[4]}:${f[5]}`;
      f[4] = "127.0.0.1";
      f[5] = shaperPort;
      return [f.join(" ")];
    }).join("\r\n");
    if (relay) await tell(`relay ${relay}`);
    answeredAt = Date.now();
    await route.fulfill({ response, body: sdp });
  });
}

// The publisher's simulcast layers as it sends them: rid → kbit/s target, width, fps, limit.
const layers = () => publisher.page.evaluate(async (name) => {
  const out = {};
  (await window.ternState.pcs.get(name).getStats()).forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "video") {
      out[r.rid] = { kbps: Math.round((r.targetBitrate || 0) / 1000), width: r.frameWidth, fps: r.framesPerSecond, limit: r.qualityLimitationReason };
    }
  });
  return out;
}, publisherName);

// The viewer (it publishes too, as the page does) sends a disabled camera: black frames at a
// low rate, so that its encoder and the publisher's decoder of it cost little CPU.
const quietCamera = () => {
  const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    const stream = await getUserMedia(c);
    for (const t of stream.getVideoTracks()) t.enabled = false;
    return stream;
  };
};

const browser = await launch();
const publisher = await openTab(browser, "publisher", pubUrl);
const tabs = [publisher];
// The viewer comes when layer h is sent above the cap (Chromium ramps its rate up first).
let sent = {};
const ramped = await until(20_000, async () => {
  if (!(await publisher.page.evaluate((n) => window.ternState.pcs.get(n)?.connectionState === "connected", publisherName))) return false;
  sent = await layers();
  return sent.h?.kbps >= RAMPED_KBPS;
});
if (!ramped) await fail(`layer h not above ${RAMPED_KBPS} kbit/s: ${JSON.stringify(sent)}`, tabs, browser);
const viewer = await openTab(browser, "viewer", viewUrl, { setup: throughShaper, init: quietCamera });
tabs.push(viewer);

const inbound = () => viewer.page.evaluate(async (name) => {
  const pc = window.ternState.pcs.get(name);
  const out = { received: 0, lost: 0, freezes: 0, width: null, frames: 0, fps: 0, bytes: 0 };
  if (!pc) return out;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      Object.assign(out, { received: r.packetsReceived || 0, lost: r.packetsLost || 0, freezes: r.freezeCount || 0, width: r.frameWidth, frames: r.framesDecoded || 0, fps: r.framesPerSecond, bytes: r.bytesReceived || 0 });
    }
  });
  return out;
}, publisherName);

const result = { before: sent };
let now = {};
if (!(await until(20_000, () => answeredAt !== null))) await fail("the viewer never subscribed", tabs, browser);
const low = await until(LOW_MS, async () => {
  now = await watchedVideo(viewer, publisherName);
  return now.width === 320 && now.frames > 0;
});
if (!low) await fail(`not 320 wide ${LOW_MS} ms after the WHEP answer at 500 kbit/s: ${JSON.stringify(now)}; published ${JSON.stringify(await layers())}`, tabs, browser);
result.lowMs = Date.now() - answeredAt;

const a = await inbound();
await new Promise((r) => setTimeout(r, WINDOW_MS));
const b = await inbound();
const received = b.received - a.received;
const lost = b.lost - a.lost;
Object.assign(result, { windowMs: WINDOW_MS, received, lost, loss: lost / Math.max(1, received + lost), freezes: b.freezes - a.freezes, frames: b.frames - a.frames, widthAfter: b.width, fps: b.fps, published: await layers() });

await tell("rate 100000000");
const lifted = Date.now();
const seen = [];
const high = await until(HIGH_MS, async () => {
  now = await watchedVideo(viewer, publisherName);
  const last = seen[seen.length - 1];
  if (!last || last.keyframes !== now.keyframes || last.width !== now.width) seen.push({ ms: Date.now() - lifted, width: now.width, keyframes: now.keyframes });
  return now.width === 640;
});
result.highMs = high ? Date.now() - lifted : null;
result.afterLifting = seen;
// What arrives now: layer h's rate, or l's.
const c = await inbound();
await new Promise((r) => setTimeout(r, 2000));
const d = await inbound();
result.kbpsAfter = Math.round(((d.bytes - c.bytes) * 8) / 2000);
console.log(JSON.stringify(result));
control.close();
await browser.close();
