// API keys: create one (its plaintext shown once, with a copy button), list them with status,
// prefix, last use, calls this period and a chart of each key's last 30 days, rotate one
// (optionally with a grace period) and revoke one after a confirmation.

import { html, useEffect, useMemo, useRef, useState } from "../vendor/htm-preact.module.js";
import { gql } from "../api.js";
import { useConnectionPages } from "../paging.js";
import { ChartCanvas, COLORS } from "../chart.js";
import { Empty, ErrorMessage, Loading, TableWrap, formatDateTime, formatNumber } from "../ui.js";

const KEY_FIELDS = `id name prefix status requireSignature createdAt lastUsedAt expiresAt revokedAt callsThisPeriod
  usageHistory(days: 30) { date calls failedCalls }`;

const KEYS = `query Keys($first: Int!, $after: String, $includeRevoked: Boolean!) {
  apiKeysConnection(first: $first, after: $after, includeRevoked: $includeRevoked) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ${KEY_FIELDS} }
  }
}`;

const CREATE = `mutation CreateKey($name: String!, $expiresAt: DateTime, $requireSignature: Boolean!) {
  createApiKey(name: $name, expiresAt: $expiresAt, requireSignature: $requireSignature) { key apiKey { id name prefix } }
}`;

const ROTATE = `mutation RotateKey($id: ID!, $grace: Int!) {
  rotateApiKey(id: $id, gracePeriodSeconds: $grace) { key apiKey { id name prefix } }
}`;

const REVOKE = `mutation RevokeKey($id: ID!) { revokeApiKey(id: $id) { id status } }`;

const GRACE_PERIODS = [
  [0, "at once"],
  [3600, "in 1 hour"],
  [86400, "in 24 hours"],
  [604800, "in 7 days"],
];

export function Keys() {
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const pages = useConnectionPages(KEYS, "apiKeysConnection", { includeRevoked }, [includeRevoked]);
  const [created, setCreated] = useState(null);
  const [pending, setPending] = useState(null);
  const [opened, setOpened] = useState(null);

  const onCreated = (result, how) => {
    setCreated({ ...result, how });
    setPending(null);
    pages.reload();
  };

  return html`<section>
    <div class="screen-head"><h1>API keys</h1></div>
    ${created && html`<${NewKey} created=${created} onDone=${() => setCreated(null)} />`}
    <${CreateKey} onCreated=${(result) => onCreated(result, "created")} />
    ${pending &&
    html`<${Confirm}
      pending=${pending}
      onCancel=${() => setPending(null)}
      onRotated=${(result) => onCreated(result, "rotated")}
      onRevoked=${() => {
        setPending(null);
        pages.reload();
      }}
    />`}
    <div class="card">
      <div class="screen-head">
        <h2>Your keys ${!pages.loading || pages.nodes.length ? html`<span class="count">(${formatNumber(pages.total)})</span>` : null}</h2>
        <label class="inline checkbox">
          <input type="checkbox" checked=${includeRevoked} onChange=${(e) => setIncludeRevoked(e.currentTarget.checked)} />
          Show revoked keys
        </label>
      </div>
      ${pages.error && html`<${ErrorMessage} error=${pages.error} retry=${pages.reload} />`}
      ${pages.loading && pages.nodes.length === 0 && html`<${Loading} what="Loading keys" />`}
      ${!pages.loading && !pages.error && pages.nodes.length === 0 && html`<${Empty}>No keys yet. Create one above to start sending usage.</${Empty}>`}
      ${pages.nodes.length > 0 &&
      html`<${TableWrap} label="API keys">
        <table data-testid="keys">
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Status</th><th scope="col" class="num">Calls this period</th><th scope="col">Last used</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr>
          </thead>
          <tbody>
            ${pages.nodes.map(
              (key) => html`<tr data-key-id=${key.id}>
                <td>${key.name}${key.requireSignature ? html` <span class="tag">signed</span>` : null}</td>
                <td><code>${key.prefix}…</code></td>
                <td><${Status} apiKey=${key} /></td>
                <td class="num">${formatNumber(key.callsThisPeriod)}</td>
                <td>${key.lastUsedAt ? formatDateTime(key.lastUsedAt) : "Never"}</td>
                <td>${formatDateTime(key.createdAt)}</td>
                <td class="actions">
                  <button
                    type="button"
                    class="secondary"
                    aria-expanded=${opened === key.id ? "true" : "false"}
                    aria-label=${`Usage of ${key.name} (${key.prefix}) over 30 days`}
                    onClick=${() => setOpened(opened === key.id ? null : key.id)}
                  >Usage</button>
                  ${key.status !== "REVOKED" &&
                  html`<button type="button" class="secondary" onClick=${() => setPending({ kind: "rotate", key })}>Rotate</button>
                    <button type="button" class="danger" onClick=${() => setPending({ kind: "revoke", key })}>Revoke</button>`}
                </td>
              </tr>
              ${opened === key.id &&
              html`<tr class="key-usage"><td colspan="7"><${KeyUsage} apiKey=${key} /></td></tr>`}`
            )}
          </tbody>
        </table>
      </${TableWrap}>`}
      ${pages.hasNext &&
      html`<button type="button" class="secondary" onClick=${pages.more} disabled=${pages.loading}>
        ${pages.loading ? "Loading…" : "Load more keys"}
      </button>`}
    </div>
  </section>`;
}

/** One key's calls and failures per day over the last 30 days. */
function KeyUsage({ apiKey }) {
  const days = apiKey.usageHistory;
  const total = days.reduce((sum, day) => sum + day.calls, 0);
  const data = useMemo(
    () => ({
      labels: days.map((day) => day.date.slice(5)),
      datasets: [
        { label: "Calls", data: days.map((day) => day.calls), backgroundColor: COLORS.calls },
        { label: "Failed", data: days.map((day) => day.failedCalls), backgroundColor: COLORS.failed },
      ],
    }),
    [days]
  );
  return html`<div data-testid="key-usage">
    <${ChartCanvas}
      testid="key-history"
      height=${180}
      label=${`Calls per day with ${apiKey.name} over the last 30 days: ${formatNumber(total)} in all`}
      config=${{
        type: "bar",
        data,
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { position: "bottom" } } },
      }}
    />
    ${total === 0 && html`<p class="muted">No calls with this key in the last 30 days.</p>`}
  </div>`;
}

function Status({ apiKey }) {
  const text = { ACTIVE: "Active", EXPIRED: "Expired", REVOKED: "Revoked" }[apiKey.status] || apiKey.status;
  // A key rotated with a grace period is still active until its revocation time.
  const ending = apiKey.status === "ACTIVE" && apiKey.revokedAt ? ` until ${formatDateTime(apiKey.revokedAt)}` : "";
  return html`<span class=${`status status-${apiKey.status.toLowerCase()}`}>${text}${ending}</span>`;
}

function CreateKey({ onCreated }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const onSubmit = async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const expires = data.get("expiresAt");
    setBusy(true);
    setError(null);
    try {
      const result = await gql(CREATE, {
        name: String(data.get("name")).trim(),
        expiresAt: expires ? new Date(`${expires}T00:00:00Z`).toISOString() : null,
        requireSignature: data.get("requireSignature") === "on",
      });
      form.reset();
      onCreated(result.createApiKey);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card form-row" onSubmit=${onSubmit} aria-label="Create a key">
    <h2>Create a key</h2>
    <label>Name <input name="name" required maxlength="200" placeholder="production gateway" /></label>
    <label>Expires on (UTC, optional) <input name="expiresAt" type="date" /></label>
    <label class="checkbox"><input name="requireSignature" type="checkbox" /> Require signed requests</label>
    <${ErrorMessage} error=${error} />
    <button type="submit" disabled=${busy}>${busy ? "Creating…" : "Create key"}</button>
  </form>`;
}

/** The plaintext of a new key: shown this once, never again. */
function NewKey({ created, onDone }) {
  const [copied, setCopied] = useState(null);
  const heading = useRef(null);
  useEffect(() => heading.current && heading.current.focus(), [created.key]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied("Copied to the clipboard.");
    } catch (_) {
      setCopied("The browser refused the clipboard: select the key and copy it by hand.");
    }
  };
  return html`<div class="card new-key" role="region" aria-labelledby="new-key-heading" data-testid="new-key">
    <h2 id="new-key-heading" tabindex="-1" ref=${heading}>
      ${created.how === "rotated" ? "Key rotated: here is the new key" : "Key created"}: ${created.apiKey.name}
    </h2>
    <p class="warning"><strong>Copy it now.</strong> This is the only time Tally shows this key; it keeps only a hash of it.</p>
    <div class="copy-row">
      <input class="mono" readonly value=${created.key} aria-label="New API key" data-testid="plaintext" onFocus=${(e) => e.currentTarget.select()} />
      <button type="button" onClick=${copy}>Copy</button>
    </div>
    ${copied && html`<p class="muted" role="status">${copied}</p>`}
    <button type="button" class="secondary" onClick=${onDone}>I have saved it</button>
  </div>`;
}

/** Rotate or revoke one key, after the user says so. */
function Confirm({ pending, onCancel, onRotated, onRevoked }) {
  const [grace, setGrace] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const first = useRef(null);
  useEffect(() => first.current && first.current.focus(), [pending]);
  const { key, kind } = pending;
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      if (kind === "rotate") {
        const result = await gql(ROTATE, { id: key.id, grace });
        onRotated(result.rotateApiKey);
      } else {
        await gql(REVOKE, { id: key.id });
        onRevoked();
      }
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<div class="card confirm" role="group" aria-labelledby="confirm-heading" data-testid="confirm">
    <h2 id="confirm-heading">${kind === "rotate" ? "Rotate" : "Revoke"} “${key.name}” (<code>${key.prefix}…</code>)?</h2>
    ${kind === "rotate"
      ? html`<p>Tally issues a new key with the same settings. The old key stops working
          <select ref=${first} value=${grace} onChange=${(e) => setGrace(Number(e.currentTarget.value))} aria-label="When the old key stops working">
            ${GRACE_PERIODS.map(([seconds, label]) => html`<option value=${seconds}>${label}</option>`)}
          </select>.</p>`
      : html`<p>Every request with this key is refused from now on. This cannot be undone.</p>`}
    <${ErrorMessage} error=${error} />
    <div class="button-row">
      <button type="button" class=${kind === "revoke" ? "danger" : ""} onClick=${run} disabled=${busy} ref=${kind === "revoke" ? first : undefined}>
        ${busy ? "Working…" : kind === "rotate" ? "Rotate key" : "Revoke key"}
      </button>
      <button type="button" class="secondary" onClick=${onCancel} disabled=${busy}>Cancel</button>
    </div>
  </div>`;
}
