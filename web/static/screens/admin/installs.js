// Admin installs panel: installs reported in the last 30 days by skill, platform and version.

import { html } from "../../vendor/htm-preact.module.js";
import { Empty, TableWrap, formatDateTime, formatNumber } from "../../ui.js";

export function Installs({ installs }) {
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
