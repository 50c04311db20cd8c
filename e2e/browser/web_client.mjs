// Browser test of the web client (gateway/src/web/index.html) in headless
// Debian Chromium, driven by playwright-core. Two users on two gateways:
// register, DM both ways, a room message, a room message lost on B's wire
// (B's client must fetch the seq gap from history), then a reload of A's page.
//
//   PLAYWRIGHT_NODE_PATH=.tools/node/node_modules \
//     node e2e/browser/web_client.mjs http://127.0.0.1:8081 http://127.0.0.1:8082
//
// (scripts/lib/servers.sh: ensure_chromium, ensure_playwright.) Prints
// "web client: ok" and exits 0, or prints what failed and exits 1.
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TIMEOUT = 15000; // every wait
const OVERALL = 180000; // the whole run, in case something hangs outside a wait
const PASSWORD = "password123";
const SCREENSHOT = path.join(ROOT, ".tools/web_client.png");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

// ESM `import` ignores NODE_PATH, so playwright-core is required from the
// directories given by PLAYWRIGHT_NODE_PATH / NODE_PATH, then .tools/node.
function loadPlaywright() {
  const require = createRequire(import.meta.url);
  const dirs = [process.env.PLAYWRIGHT_NODE_PATH, process.env.NODE_PATH]
    .filter(Boolean)
    .flatMap((v) => v.split(path.delimiter))
    .filter(Boolean)
    .concat(path.join(ROOT, ".tools/node/node_modules"));
  const tried = [];
  for (const dir of dirs) {
    try {
      return require(path.join(path.resolve(dir), "playwright-core"));
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND") throw e;
      tried.push(dir);
    }
  }
  try {
    return require("playwright-core");
  } catch (e) {
    throw new Error(`playwright-core not found (tried ${tried.join(", ")} and the default resolution); ` +
      "run ensure_playwright from scripts/lib/servers.sh and set PLAYWRIGHT_NODE_PATH");
  }
}

const [urlA, urlB] = process.argv.slice(2);
if (!urlA || !urlB) {
  console.error("usage: node e2e/browser/web_client.mjs <gateway_a_url> <gateway_b_url>");
  process.exit(2);
}

const hex = (n) => randomBytes(n).toString("hex");
const run = hex(4);
const userA = `wa_${run}`;
const userB = `wb_${run}`;
const room = `r${run}`;

let step = "start";
const pageErrors = [];
const consoleLines = [];

// Waits until fn(arg) is truthy in the page; on timeout says what was expected
// and what the page showed.
async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: TIMEOUT, polling: 100 });
  } catch (e) {
    let seen = "";
    try {
      seen = await page.evaluate(() => {
        const t = (id) => (document.getElementById(id)?.textContent || "").trim();
        const rows = [...document.querySelectorAll("#list .msg")].map((m) => m.textContent);
        return `status=${JSON.stringify(t("status"))} error=${JSON.stringify(t("error"))} ` +
          `rooms=${JSON.stringify(t("rooms"))} dms=${JSON.stringify(t("dms"))} list=${JSON.stringify(rows)}`;
      });
    } catch { /* page gone */ }
    throw new Error(`timed out after ${TIMEOUT} ms waiting for ${what} (${e.message.split("\n")[0]}); page: ${seen}`);
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// A delivered (not pending) row in #list whose body is `text`.
function shown(text) {
  return [...document.querySelectorAll("#list .msg")].some((m) =>
    !m.classList.contains("pending") &&
    m.children[1]?.textContent === text &&
    /\d{1,2}[:.]\d{2}/.test(m.querySelector(".time")?.textContent || ""));
}

// The sidebar entry (li) in list `ul` whose label is `label`, as a selector-free predicate.
function entry([ul, label, needUnread]) {
  return [...document.querySelectorAll(`#${ul} li`)].some((li) =>
    li.firstChild?.nodeValue === label && (!needUnread || !!li.querySelector(".unread")));
}

// Polls a condition in this (node) process until it holds or TIMEOUT passes.
async function untilHere(what, fn) {
  const end = Date.now() + TIMEOUT;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out after ${TIMEOUT} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The bodies of the rows in #list, in display order.
async function rows(page) {
  return page.evaluate(() => [...document.querySelectorAll("#list .msg")].map((m) => m.children[1]?.textContent));
}

async function clickEntry(page, ul, label) {
  const li = page.locator(`#${ul} li`).filter({ hasText: label }).first();
  await li.click({ timeout: TIMEOUT });
  await until(page, `${ul} entry ${label} active`, ([u, l]) =>
    [...document.querySelectorAll(`#${u} li.active`)].some((li) => li.firstChild?.nodeValue === l), [ul, label]);
}

async function connected(page, who) {
  await until(page, `${who}: #status "connected to …"`,
    () => /^connected to /.test(document.getElementById("status").textContent));
  return (await page.textContent("#status")).trim();
}

async function register(page, url, user) {
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: TIMEOUT });
  await page.fill("#username", user, { timeout: TIMEOUT });
  await page.fill("#password", PASSWORD, { timeout: TIMEOUT });
  await page.click("#register", { timeout: TIMEOUT });
  const status = await connected(page, user);
  check((await page.textContent("#me")).includes(user), `${user}: #me does not name the user`);
  check(await page.isHidden("#login"), `${user}: login form still shown`);
  return status;
}

async function send(page, who, text) {
  await page.fill("#body", text, { timeout: TIMEOUT });
  await page.locator("#composer button").click({ timeout: TIMEOUT });
  await until(page, `${who}: own message ${JSON.stringify(text)} delivered (time, not "sending…")`, shown, text);
}

async function main() {
  const { chromium } = loadPlaywright();
  step = "launch chromium";
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60000 });
  let pageA;
  try {
    // B's WebSocket runs through a relay that can lose the server frame
    // carrying `lost.marker`, as the wire does when a socket drops at the
    // wrong instant; the client must notice the seq gap and fetch it.
    const lost = { marker: null, dropped: 0 };
    const relay = (ws) => {
      const server = ws.connectToServer();
      server.onMessage((msg) => {
        if (lost.marker && typeof msg === "string" && msg.includes(lost.marker)) {
          lost.dropped++;
          return;
        }
        ws.send(msg);
      });
    };
    const open = async (name, lossy = false) => {
      const ctx = await browser.newContext({ viewport: { width: 1100, height: 650 } });
      if (lossy) await ctx.routeWebSocket(/\/ws/, relay);
      const page = await ctx.newPage();
      page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
      page.on("console", (m) => consoleLines.push(`${name} ${m.type()}: ${m.text()}`));
      return page;
    };
    pageA = await open("A");
    const pageB = await open("B", true);

    step = "register A and B";
    const statusA = await register(pageA, urlA, userA);
    const statusB = await register(pageB, urlB, userB);
    check(statusA !== statusB, `both pages report "${statusA}": the two URLs reach the same gateway`);

    step = "A sends a DM to B";
    await pageA.fill("#dmUser", userB);
    await pageA.locator("#openDm button").click({ timeout: TIMEOUT });
    await until(pageA, `A: DM with ${userB} open`, entry, ["dms", userB, false]);
    const dm1 = `hello ${userB} from A ${hex(4)}`;
    await send(pageA, "A", dm1);

    step = "B gets the DM";
    await until(pageB, `B: DM from ${userA} in #dms with an unread badge`, entry, ["dms", userA, true]);
    await clickEntry(pageB, "dms", userA);
    await until(pageB, `B: the DM ${JSON.stringify(dm1)} in #list`, shown, dm1);
    check(await pageB.locator("#dms li .unread").count() === 0, "B: unread badge still shown after opening the DM");

    step = "B replies, A sees it";
    const dm2 = `reply to ${userA} from B ${hex(4)}`;
    await send(pageB, "B", dm2);
    await until(pageA, `A: the reply ${JSON.stringify(dm2)} in #list`, shown, dm2);

    step = "room: A creates it, B joins";
    await pageA.fill("#roomName", room);
    await pageA.locator("#joinRoom button").click({ timeout: TIMEOUT });
    await until(pageA, `A: room #${room} open`, ([r]) =>
      [...document.querySelectorAll("#rooms li.active")].some((li) => li.firstChild?.nodeValue === "#" + r), [room]);
    await pageB.fill("#roomName", room);
    await pageB.locator("#joinRoom button").click({ timeout: TIMEOUT });
    await until(pageB, `B: room #${room} open`, ([r]) =>
      [...document.querySelectorAll("#rooms li.active")].some((li) => li.firstChild?.nodeValue === "#" + r), [room]);
    // B looks at the DM again, so the room message arrives in the background.
    await clickEntry(pageB, "dms", userA);

    step = "room: A sends, B sees it";
    const rm = `room ${room} message from A ${hex(4)}`;
    await send(pageA, "A", rm);
    await until(pageB, `B: #${room} in #rooms with an unread badge`, entry, ["rooms", "#" + room, true]);
    await clickEntry(pageB, "rooms", "#" + room);
    await until(pageB, `B: the room message ${JSON.stringify(rm)} in #list`, shown, rm);

    step = "gap: a room message lost on B's wire is fetched from history";
    const gone = `lost on the wire ${hex(4)}`;
    lost.marker = gone;
    await send(pageA, "A", gone);
    await untilHere("the relay to drop B's copy of the lost message", () => lost.dropped === 1);
    lost.marker = null;
    check(!(await rows(pageB)).includes(gone), "B: the dropped message was shown anyway");
    const next = `after the loss ${hex(4)}`;
    await send(pageA, "A", next);
    await until(pageB, "B: the next message and the lost one, fetched by seq gap", ([a, b]) =>
      [a, b].every((t) => [...document.querySelectorAll("#list .msg")].some((m) => m.children[1]?.textContent === t)),
      [gone, next]);
    const roomRows = await rows(pageB);
    check(JSON.stringify(roomRows) === JSON.stringify([rm, gone, next]),
      `B: room rows ${JSON.stringify(roomRows)}, want each once in seq order`);

    step = "reload A";
    await pageA.reload({ waitUntil: "domcontentloaded", timeout: TIMEOUT });
    await connected(pageA, "A after reload");
    check(await pageA.isHidden("#login"), "A after reload: login form shown, the session did not persist");
    check((await pageA.textContent("#me")).includes(userA), "A after reload: #me does not name the user");
    const saved = await pageA.evaluate(() => JSON.parse(sessionStorage.getItem("chat") || "null"));
    check(saved && saved.user === userA && saved.token, "A after reload: no session in sessionStorage");

    step = "A after reload: DM history";
    // The tab remembers its DM conversations across a reload.
    await until(pageA, `A after reload: ${userB} in #dms`, entry, ["dms", userB, false]);
    await clickEntry(pageA, "dms", userB);
    await until(pageA, "A after reload: both DMs in #list (history)", ([a, b]) =>
      [a, b].every((t) => [...document.querySelectorAll("#list .msg")].some((m) => m.children[1]?.textContent === t)),
      [dm1, dm2]);
    const dmRows = await pageA.locator("#list .msg").count();
    check(dmRows === 2, `A after reload: ${dmRows} rows in the DM, want 2`);

    step = "A after reload: room history";
    await until(pageA, `A after reload: #${room} in #rooms`, entry, ["rooms", "#" + room, false]);
    await clickEntry(pageA, "rooms", "#" + room);
    await until(pageA, "A after reload: the room message in #list (history)", shown, rm);
    // Back to the DM for the screenshot.
    await clickEntry(pageA, "dms", userB);
    await until(pageA, "A: DM history shown again", shown, dm2);

    step = "page errors";
    check(pageErrors.length === 0, `uncaught errors in the page: ${pageErrors.join("; ")}`);

    step = "screenshot";
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await pageA.screenshot({ path: SCREENSHOT });
  } catch (e) {
    if (pageA) {
      try {
        mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
        await pageA.screenshot({ path: SCREENSHOT.replace(/\.png$/, ".failed.png") });
      } catch { /* ignore */ }
    }
    throw e;
  } finally {
    await browser.close().catch(() => {});
  }
}

const watchdog = setTimeout(() => {
  console.error(`web client: FAILED: no result after ${OVERALL / 1000} s (at step: ${step})`);
  process.exit(1);
}, OVERALL);
watchdog.unref();

try {
  await main();
  console.log("web client: ok");
  process.exit(0);
} catch (e) {
  const msg = String(e && e.message || e).replace(/\x1b\[[0-9;]*m/g, "");
  console.error(`web client: FAILED at step "${step}" (users ${userA}, ${userB}, room ${room}): ${msg}`);
  if (pageErrors.length) console.error("page errors:\n  " + pageErrors.join("\n  "));
  if (consoleLines.length) console.error("browser console:\n  " + consoleLines.slice(-20).join("\n  "));
  process.exit(1);
}
