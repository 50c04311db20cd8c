// Browser test of the web client (gateway/src/web/index.html) in headless
// Debian Chromium, driven by playwright-core. Two users on two gateways:
// register, DM both ways, a room message, a room message lost on B's wire
// (B's client must fetch the seq gap from history), then a reload of A's page.
// Then A logs in on a second page (its own browser context, the other
// gateway): unread badges on both of A's pages, cleared on the second by the
// `read` frame when A reads on the first; the typing line stays with its
// conversation; B edits and deletes DMs, shown live and from history; B
// races a delete and an edit of one DM (two frames back to back): the edit
// is refused, and every page shows the message deleted. Tokens live 20 s and
// are refreshed on the live sockets; from its account page A signs its other
// device out (that page's connection closes and it shows the sign-in form),
// changes its display name and its password, and signs in again on A2.
//
//   PLAYWRIGHT_NODE_PATH=.tools/node/node_modules \
//     node e2e/browser/web_client.mjs http://127.0.0.1:8081 http://127.0.0.1:8082
//
// (scripts/lib/servers.sh: ensure_chromium, ensure_playwright.) Prints
// "web client: ok" and exits 0, or prints what failed and exits 1.
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { ARGS, CHROMIUM, ROOT, loadPlaywright } from "./lib.mjs";

const TIMEOUT = 15000; // every wait
const OVERALL = 180000; // the whole run, in case something hangs outside a wait
const PASSWORD = "password123";
const SCREENSHOT = path.join(ROOT, ".tools/web_client.png");

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
const dm = userA < userB ? `dm:${userA}:${userB}` : `dm:${userB}:${userA}`;
const roomId = `room:${room}`;

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
        const rows = [...document.querySelectorAll("#list .msg")].map((m) =>
          `${m.dataset.seq || "-"}${m.className.replace(/^msg/, "")}: ${m.textContent}`);
        const side = [...document.querySelectorAll("aside li")].map((li) =>
          `${li.dataset.conv}${li.classList.contains("active") ? " (open)" : ""} unread=${li.dataset.unread} ` +
          `badge=${li.querySelector(".badge")?.textContent || "none"} preview=${JSON.stringify(li.querySelector(".preview")?.textContent || "")}`);
        return `status=${JSON.stringify(t("status"))} error=${JSON.stringify(t("error"))} ` +
          `visibility=${document.visibilityState} typing=${JSON.stringify(t("typing"))} ` +
          `sidebar=${JSON.stringify(side)} list=${JSON.stringify(rows)}`;
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

// The sidebar entry (li[data-conv]) for conversation `conv` is in list `ul`,
// labelled `label`, and (if needBadge) shows an unread badge.
function entry([ul, conv, label, needBadge]) {
  const li = document.querySelector(`#${ul} li[data-conv="${conv}"]`);
  return !!li && li.querySelector(".name")?.textContent === label && (!needBadge || !!li.querySelector(".badge"));
}

// The sidebar entry for `conv` shows `n` unread (no .badge counts as 0).
function badgeIs([conv, n]) {
  const li = document.querySelector(`aside li[data-conv="${conv}"]`);
  if (!li) return false;
  const b = li.querySelector(".badge");
  return (b ? Number(b.textContent) : 0) === n;
}

// The row of seq `seq` shows `text`, edited.
function editedRow([seq, text]) {
  const m = document.querySelector(`#list .msg[data-seq="${seq}"]`);
  return !!m && m.querySelector(".body")?.textContent === text && m.classList.contains("edited") &&
    m.querySelector(".edited-mark")?.textContent === "(edited)";
}

// The row of seq `seq` shows "message deleted".
function deletedRow([seq]) {
  const m = document.querySelector(`#list .msg[data-seq="${seq}"]`);
  return !!m && m.classList.contains("deleted") && m.querySelector(".body")?.textContent === "message deleted" &&
    !m.querySelector(".edited-mark");
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

async function clickEntry(page, ul, conv, label) {
  await page.locator(`#${ul} li[data-conv="${conv}"]`).click({ timeout: TIMEOUT });
  await until(page, `${ul} entry ${label} (${conv}) active`, ([u, c, l]) => {
    const li = document.querySelector(`#${u} li.active[data-conv="${c}"]`);
    return !!li && li.querySelector(".name")?.textContent === l;
  }, [ul, conv, label]);
}

async function untilBadge(page, who, conv, n) {
  await until(page, `${who}: ${conv} showing ${n} unread (${n ? `.badge "${n}"` : "no .badge"})`, badgeIs, [conv, n]);
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

async function login(page, url, user) {
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: TIMEOUT });
  await page.fill("#username", user, { timeout: TIMEOUT });
  await page.fill("#password", PASSWORD, { timeout: TIMEOUT });
  await page.click('#login button[type="submit"]', { timeout: TIMEOUT });
  const status = await connected(page, user);
  check((await page.textContent("#me")).includes(user), `${user} (login): #me does not name the user`);
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
    await until(pageA, `A: DM with ${userB} open`, entry, ["dms", dm, userB, false]);
    const dm1 = `hello ${userB} from A ${hex(4)}`;
    await send(pageA, "A", dm1);

    step = "B gets the DM";
    await until(pageB, `B: DM from ${userA} in #dms with an unread badge`, entry, ["dms", dm, userA, true]);
    await clickEntry(pageB, "dms", dm, userA);
    await until(pageB, `B: the DM ${JSON.stringify(dm1)} in #list`, shown, dm1);
    check(await pageB.locator("#dms li .badge").count() === 0, "B: unread badge still shown after opening the DM");

    step = "B replies, A sees it";
    const dm2 = `reply to ${userA} from B ${hex(4)}`;
    await send(pageB, "B", dm2);
    await until(pageA, `A: the reply ${JSON.stringify(dm2)} in #list`, shown, dm2);

    step = "room: A creates it, B joins";
    await pageA.fill("#roomName", room);
    await pageA.locator("#joinRoom button").click({ timeout: TIMEOUT });
    await until(pageA, `A: room #${room} open`, ([c]) => !!document.querySelector(`#rooms li.active[data-conv="${c}"]`), [roomId]);
    await pageB.fill("#roomName", room);
    await pageB.locator("#joinRoom button").click({ timeout: TIMEOUT });
    await until(pageB, `B: room #${room} open`, ([c]) => !!document.querySelector(`#rooms li.active[data-conv="${c}"]`), [roomId]);
    step = "room: B's join is a line in A's timeline, not a message";
    await until(pageA, `A: "${userB} joined" in #list`, (u) => {
      const e = document.querySelector(`#list .event[data-action="join"][data-user="${u}"]`);
      return !!e && e.textContent.includes(`${u} joined`) && !e.querySelector("button");
    }, userB);
    // B looks at the DM again, so the room message arrives in the background.
    await clickEntry(pageB, "dms", dm, userA);

    step = "room: A sends, B sees it";
    const rm = `room ${room} message from A ${hex(4)}`;
    await send(pageA, "A", rm);
    await until(pageB, `B: #${room} in #rooms with an unread badge`, entry, ["rooms", roomId, "#" + room, true]);
    await clickEntry(pageB, "rooms", roomId, "#" + room);
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
    const saved = await pageA.evaluate(() => JSON.parse(localStorage.getItem("chat") || "null"));
    check(saved && saved.user === userA && saved.token && saved.refresh, "A after reload: no session in localStorage");

    step = "A after reload: DM history";
    // The DM comes back from GET /api/conversations.
    await until(pageA, `A after reload: ${userB} in #dms (from GET /api/conversations)`, entry, ["dms", dm, userB, false]);
    check(await pageA.evaluate(() => sessionStorage.getItem("chat-dms")) === null,
      "A after reload: sessionStorage still has chat-dms (the sidebar must come from the server)");
    await clickEntry(pageA, "dms", dm, userB);
    await until(pageA, "A after reload: both DMs in #list (history)", ([a, b]) =>
      [a, b].every((t) => [...document.querySelectorAll("#list .msg")].some((m) => m.children[1]?.textContent === t)),
      [dm1, dm2]);
    const dmRows = await pageA.locator("#list .msg").count();
    check(dmRows === 2, `A after reload: ${dmRows} rows in the DM, want 2`);

    step = "A after reload: room history";
    await until(pageA, `A after reload: #${room} in #rooms`, entry, ["rooms", roomId, "#" + room, false]);
    await clickEntry(pageA, "rooms", roomId, "#" + room);
    await until(pageA, "A after reload: the room message in #list (history)", shown, rm);
    await clickEntry(pageA, "dms", dm, userB);
    await until(pageA, "A: DM history shown again", shown, dm2);
    // A has read the DM (up to dm2) and the room (its own messages).
    await untilBadge(pageA, "A after reload, DM open", dm, 0);
    await untilBadge(pageA, "A after reload", roomId, 0);

    step = "A logs in on a second page (its own browser context), through gateway B";
    const pageA2 = await open("A2");
    await login(pageA2, urlB, userA);
    await until(pageA2, `A2: the DM with ${userB} in #dms (from GET /api/conversations)`, entry, ["dms", dm, userB, false]);
    await until(pageA2, `A2: #${room} in #rooms`, entry, ["rooms", roomId, "#" + room, false]);
    await untilBadge(pageA2, "A2 (page 1 has read the DM)", dm, 0);
    await untilBadge(pageA2, "A2 (the room holds only A's messages)", roomId, 0);
    const previewA2 = await pageA2.textContent(`#dms li[data-conv="${dm}"] .preview`, { timeout: TIMEOUT });
    check(previewA2 === dm2, `A2: the DM's preview is ${JSON.stringify(previewA2)}, want the last message ${JSON.stringify(dm2)}`);

    step = "unread: B sends A three DMs while A's first page shows the room";
    await clickEntry(pageA, "rooms", roomId, "#" + room);
    await clickEntry(pageB, "dms", dm, userA);
    const news = [1, 2, 3].map((i) => `news ${i} for ${userA} ${hex(4)}`);
    for (const t of news) await send(pageB, "B", t);
    await untilBadge(pageA, "A (page 1, room open)", dm, 3);
    await untilBadge(pageA2, "A2 (nothing open)", dm, 3);
    await until(pageA2, `A2: the DM's preview is the last DM ${JSON.stringify(news[2])}`, ([c, t]) =>
      document.querySelector(`#dms li[data-conv="${c}"] .preview`)?.textContent === t, [dm, news[2]]);
    check(await pageA.locator(`#rooms li[data-conv="${roomId}"] .badge`).count() === 0,
      "A (page 1): the open room shows an unread badge");

    step = "read: A opens the DM on page 1, the badge clears there and on page 2";
    await clickEntry(pageA, "dms", dm, userB);
    for (const t of news) await until(pageA, `A: the DM ${JSON.stringify(t)} in #list`, shown, t);
    await untilBadge(pageA, "A (page 1, DM open)", dm, 0);
    await untilBadge(pageA2, "A2 after page 1 read the DM (the `read` frame)", dm, 0);

    step = "typing: B types in the DM, A sees it there and not in the room";
    await pageB.fill("#body", `B is writing ${hex(2)}`, { timeout: TIMEOUT });
    await until(pageA, `A: #typing reads "${userB} is typing…" for ${dm}`, ([who, c]) => {
      const t = document.getElementById("typing");
      return t.textContent.startsWith(`${who} is typing`) && t.dataset.conv === c;
    }, [userB, dm]);
    // Switching is much quicker than the notice's 3 s, so an indicator that
    // does not belong to its conversation would still be on screen here.
    await clickEntry(pageA, "rooms", roomId, "#" + room);
    const typingInRoom = (await pageA.textContent("#typing")).trim();
    check(typingInRoom === "",
      `A: #typing reads ${JSON.stringify(typingInRoom)} in #${room} after switching away from the DM B types in`);
    await pageB.fill("#body", "", { timeout: TIMEOUT });
    await clickEntry(pageA, "dms", dm, userB);

    step = "edit: B edits one of its DMs, A sees the new body, marked edited";
    const seqOf = async (page, who, text) => {
      const seq = Number(await page.locator("#list .msg", { hasText: text }).getAttribute("data-seq", { timeout: TIMEOUT }));
      check(seq > 0, `${who}: the row of ${JSON.stringify(text)} has no data-seq`);
      return seq;
    };
    const seqEdited = await seqOf(pageB, "B", news[0]);
    const seqDeleted = await seqOf(pageB, "B", news[1]);
    check(await pageB.locator(`#list .msg[data-from="${userA}"] button`).count() === 0,
      "B: edit or delete controls on A's messages in the DM (only the sender may)");
    check(await pageB.locator(`#list .msg[data-seq="${seqEdited}"] button.edit`).count() === 1,
      "B: no button.edit on B's own DM");
    await pageB.locator(`#list .msg[data-seq="${seqEdited}"] button.edit`).click({ timeout: TIMEOUT });
    await until(pageB, "B: edit mode (#editing shown, #body holds the old text)", ([t]) =>
      !document.getElementById("editing").classList.contains("hidden") && document.getElementById("body").value === t,
      [news[0]]);
    const edited = `edited news for ${userA} ${hex(4)}`;
    await pageB.fill("#body", edited, { timeout: TIMEOUT });
    await pageB.locator("#composer button").click({ timeout: TIMEOUT });
    await until(pageB, `B: own DM seq ${seqEdited} shows ${JSON.stringify(edited)} (edited)`, editedRow, [seqEdited, edited]);
    check(await pageB.isHidden("#editing"), "B: edit mode still shown after saving");
    await until(pageA, `A: DM seq ${seqEdited} shows the edit ${JSON.stringify(edited)} with "(edited)"`,
      editedRow, [seqEdited, edited]);

    step = "delete: B deletes another of its DMs, A sees it deleted";
    await pageB.locator(`#list .msg[data-seq="${seqDeleted}"] button.delete`).click({ timeout: TIMEOUT });
    await until(pageB, `B: own DM seq ${seqDeleted} shows "message deleted"`, deletedRow, [seqDeleted]);
    await until(pageA, `A: DM seq ${seqDeleted} shows "message deleted"`, deletedRow, [seqDeleted]);
    const wantDm = [dm1, dm2, edited, "message deleted", news[2]];
    const liveWant = wantDm.slice();
    const liveRows = await rows(pageA);
    check(JSON.stringify(liveRows) === JSON.stringify(liveWant),
      `A: DM rows ${JSON.stringify(liveRows)}, want ${JSON.stringify(liveWant)} (events are no rows of their own)`);

    step = "race: B sends a delete of its last DM and, right behind it, an edit of it";
    const seqRaced = await seqOf(pageB, "B", news[2]);
    // The client's own path for both (what its delete and edit controls
    // call), one right behind the other, without waiting for an answer.
    const raced = await pageB.evaluate(async ([c, seq]) => {
      const answers = [];
      const listen = (ev) => {
        const f = JSON.parse(ev.data);
        if (f.type === "error" || f.type === "sent") answers.push(f);
      };
      state.ws.addEventListener("message", listen);
      const before = new Set(state.ops.keys());
      operate("delete", c, seq);
      operate("edit", c, seq, "edited after its delete");
      const ids = [...state.ops.keys()].filter((k) => !before.has(k));
      for (let i = 0; i < 150 && state.ops.size > before.size; i++) await new Promise((r) => setTimeout(r, 100));
      state.ws.removeEventListener("message", listen);
      const of = (id) => answers.find((f) => f.client_id === id || f.ref === id);
      return { deleted: of(ids[0]), edited: of(ids[1]), left: state.ops.size - before.size };
    }, [dm, seqRaced]);
    check(raced.left === 0, `B: ${raced.left} of the racing delete and edit were never answered`);
    check(raced.deleted?.type === "sent", `B: the racing delete was answered ${JSON.stringify(raced.deleted)}`);
    // The edit may have taken its seq first (two workers); after the delete,
    // it is refused.
    const editFirst = raced.edited?.type === "sent" && raced.edited.seq < raced.deleted?.seq;
    const editRefused = raced.edited?.type === "error" && raced.edited.code === "not_found";
    check(editFirst || editRefused,
      `B: the edit behind the delete was answered ${JSON.stringify(raced.edited)} (delete: ${JSON.stringify(raced.deleted)})`);
    await until(pageA, `A: DM seq ${seqRaced} shows "message deleted" after the race`, deletedRow, [seqRaced]);
    await until(pageB, `B: own DM seq ${seqRaced} shows "message deleted" after the race`, deletedRow, [seqRaced]);
    wantDm.splice(wantDm.length - 1, 1, "message deleted");

    step = "read: the edit and delete events, read on page 1, leave page 2 at 0 unread";
    const lastB = await pageB.getAttribute(`#dms li[data-conv="${dm}"]`, "data-last-seq", { timeout: TIMEOUT });
    await until(pageA2, `A2: ${dm} at last seq ${lastB} (both events received) with 0 unread`, ([c, last]) => {
      const li = document.querySelector(`#dms li[data-conv="${c}"]`);
      return !!li && li.dataset.lastSeq === last && li.dataset.unread === "0" && !li.querySelector(".badge");
    }, [dm, lastB]);

    step = "A2 after reload: the DM from history, edited and deleted";
    await pageA2.reload({ waitUntil: "domcontentloaded", timeout: TIMEOUT });
    await connected(pageA2, "A2 after reload");
    await until(pageA2, `A2 after reload: ${userB} in #dms`, entry, ["dms", dm, userB, false]);
    check(await pageA2.locator(`#dms li[data-conv="${dm}"] .badge`).count() === 0,
      "A2 after reload: the DM shows an unread badge, but page 1 read it all");
    await clickEntry(pageA2, "dms", dm, userB);
    await until(pageA2, `A2 after reload: seq ${seqEdited} edited, seq ${seqDeleted} deleted (history)`, ([se, text, sd]) => {
      const q = (s) => document.querySelector(`#list .msg[data-seq="${s}"]`);
      const e = q(se), d = q(sd);
      return !!e && !!d && e.classList.contains("edited") && e.querySelector(".body")?.textContent === text &&
        e.querySelector(".edited-mark")?.textContent === "(edited)" &&
        d.classList.contains("deleted") && d.querySelector(".body")?.textContent === "message deleted";
    }, [seqEdited, edited, seqDeleted]);
    await until(pageA2, `A2 after reload: seq ${seqRaced} deleted (history)`, deletedRow, [seqRaced]);
    const historyRows = await rows(pageA2);
    check(JSON.stringify(historyRows) === JSON.stringify(wantDm),
      `A2 after reload: DM rows ${JSON.stringify(historyRows)}, want ${JSON.stringify(wantDm)} (history events are no rows)`);

    step = "tokens refreshed on the live sockets";
    // Access tokens live 20 s in this run: each socket has been asked for a
    // fresh one (`refresh`), and answered with `auth`, without ever running out.
    await pageA.waitForFunction(() => window.chatStats.authed >= 1, undefined, { timeout: 30000, polling: 200 });
    const stats = await pageA.evaluate(() => window.chatStats);
    check(stats.expired === 0, `A: a socket closed with 4002 (token expired) ${stats.expired} times`);

    step = "A's account page lists both of A's devices";
    await pageA.click("#accountBtn", { timeout: TIMEOUT });
    await until(pageA, "A: two sessions listed, one marked this device", () =>
      document.querySelectorAll("#sessions li").length === 2 &&
      document.querySelectorAll('#sessions li[data-current="true"] .here').length === 1 &&
      /^web: /.test(document.querySelector("#sessions li .device")?.textContent || ""));

    step = "A signs its other device out: A2's connection closes";
    const signOutAt = Date.now();
    await pageA.click('#sessions li[data-current="false"] button.revoke', { timeout: TIMEOUT });
    await until(pageA2, "A2: the sign-in form, saying this device was signed out", () =>
      !document.getElementById("login").classList.contains("hidden") &&
      /signed out/.test(document.getElementById("error").textContent));
    console.log(`A2 signed out and back at the sign-in form ${Date.now() - signOutAt} ms after the click`);
    await until(pageA, "A: one session left", () => document.querySelectorAll("#sessions li").length === 1);
    await connected(pageA, "A after signing A2 out");

    step = "A changes its display name";
    await pageA.fill("#displayName", "Alice W.", { timeout: TIMEOUT });
    await pageA.click('#profile button', { timeout: TIMEOUT });
    await until(pageA, "A: #me shows the display name", ([u]) =>
      document.getElementById("me").textContent === `as Alice W. (${u})`, [userA]);

    step = "A changes its password";
    await pageA.fill("#currentPassword", "not the password", { timeout: TIMEOUT });
    await pageA.fill("#newPassword", "a new password", { timeout: TIMEOUT });
    await pageA.click('#passwordForm button', { timeout: TIMEOUT });
    await until(pageA, "A: a wrong current password is refused", () =>
      /invalid username or password/.test(document.getElementById("accountStatus").textContent));
    await pageA.fill("#currentPassword", PASSWORD, { timeout: TIMEOUT });
    await pageA.fill("#newPassword", "a new password", { timeout: TIMEOUT });
    await pageA.click('#passwordForm button', { timeout: TIMEOUT });
    await until(pageA, "A: password changed", () =>
      /^Password changed; 0 other devices signed out/.test(document.getElementById("accountStatus").textContent));
    await pageA.click("#closeAccount", { timeout: TIMEOUT });

    step = "A2 signs in again with the new password";
    await pageA2.fill("#username", userA, { timeout: TIMEOUT });
    await pageA2.fill("#password", "a new password", { timeout: TIMEOUT });
    await pageA2.click('#login button[type="submit"]', { timeout: TIMEOUT });
    await connected(pageA2, "A2 signed in again");

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
