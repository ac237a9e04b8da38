// node mdns-viewer.mjs <publisher-page-url> <viewer-token>
// A demo-page tab publishes its fake camera. A viewer in a second Chromium, one that has no
// camera and was granted nothing, subscribes to that stream with WHEP from a script: Chromium
// then hides its host addresses behind mDNS names (<uuid>.local) that Tern cannot resolve.
// ICE-lite must not need them: the relay answers the viewer's checks at their source address
// (a peer-reflexive candidate). Passes when the offer carried only .local host candidates and
// the viewer decoded more than FRAMES frames.
import { launch, openTab, until, fail } from "./tabs.mjs";

const FRAMES = 30;
const TIMEOUT_MS = 30_000;

const args = process.argv.slice(2);
if (args.length !== 2) await fail("usage: node mdns-viewer.mjs <publisher-page-url> <viewer-token>");
const [pageUrl, token] = args;
const url = new URL(pageUrl);
const [room, stream] = [url.searchParams.get("room"), url.searchParams.get("name")];

const browser = await launch();
const publisher = await openTab(browser, "publisher", pageUrl);
const published = await until(TIMEOUT_MS, () => publisher.page.evaluate(() => document.getElementById("status").textContent.startsWith("publishing")));
if (!published) await fail("the publisher tab did not publish", [publisher], browser);

const viewerBrowser = await launch({ media: false });
const viewer = await openTab(viewerBrowser, "viewer", `${url.origin}/healthz`);
// The viewer's page is no demo page: give `fail` what it reads.
await viewer.page.evaluate(() => {
  document.body.innerHTML = '<p id="status"></p>';
  window.ternState = { pcs: new Map(), mine: null };
});
const started = Date.now();
const offer = await viewer.page.evaluate(async ([room, stream, token]) => {
  const pc = new RTCPeerConnection();
  window.ternState.pcs.set(stream, pc);
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addTransceiver("video", { direction: "recvonly" });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
    if (pc.iceGatheringState === "complete") done();
  });
  const sdp = pc.localDescription.sdp;
  const resp = await fetch(`/whep/${room}/${stream}`, {
    method: "POST", headers: { "Content-Type": "application/sdp", "Authorization": "Bearer " + token }, body: sdp,
  });
  const body = await resp.text();
  if (resp.status !== 201) throw new Error(`whep: ${resp.status} ${body}`);
  await pc.setRemoteDescription({ type: "answer", sdp: body });
  return sdp;
}, [room, stream, token]);

const hosts = offer.split("\r\n").filter((l) => l.startsWith("a=candidate:") && l.includes(" udp ")).map((l) => l.split(" ")[4]);
if (hosts.length === 0 || !hosts.every((h) => h.endsWith(".local"))) {
  await fail(`want only mDNS host candidates in the viewer's offer, got ${JSON.stringify(hosts)}`, [publisher, viewer], browser);
}
let decoded = 0;
const framesDecoded = () => viewer.page.evaluate(async () => {
  let total = 0;
  for (const pc of window.ternState.pcs.values()) {
    (await pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp" && r.kind === "video") total += r.framesDecoded || 0; });
  }
  return total;
});
const ok = await until(TIMEOUT_MS, async () => (decoded = await framesDecoded()) > FRAMES);
if (!ok) await fail(`the viewer decoded ${decoded} frames, want > ${FRAMES} within ${TIMEOUT_MS} ms`, [publisher, viewer], browser);
console.log(`ok: viewer offered ${hosts.length} mDNS candidates (${hosts[0]}), decoded ${decoded} frames after ${Date.now() - started} ms`);
await viewerBrowser.close();
await browser.close();
