// Browser tests of the resa web site, run by the Rust integration test
// `web::browser_accessibility_keyboard_and_screenshots`, which starts the site
// on a loopback port with seeded data and sessions, then runs:
//
//   node tests/browser/run.mjs --base http://127.0.0.1:PORT --cookie NAME=VALUE \
//        --manager-cookie NAME=VALUE --admin-cookie NAME=VALUE --booking ID \
//        --resource ID --site ID --screenshots DIR
//
// Debian's Chromium is driven by playwright-core (no browser is downloaded);
// axe-core is evaluated in every page (through the DevTools protocol, so the
// site's Content-Security-Policy stays as strict as in production). A page
// fails on any serious or critical axe violation, on a console error (a CSP
// refusal included), or when it overflows a phone's width. Keyboard tests
// check that Tab alone reaches each page's main action, visibly focused.

import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const CHROMIUM = "/usr/bin/chromium";

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!key.startsWith("--") || i + 1 >= argv.length) {
      throw new Error(`bad argument ${key}`);
    }
    out[key.slice(2)] = argv[i + 1];
  }
  for (const required of ["base", "cookie", "manager-cookie", "admin-cookie", "booking", "resource", "site", "type"]) {
    if (!out[required]) throw new Error(`missing --${required}`);
  }
  out.screenshots = out.screenshots || "target/screenshots";
  return out;
}

const args = parseArgs(process.argv.slice(2));
if (!existsSync(CHROMIUM)) {
  console.error(`FATAL: ${CHROMIUM} is missing: run .ci/browser-setup.sh (apt-get install chromium chromium-driver)`);
  process.exit(2);
}
mkdirSync(args.screenshots, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});

let passed = 0;
let failed = 0;
const failures = [];

function cookieOf(spec) {
  const at = spec.indexOf("=");
  return { name: spec.slice(0, at), value: spec.slice(at + 1), url: args.base };
}

async function contextFor(cookie, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, locale: "fr-FR" });
  if (cookie) await context.addCookies([cookieOf(cookie)]);
  return context;
}

function shotName(name) {
  return join(args.screenshots, `${name.replace(/[^a-z0-9-]+/gi, "_")}.png`);
}

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed += 1;
    failures.push(`${name}: ${e.message}`);
    console.log(`not ok - ${name}\n  ${String(e.message).split("\n").join("\n  ")}`);
  }
}

// Opens `path`, runs axe, checks the console, the status and the phone width.
async function auditPage(context, name, path, { status = 200, phone = false } = {}) {
  const page = await context.newPage();
  const problems = [];
  // The page's own status is checked below; any other failed load (an
  // asset, a script refused by the CSP) is a problem.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && r.request().resourceType() !== "document") problems.push(`${r.status()} for ${r.url()}`);
  });
  page.on("requestfailed", (r) => problems.push(`failed: ${r.url()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const response = await page.goto(args.base + path, { waitUntil: "load" });
  if (response.status() !== status) problems.push(`HTTP ${response.status()}, expected ${status}`);
  const lang = await page.evaluate(() => document.documentElement.lang);
  if (!lang) problems.push("no lang attribute");
  const title = await page.title();
  if (!title.trim()) problems.push("no title");
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"], runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  for (const v of result.violations) {
    if (v.impact === "serious" || v.impact === "critical") {
      const where = v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ");
      problems.push(`axe ${v.impact}: ${v.id} (${v.help}) at ${where}`);
    }
  }
  if (phone) {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    // Wide tables scroll inside their own box; the page itself must not.
    if (overflow > 1) problems.push(`the page is ${overflow}px wider than the phone`);
  }
  await page.screenshot({ path: shotName(name), fullPage: true });
  await page.close();
  if (problems.length) throw new Error(problems.join("\n"));
}

// Presses Tab from the top of `path` until the focused element's text
// contains `targetText` (or matches it, for a RegExp), then checks that it
// is visibly focused; with `press`, activates it with Enter.
async function tabTo(context, name, path, targetText, { press = false, after } = {}) {
  const page = await context.newPage();
  await page.goto(args.base + path, { waitUntil: "load" });
  const seen = [];
  let found = false;
  for (let i = 0; i < 60; i += 1) {
    await page.keyboard.press("Tab");
    const info = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const style = getComputedStyle(el);
      return {
        tag: el.tagName.toLowerCase(),
        text: (el.innerText || el.value || el.getAttribute("aria-label") || "").trim(),
        outline: style.outlineStyle !== "none" && style.outlineWidth !== "0px",
        shadow: style.boxShadow !== "none",
      };
    });
    if (!info) continue;
    seen.push(`${info.tag}:${info.text.slice(0, 30)}`);
    if (i === 0 && !(info.tag === "a" && /contenu|content/i.test(info.text))) {
      throw new Error(`the first Tab does not reach the skip link but ${seen[0]}`);
    }
    const hit = targetText instanceof RegExp ? targetText.test(info.text) : info.text.includes(targetText);
    if (hit) {
      if (!info.outline && !info.shadow) throw new Error(`"${targetText}" has no visible focus`);
      found = true;
      break;
    }
  }
  if (!found) {
    await page.close();
    throw new Error(`Tab never reaches "${targetText}"; focus went through: ${seen.join(" | ")}`);
  }
  await page.screenshot({ path: shotName(`${name}-focus`), fullPage: false });
  if (press) {
    await Promise.all([page.waitForLoadState("load"), page.keyboard.press("Enter")]);
    await page.waitForLoadState("load");
    if (after) await after(page);
    await page.screenshot({ path: shotName(`${name}-after`), fullPage: true });
  }
  await page.close();
}

// The site form with opening hours that close before they open: the page
// that comes back has an error summary whose link leads to the field,
// keeps the typed times, and passes axe.
async function siteHoursRefused() {
  const page = await admin.newPage();
  await page.goto(`${args.base}/admin/sites/${args.site}`, { waitUntil: "load" });
  await page.fill("#h_3_0_opens", "18:00");
  await page.fill("#h_3_0_closes", "08:00");
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("text=Enregistrer les heures")]);
  const problems = [];
  const summary = await page.$$eval("#error-summary a", (links) => links.map((a) => a.getAttribute("href")));
  if (!summary.includes("#h_3_0_closes")) problems.push(`summary links: ${summary.join(", ")}`);
  const kept = await page.$eval("#h_3_0_opens", (el) => el.value);
  if (kept !== "18:00") problems.push(`the opening time typed became "${kept}"`);
  const invalid = await page.$eval("#h_3_0_closes", (el) => el.getAttribute("aria-invalid"));
  if (invalid !== "true") problems.push("the wrong field is not marked aria-invalid");
  await page.click('#error-summary a[href="#h_3_0_closes"]');
  const target = await page.evaluate(() => location.hash && document.querySelector(location.hash)?.tagName);
  if (target !== "INPUT") problems.push(`the summary link leads to "${target}", not the field`);
  problems.push(...(await axeProblems(page)));
  await page.screenshot({ path: shotName("admin-site-hours-refused"), fullPage: true });
  await page.close();
  if (problems.length) throw new Error(problems.join("\n"));
}

// The serious or critical axe violations of the page as it is now.
async function axeProblems(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"], runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `axe ${v.impact}: ${v.id} (${v.help})`);
}

// The edit pages of an organisation and of a resource type, reached by the
// first link of their lists as an admin would, pass axe.
async function organisationAndTypeEditPages() {
  const problems = [];
  for (const [list, prefix, name] of [
    ["/admin/organisations", "/admin/organisations/", "admin-organisation-edit"],
    ["/admin/types", "/admin/types/", "admin-type-edit"],
  ]) {
    const page = await admin.newPage();
    await page.goto(args.base + list, { waitUntil: "load" });
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(`main table a[href^="${prefix}"]`)]);
    const heading = await page.textContent("h1");
    if (!/«/.test(heading || "")) problems.push(`${name}: the page is "${heading}"`);
    problems.push(...(await axeProblems(page)).map((p) => `${name}: ${p}`));
    await page.screenshot({ path: shotName(name), fullPage: true });
    await page.close();
  }
  if (problems.length) throw new Error(problems.join("\n"));
}

const anonymous = await contextFor(null);
const agent = await contextFor(args.cookie);
const manager = await contextFor(args["manager-cookie"]);
const admin = await contextFor(args["admin-cookie"]);
const phone = await contextFor(args.cookie, { width: 360, height: 740 });
const adminPhone = await contextFor(args["admin-cookie"], { width: 360, height: 740 });

const pages = [
  [anonymous, "login", "/login"],
  [anonymous, "login-en", "/login?lang=en"],
  [agent, "home", "/"],
  [agent, "bookings", "/bookings"],
  [agent, "explainer", `/bookings/${args.booking}`],
  [agent, "search", "/search"],
  [agent, "search-results", "/search?kind=&site=&date=2026-12-01&start=10:00&end=11:00&capacity=2"],
  [agent, "forbidden", "/admin/resources", { status: 403 }],
  [agent, "not-found", "/nowhere", { status: 404 }],
  [manager, "approvals", "/approvals"],
  [manager, "blackouts", "/blackouts"],
  [manager, "calendar", "/calendar?from=2026-11-30"],
  [agent, "search-week", "/search?kind=&site=&date=2026-11-30&start=14:00&end=15:00&capacity=&view=week"],
  [admin, "admin-resources", "/admin/resources"],
  [admin, "admin-resource-form", "/admin/resources/new"],
  [admin, "admin-resource-import", "/admin/resources/import"],
  [admin, "admin-resource-edit", `/admin/resources/${args.resource}`],
  [admin, "admin-policies", "/admin/policies"],
  [admin, "admin-policy-resource", `/admin/policies/resource/${args.resource}`],
  [admin, "admin-policy-site", `/admin/policies/site/${args.site}`],
  [admin, "admin-grants", "/admin/grants"],
  [admin, "admin-circuits", "/admin/circuits"],
  [admin, "admin-circuit-form", "/admin/circuits/new"],
  [admin, "admin-templates", "/admin/templates"],
  [admin, "admin-template-form", "/admin/templates/approval_request/fr"],
  [anonymous, "approval-link-invalid", "/approve/not-a-token", { status: 403 }],
  [admin, "admin-audit", "/admin/audit"],
  [admin, "admin-territory", "/admin/territory"],
  [admin, "admin-status", "/admin/status"],
  [manager, "reports", "/reports?from=2026-11-30&to=2026-12-06"],
  [admin, "reports-admin", "/reports?from=2026-11-30&to=2026-12-06"],
  [admin, "export", "/admin/export"],
  [adminPhone, "phone-reports", "/reports?from=2026-11-30&to=2026-12-06", { phone: true }],
  [phone, "phone-bookings", "/bookings", { phone: true }],
  [phone, "phone-explainer", `/bookings/${args.booking}`, { phone: true }],
  [phone, "phone-search-results", "/search?kind=&site=&date=2026-12-01&start=10:00&end=11:00&capacity=", { phone: true }],
  [adminPhone, "phone-admin-resources", "/admin/resources", { phone: true }],
  [adminPhone, "phone-admin-status", "/admin/status", { phone: true }],
  [phone, "phone-search-week", "/search?kind=&site=&date=2026-11-30&start=14:00&end=15:00&capacity=&view=week", { phone: true }],
  [agent, "vehicles", "/vehicules"],
  [manager, "vehicle-reports", "/vehicules/rapports"],
  [admin, "vehicle-fleet", "/vehicules/flotte"],
  [phone, "phone-vehicles", "/vehicules", { phone: true }],
  [phone, "phone-trip", `/vehicules/trajets/${args.booking}`, { phone: true }],
  [admin, "admin-organisations", "/admin/organisations"],
  [admin, "admin-site", `/admin/sites/${args.site}`],
  [admin, "admin-site-new", "/admin/sites/new"],
  [admin, "admin-types", "/admin/types"],
  [admin, "admin-type-attributes", `/admin/types/${args.type}/attributes`],
  [admin, "admin-resource-attributes", `/admin/resources/${args.resource}/attributes`],
  [agent, "search-equipment", "/search?kind=&site=&date=2026-12-01&start=10:00&end=11:00&capacity=&equipment=visio"],
  [adminPhone, "phone-admin-site", `/admin/sites/${args.site}`, { phone: true }],
  [adminPhone, "phone-admin-organisations", "/admin/organisations", { phone: true }],
];
for (const [context, name, path, options] of pages) {
  await check(`axe: ${name} (${path})`, () => auditPage(context, name, path, options));
}

const fresh = await contextFor(null);
await check("keyboard: the login form's button", () => tabTo(fresh, "kbd-login", "/login", "Se connecter"));
await check("keyboard: search, then book, from the keyboard alone", () =>
  tabTo(agent, "kbd-search", "/search?kind=&site=&date=2026-12-01&start=10:00&end=11:00&capacity=2", "Réserver", {
    press: true,
    after: async (page) => {
      const heading = await page.textContent("h1");
      if (!/Explication/.test(heading || "")) throw new Error(`after booking, the page is "${heading}"`);
    },
  }),
);
await check("keyboard: the explainer of my booking", () => tabTo(agent, "kbd-bookings", "/bookings", "Détail de la décision"));
await check("keyboard: approve in the manager's queue", () => tabTo(manager, "kbd-approvals", "/approvals", "Approuver"));
await check("keyboard: create a resource", () => tabTo(admin, "kbd-resource-form", "/admin/resources/new", "Créer la ressource"));
await check("keyboard: search the directory for a group", () => tabTo(admin, "kbd-grants", "/admin/grants", /^Rechercher$/));
await check("keyboard: resync one mailbox from the status page", () =>
  tabTo(admin, "kbd-resync", "/admin/status", /^Resynchroniser/),
);
await check("keyboard: the next week of a manager's calendar", () =>
  tabTo(manager, "kbd-calendar", "/calendar?from=2026-11-30", "Semaine suivante"),
);
await check("keyboard: book a weekly series", () =>
  tabTo(agent, "kbd-series", "/search?kind=&site=&date=2026-12-02&start=12:00&end=13:00&capacity=2", /Une seule fois/),
);

await check("keyboard: save a site", () => tabTo(admin, "kbd-site", `/admin/sites/${args.site}`, /^Enregistrer$/));
await check("keyboard: create a resource type", () => tabTo(admin, "kbd-types", "/admin/types", /^Créer$/));
await check("site hours refused: error summary linked to the field, nothing lost, axe clean", () => siteHoursRefused());
await check("axe: an organisation's and a resource type's edit pages", () => organisationAndTypeEditPages());

await browser.close();
console.log(`browser: ${passed} passed, ${failed} failed`);
if (failed > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
