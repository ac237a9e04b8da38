// node publish-without-ssrc.mjs <page-url-A> <page-url-B>
// As two-tabs.mjs, but each tab's WHIP offer reaches the relay without its a=ssrc and
// a=ssrc-group lines (the page's fetch is wrapped before the page loads), so the relay must
// find each publisher's streams by their MID. Passes when each tab has decoded more than FRAMES
// video frames of the other's; prints how many SSRC lines were cut from each tab's offers.
import { launch, openTab, decodeEach, fail } from "./tabs.mjs";

const FRAMES = 30;
const TIMEOUT_MS = 30_000;

function stripSsrcsFromWhipOffers() {
  window.ternSsrcLinesCut = 0;
  const original = window.fetch;
  window.fetch = (resource, options = {}) => {
    if (String(resource).startsWith("/whip/") && typeof options.body === "string") {
      const lines = options.body.split("\r\n");
      const kept = lines.filter((l) => !l.startsWith("a=ssrc"));
      window.ternSsrcLinesCut += lines.length - kept.length;
      options = { ...options, body: kept.join("\r\n") };
    }
    return original(resource, options);
  };
}

const urls = process.argv.slice(2);
if (urls.length !== 2) await fail("usage: node publish-without-ssrc.mjs <page-url-A> <page-url-B>");
const browser = await launch();
const tabs = [
  await openTab(browser, "A", urls[0], { init: stripSsrcsFromWhipOffers }),
  await openTab(browser, "B", urls[1], { init: stripSsrcsFromWhipOffers }),
];
const { decoded, ms } = await decodeEach(tabs, FRAMES, TIMEOUT_MS, browser);
const cut = [];
for (const tab of tabs) cut.push(await tab.page.evaluate(() => window.ternSsrcLinesCut));
console.log(JSON.stringify({ decoded, ssrc_lines_cut: cut, ms }));
await browser.close();
