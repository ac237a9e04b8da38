// node e2ee.mjs <page-url-A> <page-url-B> <page-url-wrong>
// A and B join with the same end-to-end-encryption passphrase, a third tab with another one.
// Passes when A and B each decode more than FRAMES video frames, every one of them opened by the
// page's AES-GCM decryptor, while the third tab receives the same media and decodes nothing:
// its decryptor rejects every frame, so what the relay forwarded was sealed in the browser.
import { launch, openTab, framesDecoded, packetsReceived, until, fail } from "./tabs.mjs";

const FRAMES = 30;
const TIMEOUT_MS = 30_000;

const urls = process.argv.slice(2);
if (urls.length !== 3) await fail("usage: node e2ee.mjs <page-url-A> <page-url-B> <page-url-wrong>");
const browser = await launch();
const tabs = [
  await openTab(browser, "A", urls[0]),
  await openTab(browser, "B", urls[1]),
  await openTab(browser, "wrong", urls[2]),
];
const [a, b, wrong] = tabs;
const e2ee = (tab) => tab.page.evaluate(() => ({ ...window.ternE2ee }));
let seen = {};
const started = Date.now();
const ok = await until(TIMEOUT_MS, async () => {
  seen = {
    decodedA: await framesDecoded(a),
    decodedB: await framesDecoded(b),
    wrongPackets: await packetsReceived(wrong),
    wrong: await e2ee(wrong),
  };
  return seen.decodedA > FRAMES && seen.decodedB > FRAMES && seen.wrong.rejected > FRAMES;
});
const summary = JSON.stringify(seen);
if (!ok) await fail(`want A, B > ${FRAMES} frames decoded and > ${FRAMES} rejected by the wrong tab within ${TIMEOUT_MS} ms: ${summary}`, tabs, browser);

// Sealed on the way out, opened on the way in.
for (const tab of [a, b]) {
  const s = await e2ee(tab);
  if (!(s.encrypted > FRAMES && s.decrypted > FRAMES)) await fail(`tab ${tab.name} did not seal and open frames: ${JSON.stringify(s)}`, tabs, browser);
}
// The wrong passphrase: media arrives (the relay forwards it) but nothing opens or decodes.
const wrongDecoded = await framesDecoded(wrong);
const w = await e2ee(wrong);
if (wrongDecoded !== 0 || w.decrypted !== 0 || seen.wrongPackets === 0) {
  await fail(`the wrong-passphrase tab decoded ${wrongDecoded} frames, opened ${w.decrypted}, received ${seen.wrongPackets} packets`, tabs, browser);
}
console.log(`ok: ${summary} after ${Date.now() - started} ms`);
await browser.close();
