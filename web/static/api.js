// The dashboard's only way to Tally: one GraphQL request at a time to /graphql, with the signed-in
// user's token. Also keeps the session: the token lives in localStorage and is dropped (with a
// reason the sign-in screen shows) when it expires or the server says it is no longer valid.

const TOKEN_KEY = "tally.token";

export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

const sessionListeners = new Set();
let expiryTimer = null;

/** Calls `listener(reason)` whenever the user signs in (reason null) or out. */
export function onSessionChange(listener) {
  sessionListeners.add(listener);
  return () => sessionListeners.delete(listener);
}

export function currentToken() {
  try {
    return window.localStorage.getItem(TOKEN_KEY);
  } catch (_) {
    return null;
  }
}

/** When the token stops being accepted (its `exp`), in milliseconds since the epoch. */
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(window.atob(payload));
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch (_) {
    return null;
  }
}

function isExpired(token) {
  const expiry = tokenExpiry(token);
  return expiry !== null && expiry <= Date.now();
}

export function signIn(token) {
  window.localStorage.setItem(TOKEN_KEY, token);
  scheduleExpiry(token);
  sessionListeners.forEach((listener) => listener(null));
}

export function signOut(reason = null) {
  window.localStorage.removeItem(TOKEN_KEY);
  window.clearTimeout(expiryTimer);
  sessionListeners.forEach((listener) => listener(reason));
}

/** Signs out by itself the moment the token expires, rather than at the next failed request. */
function scheduleExpiry(token) {
  window.clearTimeout(expiryTimer);
  const expiry = tokenExpiry(token);
  if (expiry === null) return;
  // setTimeout holds at most about 24.8 days; tokens live an hour by default.
  const wait = Math.min(Math.max(expiry - Date.now(), 0), 2 ** 31 - 1);
  expiryTimer = window.setTimeout(() => signOut("Your session expired. Sign in again."), wait);
}

/** A token that is still valid, or null (an expired one is dropped). */
export function restoreSession() {
  const token = currentToken();
  if (!token) return null;
  if (isExpired(token)) {
    window.localStorage.removeItem(TOKEN_KEY);
    return null;
  }
  scheduleExpiry(token);
  return token;
}

/** Runs one operation; resolves to `data`, or rejects with an ApiError whose message is a sentence. */
export async function gql(query, variables = {}) {
  const token = currentToken();
  if (token && isExpired(token)) {
    signOut("Your session expired. Sign in again.");
    throw new ApiError("Your session expired. Sign in again.", "UNAUTHENTICATED");
  }
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
    });
  } catch (_) {
    throw new ApiError("Tally could not be reached. Check your connection and try again.", "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch (_) {
    throw new ApiError(
      `Tally answered with an unexpected error (HTTP ${response.status}). Try again in a moment.`,
      "INTERNAL"
    );
  }
  if (body.errors && body.errors.length > 0) {
    const error = body.errors[0];
    const code = (error.extensions && error.extensions.code) || "INTERNAL";
    if (code === "UNAUTHENTICATED" && token) {
      signOut("Your session has ended. Sign in again.");
    }
    const fields = error.extensions && error.extensions.fields;
    throw new ApiError(fields ? fieldSentences(fields) : asSentence(error.message, code), code);
  }
  if (!response.ok || !body.data) {
    throw new ApiError(
      `Tally answered with an unexpected error (HTTP ${response.status}). Try again in a moment.`,
      "INTERNAL"
    );
  }
  return body.data;
}

/** `{"password": ["must be at least 8 characters"]}` → "The password must be at least 8 characters." */
function fieldSentences(fields) {
  return Object.entries(fields)
    .flatMap(([field, problems]) => {
      const name = field.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
      return problems.map((problem) => `The ${name} ${String(problem).replace(/[.]$/, "")}.`);
    })
    .join(" ");
}

/** Server messages are short phrases; shown to people they read as sentences. */
function asSentence(message, code) {
  if (code === "INTERNAL") return "Something went wrong on the server. Try again in a moment.";
  let text = String(message || "The request failed").trim();
  text = text.charAt(0).toUpperCase() + text.slice(1);
  if (!/[.!?]$/.test(text)) text += ".";
  if (code === "RATE_LIMITED") text += " Wait a minute, then try again.";
  return text;
}
