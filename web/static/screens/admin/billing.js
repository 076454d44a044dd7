// Admin billing panel: close every ended billing period, invoicing each account once per period.

import { html, useState } from "../../vendor/htm-preact.module.js";
import { gql } from "../../api.js";
import { ErrorMessage, formatCents, formatNumber } from "../../ui.js";

const CLOSE_PERIODS = `mutation ClosePeriods { adminCloseBillingPeriods { invoicesCreated totalCents } }`;

export function Billing() {
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
