// Admin accounts panel: every account, filtered by plan, ten a page; change an account's plan or
// reset its usage for the current period (after a confirmation).

import { html, useState } from "../../vendor/htm-preact.module.js";
import { gql } from "../../api.js";
import { Empty, ErrorMessage, Loading, TableWrap, formatDate, formatNumber, useQuery } from "../../ui.js";

const PAGE_SIZE = 10;
const PLAN_CODES = ["FREE", "PRO", "ENTERPRISE"];

const ACCOUNTS = `query Accounts($limit: Int!, $offset: Int!, $plan: PlanCode) {
  adminAccounts(limit: $limit, offset: $offset, plan: $plan) {
    totalCount limit offset
    nodes { id name createdAt plan { code name } currentUsage { calls limit overageCalls } }
  }
}`;

const SET_PLAN = `mutation SetPlan($accountId: ID!, $plan: PlanCode!) { adminSetPlan(accountId: $accountId, plan: $plan) { id plan { code } } }`;
const RESET_USAGE = `mutation ResetUsage($accountId: ID!) { adminResetUsage(accountId: $accountId) { calls } }`;

export function Accounts({ onChange }) {
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
