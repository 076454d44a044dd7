// Admin plans panel: edit each plan (name, quota, prices, rate limit, blocking over quota); the
// change applies to every account on the plan from the next request.

import { html, useState } from "../../vendor/htm-preact.module.js";
import { gql } from "../../api.js";
import { ErrorMessage, Loading, useQuery } from "../../ui.js";

const PLANS = `query Plans { plans { code name monthlyQuota priceCents overagePriceMicros rateLimitPerMinute blocksOverQuota } }`;

const UPDATE_PLAN = `mutation UpdatePlan($code: PlanCode!, $input: PlanInput!) {
  adminUpdatePlan(code: $code, input: $input) { code name monthlyQuota priceCents overagePriceMicros rateLimitPerMinute blocksOverQuota }
}`;

export function Plans({ onChange }) {
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
