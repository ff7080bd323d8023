import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { httpGet } from './helpers/signaling-harness.ts';

// `topk-ring signal` as a user runs it: port 0 prints the URL, the room
// from --room-config is served, Ctrl-C closes cleanly; a bad config file
// fails before anything listens, naming the setting.

const BIN = fileURLToPath(new URL('../../peer/cli/bin.mjs', import.meta.url));
const T = { timeout: 30_000 };

function run(args: string[]) {
  return spawn(process.execPath, [BIN, 'signal', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('topk-ring signal', () => {
  it('prints its URL, serves the room, exits 0 on SIGINT', T, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'topk-signal-'));
    const file = join(dir, 'room.json');
    await writeFile(file, JSON.stringify({ model: 'logreg', density: 0.05 }));
    const child = run(['--port', '0', '--room', 'job', '--room-config', file]);
    try {
      const lines = createInterface({ input: child.stdout });
      let url = '';
      for await (const line of lines) {
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (match !== null) {
          url = match[1]!;
          break;
        }
      }
      assert.notEqual(url, '');
      const room = JSON.parse((await httpGet(`${url}/api/rooms/job`)).body);
      assert.equal(room.config.model, 'logreg');
      assert.equal(room.config.density, 0.05);

      const exited = once(child, 'exit');
      child.kill('SIGINT');
      const [code] = await exited;
      assert.equal(code, 0);
    } finally {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad room config before listening', T, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'topk-signal-'));
    const file = join(dir, 'room.json');
    await writeFile(file, JSON.stringify({ density: 1.5 }));
    const child = run(['--port', '0', '--room-config', file]);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    const [code] = await once(child, 'exit');
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 1);
    assert.match(stderr, /ERR_BAD_CONFIG/);
    assert.match(stderr, /density/);
  });
});
