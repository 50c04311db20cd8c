// Browser test of the web client's transport fallback: the gateways serve
// no WebSockets (TRANSPORTS=stream), as behind a proxy that strips
// `Upgrade`, or only long-polling (TRANSPORTS=poll). Each page's WebSocket
// fails twice, then it runs on the stream (server-sent events, frames
// POSTed), or after two failed streams on long-polls, and says so; two
// users on two gateways still DM both ways, and a reload comes back on the
// same transport.
//
//   PLAYWRIGHT_NODE_PATH=.tools/node/node_modules \
//     node e2e/browser/fallback.mjs http://127.0.0.1:8081 http://127.0.0.1:8082 streaming
//
// Prints "fallback: ok" and exits 0, or what failed and exits 1.
import { randomBytes } from "node:crypto";
import { launchPages, shown } from "./lib.mjs";

const TIMEOUT = 20000;
const PASSWORD = "password123";
const [urlA, urlB, transport = "streaming"] = process.argv.slice(2);
const run = randomBytes(4).toString("hex");
const userA = `fa_${run}`, userB = `fb_${run}`;
const dm = userA < userB ? `dm:${userA}:${userB}` : `dm:${userB}:${userA}`;
let step = "start";
const pageErrors = [];

async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: TIMEOUT, polling: 100 });
  } catch (e) {
    const status = await page.textContent("#status").catch(() => "?");
    throw new Error(`timed out waiting for ${what}; status: ${JSON.stringify(status)}`);
  }
}

const streaming = (t) => document.getElementById("status").textContent.match(/^connected to \S+ \((.+)\)$/)?.[1] === t;

async function register(page, url, user) {
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: TIMEOUT });
  await page.fill("#username", user);
  await page.fill("#password", PASSWORD);
  await page.click("#register");
  await until(page, `${user}: connected by ${transport}`, streaming, transport);
}

async function send(page, text) {
  await page.fill("#body", text);
  await page.locator("#composer button").click();
  await until(page, `own message ${JSON.stringify(text)} acknowledged`, shown, text);
}

async function main() {
  step = "launch chromium";
  const { browser, pages: [pageA, pageB] } = await launchPages(["A", "B"], pageErrors);
  try {
    step = "both register and fall back to the stream";
    await register(pageA, urlA, userA);
    await register(pageB, urlB, userB);

    step = "A DMs B";
    await pageA.fill("#dmUser", userB);
    await pageA.locator("#openDm button").click();
    const hi = `hi over a stream ${run}`;
    await send(pageA, hi);
    await until(pageB, `B: the DM from ${userA} listed`, ([c]) => !!document.querySelector(`#dms li[data-conv="${c}"]`), [dm]);
    await pageB.locator(`#dms li[data-conv="${dm}"]`).click();
    await until(pageB, "B: the DM shown", shown, hi);

    step = "B replies";
    const reply = `reply over a stream ${run}`;
    await send(pageB, reply);
    await until(pageA, "A: the reply shown live", shown, reply);

    step = "A reloads and reads the DM again";
    await pageA.reload({ waitUntil: "domcontentloaded" });
    await until(pageA, `A: back on ${transport}`, streaming, transport);
    await pageA.locator(`#dms li[data-conv="${dm}"]`).click();
    await until(pageA, "A: history over the stream", ([a, b]) => {
      const bodies = [...document.querySelectorAll("#list .msg .body")].map((m) => m.textContent);
      return bodies.includes(a) && bodies.includes(b);
    }, [hi, reply]);

    step = "page errors";
    if (pageErrors.length) throw new Error(`uncaught errors in the page: ${pageErrors.join("; ")}`);
  } finally {
    await browser.close().catch(() => {});
  }
}

const watchdog = setTimeout(() => {
  console.error(`fallback: FAILED: no result after 120 s (at step: ${step})`);
  process.exit(1);
}, 120000);
watchdog.unref();
try {
  await main();
  console.log("fallback: ok");
  process.exit(0);
} catch (e) {
  console.error(`fallback: FAILED at step "${step}" (users ${userA}, ${userB}): ${e.message}`);
  process.exit(1);
}
