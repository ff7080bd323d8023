/**
 * What the browser-peer tests need around a real Chromium: the browser
 * with the flags WebRTC needs on a loopback-only host, Node peers as
 * `topk-ring peer` processes, and the room status over HTTP.
 *
 * A missing /usr/bin/chromium fails the suite with the command that fixes
 * it; nothing is ever downloaded (no `playwright install`).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import {
  chromium,
  type Browser,
  type BrowserContext,
  type Page,
} from 'playwright-core';

import type { RoomStatus } from '../../shared/signaling-protocol.ts';

/** Debian's Chromium; the CI installs it with apt-get. */
export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = 'test-artifacts';

const BIN = fileURLToPath(new URL('../../peer/cli/bin.mjs', import.meta.url));

/** Starts Chromium; fails with a clear message when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install Debian's chromium with ` +
      '`apt-get install -y chromium`; these tests never download a browser',
  );
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // Without both of these (and the permissions below) Chromium gathers
      // no ICE candidate on a host whose only network is loopback.
      '--allow-loopback-in-peer-connection',
      '--use-fake-ui-for-media-stream',
    ],
  });
}

/** A fresh context that may gather ICE candidates on loopback. */
export function peerContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({
    permissions: ['camera', 'microphone'],
    viewport: { width: 1280, height: 900 },
  });
}

/** A page whose script errors are collected for the assertions. */
export async function openPage(
  context: BrowserContext,
  url: string,
): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.goto(url);
  return { page, errors };
}

/** How a Node peer process ended. */
export interface NodePeerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The `--json` summary, when the peer finished. */
  readonly summary?: { modelHash: string; steps: number; backend: string };
  readonly stderr: string;
  /** Milliseconds from the start of the process to its exit. */
  readonly wallMs: number;
}

/** A `topk-ring peer` process. */
export interface NodePeer {
  readonly child: ChildProcess;
  readonly exited: Promise<NodePeerExit>;
  /** Kills the process group if it is still running. */
  kill(): void;
}

/** Starts `topk-ring peer --json` joining `room` on `serverUrl`. */
export function startNodePeer(
  serverUrl: string,
  room: string,
  extraArgs: readonly string[],
): NodePeer {
  const startMs = performance.now();
  const child = spawn(
    process.execPath,
    [
      BIN,
      'peer',
      '--server',
      serverUrl,
      '--room',
      room,
      '--backend',
      'wasm',
      '--json',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr?.setEncoding('utf8').on('data', (t: string) => {
    stderr = (stderr + t).slice(-20_000);
  });
  const exited = new Promise<NodePeerExit>((resolve) => {
    child.on('close', (code, signal) => {
      let summary: NodePeerExit['summary'];
      try {
        summary = stdout.trim() === '' ? undefined : JSON.parse(stdout);
      } catch {
        summary = undefined;
      }
      resolve({
        code,
        signal,
        summary,
        stderr,
        wallMs: performance.now() - startMs,
      });
    });
  });
  return {
    child,
    exited,
    kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // Already gone.
      }
    },
  };
}

/** `GET /api/rooms/:room`. */
export async function roomStatus(
  serverUrl: string,
  room: string,
): Promise<RoomStatus> {
  const response = await fetch(`${serverUrl}/api/rooms/${room}`);
  assert.equal(response.status, 200, `status of room ${room}`);
  return (await response.json()) as RoomStatus;
}

/**
 * Resolves with the first room status that satisfies `ok`, asking every
 * `intervalMs`; rejects after `timeoutMs` with the last status seen.
 */
export async function waitForStatus(
  serverUrl: string,
  room: string,
  ok: (status: RoomStatus) => boolean,
  timeoutMs: number,
  intervalMs = 200,
): Promise<RoomStatus> {
  const deadline = performance.now() + timeoutMs;
  let last: RoomStatus | undefined;
  while (performance.now() < deadline) {
    last = await roomStatus(serverUrl, room);
    if (ok(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  assert.fail(
    `room ${room}: condition not met within ${timeoutMs} ms; last status ` +
      JSON.stringify(last?.peers),
  );
}

/** Resolves with `promise`, or rejects when it takes over `timeoutMs`. */
export async function within<T>(
  promise: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: not within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
