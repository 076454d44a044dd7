// Admin overview: accounts by plan, calls today and this month, MRR and overage this month.

import { html } from "../../vendor/htm-preact.module.js";
import { Stat, formatCents, formatNumber } from "../../ui.js";

export function Overview({ overview }) {
  const { users, apiCalls, revenue } = overview;
  return html`<div class="card stats" data-testid="overview">
    <${Stat} label="Accounts" value=${formatNumber(users.total)} detail=${`${formatNumber(users.free)} free · ${formatNumber(users.pro)} pro · ${formatNumber(users.enterprise)} enterprise`} testid="accounts-by-plan" />
    <${Stat} label="Calls today" value=${formatNumber(apiCalls.today)} testid="calls-today" />
    <${Stat} label="Calls this month" value=${formatNumber(apiCalls.thisMonth)} testid="calls-month" />
    <${Stat} label="MRR" value=${formatCents(revenue.mrrCents)} testid="mrr" />
    <${Stat} label="Overage this month" value=${formatCents(revenue.overageThisMonthCents)} testid="overage-month" />
  </div>`;
}
