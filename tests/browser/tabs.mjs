// Shared by the browser tests: launch Debian's Chromium headless through playwright-core, open
// demo-page tabs, read what they decoded, and on failure print why with every tab's console.
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.TERN_CHROMIUM || "/usr/bin/chromium";

// Flags that work as root on a closed network.
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
// A fake camera and microphone, granted without a prompt. Pages of such a browser may see
// the host's addresses, so their ICE candidates are plain IPs, not mDNS names.
const MEDIA_FLAGS = [
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  // Loopback host candidates too, so ICE also works where lo is the only interface.
  "--allow-loopback-in-peer-connection",
];

// More flags for one test, space-separated (e.g. a field trial).
const EXTRA_FLAGS = (process.env.TERN_CHROMIUM_ARGS || "").split(" ").filter(Boolean);

/// Exits non-zero with `reason`, then each tab's diagnosis and console.
export async function fail(reason, tabs = [], browser = null) {
  console.error(`FAIL: ${reason}`);
  for (const tab of tabs) {
    console.error(`--- tab ${tab.name}: ${tab.url.replace(/token=[^&]*/, "token=<redacted>")}`);
    try {
      console.error(JSON.stringify(await diagnose(tab), null, 1));
    } catch (e) {
      console.error(`(no diagnosis: ${e})`);
    }
    for (const line of tab.logs) console.error(`  console: ${line}`);
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

/// A headless Chromium; playwright gives it a fresh temporary user-data-dir of its own. With
/// `{ media: false }` it has no camera and grants nothing, like a viewer who never shared one.
export async function launch({ media = true } = {}) {
  if (!existsSync(CHROMIUM)) {
    await fail(`${CHROMIUM} is missing: apt-get install chromium (scripts/test-all.sh does)`);
  }
  const args = [...FLAGS, ...(media ? MEDIA_FLAGS : []), ...EXTRA_FLAGS];
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/// Opens `url` in its own browser context (no shared state between tabs), logging its console.
/// `init`, if given, runs in the page before any of its own scripts (playwright's addInitScript);
/// `setup(context)`, if given, is awaited before the page opens (e.g. to route its requests).
export async function openTab(browser, name, url, { init, setup } = {}) {
  const context = await browser.newContext();
  if (init) await context.addInitScript(init);
  if (setup) await setup(context);
  const page = await context.newPage();
  const tab = { name, url, page, logs: [] };
  page.on("console", (m) => tab.logs.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => tab.logs.push(`[pageerror] ${e.message}`));
  // URLs are cut at "?": the page's query and the event feed's carry the token.
  page.on("requestfailed", (r) => tab.logs.push(`[requestfailed] ${r.method()} ${r.url().split("?")[0]} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) tab.logs.push(`[http ${r.status()}] ${r.request().method()} ${r.url().split("?")[0]}`); });
  await page.goto(url);
  return tab;
}

/// What the tab's subscriptions decoded, received and (with E2EE) rejected.
export async function diagnose(tab) {
  return tab.page.evaluate(async () => {
    const s = window.ternState;
    const out = { status: document.getElementById("status").textContent, e2ee: window.ternE2ee, pcs: {} };
    for (const [name, pc] of s.pcs) {
      const pcOut = { mine: name === s.mine, connection: pc.connectionState, ice: pc.iceConnectionState, inbound: [], pairs: [] };
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp") pcOut.inbound.push({ kind: r.kind, packets: r.packetsReceived, framesReceived: r.framesReceived, framesDecoded: r.framesDecoded });
        if (r.type === "candidate-pair" && r.nominated) pcOut.pairs.push({ state: r.state, requests: r.requestsSent, responses: r.responsesReceived });
      });
      out.pcs[name] = pcOut;
    }
    return out;
  });
}

/// Video frames the tab decoded from the other participants (`window.ternFramesDecoded`).
export function framesDecoded(tab) {
  return tab.page.evaluate(() => window.ternFramesDecoded());
}

/// Video RTP packets the tab received from the other participants, decodable or not.
export function packetsReceived(tab) {
  return tab.page.evaluate(async () => {
    let total = 0;
    for (const [name, pc] of window.ternState.pcs) {
      if (name === window.ternState.mine) continue;
      (await pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp" && r.kind === "video") total += r.packetsReceived || 0; });
    }
    return total;
  });
}

/// Waits up to `ms` until every tab has decoded more than `frames` video frames, or fails
/// with every tab's diagnosis. Returns the counts and the time it took.
export async function decodeEach(tabs, frames, ms, browser) {
  const decoded = tabs.map(() => 0);
  const started = Date.now();
  const ok = await until(ms, async () => {
    for (const [i, tab] of tabs.entries()) decoded[i] = await framesDecoded(tab);
    return decoded.every((n) => n > frames);
  });
  const counts = tabs.map((t, i) => `${t.name}=${decoded[i]}`).join(" ");
  if (!ok) await fail(`frames decoded ${counts}, want > ${frames} each within ${ms} ms`, tabs, browser);
  return { decoded, counts, ms: Date.now() - started };
}

/// Polls `check` (async, returns true when done) every 250 ms until `ms` pass.
export async function until(ms, check) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/// What `tab` receives of `stream`'s video: frames decoded, frame width, keyframes decoded,
/// freezes, the inbound SSRC and how many inbound video streams there are.
export function watchedVideo(tab, stream) {
  return tab.page.evaluate(async (name) => {
    const pc = window.ternState.pcs.get(name);
    const out = { frames: 0, width: null, keyframes: 0, freezes: 0, ssrc: null, videoStreams: 0 };
    if (!pc) return out;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") {
        out.videoStreams += 1;
        Object.assign(out, { frames: r.framesDecoded || 0, width: r.frameWidth, keyframes: r.keyFramesDecoded, freezes: r.freezeCount, ssrc: r.ssrc });
      }
    });
    return out;
  }, stream);
}

/// Records steps of what `tab` receives of `stream`: `reach(name, width, after)` waits up to
/// `ms` for frames `width` wide and more than `frames` decoded after `after`, then records the
/// step (or fails, with every tab's diagnosis). `steps` holds them, `now` the last reading.
export function videoSteps({ tab, stream, tabs, browser, ms, frames }) {
  const s = { steps: [], now: { frames: 0 } };
  s.reach = async (name, width, after) => {
    const ok = await until(ms, async () => {
      s.now = await watchedVideo(tab, stream);
      return s.now.width === width && s.now.frames > after + frames;
    });
    if (!ok) await fail(`${name}: want ${width}-wide frames, more than ${frames} after ${after}; have ${JSON.stringify(s.now)}; steps ${JSON.stringify(s.steps)}`, tabs, browser);
    s.steps.push({ step: name, ...s.now });
  };
  return s;
}
