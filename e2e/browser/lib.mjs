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
