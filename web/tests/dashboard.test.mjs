// The dashboard end to end, in Debian's Chromium against the real `tally serve`: sign up, create
// a key, send usage over HTTP and watch it arrive in the gauge, the chart and the tables, rotate
// and revoke, the invoices page, the admin views with two accounts, and CORS on /graphql. Any
// console error or page error fails the test.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launch } from "./support/browser.mjs";
import { graphql, postWithKey, rawRequest } from "./support/http.mjs";
import { screenshot } from "./support/screens.mjs";
import { startOtherSite } from "./support/origin.mjs";
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTally } from "./support/server.mjs";
import { eventually } from "./support/wait.mjs";

const MEMBER = { email: "owner@acme.test", password: "acme password 1", account: "Acme" };
const KEY_FORMAT = /^tly_[0-9A-Za-z]{36}$/;

let tally;
let browser;
let page;
let firstKey;
let otherSite;

before(async () => {
  otherSite = await startOtherSite();
  tally = await startTally({ corsOrigins: otherSite.allowedOrigin });
  browser = await launch();
  await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: tally.url });
  page = browser.context.pages()[0] || (await browser.context.newPage());
});

after(async () => {
  if (browser) await browser.close();
  if (tally) await tally.stop();
  if (otherSite) await otherSite.stop();
  if (browser) assert.deepEqual(browser.problems, [], "the browser reported errors");
});

/** Fails the current step at once when the browser has reported an error so far. */
function assertNoBrowserErrors() {
  assert.deepEqual(browser.problems, [], "the browser reported errors");
}

async function refreshUntil(check, what) {
  return eventually(check, {
    what,
    between: () => page.getByRole("button", { name: "Refresh" }).click(),
  });
}

/** The data of the chart drawn on a canvas, once Chart.js has drawn it (just after the render). */
async function chartData(testid) {
  return eventually(
    () =>
      page.evaluate((id) => {
        const canvas = document.querySelector(`[data-testid="${id}"]`);
        const chart = canvas && window.Chart.getChart(canvas);
        return chart ? chart.data.datasets.map((set) => set.data) : false;
      }, testid),
    { what: `the ${testid} chart` }
  );
}

async function chartSums(testid) {
  return (await chartData(testid)).map((data) => data.reduce((sum, n) => sum + n, 0));
}

test("an unknown visitor lands on the sign-in screen, and can sign up", async () => {
  await page.goto(`${tally.url}/`);
  await page.getByRole("heading", { name: "Sign in to Tally" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/dashboard/sign-in");
  await screenshot(page, "sign-in", { fullPage: false });

  await page.getByRole("link", { name: "Sign up" }).click();
  await page.getByLabel("Account name").fill(MEMBER.account);
  await page.getByLabel("E-mail").fill(MEMBER.email);
  // A too-short password is refused with a sentence, not a code.
  await page.getByLabel("Password").fill("short");
  await page.getByLabel("Password").evaluate((input) => input.removeAttribute("minlength"));
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("alert").filter({ hasText: "The password must be at least 8 characters." }).waitFor();

  await page.getByLabel("Password").fill(MEMBER.password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("heading", { name: "Usage" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/dashboard");
  await page.getByText("0 of 1,000 calls").waitFor();
  await page.getByText("No API calls in the last 7 days.").waitFor();
  assertNoBrowserErrors();
});

test("a new key's plaintext is shown once, with a copy button", async () => {
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByText("No keys yet.").waitFor();
  await page.getByLabel("Name").fill("production gateway");
  await page.getByRole("button", { name: "Create key" }).click();

  const plaintext = page.getByTestId("plaintext");
  await plaintext.waitFor();
  firstKey = await plaintext.inputValue();
  assert.match(firstKey, KEY_FORMAT);
  await page.getByText("This is the only time Tally shows this key").waitFor();
  await page.getByRole("button", { name: "Copy", exact: true }).click();
  await page.getByText("Copied to the clipboard.").waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), firstKey);
  await page.getByTestId("keys").getByText(firstKey.slice(0, 12)).waitFor();
  await screenshot(page, "keys-new-key", { fullPage: false });

  await page.getByRole("button", { name: "I have saved it" }).click();
  await page.reload();
  await page.getByTestId("keys").waitFor();
  assert.equal(await page.getByTestId("plaintext").count(), 0);
  assert.ok(!(await page.content()).includes(firstKey), "the plaintext is never shown again");
  assertNoBrowserErrors();
});

test("usage sent over HTTP shows in the gauge, the chart and the tables", async () => {
  const ts = () => new Date().toISOString();
  for (let i = 0; i < 3; i++) {
    const verify = await postWithKey(tally.url, "/api/v1/verify", firstKey, { endpoint: "/v1/search", method: "GET" });
    assert.equal(verify.status, 200, JSON.stringify(verify.body));
  }
  const batch = await postWithKey(tally.url, "/api/v1/events", firstKey, {
    events: [
      { endpoint: "/v1/orders", method: "POST", status_code: 201, response_time_ms: 120, ts: ts() },
      { endpoint: "/v1/orders", method: "POST", status_code: 500, response_time_ms: 340, ts: ts() },
      { endpoint: "/v1/search", method: "GET", status_code: 200, response_time_ms: 80, ts: ts() },
      { endpoint: "/v1/search", method: "GET", status_code: 404, response_time_ms: 20, ts: ts() },
    ],
  });
  assert.equal(batch.status, 200, JSON.stringify(batch.body));
  assert.equal(batch.body.accepted, 4);
  for (let i = 0; i < 2; i++) {
    const track = await postWithKey(tally.url, "/api/track", firstKey, { skill_id: "code-review", tool_name: "Read", ts: ts() });
    assert.equal(track.status, 200);
  }
  const install = await postWithKey(tally.url, "/api/install-callback", firstKey, { skill_id: "code-review", platform: "linux", version: "1.2.0" });
  assert.equal(install.status, 200);
  // 3 verified calls + 4 reported calls + 2 tool uses; the install is not a call.
  const calls = 9;

  await page.getByRole("link", { name: "Usage" }).click();
  await refreshUntil(async () => (await page.getByTestId("gauge-text").innerText()).includes(`${calls} of 1,000 calls`), "the gauge");
  const [gauge] = await chartData("gauge");
  assert.deepEqual(gauge, [calls, 1000 - calls], "the gauge's used and left parts");
  await page.getByTestId("remaining").getByText("991").waitFor();

  // The 30-day chart and the endpoint table read the daily rollups, which may trail by a second.
  await refreshUntil(async () => {
    const [total, failed] = await chartSums("history");
    return total === calls && failed === 2;
  }, "the 30-day chart");
  const tableRows = (testid, text) => page.getByTestId(testid).getByRole("row").filter({ hasText: text }).count();
  await refreshUntil(
    async () =>
      (await tableRows("endpoints", "POST /v1/orders")) === 1 &&
      (await tableRows("tools", "Read")) === 1 &&
      (await page.getByTestId("tools").getByRole("row").filter({ hasText: "Read" }).getByRole("cell").nth(2).innerText()) === "2" &&
      (await tableRows("installs", "code-review")) === 1,
    "the endpoint, tool and install tables"
  );
  const search = page.getByTestId("endpoints").getByRole("row").filter({ hasText: "GET /v1/search" });
  assert.deepEqual(await search.getByRole("cell").allInnerTexts().then((cells) => cells.slice(1, 3)), ["5", "1"]);
  const orders = page.getByTestId("endpoints").getByRole("row").filter({ hasText: "POST /v1/orders" });
  assert.deepEqual(await orders.getByRole("cell").allInnerTexts().then((cells) => cells.slice(1, 3)), ["2", "1"]);

  // The window picker asks again for another span.
  await page.getByTestId("window").selectOption("30");
  await page.getByTestId("endpoints").getByRole("row").filter({ hasText: "GET /v1/search" }).waitFor();

  await page.getByRole("link", { name: "API keys" }).click();
  const row = page.getByTestId("keys").getByRole("row").filter({ hasText: firstKey.slice(0, 12) });
  await row.getByRole("cell", { name: String(calls), exact: true }).waitFor();
  // The key's own last 30 days, from the same rollups as the account's chart.
  await row.getByRole("button", { name: /^Usage of/ }).click();
  await page.getByTestId("key-history").waitFor();
  assert.deepEqual(await chartSums("key-history"), [calls, 2], "the key's calls and failures");
  await row.getByRole("button", { name: /^Usage of/ }).click();
  assert.equal(await page.getByTestId("key-usage").count(), 0);
  assertNoBrowserErrors();
});

test("a key is rotated with a grace period, and the old one revoked after a confirmation", async () => {
  const oldPrefix = firstKey.slice(0, 12);
  const oldRow = () => page.getByTestId("keys").getByRole("row").filter({ hasText: oldPrefix });
  await oldRow().getByRole("button", { name: "Rotate" }).click();
  await page.getByLabel("When the old key stops working").selectOption("3600");
  await page.getByRole("button", { name: "Rotate key" }).click();
  const newKey = await page.getByTestId("plaintext").inputValue();
  assert.match(newKey, KEY_FORMAT);
  assert.notEqual(newKey, firstKey);
  await page.getByText("Key rotated: here is the new key").waitFor();
  // During the grace period both keys work; the old one says until when.
  await oldRow().getByText(/Active until/).waitFor();
  assert.equal((await postWithKey(tally.url, "/api/v1/verify", firstKey, {})).status, 200);
  assert.equal((await postWithKey(tally.url, "/api/v1/verify", newKey, {})).status, 200);
  await page.getByRole("button", { name: "I have saved it" }).click();

  await oldRow().getByRole("button", { name: "Revoke" }).click();
  await page.getByText("Every request with this key is refused from now on.").waitFor();
  await screenshot(page, "keys-revoke", { fullPage: false });
  // Cancelling changes nothing.
  await page.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await page.getByTestId("confirm").count(), 0);
  await oldRow().getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("button", { name: "Revoke key" }).click();
  await eventually(async () => (await oldRow().count()) === 0, { what: "the revoked key to leave the list" });
  assert.equal((await postWithKey(tally.url, "/api/v1/verify", firstKey, {})).status, 401);
  assert.equal((await postWithKey(tally.url, "/api/v1/verify", newKey, {})).status, 200);

  await page.getByLabel("Show revoked keys").check();
  await oldRow().getByText("Revoked").waitFor();
  await screenshot(page, "keys");
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, "keys-390", { width: 390 });
  await page.setViewportSize({ width: 1280, height: 900 });
  assertNoBrowserErrors();
});

test("the invoices page says when there are none yet; an unknown screen says so", async () => {
  await page.getByRole("link", { name: "Invoices" }).click();
  await page.getByText("No invoices yet.").waitFor();
  await page.goto(`${tally.url}/dashboard/no-such-screen`);
  await page.getByRole("heading", { name: "Page not found" }).waitFor();
  assertNoBrowserErrors();
});

test("the screens work from the keyboard", async () => {
  await page.goto(`${tally.url}/dashboard/keys`);
  await page.getByTestId("keys").waitFor();
  // The first Tab reaches the skip link, which moves on to the screen itself.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");
  // Tab through the navigation to the key name, type, submit with Enter.
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement.name === "name")) break;
  }
  await page.keyboard.type("keyboard key");
  await page.keyboard.press("Enter");
  await page.getByText("Key created: keyboard key").waitFor();
  // The new key's heading takes the focus, so a screen reader reads it out. The focus moves in an
  // effect, after the heading is drawn: wait for it rather than read it at once.
  await page
    .waitForFunction(() => /Key created/.test(document.activeElement?.textContent ?? ""), null, { timeout: 5_000 })
    .catch(() => {});
  assert.match(await page.evaluate(() => document.activeElement.textContent), /Key created/);
  await page.getByRole("button", { name: "I have saved it" }).press("Enter");
  assertNoBrowserErrors();
});

test("an admin sees two accounts, changes a plan, resets usage, edits a plan and closes periods", async () => {
  await graphql(
    tally.url,
    "mutation($e: String!, $p: String!, $n: String!) { signUp(email: $e, password: $p, accountName: $n) { token } }",
    { e: "owner@globex.test", p: "globex password 1", n: "Globex" }
  );
  // Members do not see the admin screen.
  assert.equal(await page.getByRole("link", { name: "Admin" }).count(), 0);
  await page.goto(`${tally.url}/dashboard/admin`);
  await page.getByRole("heading", { name: "Admins only" }).waitFor();

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You signed out.").waitFor();
  await page.getByLabel("E-mail").fill(ADMIN_EMAIL);
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Admin" }).click();

  const accounts = page.getByTestId("accounts");
  const row = (name) => accounts.getByRole("row").filter({ hasText: name });
  await row("Acme").waitFor();
  await row("Globex").waitFor();
  const overview = page.getByTestId("overview");
  // The admin's own account, Acme and Globex.
  await overview.getByText("3 free · 0 pro · 0 enterprise").waitFor();
  // Acme's 9 calls, and 3 verifies allowed while rotating and revoking.
  const acmeCalls = 12;
  await refreshUntil(async () => (await page.getByTestId("calls-today").locator(".stat-value").innerText()) === String(acmeCalls), "calls today");

  await row("Globex").getByLabel("Plan of Globex").selectOption("PRO");
  await row("Globex").getByRole("button", { name: "Set plan" }).click();
  await page.getByText("Globex is now on PRO.").waitFor();
  await overview.getByText("2 free · 1 pro · 0 enterprise").waitFor();
  await page.getByTestId("mrr").getByText("$29.00").waitFor();

  await page.getByTestId("plan-filter").selectOption("PRO");
  await eventually(async () => (await accounts.getByRole("row").count()) === 2, { what: "only PRO accounts" });
  await row("Globex").waitFor();
  await page.getByTestId("plan-filter").selectOption("");
  await row("Acme").waitFor();

  await row("Acme").getByRole("cell", { name: `${acmeCalls} / 1,000` }).waitFor();
  await row("Acme").getByRole("button", { name: "Reset usage of Acme" }).click();
  await row("Acme").getByRole("button", { name: "Confirm reset" }).click();
  await page.getByText("The usage of Acme is back to zero for this period.").waitFor();
  await row("Acme").getByRole("cell", { name: "0 / 1,000" }).waitFor();

  const pro = page.locator('form[data-plan="PRO"]');
  await pro.getByLabel("Price a month (USD)").fill("39");
  await pro.getByRole("button", { name: "Save PRO" }).click();
  await pro.getByText("Saved the Pro plan.").waitFor();
  await page.getByTestId("mrr").getByText("$39.00").waitFor();

  await page.getByRole("button", { name: "Close ended billing periods" }).click();
  await page.getByTestId("billing-result").waitFor();
  await screenshot(page, "admin");
  assertNoBrowserErrors();
});

test("GraphiQL loads from the binary alone and runs a query", async () => {
  await page.goto(`${tally.url}/graphql`);
  await page.locator(".graphiql-container").waitFor();
  await page.getByRole("button", { name: /Execute query/ }).click();
  await page.locator(".result-window").getByText('"me"').waitFor();
  await screenshot(page, "graphiql", { fullPage: false });
  const html = await (await fetch(`${tally.url}/graphql`)).text();
  assert.doesNotMatch(html, /(src|href)="https?:/, "GraphiQL loads nothing from another origin");
  assertNoBrowserErrors();
});

test("CORS: a preflight from the allowed origin passes, from another it is refused", async () => {
  const preflight = (origin) =>
    rawRequest(tally.url, "OPTIONS", "/graphql", {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization,content-type",
    });
  const allowed = await preflight(otherSite.allowedOrigin);
  assert.equal(allowed.headers["access-control-allow-origin"], otherSite.allowedOrigin);
  assert.match(allowed.headers["access-control-allow-methods"], /POST/);
  assert.match(allowed.headers["access-control-allow-headers"], /authorization/);
  assert.equal(allowed.headers["access-control-max-age"], "3600");
  assert.equal(allowed.headers["access-control-allow-credentials"], undefined);
  const other = await preflight(otherSite.otherOrigin);
  assert.equal(other.headers["access-control-allow-origin"], undefined);

  // The same from pages in the browser, which enforces the answer: a JSON POST with a Bearer
  // header needs a preflight.
  const callTally = (url) =>
    fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer not-a-token" },
      body: JSON.stringify({ query: "{ plans { code } }" }),
    }).then(
      (response) => response.json().then((body) => body.data.plans.map((plan) => plan.code).join(",")),
      () => "refused"
    );
  const site = await browser.context.newPage();
  await site.goto(`${otherSite.allowedOrigin}/`);
  assert.equal(await site.evaluate(callTally, tally.url), "FREE,PRO,ENTERPRISE");
  await site.goto(`${otherSite.otherOrigin}/`);
  assert.equal(await site.evaluate(callTally, tally.url), "refused");
  await site.close();
  // Chromium reports the refusal on the other site's page as a console error: expected there,
  // and only there.
  const expected = (problem) => problem.includes(`on ${otherSite.otherOrigin}/`) && /CORS policy|ERR_FAILED/.test(problem);
  const unexpected = browser.problems.filter((problem) => !expected(problem));
  browser.problems.length = 0;
  browser.problems.push(...unexpected);
  assertNoBrowserErrors();
});
