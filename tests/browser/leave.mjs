// node leave.mjs <page-url-A> <page-url-B> <admin-token>
// Two demo-page tabs see each other; then B presses Leave. Within LEFT_MS, A must have dropped
// B's tile and the relay (asked through its admin API) must hold no session of B's and none
// subscribed to B's stream — B's publication and subscription and A's subscription to B all
// ended — while A's own publication lives on. Then A's tab is closed, and within LEFT_MS the
// relay must hold no session at all: the page ends its sessions as it goes away.
import { launch, openTab, framesDecoded, until, fail } from "./tabs.mjs";

const FRAMES = 10;
const TIMEOUT_MS = 30_000;
const LEFT_MS = 10_000;  // generous: under CI load a tab closing can take seconds

const args = process.argv.slice(2);
if (args.length !== 3) await fail("usage: node leave.mjs <page-url-A> <page-url-B> <admin-token>");
const [urlA, urlB, admin] = args;
const nameOf = (u) => new URL(u).searchParams.get("name");
const [nameA, nameB] = [nameOf(urlA), nameOf(urlB)];
const sessionsUrl = `${new URL(urlA).origin}/admin/sessions`;
const sessions = async () => {
  const resp = await fetch(sessionsUrl, { headers: { Authorization: `Bearer ${admin}` } });
  if (resp.status !== 200) throw new Error(`GET /admin/sessions: ${resp.status}`);
  return (await resp.json()).sessions;
};

const browser = await launch();
const tabs = [await openTab(browser, "A", urlA), await openTab(browser, "B", urlB)];
const [a, b] = tabs;
const decoded = [0, 0];
const seeing = await until(TIMEOUT_MS, async () => {
  for (const [i, tab] of tabs.entries()) decoded[i] = await framesDecoded(tab);
  return decoded.every((n) => n > FRAMES);
});
if (!seeing) await fail(`before leaving: frames decoded A=${decoded[0]} B=${decoded[1]}, want > ${FRAMES}`, tabs, browser);
const before = await sessions();

await b.page.click("#leave");
const started = Date.now();
let left = [];
const gone = await until(LEFT_MS, async () => {
  left = (await sessions()).filter((s) => s.identity === nameB || s.stream === nameB);
  const tileGone = await a.page.evaluate((n) => !document.getElementById("tile-" + n), nameB);
  return tileGone && left.length === 0;
});
const after = await sessions();
if (!gone) {
  await fail(`${LEFT_MS} ms after B left: A's tile of B ${await a.page.evaluate((n) => (document.getElementById("tile-" + n) ? "still shown" : "gone"), nameB)}; sessions of or on B still on the relay: ${JSON.stringify(left)}`, tabs, browser);
}
if (!after.some((s) => s.identity === nameA && s.stream === nameA)) await fail(`A's publication ended too: ${JSON.stringify(after)}`, tabs, browser);
const leftAfter = Date.now() - started;

await a.page.close({ runBeforeUnload: true });
const closed = Date.now();
let remaining = [];
if (!(await until(LEFT_MS, async () => (remaining = await sessions()).length === 0))) {
  await fail(`${LEFT_MS} ms after A's tab closed the relay still holds ${JSON.stringify(remaining)}`, [b], browser);
}
console.log(`ok: ${before.length} sessions; ${after.length} ${leftAfter} ms after B left; 0 ${Date.now() - closed} ms after A's tab closed`);
await browser.close();
