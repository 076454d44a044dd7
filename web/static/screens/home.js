// Account home: this billing period against the quota (gauge), overage so far and the reset
// date; calls and failures of the last 30 days; endpoints, tools and installs over a window.

import { html, useMemo, useState } from "../vendor/htm-preact.module.js";
import { ChartCanvas, COLORS } from "../chart.js";
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

const SUMMARY = `query Summary {
  me { account { plan { code name monthlyQuota priceCents overagePriceMicros blocksOverQuota } } }
  currentUsage { periodStart periodEnd calls limit remaining overageCalls overageCostCents usagePercentage }
  usageHistory(days: 30) { date totalCalls failedCalls }
}`;

const BREAKDOWN = `query Breakdown($days: Int!) {
  endpointStats(days: $days, limit: 50) { endpoint method totalCalls failedCalls requests avgResponseTimeMs p95ResponseTimeMs }
  toolStats(days: $days, limit: 50) { skillId toolName calls lastUsedAt }
}`;

/** Installs are reported through the tool statistics under this tool name. */
const INSTALL_TOOL = "install_confirmed";

const WINDOWS = [
  [1, "Today"],
  [7, "7 days"],
  [30, "30 days"],
  [90, "90 days"],
];

export function Home() {
  const summary = useQuery(SUMMARY, {}, []);
  const [days, setDays] = useState(7);
  const breakdown = useQuery(BREAKDOWN, { days }, [days]);
  const refresh = () => {
    summary.reload();
    breakdown.reload();
  };
  return html`<section>
    <div class="screen-head">
      <h1>Usage</h1>
      <button type="button" class="secondary" onClick=${refresh} disabled=${summary.loading || breakdown.loading}>
        ${summary.loading || breakdown.loading ? "Refreshing…" : "Refresh"}
      </button>
    </div>
    ${summary.error && html`<${ErrorMessage} error=${summary.error} retry=${summary.reload} />`}
    ${!summary.data && summary.loading && html`<${Loading} what="Loading usage" />`}
    ${summary.data && html`<${Period} data=${summary.data} />`}
    ${summary.data && html`<${History} days=${summary.data.usageHistory} />`}
    <div class="screen-head">
      <h2>Breakdown</h2>
      <label class="inline">Window
        <select value=${days} onChange=${(e) => setDays(Number(e.currentTarget.value))} data-testid="window">
          ${WINDOWS.map(([value, label]) => html`<option value=${value}>${label}</option>`)}
        </select>
      </label>
    </div>
    ${breakdown.error && html`<${ErrorMessage} error=${breakdown.error} retry=${breakdown.reload} />`}
    ${!breakdown.data && breakdown.loading && html`<${Loading} what="Loading endpoints and tools" />`}
    ${breakdown.data && html`<${Breakdown} data=${breakdown.data} days=${days} />`}
  </section>`;
}

function Period({ data }) {
  const usage = data.currentUsage;
  const plan = data.me.account.plan;
  const unlimited = usage.limit === null;
  const used = Math.min(usage.calls, usage.limit ?? usage.calls);
  const gauge = useMemo(
    () => ({
      labels: ["Used", "Left"],
      datasets: [
        {
          data: unlimited ? [usage.calls, 0] : [used, Math.max(usage.limit - used, 0)],
          backgroundColor: [usage.overageCalls > 0 ? COLORS.warn : COLORS.calls, COLORS.track],
          borderWidth: 0,
        },
      ],
    }),
    [usage.calls, usage.limit]
  );
  const percent = usage.usagePercentage === null ? null : Math.round(usage.usagePercentage * 10) / 10;
  return html`<div class="cards">
    <div class="card gauge-card">
      <h2>This billing period</h2>
      ${unlimited
        ? html`<p class="big" data-testid="gauge-text">${formatNumber(usage.calls)} calls · unlimited plan</p>`
        : html`<div class="gauge">
            <${ChartCanvas}
              testid="gauge"
              height=${150}
              label=${`${formatNumber(usage.calls)} of ${formatNumber(usage.limit)} calls used`}
              config=${{
                type: "doughnut",
                data: gauge,
                options: { rotation: -90, circumference: 180, cutout: "70%", plugins: { legend: { display: false }, tooltip: { enabled: true } } },
              }}
            />
            <p class="gauge-text" data-testid="gauge-text">
              <strong>${formatNumber(usage.calls)}</strong> of ${formatNumber(usage.limit)} calls
              ${percent !== null && html` (${percent}%)`}
            </p>
          </div>`}
      <p class="muted">${formatDate(usage.periodStart)} – ${formatDate(usage.periodEnd)}</p>
    </div>
    <div class="card stats">
      <${Stat} label="Plan" value=${plan.name} detail=${`${formatCents(plan.priceCents)} a month`} testid="plan" />
      <${Stat}
        label="Calls left"
        value=${unlimited ? "Unlimited" : formatNumber(usage.remaining)}
        detail=${!unlimited && plan.blocksOverQuota ? "Calls over the quota are refused" : !unlimited ? "Calls over the quota are billed" : null}
        testid="remaining"
      />
      <${Stat}
        label="Overage so far"
        value=${formatCents(usage.overageCostCents)}
        detail=${`${formatNumber(usage.overageCalls)} calls over the quota`}
        testid="overage"
      />
      <${Stat} label="Resets" value=${formatDate(usage.periodEnd)} detail=${`at ${formatDateTime(usage.periodEnd).split(", ").pop()}`} testid="reset" />
    </div>
  </div>`;
}

function History({ days }) {
  const total = days.reduce((sum, day) => sum + day.totalCalls, 0);
  const data = useMemo(
    () => ({
      labels: days.map((day) => day.date.slice(5)),
      datasets: [
        { label: "Calls", data: days.map((day) => day.totalCalls), backgroundColor: COLORS.calls },
        { label: "Failed", data: days.map((day) => day.failedCalls), backgroundColor: COLORS.failed },
      ],
    }),
    [days]
  );
  return html`<div class="card">
    <h2>Last 30 days</h2>
    <${ChartCanvas}
      testid="history"
      label=${`Calls per day over the last 30 days: ${formatNumber(total)} in all`}
      config=${{
        type: "bar",
        data,
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { position: "bottom" } } },
      }}
    />
    ${total === 0 && html`<p class="muted">No calls in the last 30 days yet. Send some with an API key and refresh.</p>`}
  </div>`;
}

function Breakdown({ data, days }) {
  const installs = data.toolStats.filter((row) => row.toolName === INSTALL_TOOL);
  const tools = data.toolStats.filter((row) => row.toolName !== INSTALL_TOOL);
  const span = days === 1 ? "today" : `in the last ${days} days`;
  return html`<div class="card">
      <h3>Endpoints</h3>
      ${data.endpointStats.length === 0
        ? html`<${Empty}>No API calls ${span}.</${Empty}>`
        : html`<${TableWrap} label="Endpoints">
            <table data-testid="endpoints">
              <thead><tr><th scope="col">Endpoint</th><th scope="col" class="num">Calls</th><th scope="col" class="num">Failed</th><th scope="col" class="num">Avg</th><th scope="col" class="num">p95</th></tr></thead>
              <tbody>
                ${data.endpointStats.map(
                  (row) => html`<tr>
                    <td><code>${row.method} ${row.endpoint}</code></td>
                    <td class="num">${formatNumber(row.totalCalls)}</td>
                    <td class="num">${formatNumber(row.failedCalls)}</td>
                    <td class="num">${ms(row.avgResponseTimeMs)}</td>
                    <td class="num">${ms(row.p95ResponseTimeMs)}</td>
                  </tr>`
                )}
              </tbody>
            </table>
          </${TableWrap}>`}
    </div>
    <div class="cards">
      <div class="card">
        <h3>Tools</h3>
        ${tools.length === 0
          ? html`<${Empty}>No tool uses reported ${span}.</${Empty}>`
          : html`<${TableWrap} label="Tools">
              <table data-testid="tools">
                <thead><tr><th scope="col">Skill</th><th scope="col">Tool</th><th scope="col" class="num">Uses</th><th scope="col">Last used</th></tr></thead>
                <tbody>
                  ${tools.map(
                    (row) => html`<tr><td>${row.skillId}</td><td><code>${row.toolName}</code></td><td class="num">${formatNumber(row.calls)}</td><td>${formatDateTime(row.lastUsedAt)}</td></tr>`
                  )}
                </tbody>
              </table>
            </${TableWrap}>`}
      </div>
      <div class="card">
        <h3>Installs</h3>
        ${installs.length === 0
          ? html`<${Empty}>No installs reported ${span}.</${Empty}>`
          : html`<${TableWrap} label="Installs">
              <table data-testid="installs">
                <thead><tr><th scope="col">Skill</th><th scope="col" class="num">Installs</th><th scope="col">Last install</th></tr></thead>
                <tbody>
                  ${installs.map(
                    (row) => html`<tr><td>${row.skillId}</td><td class="num">${formatNumber(row.calls)}</td><td>${formatDateTime(row.lastUsedAt)}</td></tr>`
                  )}
                </tbody>
              </table>
            </${TableWrap}>`}
      </div>
    </div>`;
}

const ms = (value) => (value === null || value === undefined ? "—" : `${formatNumber(value)} ms`);
