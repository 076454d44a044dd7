// A blank page on an origin of its own, to call Tally from "another site" in the browser: the
// same server answers as http://127.0.0.1:<port> and as http://localhost:<port>, two origins.

import { createServer } from "node:http";

export async function startOtherSite() {
  const server = createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>Another site</title><p>Another site</p>");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    allowedOrigin: `http://127.0.0.1:${port}`,
    otherOrigin: `http://localhost:${port}`,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
