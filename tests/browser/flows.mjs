// End-to-end flows of the resa web site in headless Chromium, against a
// running `resa demo` (its simulated Exchange included), started by the Rust
// integration test `demo::the_demo_site_in_chromium_reaches_the_simulated_exchange`:
//
//   node tests/browser/flows.mjs --base http://127.0.0.1:PORT --sim http://127.0.0.1:PORT/_sim \
//        --date YYYY-MM-DD --held-subject TEXT --screenshots DIR
//
// Each flow signs in through the demo's sign-in page as a person of the
// customer's directories, acts only through the pages (clicks, fields,
// selects), then reads the simulated Exchange's mailboxes through its control
// API to see what Exchange received. A screenshot is saved after each step.

import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const CHROMIUM = "/usr/bin/chromium";

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!key.startsWith("--") || i + 1 >= argv.length) throw new Error(`bad argument ${key}`);
    out[key.slice(2)] = argv[i + 1];
  }
  for (const required of ["base", "sim", "date", "held-subject"]) {
    if (!out[required]) throw new Error(`missing --${required}`);
  }
  out.screenshots = out.screenshots || "target/screenshots";
  return out;
}

const args = parseArgs(process.argv.slice(2));
if (!existsSync(CHROMIUM)) {
  console.error(`FATAL: ${CHROMIUM} is missing: run .ci/browser-setup.sh`);
  process.exit(2);
}
mkdirSync(args.screenshots, { recursive: true });

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});

let passed = 0;
let failed = 0;
const failures = [];

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

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// axe-core's serious and critical violations on the page (none expected).
async function axeProblems(page, what) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"], runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) throw new Error(`${what}: ${bad.map((v) => `axe ${v.impact}: ${v.id} (${v.help})`).join("; ")}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(args.screenshots, `flow-${name}.png`), fullPage: true });
}

// A mailbox folder of the simulated Exchange.
async function folder(smtp, name) {
  const r = await fetch(`${args.sim}/mailboxes/${smtp}/${name}`);
  if (!r.ok) throw new Error(`control API: ${r.status} for ${smtp}/${name}`);
  return (await r.json()).items || [];
}

// Waits until `test` holds for some item of the folder; returns that item.
async function waitForItem(smtp, name, test, what) {
  for (let i = 0; i < 150; i += 1) {
    const hit = (await folder(smtp, name)).find(test);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 200));
  }
  const items = await folder(smtp, name);
  throw new Error(`${what}: not in ${smtp}/${name} after 30 s; it holds ${JSON.stringify(items.map((i) => [i.kind, i.response, i.subject]))}`);
}

// A fresh browser signed in through the demo's sign-in page as `person`.
async function signIn(person) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "fr-FR" });
  const page = await context.newPage();
  await page.goto(`${args.base}/login`, { waitUntil: "load" });
  const button = page.getByRole("button", { name: new RegExp(`en tant que ${person} \\(`) });
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/login")), button.click()]);
  const who = await page.textContent(".who");
  if (!who || !who.includes(person)) throw new Error(`signed in as "${who}", not ${person}`);
  return { context, page };
}

// Searches rooms of `site` on the test date and books `room` from its result.
async function bookRoom(page, { site, room, start, end, subject }) {
  await page.goto(`${args.base}/search`, { waitUntil: "load" });
  await page.selectOption("#kind", { label: "Salle de réunion" });
  await page.selectOption("#site", { label: site });
  await page.fill("#date", args.date);
  await page.fill("#start", start);
  await page.fill("#end", end);
  await page.fill("#capacity", "4");
  await Promise.all([page.waitForURL(/\/search\?/), page.getByRole("button", { name: "Chercher" }).click()]);
  const section = page.locator("section.result", { has: page.locator("h3", { hasText: room }) });
  await section.getByLabel("Objet de la réunion").fill(subject);
  await Promise.all([
    page.waitForURL(/\/bookings\//),
    section.getByRole("button", { name: new RegExp(`^Réserver : ${room}$`) }).click(),
  ]);
  const heading = await page.textContent("h1");
  if (!/Explication/.test(heading || "")) throw new Error(`after booking, the page is "${heading}"`);
  return (await page.textContent("dd[class^=status-]")) || "";
}

await check("an agent books a room on the web and the meeting is in the room's Exchange calendar", async () => {
  const { context, page } = await signIn("Alice Diallo");
  const status = await bookRoom(page, {
    site: "Plaine Commune — Siège – Saint-Denis",
    room: "Salle Cézanne",
    start: "10:00",
    end: "11:00",
    subject: "Atelier du site web",
  });
  await shot(page, "book-explainer");
  if (!/acceptée/.test(status)) throw new Error(`the booking is "${status}", not accepted`);
  const meeting = await waitForItem(
    "salle.cezanne@plainecommune.fr",
    "calendar",
    (i) => i.kind === "CalendarItem" && i.subject === "Atelier du site web",
    "the web booking",
  );
  if (!(meeting.attendees || []).some((a) => JSON.stringify(a).includes("alice.diallo@plainecommune.fr"))) {
    throw new Error(`Alice Diallo is not invited: ${JSON.stringify(meeting.attendees)}`);
  }
  await waitForItem(
    "alice.diallo@plainecommune.fr",
    "inbox",
    (i) => i.kind === "MeetingRequest" && i.subject === "Atelier du site web",
    "the invitation in Alice Diallo's mailbox",
  );
  await context.close();
});

await check("a manager approves a held request from the queue and the organiser's mailbox gets the acceptance", async () => {
  const { context, page } = await signIn("Bruno Bernard");
  await page.goto(`${args.base}/approvals`, { waitUntil: "load" });
  await shot(page, "approvals-before");
  const approve = page.getByRole("button", { name: `Approuver : ${args["held-subject"]}` }).first();
  await Promise.all([page.waitForLoadState("load"), approve.click()]);
  await page.waitForLoadState("load");
  await shot(page, "approvals-after");
  const accept = await waitForItem(
    "alice.diallo@plainecommune.fr",
    "inbox",
    (i) => i.kind === "MeetingResponse" && i.response === "Accept" && (i.subject || "").includes(args["held-subject"]),
    "the acceptance",
  );
  if (!String(accept.from || "").includes("salle.hugo@ville-saint-denis.fr")) {
    throw new Error(`the acceptance comes from ${accept.from}`);
  }
  await context.close();
});

await check("mapping an AD group to a site gives its members the right to book there", async () => {
  // Before: a Saint-Denis agent may not book at Plaine Commune's head office.
  const agent = await signIn("Bruno Diallo");
  const before = await bookRoom(agent.page, {
    site: "Plaine Commune — Siège – Saint-Denis",
    room: "Salle Monet",
    start: "14:00",
    end: "15:00",
    subject: "Avant le droit",
  });
  await shot(agent.page, "grant-before");
  if (!/refusée/.test(before)) throw new Error(`before the grant, the booking is "${before}"`);

  // The administrator finds the group and grants it "book" on the site.
  const admin = await signIn("Alice Martin");
  const page = admin.page;
  await page.goto(`${args.base}/admin/grants`, { waitUntil: "load" });
  await page.fill("#q", "Agents Ville de Saint-Denis");
  await Promise.all([page.waitForURL(/q=/), page.getByRole("button", { name: /^Rechercher$/ }).click()]);
  const result = page.locator("form.grant-result", { hasText: "Agents Ville de Saint-Denis" });
  await result.getByLabel("Portée").selectOption({ label: "Site « Plaine Commune — Siège – Saint-Denis »" });
  await result.getByLabel("Droit").selectOption({ label: "réserver" });
  await Promise.all([
    page.waitForURL(/\/admin\/grants/),
    result.getByRole("button", { name: /^Accorder/ }).click(),
  ]);
  await shot(page, "grant-added");
  const table = await page.textContent("table");
  if (!/Agents Ville de Saint-Denis/.test(table || "")) throw new Error("the new grant is not listed");
  await admin.context.close();

  // After: the same agent books there, and Exchange has the meeting.
  const after = await bookRoom(agent.page, {
    site: "Plaine Commune — Siège – Saint-Denis",
    room: "Salle Monet",
    start: "15:00",
    end: "16:00",
    subject: "Après le droit",
  });
  await shot(agent.page, "grant-after");
  if (!/acceptée/.test(after)) throw new Error(`after the grant, the booking is "${after}"`);
  await waitForItem(
    "salle.monet@plainecommune.fr",
    "calendar",
    (i) => i.kind === "CalendarItem" && i.subject === "Après le droit",
    "the booking made with the new right",
  );
  await agent.context.close();
});

// A 1×1 PNG, the damage photo the driver attaches.
const PHOTO_PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

// Waits until the image is decoded (served as an image, allowed by the CSP).
async function imageLoads(page, locator, what) {
  const img = await locator.elementHandle();
  try {
    await page.waitForFunction((el) => el.complete && el.naturalWidth === 1, img, { timeout: 10000 });
  } catch {
    throw new Error(`${what} does not load as an image`);
  }
}

// `date` as Paris wall-clock time, "YYYY-MM-DDTHH:MM:00", as Outlook sends it.
function parisLocal(date) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone: "Europe/Paris",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:00`;
}

// A driver books a car from Outlook for the coming hours, picks it up and
// returns it on the phone-sized pages with a photo of a scratch; the photo is
// on the loan, and the fleet's administrator finds it in the car's damage history.
async function returnACarWithAPhoto() {
  const car = "vehicule.60@plainecommune.fr";
  const driver = "alice.nguyen@plainecommune.fr";
  const subject = "Tournée des chantiers";
  const now = Date.now();
  const invite = {
    as: driver,
    subject,
    start: parisLocal(new Date(now + 75 * 60 * 1000)),
    end: parisLocal(new Date(now + 4 * 3600 * 1000)),
    time_zone: "Europe/Paris",
    resources: [car],
  };
  const sent = await fetch(`${args.sim}/invite`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(invite),
  });
  if (!sent.ok) throw new Error(`invite: ${sent.status} ${await sent.text()}`);
  await waitForItem(
    driver,
    "inbox",
    (i) => i.kind === "MeetingResponse" && i.response === "Accept" && (i.subject || "").includes(subject),
    "the car's acceptance",
  );

  const { context, page } = await signIn("Alice Nguyen");
  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto(`${args.base}/vehicules`, { waitUntil: "load" });
  await Promise.all([
    page.waitForURL(/\/vehicules\/prets\//),
    page.getByRole("link", { name: /Départ et retour : Voiture 60/ }).click(),
  ]);
  const loanUrl = page.url();
  await page.fill("#odometer", "20000");
  await Promise.all([
    page.waitForURL(/msg=saved/),
    page.getByRole("button", { name: "Enregistrer le départ" }).click(),
  ]);
  await page.fill("#odometer", "20042");
  await page.fill("#energy_level", "70");
  await page.getByLabel("Propre", { exact: true }).check();
  await page.fill("#damage", "Rayure sur l'aile avant gauche");
  await page.setInputFiles("#photos", { name: "rayure.png", mimeType: "image/png", buffer: PHOTO_PNG });
  await shot(page, "return-with-photo");
  await Promise.all([
    page.waitForURL(/\/vehicules\?msg=saved/),
    page.getByRole("button", { name: "Enregistrer le retour" }).click(),
  ]);
  await page.goto(loanUrl, { waitUntil: "load" });
  const mine = page.locator("ul.photos img");
  if ((await mine.count()) !== 1) throw new Error(`the loan shows ${await mine.count()} photos, not 1`);
  await imageLoads(page, mine.first(), "the photo on the loan");
  await axeProblems(page, "the returned loan with its photo");
  await shot(page, "returned-with-photo");
  await context.close();

  const admin = await signIn("Alice Martin");
  await admin.page.goto(`${args.base}/vehicules/flotte`, { waitUntil: "load" });
  await Promise.all([
    admin.page.waitForURL(/\/dommages$/),
    admin.page.getByRole("link", { name: "Historique des dommages : Voiture 60" }).click(),
  ]);
  const history = await admin.page.textContent("main");
  if (!/Rayure sur l'aile avant gauche/.test(history || "")) throw new Error(`the history lacks the damage: ${history}`);
  if (!/Alice Nguyen|alice\.nguyen@/.test(history || "")) throw new Error(`the history does not say who returned it: ${history}`);
  await imageLoads(admin.page, admin.page.locator("section.damage img").first(), "the photo in the damage history");
  await axeProblems(admin.page, "the damage history");
  await shot(admin.page, "damage-history");
  await admin.context.close();
}

await check("a driver returns a car with a photo of the damage and it is in the car's damage history", returnACarWithAPhoto);

// "A car at this site at this time" from the web: the pool's form books a
// concrete car (an electric one, its range covering the declared 40 km), the
// decision names it, and the meeting is in the pool's Exchange calendar.
async function askForACarOnTheWeb() {
  const destination = `Bobigny ${Date.now() % 100000}`;
  const { context, page } = await signIn("Alice Nguyen");
  await page.goto(`${args.base}/vehicules`, { waitUntil: "load" });
  await page.fill("#ask-destination", destination);
  await page.fill("#ask-distance", "40");
  await axeProblems(page, "the vehicles page with its car request form");
  await shot(page, "ask-car");
  await Promise.all([
    page.waitForURL(/\/bookings\/[0-9a-f-]{36}/, { timeout: 30000 }),
    page.locator('form[action="/vehicules/demande"] button[type="submit"]').click(),
  ]);
  const text = (await page.textContent("main")) || "";
  const car = text.match(/Voiture \d{2}/);
  if (!car) throw new Error(`the decision names no car: ${text.slice(0, 600)}`);
  await shot(page, "ask-car-decided");
  await context.close();
  const item = await waitForItem(
    "vehicules@plainecommune.fr",
    "calendar",
    (i) => (i.subject || "").includes(destination),
    "the car's meeting in the pool's calendar",
  );
  if (!(item.body || "").includes(car[0])) throw new Error(`the meeting names another car than ${car[0]}: ${item.body}`);
  const number = Number(car[0].slice(-2));
  if (number > 12) throw new Error(`${car[0]} is not one of the electric cars (01 to 12), though 40 km is within their range`);
}

await check("an agent asks the web site for a car at a site and gets a concrete electric car, in Exchange too", askForACarOnTheWeb);

await browser.close();
console.log(`flows: ${passed} passed, ${failed} failed`);
if (failed > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
