/**
 * A `promoter` program for shell scripts run by tests (the guides' tested commands, the GitHub
 * Action's run script): a tiny Node script on PATH that sends its arguments, working directory
 * and environment to a server inside the test process, which runs the real CLI (`runCli`, the
 * TypeScript sources as Vitest loads them, no build needed) and sends back the output and exit
 * status. Loopback only. Standard input is not forwarded.
 */
import { createServer, type IncomingMessage } from "node:http";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { allowingLoopbackRegistries } from "../support/local-registries.js";

export interface CliShim {
  /** A folder holding the `promoter` program: put it first on PATH. */
  readonly binDirectory: string;
  /** Environment the program needs (the server's address). */
  readonly env: Readonly<Record<string, string>>;
  /** Every command line run so far, for assertions. */
  readonly calls: readonly string[][];
  close(): Promise<void>;
}

const SHIM_URL_VARIABLE = "PROMOTER_TEST_SHIM_URL";

const PROGRAM = `#!/usr/bin/env node
"use strict";
(async () => {
  const body = JSON.stringify({ args: process.argv.slice(2), cwd: process.cwd(), env: process.env });
  const response = await fetch(process.env.${SHIM_URL_VARIABLE}, { method: "POST", body });
  const result = await response.json();
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.status;
})().catch((error) => {
  process.stderr.write("promoter test shim: " + error.message + "\\n");
  process.exitCode = 3;
});
`;

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startCliShim(directory: string): Promise<CliShim> {
  const calls: string[][] = [];
  const server = createServer((request, response) => {
    void (async () => {
      const body = JSON.parse(await readBody(request)) as {
        args: string[];
        cwd: string;
        env: Record<string, string>;
      };
      calls.push(body.args);
      const capture = captureIO({ cwd: body.cwd, env: body.env });
      let status: number;
      try {
        // The guides' registries are local test registries here: allow loopback, as their reader's
        // public registries need no option.
        status = await runCli(allowingLoopbackRegistries(body.args), capture.io);
      } catch (error) {
        status = 3;
        capture.io.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      }
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ status, stdout: capture.out(), stderr: capture.err() }));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const binDirectory = path.join(directory, "bin");
  await mkdir(binDirectory, { recursive: true });
  const program = path.join(binDirectory, "promoter");
  await writeFile(program, PROGRAM);
  await chmod(program, 0o755);
  return {
    binDirectory,
    env: { [SHIM_URL_VARIABLE]: `http://127.0.0.1:${port}/` },
    calls,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error) reject(error);
          else resolve();
        });
      }),
  };
}
