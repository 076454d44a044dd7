// Mounts GraphiQL (vendored UMD builds, no CDN) against this server's /graphql. When the
// dashboard in this browser is signed in, its token is offered in the headers tab.
(function mountGraphiQL() {
  "use strict";
  var TOKEN_KEY = "tally.token";
  var token = null;
  try {
    token = window.localStorage.getItem(TOKEN_KEY);
  } catch (_) {
    token = null;
  }
  var defaultHeaders = token
    ? JSON.stringify({ Authorization: "Bearer " + token }, null, 2)
    : undefined;
  var fetcher = GraphiQL.createFetcher({ url: "/graphql" });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: defaultHeaders,
      defaultQuery:
        "# Sign in with the `login` mutation (or open the dashboard at /dashboard first),\n" +
        "# put the token in the Headers tab as {\"Authorization\": \"Bearer <token>\"}, then:\n" +
        "query Me {\n  me { email role account { name plan { code } } }\n  currentUsage { calls limit remaining periodEnd }\n}\n",
    })
  );
})();
