// Starts a real rewards-server on a free loopback port, as tests/helpers.py spawn_server does.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root, from dist/test/server.js. */
export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

const SERVER_BIN = process.env.REWARDS_SERVER_BIN ?? join(REPO_ROOT, ".venv", "bin", "rewards-server");
const ADMIN_KEY_LINE = /Admin API key[^:]*:\s*(\S+)/;

export interface Server {
  /** host:port it serves on. */
  readonly address: string;
  /** The bootstrap admin key it printed on its first start. */
  readonly adminKey: string;
  /** Every line it wrote so far, stdout and stderr. */
  readonly lines: string[];
  stop(): Promise<void>;
}

/** `rewards-server --listen 127.0.0.1:0` on a fresh SQLite database; resolves once it serves. */
export async function startServer(args: string[] = [], timeoutMs = 30_000): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), "rewards-ts-"));
  const child = spawn(SERVER_BIN, ["--listen", "127.0.0.1:0", ...args], {
    env: { ...process.env, REWARDS_DATABASE_URL: `sqlite:///${join(dir, "x.db")}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const { address, adminKey } = await new Promise<{ address: string; adminKey: string }>(
      (resolve, reject) => {
        let adminKey: string | undefined;
        const timer = setTimeout(() => reject(new Error("server did not start in time")), timeoutMs);
        const onLine = (line: string): void => {
          lines.push(line);
          const key = ADMIN_KEY_LINE.exec(line);
          if (key) {
            adminKey = key[1];
          }
          if (line.includes('"event":"serving"')) {
            clearTimeout(timer);
            const address = (JSON.parse(line) as { address: string }).address;
            if (adminKey === undefined) {
              reject(new Error("the server printed no admin key"));
            } else {
              resolve({ address, adminKey });
            }
          }
        };
        // Both streams stay drained for the server's whole life: a full pipe would block it.
        createInterface({ input: child.stdout! }).on("line", onLine);
        createInterface({ input: child.stderr! }).on("line", onLine);
        child.once("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
        child.once("exit", (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`server exited (${code ?? signal}) before serving`));
        });
      },
    );
    return { address, adminKey, lines, stop };
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${lines.join("\n")}`);
  }
}

/** Exits when the child does; for tests that run a program to its end. */
export function waitForExit(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}
