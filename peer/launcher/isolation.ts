/**
 * Running a local multi-process job in a network of its own: as root on
 * Linux with `unshare` and `ip`, a command re-executes itself in a new
 * network namespace whose only interface is loopback, so its server and
 * peers can reach nothing outside and nothing outside can reach them. The
 * integration tests isolate their WebRTC children the same way.
 */
import { spawn, spawnSync } from 'node:child_process';

/** Set in the re-executed process, so it does not re-execute again. */
const ISOLATED_ENV = 'TOPK_ISOLATED_NETWORK';

/**
 * Prefix a command with these to run it in a new network namespace whose
 * loopback is up; `exec` keeps one process, so signals reach the command.
 */
export const ISOLATED_PREFIX: readonly [string, ...string[]] = [
  'unshare',
  '--net',
  'sh',
  '-c',
  'ip link set lo up && exec "$0" "$@"',
];

/** True in a process that {@link reexecIsolated} started. */
export function isIsolated(): boolean {
  return process.env[ISOLATED_ENV] === '1';
}

/**
 * Why this process cannot be isolated, or null when it can: not root on
 * Linux, a tool missing, or `unshare --net` refused (a container without
 * the capability).
 */
export function isolationUnavailable(): string | null {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    return 'not root on Linux';
  }
  const missing = ['unshare', 'ip'].filter(
    (tool) => spawnSync('which', [tool]).status !== 0,
  );
  if (missing.length > 0) return `${missing.join(', ')} missing`;
  const probe = spawnSync('unshare', [
    '--net',
    'ip',
    'link',
    'set',
    'lo',
    'up',
  ]);
  if (probe.status !== 0) {
    return `unshare --net failed (${String(probe.stderr).trim()})`;
  }
  return null;
}

/**
 * Runs this very command again (same node flags and arguments) in its own
 * loopback-only network, forwarding SIGINT and SIGTERM, and resolves with
 * its exit code. The caller exits with it and does nothing else.
 */
export function reexecIsolated(): Promise<number> {
  const [command, ...prefix] = ISOLATED_PREFIX;
  const child = spawn(
    command,
    [
      ...prefix,
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, [ISOLATED_ENV]: '1' } },
  );
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    const done = (code: number): void => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code);
    };
    child.once('error', () => done(1));
    child.once('exit', (code, signal) =>
      done(code ?? (signal === null ? 1 : 128 + signalNumber(signal))),
    );
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 2 : signal === 'SIGKILL' ? 9 : 15;
}
