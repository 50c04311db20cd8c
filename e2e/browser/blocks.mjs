// Browser test of invite links, room display names, history since joining
// and blocking in the web client: A creates a private room, writes in it,
// gives it a display name (the room bar and sidebar show it), lets members
// read only from when they joined, and makes an invite link; B opens the
// link, signs up and is in the room, without A's earlier message; B DMs A. A blocks B from the account page: B's next DM
// is refused on B's page and never reaches A, and B's room message folds
// away on A's page until A asks to see it. A unblocks B from the member
// list, and B's next DM arrives; A blocks B again from the DM's bar.
//
//   PLAYWRIGHT_NODE_PATH=.tools/node/node_modules \
//     node e2e/browser/blocks.mjs http://127.0.0.1:8081 http://127.0.0.1:8082
//
// Prints "blocks: ok" and exits 0, or what failed and exits 1.
import { randomBytes } from "node:crypto";
import { launchPages, register as registerAs, runScript, sendShown, shown, waiter } from "./lib.mjs";

const [urlA, urlB] = process.argv.slice(2);
const run = randomBytes(4).toString("hex");
const userA = `ba_${run}`, userB = `bb_${run}`, room = `hall${run}`, display = `The Hall ${run}`;
const progress = { step: "start" };
const pageErrors = [];
const until = waiter();
const register = (page, url, user) => registerAs(page, url, user, until);
const send = (page, text) => sendShown(page, text, until);

async function write(page, text) {
  await page.fill("#body", text);
  await page.locator("#composer button").click();
}

async function openDm(page, user) {
  await page.fill("#dmUser", user);
  await page.locator("#openDm button").click();
}

async function main() {
  progress.step = "launch chromium";
  const { browser, pages: [pageA, pageB] } = await launchPages(["A", "B"], pageErrors);
  try {
    progress.step = "A registers";
    await register(pageA, urlA, userA);

    progress.step = "A creates a private room and names it";
    await pageA.check("#roomPrivate");
    await pageA.fill("#roomName", room);
    await pageA.locator("#joinRoom button").click();
    await until(pageA, "in the room", (r) => document.getElementById("roomTitle").textContent === `#${r} 🔒`, room);
    const early = `before you came ${run}`;
    await send(pageA, early);
    await pageA.click("#roomBtn");
    // The page fills its fields once it has the room: fill them after that.
    await until(pageA, "the room page", (r) => document.getElementById("roomHeading").textContent === `#${r}`, room);
    await pageA.fill("#roomDisplayInput", display);
    await pageA.selectOption("#roomHistory", "since_join");
    await pageA.locator("#roomSettings button").click();
    await until(pageA, "saved", () => document.getElementById("roomStatus").textContent === "Saved.");
    await until(pageA, "the room page heading shows the display name", ([d, r]) =>
      document.getElementById("roomHeading").textContent === `${d} (#${r})`, [display, room]);

    progress.step = "A makes an invite link";
    await pageA.selectOption("#linkUses", "1");
    await pageA.locator("#linkForm button").click();
    await until(pageA, "the link shown", () => /#invite=[0-9a-f]{32}$/.test(document.getElementById("newLinkUrl").value));
    const linkUrl = await pageA.inputValue("#newLinkUrl");
    await until(pageA, "the link listed with its uses", () => /0\/1 uses/.test(document.getElementById("roomLinks").textContent));
    await pageA.click("#closeRoom");
    await until(pageA, "the room bar and sidebar show the display name", ([d, r]) =>
      document.getElementById("roomTitle").textContent === `${d} 🔒`
      && document.querySelector(`#rooms li[data-conv="room:${r}"] .name`)?.textContent === d, [display, room]);

    progress.step = "B opens the link, signs up and is in the room";
    await register(pageB, urlB + new URL(linkUrl).hash, userB);
    await until(pageB, "B: in the room, by its display name", (d) => document.getElementById("roomTitle").textContent === `${d} 🔒`, display);
    if (/#invite=/.test(pageB.url())) throw new Error("the code stays in B's address bar");
    const welcome = `welcome ${run}`;
    await send(pageA, welcome);
    await until(pageB, "B: A's welcome, live", shown, welcome);
    if (await pageB.evaluate(shown, early)) throw new Error("B reads what was said before B joined");

    progress.step = "B DMs A";
    await openDm(pageB, userA);
    const hi = `hi there ${run}`;
    await send(pageB, hi);
    await pageA.locator(`#dms li[data-conv]`).first().click();
    await until(pageA, "A: B's DM", shown, hi);

    progress.step = "A blocks B from the account page";
    await pageA.click("#accountBtn");
    await pageA.fill("#blockUser", userB);
    await pageA.locator("#blockForm button").click();
    await until(pageA, "B listed as blocked", (u) => !!document.querySelector(`#blockedList li[data-user="${u}"]`), userB);
    await pageA.click("#closeAccount");

    progress.step = "B's next DM is refused and never reaches A";
    const refused = `let me in ${run}`;
    await write(pageB, refused);
    await until(pageB, "B: the refusal", () => /error: forbidden: cannot send a direct message/.test(document.getElementById("status").textContent));
    await until(pageB, "B: the refused message is no longer pending", (t) =>
      ![...document.querySelectorAll("#list .msg .body")].some((b) => b.textContent === t), refused);

    progress.step = "B's room message folds away on A's page";
    await pageB.locator(`#rooms li[data-conv="room:${room}"]`).click();
    const inRoom = `room words ${run}`;
    await send(pageB, inRoom);
    await pageA.locator(`#rooms li[data-conv="room:${room}"]`).click();
    await until(pageA, "A: a folded message from B", (u) => [...document.querySelectorAll("#list .msg.blocked")].some((m) =>
      m.dataset.from === u && /blocked user/.test(m.querySelector(".body").textContent)), userB);
    await pageA.locator("#list .msg.blocked .body").first().click();
    await until(pageA, "A: the message unfolded", shown, inRoom);

    progress.step = "A unblocks B from the member list; B's DM arrives";
    await pageA.click("#roomBtn");
    await pageA.locator(`#roomMembers li[data-user="${userB}"] button.unblock`).click();
    await until(pageA, "the block button is back", (u) => !!document.querySelector(`#roomMembers li[data-user="${u}"] button.block`), userB);
    await pageA.click("#closeRoom");
    await openDm(pageB, userA);
    const again = `friends again ${run}`;
    await send(pageB, again);
    await openDm(pageA, userB);
    await until(pageA, "A: B's DM after the unblock", shown, again);
    progress.step = "A blocks B again from the DM's bar";
    await until(pageA, "the DM bar offers to block", () => document.getElementById("dmBlock").textContent === "block");
    await pageA.click("#dmBlock");
    await until(pageA, "the DM bar offers to unblock", () => document.getElementById("dmBlock").textContent === "unblock");
    const blockedAgain = `blocked again ${run}`;
    await write(pageB, blockedAgain);
    await until(pageB, "B: refused again", (t) => /error: forbidden: cannot send a direct message/.test(document.getElementById("status").textContent)
      && ![...document.querySelectorAll("#list .msg .body")].some((b) => b.textContent === t), blockedAgain);
    const leaked = await pageA.evaluate((t) => [...document.querySelectorAll("#list .msg .body")].some((b) => b.textContent === t), refused);
    if (leaked) throw new Error("the DM refused during the block is shown to A");

    if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
  } finally {
    await browser.close();
  }
}

runScript("blocks", main, progress);
