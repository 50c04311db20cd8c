// What the browser tests share: playwright-core, found where
// scripts/lib/servers.sh (ensure_playwright) put it, and how Chromium runs.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

// ESM `import` ignores NODE_PATH, so playwright-core is required from the
// directories given by PLAYWRIGHT_NODE_PATH / NODE_PATH, then .tools/node.
export function loadPlaywright() {
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


// Chromium with a page per name, each in a browser context of its own (its
// own storage: another device); uncaught errors in a page go to `errors`.
export async function launchPages(names, errors) {
  const { chromium } = loadPlaywright();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60000 });
  const pages = [];
  for (const name of names) {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
    pages.push(page);
  }
  return { browser, pages };
}

// In the page: whether a message with body `text` is shown, acknowledged.
export const shown = (text) => [...document.querySelectorAll("#list .msg")].some((m) =>
  !m.classList.contains("pending") && m.querySelector(".body")?.textContent === text);

export const TIMEOUT = 20000;
export const PASSWORD = "password123";

// In the page: whether the status line says the socket is up.
export const connected = () => /^connected to /.test(document.getElementById("status").textContent);

// Waits (polling, up to TIMEOUT) for `fn(arg)` to hold in `page`; a timeout
// names `what` and the page's status line, and the text of `#<extra>`
// when given.
export function waiter(extra) {
  return async (page, what, fn, arg) => {
    try {
      await page.waitForFunction(fn, arg, { timeout: TIMEOUT, polling: 100 });
    } catch (e) {
      const status = await page.textContent("#status").catch(() => "?");
      const more = extra ? `, ${extra}: ${JSON.stringify(await page.textContent(`#${extra}`).catch(() => "?"))}` : "";
      throw new Error(`timed out waiting for ${what}; status: ${JSON.stringify(status)}${more}`);
    }
  };
}

// Registers `user` on the page at `url` and waits until it is connected.
export async function register(page, url, user, until) {
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: TIMEOUT });
  await page.fill("#username", user);
  await page.fill("#password", PASSWORD);
  await page.click("#register");
  await until(page, `${user} connected`, connected);
}

// Writes `text` in the open conversation and waits for its acknowledgement.
export async function sendShown(page, text, until) {
  await page.fill("#body", text);
  await page.locator("#composer button").click();
  await until(page, `own message ${JSON.stringify(text)} acknowledged`, shown, text);
}

// Runs a script's `main`: prints "<name>: ok" and exits 0, or what failed at
// which `progress.step` and exits 1; a watchdog ends a hung run after 120 s.
export function runScript(name, main, progress) {
  const watchdog = setTimeout(() => {
    console.error(`${name}: FAILED: no result after 120 s (at step: ${progress.step})`);
    process.exit(1);
  }, 120000);
  main().then(() => {
    clearTimeout(watchdog);
    console.log(`${name}: ok`);
  }).catch((e) => {
    console.error(`${name}: FAILED at "${progress.step}": ${e.message}`);
    process.exit(1);
  });
}
