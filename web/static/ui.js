// What every screen shares: loading a query into state, the loading, error and empty states,
// links that stay in the page, and number, money and date formats.

import { html, useCallback, useEffect, useRef, useState } from "./vendor/htm-preact.module.js";
import { gql } from "./api.js";

/** Runs `query` when `deps` change; `reload()` runs it again. Ignores answers that arrive late. */
export function useQuery(query, variables, deps = []) {
  const [state, setState] = useState({ loading: true, error: null, data: null });
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    setState((previous) => ({ loading: true, error: null, data: previous.data }));
    gql(query, variables).then(
      (data) => mine === generation.current && setState({ loading: false, error: null, data }),
      (error) => mine === generation.current && setState({ loading: false, error, data: null })
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    run();
    return () => {
      generation.current++;
    };
  }, [run]);
  return { ...state, reload: run };
}

export function navigate(path) {
  if (window.location.pathname + window.location.search === path) return;
  window.history.pushState({}, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** An in-page link: a real `<a href>` (so it opens in a new tab too), routed without a reload. */
export function Link({ href, children, ...rest }) {
  const onClick = (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="state loading" role="status" aria-live="polite">${what}…</p>`;
}

export function ErrorMessage({ error, retry }) {
  if (!error) return null;
  return html`<div class="state error" role="alert">
    <p>${error.message || String(error)}</p>
    ${retry && html`<button type="button" class="secondary" onClick=${retry}>Try again</button>`}
  </div>`;
}

export function Empty({ children }) {
  return html`<p class="state empty">${children}</p>`;
}

/** A figure with a label, for the rows of numbers at the top of a screen. */
export function Stat({ label, value, detail, testid }) {
  return html`<div class="stat" data-testid=${testid}>
    <div class="stat-label">${label}</div>
    <div class="stat-value">${value}</div>
    ${detail && html`<div class="stat-detail">${detail}</div>`}
  </div>`;
}

const numberFormat = new Intl.NumberFormat("en-US");
export const formatNumber = (n) => (n === null || n === undefined ? "—" : numberFormat.format(n));

const moneyFormat = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
export const formatCents = (cents) => moneyFormat.format((cents || 0) / 100);
export const formatMicros = (micros) =>
  `$${((micros || 0) / 1_000_000).toFixed(6).replace(/0{1,3}$/, "")}`;

const dateFormat = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeZone: "UTC" });
const dateTimeFormat = new Intl.DateTimeFormat("en-US", {
  dateStyle: "medium",
  timeStyle: "short",
  timeZone: "UTC",
});
export const formatDate = (iso) => (iso ? dateFormat.format(new Date(iso)) : "—");
export const formatDateTime = (iso) => (iso ? `${dateTimeFormat.format(new Date(iso))} UTC` : "—");

/** Wraps a table so that it scrolls sideways on a narrow screen instead of the whole page. */
export function TableWrap({ label, children }) {
  return html`<div class="table-wrap" role="region" aria-label=${label} tabindex="0">${children}</div>`;
}
