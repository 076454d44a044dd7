// Invoices: the account's invoices, newest period first, page by page; and one invoice's lines
// (the plan's base price, included calls, overage) at /dashboard/invoices/<id>.

import { html } from "../vendor/htm-preact.module.js";
import { useConnectionPages } from "../paging.js";
import {
  Empty,
  ErrorMessage,
  Link,
  Loading,
  TableWrap,
  formatCents,
  formatDate,
  formatMicros,
  formatNumber,
  useQuery,
} from "../ui.js";

const INVOICE_FIELDS = `id periodStart periodEnd plan calls includedCalls overageCalls overagePriceMicros baseCents overageCents totalCents`;

const INVOICES = `query Invoices($first: Int!, $after: String) {
  invoicesConnection(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ${INVOICE_FIELDS} }
  }
}`;

// There is no lookup by id: one invoice is found among the account's invoices.
const ALL_INVOICES = `query AllInvoices { invoices { ${INVOICE_FIELDS} } }`;

export function Invoices({ params }) {
  return params && params.id ? html`<${InvoiceDetail} id=${params.id} />` : html`<${InvoiceList} />`;
}

function InvoiceList() {
  const pages = useConnectionPages(INVOICES, "invoicesConnection", {}, []);

  return html`<section>
    <div class="screen-head"><h1>Invoices</h1></div>
    <div class="card">
      ${pages.error && html`<${ErrorMessage} error=${pages.error} retry=${pages.reload} />`}
      ${pages.loading && pages.nodes.length === 0 && html`<${Loading} what="Loading invoices" />`}
      ${!pages.loading && !pages.error && pages.nodes.length === 0 &&
      html`<${Empty}>No invoices yet. Tally invoices each billing period once it has ended.</${Empty}>`}
      ${pages.nodes.length > 0 &&
      html`<${TableWrap} label="Invoices">
        <table data-testid="invoices">
          <thead><tr><th scope="col">Period</th><th scope="col">Plan</th><th scope="col" class="num">Calls</th><th scope="col" class="num">Overage calls</th><th scope="col" class="num">Total</th></tr></thead>
          <tbody>
            ${pages.nodes.map(
              (invoice) => html`<tr>
                <td><${Link} href=${`/dashboard/invoices/${encodeURIComponent(invoice.id)}`}>${formatDate(invoice.periodStart)} – ${formatDate(lastDay(invoice.periodEnd))}</${Link}></td>
                <td>${invoice.plan}</td>
                <td class="num">${formatNumber(invoice.calls)}</td>
                <td class="num">${formatNumber(invoice.overageCalls)}</td>
                <td class="num">${formatCents(invoice.totalCents)}</td>
              </tr>`
            )}
          </tbody>
        </table>
      </${TableWrap}>`}
      ${pages.hasNext &&
      html`<button type="button" class="secondary" onClick=${pages.more} disabled=${pages.loading}>
        ${pages.loading ? "Loading…" : "Load more invoices"}
      </button>`}
    </div>
  </section>`;
}

function InvoiceDetail({ id }) {
  const { data, error, loading, reload } = useQuery(ALL_INVOICES, {}, [id]);
  const invoice = data && data.invoices.find((candidate) => candidate.id === id);
  return html`<section>
    <p><${Link} href="/dashboard/invoices">← All invoices</${Link}></p>
    ${error && html`<${ErrorMessage} error=${error} retry=${reload} />`}
    ${loading && !data && html`<${Loading} what="Loading the invoice" />`}
    ${data && !invoice && html`<h1>Invoice not found</h1><p>Your account has no invoice with this address.</p>`}
    ${invoice &&
    html`<h1>Invoice for ${formatDate(invoice.periodStart)} – ${formatDate(lastDay(invoice.periodEnd))}</h1>
      <div class="card">
        <${TableWrap} label="Invoice lines">
          <table data-testid="invoice-lines">
            <thead><tr><th scope="col">Line</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Unit price</th><th scope="col" class="num">Amount</th></tr></thead>
            <tbody>
              <tr><td>${invoice.plan} plan, one billing period</td><td class="num">1</td><td class="num">${formatCents(invoice.baseCents)}</td><td class="num">${formatCents(invoice.baseCents)}</td></tr>
              <tr><td>Calls included in the plan</td><td class="num">${invoice.includedCalls === null ? "Unlimited" : formatNumber(invoice.includedCalls)}</td><td class="num">—</td><td class="num">${formatCents(0)}</td></tr>
              <tr><td>Calls over the quota</td><td class="num">${formatNumber(invoice.overageCalls)}</td><td class="num">${formatMicros(invoice.overagePriceMicros)}</td><td class="num">${formatCents(invoice.overageCents)}</td></tr>
            </tbody>
            <tfoot><tr><th scope="row" colspan="3">Total (${formatNumber(invoice.calls)} calls in the period)</th><td class="num"><strong>${formatCents(invoice.totalCents)}</strong></td></tr></tfoot>
          </table>
        </${TableWrap}>
      </div>`}
  </section>`;
}

/** Periods end at an exclusive instant (midnight of the next month): show the last day in it. */
function lastDay(periodEnd) {
  return new Date(new Date(periodEnd).getTime() - 1).toISOString();
}
