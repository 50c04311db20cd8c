// Browser test of running a room in the web client: A creates a private
// room and invites B from its room page; B's invite shows in the sidebar,
// B joins and writes, and A sees it; A turns on a 10 s slow mode, and B's
// second quick message waits and goes out by itself (B also has the room
// open on a second device); A makes B an admin
// and back, mutes
// B (B's member line says so) and unmutes; then A removes B: both of B's
// devices show it at once (a `removed` frame): B is no longer a member and
// the page stops taking messages for the room; A's member list and
// moderation log show what happened.
//
//   PLAYWRIGHT_NODE_PATH=.tools/node/node_modules \
//     node e2e/browser/rooms.mjs http://127.0.0.1:8081 http://127.0.0.1:8082
//
// Prints "rooms: ok" and exits 0, or what failed and exits 1.
import { randomBytes } from "node:crypto";
import { PASSWORD, TIMEOUT, connected, launchPages, register as registerAs, runScript, sendShown, shown, waiter } from "./lib.mjs";

const [urlA, urlB] = process.argv.slice(2);
const run = randomBytes(4).toString("hex");
const userA = `ra_${run}`, userB = `rb_${run}`, room = `crew${run}`;
const progress = { step: "start" };
const pageErrors = [];
const until = waiter("roomStatus");
const register = (page, url, user) => registerAs(page, url, user, until);
const send = (page, text) => sendShown(page, text, until);

const memberLine = ([user, text]) => [...document.querySelectorAll("#roomMembers li")].some((li) =>
  li.dataset.user === user && li.textContent.includes(text));

// Clicks `button` on `user`'s member line, then waits for the page to say `done`.
async function act(page, user, button, done) {
  await page.locator(`#roomMembers li[data-user="${user}"] button.${button}`).click();
  await until(page, `room page: ${done}`, (t) => document.getElementById("roomStatus").textContent === t, done);
}

async function main() {
  progress.step = "launch chromium";
  const { browser, pages: [pageA, pageB, pageB2] } = await launchPages(["A", "B", "B2"], pageErrors);
  try {
    progress.step = "both register";
    await register(pageA, urlA, userA);
    await register(pageB, urlB, userB);

    progress.step = "A creates a private room";
    await pageA.check("#roomPrivate");
    await pageA.fill("#roomName", room);
    await pageA.locator("#joinRoom button").click();
    await until(pageA, "the room bar says private", (r) => document.getElementById("roomTitle").textContent === `#${r} 🔒`, room);

    progress.step = "A invites B from the room page";
    await pageA.click("#roomBtn");
    await until(pageA, "the room page", (r) => document.getElementById("roomHeading").textContent === `#${r}`, room);
    await pageA.fill("#inviteUser", userB);
    await pageA.locator("#inviteForm button").click();
    await until(pageA, "invited", (t) => document.getElementById("roomStatus").textContent === t, `Invited ${userB}.`);

    progress.step = "B sees the invite, joins and writes";
    await pageB.reload({ waitUntil: "domcontentloaded" });
    await until(pageB, "B: the invite listed", (r) => !!document.querySelector(`#invites li[data-room="${r}"]`), room);
    await pageB.locator(`#invites li[data-room="${room}"] button.accept`).click();
    await until(pageB, "B: in the room", (r) => document.getElementById("roomTitle").textContent.startsWith(`#${r}`), room);
    const hello = `glad to be here ${run}`;
    await send(pageB, hello);
    await pageA.click("#closeRoom");
    await pageA.locator(`#rooms li[data-conv="room:${room}"]`).click();
    await until(pageA, "A: B's message shown live", shown, hello);

    progress.step = "B signs in on a second device and opens the room";
    await pageB2.goto(urlA, { waitUntil: "domcontentloaded", timeout: TIMEOUT });
    await pageB2.fill("#username", userB);
    await pageB2.fill("#password", PASSWORD);
    await pageB2.locator("#login button[type=submit]").click();
    await until(pageB2, "B2 connected", connected);
    await until(pageB2, "B2: the room listed", (r) => !!document.querySelector(`#rooms li[data-conv="room:${r}"]`), room);
    await pageB2.locator(`#rooms li[data-conv="room:${room}"]`).click();
    await until(pageB2, "B2: B's message", shown, hello);

    progress.step = "A turns on slow mode; B's second quick message goes out when it may";
    await pageA.click("#roomBtn");
    await until(pageA, "the room page", (r) => document.getElementById("roomHeading").textContent === `#${r}`, room);
    await pageA.selectOption("#roomSlow", "10");
    await pageA.locator("#roomSettings button").click();
    await until(pageA, "saved", (t) => document.getElementById("roomStatus").textContent === t, "Saved.");
    await pageA.click("#closeRoom");
    await until(pageA, "the room bar says slow mode", () => /slow mode: one message every 10 s/.test(document.getElementById("roomTopic").textContent));
    const one = `one ${run}`, two = `two ${run}`;
    await send(pageB, one);
    await pageB.fill("#body", two);
    await pageB.locator("#composer button").click();
    await pageB.waitForFunction((t) => [...document.querySelectorAll("#list .msg.pending .body")].some((b) => b.textContent === t), two, { timeout: TIMEOUT });
    await until(pageB, "B: the second message sent after the slow-mode wait", shown, two);
    await until(pageA, "A: both shown", ([a, b]) => {
      const bodies = [...document.querySelectorAll("#list .msg .body")].map((m) => m.textContent);
      return bodies.includes(a) && bodies.includes(b);
    }, [one, two]);

    progress.step = "A changes B's role, mutes and unmutes B";
    await pageA.click("#roomBtn");
    await until(pageA, "B listed as a member", memberLine, [userB, "member"]);
    await act(pageA, userB, "role", `${userB} is now an admin.`);
    await until(pageA, "B listed as an admin", memberLine, [userB, "admin"]);
    await until(pageB2, "B2: the role change as a line in the room's timeline, live", ([a, u]) =>
      [...document.querySelectorAll(`#list .event[data-action="role"][data-user="${u}"]`)].some((e) =>
        e.textContent.includes(`${a} made ${u} admin`)), [userA, userB]);
    await act(pageA, userB, "role", `${userB} is now a member.`);
    await act(pageA, userB, "mute", `Muted ${userB} for an hour.`);
    await until(pageA, "B shown muted", memberLine, [userB, "muted"]);
    await act(pageA, userB, "unmute", `Unmuted ${userB}.`);

    progress.step = "A removes B; both of B's devices say so at once";
    await act(pageA, userB, "kick", `Removed ${userB}.`);
    // B's other device hears it live, without sending anything.
    await until(pageB2, "B2: the removed notice, live", () => {
      const el = document.getElementById("removed");
      return !el.classList.contains("hidden") && /no longer a member/.test(el.textContent);
    });
    await until(pageB2, "B2: the status says why", () => /you were removed from #/.test(document.getElementById("status").textContent));
    await until(pageA, "B gone from the member list", (u) =>
      ![...document.querySelectorAll("#roomMembers li")].some((li) => li.dataset.user === u), userB);
    await until(pageB, "B: the removed notice, and no composer for the room", () => {
      const el = document.getElementById("removed");
      return !el.classList.contains("hidden") && /no longer a member/.test(el.textContent) && document.getElementById("body").disabled;
    });
    await until(pageA, "the log lists the kick", ([u]) => [...document.querySelectorAll("#roomLog li")].some((li) =>
      li.textContent.includes(`kick ${u}`)), [userB]);

    if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
  } finally {
    await browser.close();
  }
}

runScript("rooms", main, progress);
