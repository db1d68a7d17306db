// A real `twin serve --demo` on loopback for the JS client's tests: start it, read what it
// prints (the URL, the demo cars' link secrets), stop it with SIGTERM.

import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const PYTHON = process.env.TWIN_PYTHON ?? "python";

/** A free loopback port (the hub is restarted on the same one in the reconnect test). */
export function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Start `twin serve --demo` on `port` over `data` (a fresh store by default); resolves once
 * it listens, with {url, port, data, secrets: {vehicle_id: secret}, lines, stop()}. */
export async function startHub({ port, data } = {}) {
  port ??= await freePort();
  data ??= join(mkdtempSync(join(tmpdir(), "twin-js-")), "hub.sqlite3");
  const proc = spawn(PYTHON, ["-m", "twin.cli", "serve", "--demo", "--port", String(port), "--data", data], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  const lines = [];
  const exited = new Promise((resolve) => proc.on("exit", (code) => resolve(code)));
  const listening = new Promise((resolve, reject) => {
    const reader = createInterface({ input: proc.stdout });
    reader.on("line", (line) => {
      lines.push(line);
      if (line.includes("listening on")) resolve();
    });
    exited.then((code) => reject(new Error(`twin serve exited (${code}) before listening:\n${lines.join("\n")}`)));
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  await listening;
  clearTimeout(timer);
  const secrets = {};
  for (const line of lines) {
    const found = /car:(\S+) .*secret (\S+)$/.exec(line);
    if (found) secrets[found[1]] = found[2];
  }
  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    data,
    secrets,
    lines,
    async stop() {
      proc.kill("SIGTERM");
      const kill = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(kill);
      return code;
    },
  };
}

/** Resolve once `predicate()` is true, polling every 10 ms; reject after `ms`. */
export async function until(predicate, ms = 5000, what = "the condition") {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
