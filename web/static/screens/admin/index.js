// Admin (role ADMIN): the installation at a glance and one panel a job, each in its own module:
// accounts, plans, billing periods and installs. The overview's refresh also follows changes made
// in the accounts and plans panels.

import { html } from "../../vendor/htm-preact.module.js";
import { ErrorMessage, Loading, useQuery } from "../../ui.js";
import { Overview } from "./overview.js";
import { Accounts } from "./accounts.js";
import { Plans } from "./plans.js";
import { Billing } from "./billing.js";
import { Installs } from "./installs.js";

const OVERVIEW = `query Overview {
  adminOverview {
    users { free pro enterprise total }
    apiCalls { today thisMonth }
    revenue { mrrCents overageThisMonthCents }
  }
  adminInstalls(days: 30, limit: 10) { skillId platform version installs anonymous attributed lastInstalledAt }
}`;

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
