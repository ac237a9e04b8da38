// node publish-bandwidth.mjs <page-url> <seconds>
// One demo-page tab publishes its fake camera; after <seconds> it prints, as JSON, what the
// publisher's sender does: video bitrate over the last 2 s, Chromium's bandwidth estimate
// (availableOutgoingBitrate), target bitrate, resolution and quality limitation.
import { launch, openTab, until, fail } from "./tabs.mjs";

const [url, secondsArg] = process.argv.slice(2);
if (!url) await fail("usage: node publish-bandwidth.mjs <page-url> <seconds>");
const seconds = Number(secondsArg || 10);
const browser = await launch();
const tab = await openTab(browser, "pub", url);
const connected = await until(15_000, () => tab.page.evaluate(() => {
  const s = window.ternState;
  const pc = s.mine && s.pcs.get(s.mine);
  return !!pc && pc.connectionState === "connected";
}));
if (!connected) await fail("the publisher never connected", [tab], browser);
const sample = () => tab.page.evaluate(async () => {
  const s = window.ternState;
  const out = { at: performance.now() };
  const stats = await s.pcs.get(s.mine).getStats();
  stats.forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "video") {
      out.bytes = r.bytesSent; out.target = r.targetBitrate; out.width = r.frameWidth; out.height = r.frameHeight;
      out.fps = r.framesPerSecond; out.limitation = r.qualityLimitationReason; out.retransmitted = r.retransmittedPacketsSent;
      out.nacks = r.nackCount;
    }
    // The selected pair's (the offer also brings TCP candidates: "nominated" alone may name
    // another pair, without an estimate).
    if (r.type === "transport" && r.selectedCandidatePairId) {
      out.estimate = stats.get(r.selectedCandidatePairId)?.availableOutgoingBitrate;
    }
  });
  return out;
});
await new Promise((r) => setTimeout(r, seconds * 1000));
const a = await sample();
await new Promise((r) => setTimeout(r, 2000));
const b = await sample();
const kbps = Math.round(((b.bytes - a.bytes) * 8) / (b.at - a.at));
console.log(JSON.stringify({ kbps, estimate_kbps: b.estimate && Math.round(b.estimate / 1000), target_kbps: b.target && Math.round(b.target / 1000), width: b.width, height: b.height, fps: b.fps, limitation: b.limitation, nacks: b.nacks, retransmitted: b.retransmitted }));
await browser.close();
