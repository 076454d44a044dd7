// The dashboard's entry point: which screen a path shows, the page frame around it (navigation,
// who is signed in, sign out), and what happens when the session ends.

import { html, render, useEffect, useState } from "./vendor/htm-preact.module.js";
import { gql, onSessionChange, restoreSession, signOut } from "./api.js";
import { ErrorMessage, Link, Loading, navigate } from "./ui.js";
import { SignIn, SignUp } from "./screens/sign-in.js";
import { Home } from "./screens/home.js";
import { Keys } from "./screens/keys.js";
import { Invoices } from "./screens/invoices.js";
import { Admin } from "./screens/admin/index.js";

const ME = `query Me { me { id email role account { id name plan { code name } } } }`;

/** Screens by path; `:id` parts are handed to the screen. */
const routes = [
  { path: "/dashboard", title: "Usage", screen: Home },
  { path: "/dashboard/keys", title: "API keys", screen: Keys },
  { path: "/dashboard/invoices", title: "Invoices", screen: Invoices },
  { path: "/dashboard/invoices/:id", title: "Invoice", screen: Invoices },
  { path: "/dashboard/admin", title: "Admin", screen: Admin, admin: true },
];

const publicRoutes = {
  "/dashboard/sign-in": { title: "Sign in", screen: SignIn },
  "/dashboard/sign-up": { title: "Sign up", screen: SignUp },
};

function match(pathname) {
  const path = pathname === "/" ? "/dashboard" : pathname.replace(/\/+$/, "") || "/dashboard";
  const parts = path.split("/");
  for (const route of routes) {
    const want = route.path.split("/");
    if (want.length !== parts.length) continue;
    const params = {};
    const fits = want.every((part, i) => {
      if (!part.startsWith(":")) return part === parts[i];
      params[part.slice(1)] = safeDecode(parts[i]);
      return true;
    });
    if (fits) return { ...route, params };
  }
  return null;
}

/** A malformed escape in a typed-in address is kept as it is rather than breaking the page. */
function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch (_) {
    return part;
  }
}

function usePathname() {
  const [pathname, setPathname] = useState(window.location.pathname);
  useEffect(() => {
    const update = () => setPathname(window.location.pathname);
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return pathname;
}

function App() {
  const pathname = usePathname();
  const [token, setToken] = useState(() => restoreSession());
  const [notice, setNotice] = useState(null);
  const [me, setMe] = useState({ loading: false, user: null, error: null });

  useEffect(
    () =>
      onSessionChange((reason) => {
        setToken(restoreSession());
        setNotice(reason);
        if (reason !== null) setMe({ loading: false, user: null, error: null });
      }),
    []
  );

  useEffect(() => {
    if (!token) return;
    setMe({ loading: true, user: null, error: null });
    gql(ME).then(
      (data) => setMe({ loading: false, user: data.me, error: null }),
      (error) => setMe({ loading: false, user: null, error })
    );
  }, [token]);

  const publicRoute = publicRoutes[pathname.replace(/\/+$/, "")];
  useEffect(() => {
    if (!token && !publicRoute) navigate("/dashboard/sign-in");
    if (token && publicRoute) navigate("/dashboard");
  }, [token, publicRoute]);

  const route = match(pathname);
  const title = publicRoute ? publicRoute.title : route ? route.title : "Not found";
  useEffect(() => {
    document.title = `${title} · Tally`;
  }, [title]);

  if (!token) {
    if (!publicRoute) return html`<${Frame}><${Loading} /><//>`;
    const Screen = publicRoute.screen;
    return html`<${Frame}><${Screen} notice=${notice} /><//>`;
  }
  if (me.loading || (!me.user && !me.error)) return html`<${Frame}><${Loading} what="Signing in" /><//>`;
  if (me.error) {
    return html`<${Frame}><${ErrorMessage} error=${me.error} retry=${() => setToken(restoreSession())} /><//>`;
  }
  const isAdmin = me.user.role === "ADMIN";
  let body;
  if (!route) {
    body = html`<section><h1>Page not found</h1><p>There is no dashboard page at this address. <${Link} href="/dashboard">Go to your usage</${Link}>.</p></section>`;
  } else if (route.admin && !isAdmin) {
    body = html`<section><h1>Admins only</h1><p>This page is for administrators of this Tally installation.</p></section>`;
  } else {
    const Screen = route.screen;
    body = html`<${Screen} me=${me.user} params=${route.params} />`;
  }
  return html`<${Frame} me=${me.user} pathname=${pathname} isAdmin=${isAdmin}>${body}<//>`;
}

function Frame({ me, pathname, isAdmin, children }) {
  const nav = [
    ["/dashboard", "Usage"],
    ["/dashboard/keys", "API keys"],
    ["/dashboard/invoices", "Invoices"],
    ...(isAdmin ? [["/dashboard/admin", "Admin"]] : []),
  ];
  const current = (href) =>
    href === "/dashboard" ? pathname === "/dashboard" || pathname === "/" : pathname && pathname.startsWith(href);
  return html`<a class="skip-link" href="#main">Skip to content</a>
    <header class="topbar">
      <${Link} href="/dashboard" class="brand">Tally</${Link}>
      ${me &&
      html`<nav aria-label="Main">
          <ul>
            ${nav.map(
              ([href, label]) =>
                html`<li><${Link} href=${href} aria-current=${current(href) ? "page" : undefined}>${label}</${Link}></li>`
            )}
            <li><a href="/graphql">GraphiQL</a></li>
          </ul>
        </nav>
        <div class="who">
          <span class="who-name" title=${me.email}>${me.account.name} · ${me.account.plan.name}</span>
          <button type="button" class="secondary" onClick=${() => signOut("You signed out.")}>Sign out</button>
        </div>`}
    </header>
    <main id="main" tabindex="-1">${children}</main>`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading Tally…" shown before this module ran
render(html`<${App} />`, root);
