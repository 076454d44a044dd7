// Starts the real `tally serve` on a fresh SQLite file and a free port, and stops it again.

import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
export const TALLY_BIN = process.env.TALLY_BIN || join(repo, "target", "debug", "tally");

export const ADMIN_EMAIL = "admin@example.com";
export const ADMIN_PASSWORD = "admin password for tests";

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * `corsOrigins`: the TALLY_CORS_ORIGINS allow-list; `seed`: arguments of a `tally seed-demo` run
 * first; `env`: more environment for `serve`.
 */
export async function startTally({ corsOrigins = "", seed = null, env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tally-browser-"));
  const port = await freePort();
  const databaseUrl = `sqlite://${join(dir, "t.db")}?mode=rwc`;
  let seedOutput = "";
  if (seed) seedOutput = await run(TALLY_BIN, ["seed-demo", "--database-url", databaseUrl, ...seed]);
  const output = [];
  const child = spawn(
    TALLY_BIN,
    ["serve", "--database-url", databaseUrl, "--bind", `127.0.0.1:${port}`],
    {
      env: {
        ...process.env,
        TALLY_ADMIN_EMAIL: ADMIN_EMAIL,
        TALLY_ADMIN_PASSWORD: ADMIN_PASSWORD,
        TALLY_CORS_ORIGINS: corsOrigins,
        TALLY_LOG_FORMAT: "json",
        RUST_LOG: "warn",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    }
  );
  child.stdout.on("data", (chunk) => output.push(chunk));
  child.stderr.on("data", (chunk) => output.push(chunk));
  const exited = new Promise((resolveExit) => child.once("exit", resolveExit));
  const url = `http://127.0.0.1:${port}`;
  const log = () => Buffer.concat(output).toString();

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`tally exited with ${child.exitCode}:\n${log()}`);
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) break;
    } catch (_) {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`tally did not answer /health within 30 s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    log,
    seedOutput,
    async stop() {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function run(command, args) {
  return new Promise((resolveRun, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolveRun(stdout);
    });
  });
}
