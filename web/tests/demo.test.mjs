// The dashboard on `tally seed-demo` data, as the README tells people to try it: a demo member's
// usage, invoices once the admin has closed the ended periods, and the admin's account pages.
// These runs also take the README's screenshots of screens that look better with data.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launch } from "./support/browser.mjs";
import { screenshot } from "./support/screens.mjs";
import { startTally } from "./support/server.mjs";
import { eventually } from "./support/wait.mjs";

const ACCOUNTS = 14;

let tally;
let browser;
let page;
let demo;

before(async () => {
  tally = await startTally({
    seed: ["--accounts", String(ACCOUNTS), "--events", "6000", "--days", "75"],
    // The admin closes the ended periods from the dashboard, not `serve` on its own at start.
    env: { TALLY_NO_BILLING_CLOSE: "true" },
  });
  // seed-demo draws a random password for the demo users and prints it with their e-mails.
  demo = {
    password: /password "([^"]+)"/.exec(tally.seedOutput)[1],
    admin: /Admin: (\S+)/.exec(tally.seedOutput)[1],
    member: /Members: (\S+)/.exec(tally.seedOutput)[1],
  };
  browser = await launch();
  page = browser.context.pages()[0] || (await browser.context.newPage());
});

after(async () => {
  if (browser) await browser.close();
  if (tally) await tally.stop();
  if (browser) assert.deepEqual(browser.problems, [], "the browser reported errors");
});

async function signInAs(email) {
  await page.goto(`${tally.url}/dashboard/sign-in`);
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(demo.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Usage" }).waitFor();
}

async function signOut() {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Tally" }).waitFor();
}

test("the admin closes the ended billing periods and pages through the accounts", async () => {
  await signInAs(demo.admin);
  await page.getByRole("link", { name: "Admin" }).click();
  const accounts = page.getByTestId("accounts");
  await accounts.waitFor();
  // The demo accounts and the demo admin's own: more than one page of ten.
  await page.getByText(`1–10 of ${ACCOUNTS + 1}`).waitFor();
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByText(`11–${ACCOUNTS + 1} of ${ACCOUNTS + 1}`).waitFor();
  // The header row and the last page's accounts.
  await eventually(async () => (await accounts.getByRole("row").count()) === ACCOUNTS + 1 - 10 + 1, { what: "the second page of accounts" });
  await page.getByRole("button", { name: "Previous" }).click();
  await page.getByText(`1–10 of ${ACCOUNTS + 1}`).waitFor();

  await page.getByRole("button", { name: "Close ended billing periods" }).click();
  const result = await page.getByTestId("billing-result").innerText();
  assert.match(result, /^Created \d+ invoices totalling \$[\d,.]+\.$/);
  await screenshot(page, "admin");
  // A second run bills nothing twice.
  await page.getByRole("button", { name: "Close ended billing periods" }).click();
  await page.getByText("No billing period had ended without an invoice: nothing to do.").waitFor();
  await signOut();
});

test("a demo member's usage, invoices and one invoice's lines", async () => {
  await signInAs(demo.member);
  await page.getByTestId("gauge-text").waitFor();
  await page.getByTestId("endpoints").waitFor();
  const calls = await eventually(
    () =>
      page.evaluate(() => {
        const chart = window.Chart.getChart(document.querySelector('[data-testid="history"]'));
        return chart ? chart.data.datasets[0].data.reduce((sum, n) => sum + n, 0) : false;
      }),
    { what: "the 30-day chart" }
  );
  assert.ok(calls > 0, "the demo member has calls in the last 30 days");
  await screenshot(page, "home");
  await screenshot(page, "home-390", { width: 390 });

  await page.getByRole("link", { name: "Invoices" }).click();
  const invoices = page.getByTestId("invoices");
  await invoices.waitFor();
  assert.ok((await invoices.getByRole("row").count()) > 1, "the closed periods are invoiced");
  await screenshot(page, "invoices", { fullPage: false });

  const first = invoices.getByRole("row").nth(1);
  const total = (await first.getByRole("cell").allInnerTexts())[4];
  await first.getByRole("link").click();
  const lines = page.getByTestId("invoice-lines");
  await lines.waitFor();
  await lines.getByText("Calls over the quota").waitFor();
  assert.equal(await lines.locator("tfoot td").innerText(), total);
  await screenshot(page, "invoice", { fullPage: false });
  await page.getByRole("link", { name: "← All invoices" }).click();
  await invoices.waitFor();
});

test("a signed-out visitor sees why, and an expired session signs out by itself", async () => {
  // A token whose exp has passed (its signature does not matter: the dashboard never sends it).
  const expired = ["e30", btoa(JSON.stringify({ exp: Math.floor(Date.now() / 1000) - 60 })).replace(/=+$/, ""), "sig"].join(".");
  await page.evaluate((token) => window.localStorage.setItem("tally.token", token), expired);
  await page.goto(`${tally.url}/dashboard/keys`);
  await page.getByRole("heading", { name: "Sign in to Tally" }).waitFor();

  // A token the server no longer accepts: the next request signs out with a sentence.
  const bogus = ["e30", btoa(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600 })).replace(/=+$/, ""), "sig"].join(".");
  await page.evaluate((token) => window.localStorage.setItem("tally.token", token), bogus);
  await page.goto(`${tally.url}/dashboard`);
  await page.getByRole("heading", { name: "Sign in to Tally" }).waitFor();
  await page.getByText("Your session has ended. Sign in again.").waitFor();
});
