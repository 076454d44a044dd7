// Admin (role ADMIN): the installation at a glance (accounts by plan, calls, MRR, overage), every
// account with a plan filter and pages, changing an account's plan, resetting its usage, editing
// the plans, and closing ended billing periods.

import { html, useState } from "../vendor/htm-preact.module.js";
import { gql } from "../api.js";
import {
  Empty,
  ErrorMessage,
  Loading,
  Stat,
  TableWrap,
  formatCents,
  formatDate,
  formatDateTime,
  formatNumber,
  useQuery,
} from "../ui.js";

const PAGE_SIZE = 10;
const PLAN_CODES = ["FREE", "PRO", "ENTERPRISE"];

const OVERVIEW = `query Overview {
  adminOverview {
    users { free pro enterprise total }
    apiCalls { today thisMonth }
    revenue { mrrCents overageThisMonthCents }
  }
  adminInstalls(days: 30, limit: 10) { skillId platform version installs anonymous attributed lastInstalledAt }
}`;

const ACCOUNTS = `query Accounts($limit: Int!, $offset: Int!, $plan: PlanCode) {
  adminAccounts(limit: $limit, offset: $offset, plan: $plan) {
    totalCount limit offset
    nodes { id name createdAt plan { code name } currentUsage { calls limit overageCalls } }
  }
}`;

const PLANS = `query Plans { plans { code name monthlyQuota priceCents overagePriceMicros rateLimitPerMinute blocksOverQuota } }`;

const SET_PLAN = `mutation SetPlan($accountId: ID!, $plan: PlanCode!) { adminSetPlan(accountId: $accountId, plan: $plan) { id plan { code } } }`;
const RESET_USAGE = `mutation ResetUsage($accountId: ID!) { adminResetUsage(accountId: $accountId) { calls } }`;
const UPDATE_PLAN = `mutation UpdatePlan($code: PlanCode!, $input: PlanInput!) {
  adminUpdatePlan(code: $code, input: $input) { code name monthlyQuota priceCents overagePriceMicros rateLimitPerMinute blocksOverQuota }
}`;
const CLOSE_PERIODS = `mutation ClosePeriods { adminCloseBillingPeriods { invoicesCreated totalCents } }`;

export function Admin() {
  const overview = useQuery(OVERVIEW, {}, []);
  return html`<section>
    <div class="screen-head">
      <h1>Admin</h1>
      <button type="button" class="secondary" onClick=${overview.reload} disabled=${overview.loading}>Refresh</button>
    </div>
    ${overview.error && html`<${ErrorMessage} error=${overview.error} retry=${overview.reload} />`}
    ${!overview.data && overview.loading && html`<${Loading} what="Loading the overview" />`}
    ${overview.data && html`<${Overview} overview=${overview.data.adminOverview} />`}
    <${Accounts} onChange=${overview.reload} />
    <${Plans} onChange=${overview.reload} />
    <${Billing} />
    ${overview.data && html`<${Installs} installs=${overview.data.adminInstalls} />`}
  </section>`;
}

function Overview({ overview }) {
  const { users, apiCalls, revenue } = overview;
  return html`<div class="card stats" data-testid="overview">
    <${Stat} label="Accounts" value=${formatNumber(users.total)} detail=${`${formatNumber(users.free)} free · ${formatNumber(users.pro)} pro · ${formatNumber(users.enterprise)} enterprise`} testid="accounts-by-plan" />
    <${Stat} label="Calls today" value=${formatNumber(apiCalls.today)} testid="calls-today" />
    <${Stat} label="Calls this month" value=${formatNumber(apiCalls.thisMonth)} testid="calls-month" />
    <${Stat} label="MRR" value=${formatCents(revenue.mrrCents)} testid="mrr" />
    <${Stat} label="Overage this month" value=${formatCents(revenue.overageThisMonthCents)} testid="overage-month" />
  </div>`;
}

function Accounts({ onChange }) {
  const [plan, setPlan] = useState("");
  const [offset, setOffset] = useState(0);
  const [message, setMessage] = useState(null);
  const [actionError, setActionError] = useState(null);
  const accounts = useQuery(ACCOUNTS, { limit: PAGE_SIZE, offset, plan: plan || null }, [plan, offset]);
  const page = accounts.data && accounts.data.adminAccounts;

  const act = async (run, done) => {
    setMessage(null);
    setActionError(null);
    try {
      await run();
      setMessage(done);
      accounts.reload();
      onChange();
    } catch (error) {
      setActionError(error);
    }
  };

  return html`<div class="card">
    <div class="screen-head">
      <h2>Accounts ${page && html`<span class="count">(${formatNumber(page.totalCount)})</span>`}</h2>
      <label class="inline">Plan
        <select value=${plan} onChange=${(e) => { setPlan(e.currentTarget.value); setOffset(0); }} data-testid="plan-filter">
          <option value="">All plans</option>
          ${PLAN_CODES.map((code) => html`<option value=${code}>${code}</option>`)}
        </select>
      </label>
    </div>
    ${message && html`<p class="state success" role="status">${message}</p>`}
    <${ErrorMessage} error=${actionError} />
    ${accounts.error && html`<${ErrorMessage} error=${accounts.error} retry=${accounts.reload} />`}
    ${!page && accounts.loading && html`<${Loading} what="Loading accounts" />`}
    ${page && page.nodes.length === 0 && html`<${Empty}>No accounts${plan ? ` on ${plan}` : ""}.</${Empty}>`}
    ${page && page.nodes.length > 0 &&
    html`<${TableWrap} label="Accounts">
      <table data-testid="accounts">
        <thead><tr><th scope="col">Account</th><th scope="col">Created</th><th scope="col" class="num">Calls this period</th><th scope="col">Plan</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          ${page.nodes.map(
            (account) => html`<${AccountRow}
              key=${account.id}
              account=${account}
              onSetPlan=${(code) => act(() => gql(SET_PLAN, { accountId: account.id, plan: code }), `${account.name} is now on ${code}.`)}
              onReset=${() => act(() => gql(RESET_USAGE, { accountId: account.id }), `The usage of ${account.name} is back to zero for this period.`)}
            />`
          )}
        </tbody>
      </table>
    </${TableWrap}>`}
    ${page && page.totalCount > PAGE_SIZE &&
    html`<nav class="pager" aria-label="Account pages">
      <button type="button" class="secondary" disabled=${offset === 0 || accounts.loading} onClick=${() => setOffset(Math.max(offset - PAGE_SIZE, 0))}>Previous</button>
      <span>${formatNumber(offset + 1)}–${formatNumber(Math.min(offset + PAGE_SIZE, page.totalCount))} of ${formatNumber(page.totalCount)}</span>
      <button type="button" class="secondary" disabled=${offset + PAGE_SIZE >= page.totalCount || accounts.loading} onClick=${() => setOffset(offset + PAGE_SIZE)}>Next</button>
    </nav>`}
  </div>`;
}

function AccountRow({ account, onSetPlan, onReset }) {
  const [plan, setPlan] = useState(account.plan.code);
  const [confirmReset, setConfirmReset] = useState(false);
  const usage = account.currentUsage;
  return html`<tr data-account=${account.name}>
    <td>${account.name}</td>
    <td>${formatDate(account.createdAt)}</td>
    <td class="num">${formatNumber(usage.calls)}${usage.limit !== null ? ` / ${formatNumber(usage.limit)}` : ""}</td>
    <td>
      <select value=${plan} onChange=${(e) => setPlan(e.currentTarget.value)} aria-label=${`Plan of ${account.name}`}>
        ${PLAN_CODES.map((code) => html`<option value=${code}>${code}</option>`)}
      </select>
      <button type="button" class="secondary" disabled=${plan === account.plan.code} onClick=${() => onSetPlan(plan)}>Set plan</button>
    </td>
    <td class="actions">
      ${confirmReset
        ? html`<button type="button" class="danger" onClick=${() => { setConfirmReset(false); onReset(); }}>Confirm reset</button>
            <button type="button" class="secondary" onClick=${() => setConfirmReset(false)}>Cancel</button>`
        : html`<button type="button" class="secondary" onClick=${() => setConfirmReset(true)} aria-label=${`Reset usage of ${account.name}`}>Reset usage</button>`}
    </td>
  </tr>`;
}

function Plans({ onChange }) {
  const plans = useQuery(PLANS, {}, []);
  return html`<div class="card">
    <h2>Plans</h2>
    <p class="muted">Changes apply to every account on the plan from the next request.</p>
    ${plans.error && html`<${ErrorMessage} error=${plans.error} retry=${plans.reload} />`}
    ${!plans.data && plans.loading && html`<${Loading} what="Loading plans" />`}
    ${plans.data && html`<div class="plan-grid">${plans.data.plans.map((plan) => html`<${PlanForm} key=${plan.code} plan=${plan} onSaved=${onChange} />`)}</div>`}
  </div>`;
}

function PlanForm({ plan, onSaved }) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const onSubmit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const quota = String(form.get("monthlyQuota")).trim();
    const input = {
      name: String(form.get("name")).trim(),
      priceCents: Math.round(Number(form.get("price")) * 100),
      overagePriceMicros: Number(form.get("overagePriceMicros")),
      rateLimitPerMinute: Number(form.get("rateLimitPerMinute")),
      blocksOverQuota: form.get("blocksOverQuota") === "on",
      ...(quota === "" ? { unlimited: true } : { monthlyQuota: Number(quota) }),
    };
    setBusy(true);
    setMessage(null);
    setError(null);
    try {
      await gql(UPDATE_PLAN, { code: plan.code, input });
      setMessage(`Saved the ${input.name} plan.`);
      onSaved();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const id = (field) => `plan-${plan.code}-${field}`;
  return html`<form class="plan-form" onSubmit=${onSubmit} aria-label=${`Plan ${plan.code}`} data-plan=${plan.code}>
    <h3>${plan.code}</h3>
    <label for=${id("name")}>Name</label>
    <input id=${id("name")} name="name" value=${plan.name} required />
    <label for=${id("quota")}>Monthly quota (calls; empty = unlimited)</label>
    <input id=${id("quota")} name="monthlyQuota" type="number" min="0" step="1" value=${plan.monthlyQuota ?? ""} />
    <label for=${id("price")}>Price a month (USD)</label>
    <input id=${id("price")} name="price" type="number" min="0" step="0.01" value=${(plan.priceCents / 100).toFixed(2)} required />
    <label for=${id("overage")}>Overage price per call (millionths of a dollar)</label>
    <input id=${id("overage")} name="overagePriceMicros" type="number" min="0" step="1" value=${plan.overagePriceMicros} required />
    <label for=${id("rate")}>Requests per minute per key</label>
    <input id=${id("rate")} name="rateLimitPerMinute" type="number" min="1" step="1" value=${plan.rateLimitPerMinute} required />
    <label class="checkbox"><input name="blocksOverQuota" type="checkbox" checked=${plan.blocksOverQuota} /> Refuse calls over the quota</label>
    ${message && html`<p class="state success" role="status">${message}</p>`}
    <${ErrorMessage} error=${error} />
    <button type="submit" disabled=${busy}>${busy ? "Saving…" : `Save ${plan.code}`}</button>
  </form>`;
}

function Billing() {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const run = (await gql(CLOSE_PERIODS)).adminCloseBillingPeriods;
      setResult(
        run.invoicesCreated === 0
          ? "No billing period had ended without an invoice: nothing to do."
          : `Created ${formatNumber(run.invoicesCreated)} invoice${run.invoicesCreated === 1 ? "" : "s"} totalling ${formatCents(run.totalCents)}.`
      );
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="card">
    <h2>Billing</h2>
    <p>Invoices every account for every billing period that has ended. Running it again never bills a period twice.</p>
    <button type="button" onClick=${run} disabled=${busy}>${busy ? "Closing…" : "Close ended billing periods"}</button>
    ${result && html`<p class="state success" role="status" data-testid="billing-result">${result}</p>`}
    <${ErrorMessage} error=${error} />
  </div>`;
}

function Installs({ installs }) {
  return html`<div class="card">
    <h2>Installs, last 30 days</h2>
    ${installs.length === 0
      ? html`<${Empty}>No installs reported in the last 30 days.</${Empty}>`
      : html`<${TableWrap} label="Installs">
          <table>
            <thead><tr><th scope="col">Skill</th><th scope="col">Platform</th><th scope="col">Version</th><th scope="col" class="num">Installs</th><th scope="col" class="num">Anonymous</th><th scope="col">Last</th></tr></thead>
            <tbody>
              ${installs.map(
                (row) => html`<tr><td>${row.skillId ?? "—"}</td><td>${row.platform ?? "—"}</td><td>${row.version ?? "—"}</td><td class="num">${formatNumber(row.installs)}</td><td class="num">${formatNumber(row.anonymous)}</td><td>${formatDateTime(row.lastInstalledAt)}</td></tr>`
              )}
            </tbody>
          </table>
        </${TableWrap}>`}
  </div>`;
}
