// node ice-tcp.mjs <udp|tcp> <page-url-A> <page-url-B>
// Two demo-page tabs publish their fake cameras and subscribe to each other (as two-tabs.mjs);
// passes when each has decoded more than FRAMES video frames and every peer connection's
// selected candidate pair runs over the transport named first (its local and remote candidate
// both have that protocol; over TCP, Chromium's side is the active one).
import { launch, openTab, decodeEach, fail } from "./tabs.mjs";

const FRAMES = 30;
const TIMEOUT_MS = 40_000;

const [want, ...urls] = process.argv.slice(2);
if (!["udp", "tcp"].includes(want) || urls.length !== 2) {
  await fail("usage: node ice-tcp.mjs <udp|tcp> <page-url-A> <page-url-B>");
}

/// The selected pair of every peer connection of `tab`: {pc, local, remote, tcpType}.
function selectedPairs(tab) {
  return tab.page.evaluate(async () => {
    const out = [];
    for (const [name, pc] of window.ternState.pcs) {
      const stats = await pc.getStats();
      const byId = new Map();
      stats.forEach((r) => byId.set(r.id, r));
      let pair = null;
      stats.forEach((r) => {
        if (r.type === "transport" && r.selectedCandidatePairId) pair = byId.get(r.selectedCandidatePairId);
      });
      const local = pair && byId.get(pair.localCandidateId);
      const remote = pair && byId.get(pair.remoteCandidateId);
      out.push({ pc: name, local: local?.protocol, remote: remote?.protocol, tcpType: local?.tcpType, port: remote?.port });
    }
    return out;
  });
}

const browser = await launch();
const tabs = [await openTab(browser, "A", urls[0]), await openTab(browser, "B", urls[1])];
const { counts, ms } = await decodeEach(tabs, FRAMES, TIMEOUT_MS, browser);
const pairs = [...(await selectedPairs(tabs[0])), ...(await selectedPairs(tabs[1]))];
// Each tab publishes once and subscribes once.
if (pairs.length !== 4 || !pairs.every((p) => p.local === want && p.remote === want)) {
  await fail(`selected candidate pairs ${JSON.stringify(pairs)}, want 4 over ${want}`, tabs, browser);
}
console.log(`ok: frames decoded ${counts} after ${ms} ms over ${want}: ${JSON.stringify(pairs)}`);
await browser.close();
