// Sign in and sign up: both end with a token in the session (api.js) and the usage screen.

import { html, useState } from "../vendor/htm-preact.module.js";
import { gql, signIn } from "../api.js";
import { ErrorMessage, Link } from "../ui.js";

const LOGIN = `mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { token }
}`;

const SIGN_UP = `mutation SignUp($email: String!, $password: String!, $accountName: String!) {
  signUp(email: $email, password: $password, accountName: $accountName) { token }
}`;

function useSubmit(run) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const onSubmit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await run(new FormData(event.currentTarget));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return { busy, error, onSubmit };
}

export function SignIn({ notice }) {
  const { busy, error, onSubmit } = useSubmit(async (form) => {
    const data = await gql(LOGIN, { email: form.get("email"), password: form.get("password") });
    signIn(data.login.token);
  });
  return html`<section class="auth card">
    <h1>Sign in to Tally</h1>
    ${notice && html`<p class="state notice" role="status">${notice}</p>`}
    <form onSubmit=${onSubmit}>
      <label>E-mail <input name="email" type="email" autocomplete="username" required /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
      <${ErrorMessage} error=${error} />
      <button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
    <p>No account yet? <${Link} href="/dashboard/sign-up">Sign up</${Link}>.</p>
  </section>`;
}

export function SignUp() {
  const { busy, error, onSubmit } = useSubmit(async (form) => {
    const data = await gql(SIGN_UP, {
      email: form.get("email"),
      password: form.get("password"),
      accountName: form.get("accountName"),
    });
    signIn(data.signUp.token);
  });
  return html`<section class="auth card">
    <h1>Create a Tally account</h1>
    <p>New accounts start on the free plan.</p>
    <form onSubmit=${onSubmit}>
      <label>Account name <input name="accountName" autocomplete="organization" required maxlength="200" /></label>
      <label>E-mail <input name="email" type="email" autocomplete="username" required /></label>
      <label>Password <input name="password" type="password" autocomplete="new-password" required minlength="8" />
        <span class="hint">At least 8 characters.</span></label>
      <${ErrorMessage} error=${error} />
      <button type="submit" disabled=${busy}>${busy ? "Creating account…" : "Sign up"}</button>
    </form>
    <p>Already have an account? <${Link} href="/dashboard/sign-in">Sign in</${Link}>.</p>
  </section>`;
}
