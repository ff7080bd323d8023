import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';

import type { Browser, Page } from 'playwright-core';

import { browserPeerHandlers } from '../../peer/browser/serve.ts';
import type { PeerSnapshot } from '../../peer/browser/view.ts';
import { parseRoomConfig, type RoomConfig } from '../../shared/config.ts';
import { SignalingClient } from '../../shared/signaling-client.ts';
import {
  startSignalingServer,
  type SignalingServer,
} from '../../signaling/server.ts';
import {
  ARTIFACTS,
  launchChromium,
  openPage,
  peerContext,
  startNodePeer,
  waitForStatus,
  within,
  type NodePeer,
} from './peer-harness.ts';

// A browser tab as a full peer: a real Chromium (Debian's, driven by
// playwright-core) and two `topk-ring peer` processes train one model in
// one WebRTC ring, and end with bit-identical weights; then a tab that
// closes mid-run, which the Node peers must survive or end cleanly.

const MAX_TRAIN = 1600;
const MAX_TEST = 500;
const T = { timeout: 240_000 };

const ROOMS: Record<string, RoomConfig> = {
  // 1,600 samples over 3 peers x 16 per step: 33 steps.
  mixed: parseRoomConfig({
    model: 'mlp',
    dataset: 'mnist',
    density: 0.01,
    batchSize: 16,
    minPeers: 3,
  }),
};
// Two Node peers start alone; the tab joins after step 5.
ROOMS['joining'] = parseRoomConfig({
  ...ROOMS['mixed'],
  minPeers: 2,
  epochs: 6,
});
// Held by an impostor that presented another model's fingerprint.
ROOMS['refusing'] = ROOMS['mixed'];
// The same data, 8 epochs: ~260 steps, time to lose the tab mid-run.
for (const room of ['closing', 'crashing']) {
  ROOMS[room] = parseRoomConfig({ ...ROOMS['mixed'], epochs: 8 });
}

let server: SignalingServer;
let browser: Browser;
const nodePeers: NodePeer[] = [];

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
  server = await startSignalingServer({
    rooms: ROOMS,
    httpHandlers: browserPeerHandlers({
      roomConfig: (name) => ROOMS[name],
      maxTrain: MAX_TRAIN,
      maxTest: MAX_TEST,
    }),
    onWarning: () => {},
  });
});

after(async () => {
  for (const peer of nodePeers) peer.kill();
  await browser?.close();
  await server?.close();
});

/** Starts two Node peers and waits until both are in the room. */
async function startNodePeers(room: string): Promise<NodePeer[]> {
  const started = [0, 1].map(() =>
    startNodePeer(server.url, room, [
      '--max-train',
      String(MAX_TRAIN),
      '--max-test',
      String(MAX_TEST),
    ]),
  );
  nodePeers.push(...started);
  await waitForStatus(server.url, room, (s) => s.peers.length === 2, 60_000);
  return started;
}

/** Opens the join page of `room`. */
async function openJoinPage(room: string, backend = 'auto') {
  const context = await peerContext(browser);
  const opened = await openPage(
    context,
    `${server.url}/?room=${room}&backend=${backend}`,
  );
  return { context, ...opened };
}

/** Opens the join page of `room` and presses Join. */
async function joinFromTab(room: string, backend = 'auto') {
  const opened = await openJoinPage(room, backend);
  await opened.page.click('#join');
  return opened;
}

function snapshot(page: Page): Promise<PeerSnapshot> {
  return page.evaluate(() => window.topkPeer);
}

describe('a browser tab in a ring with Node peers', () => {
  it(
    'trains 30+ steps with two Node peers to identical weights',
    T,
    async () => {
      const [a, b] = await startNodePeers('mixed');
      // WebGL by name: in headless Chromium it renders in software, which
      // `auto` skips, but it is the backend whose replicas must match.
      const { page, errors, context } = await joinFromTab('mixed', 'webgl');

      // Mid-run: the room lists all three, by kind and backend.
      const running = await waitForStatus(
        server.url,
        'mixed',
        (s) => s.peers.length === 3 && s.peers.every((p) => (p.step ?? 0) >= 5),
        120_000,
      );
      const kinds = running.peers.map((p) => `${p.kind}/${p.backend}`).sort();
      const tab = running.peers.find((p) => p.kind === 'browser');
      assert.ok(tab !== undefined, JSON.stringify(running.peers));
      assert.equal(tab.backend, 'webgl');
      assert.deepEqual(kinds, [
        `browser/${tab.backend}`,
        'node/wasm',
        'node/wasm',
      ]);
      await page.screenshot({
        path: `${ARTIFACTS}/browser-peer-join-running.png`,
        fullPage: true,
      });
      const dashboard = await context.newPage();
      await dashboard.goto(`${server.url}/dashboard?room=mixed`);
      await dashboard
        .locator('.ring .ring-peer')
        .nth(2)
        .waitFor({ timeout: 30_000 });
      await dashboard.screenshot({
        path: `${ARTIFACTS}/browser-peer-dashboard.png`,
        fullPage: true,
      });

      await page.waitForFunction(
        () => ['done', 'failed'].includes(document.body.dataset['state'] ?? ''),
        undefined,
        { timeout: 180_000 },
      );
      await page.screenshot({
        path: `${ARTIFACTS}/browser-peer-join.png`,
        fullPage: true,
      });
      const tabState = await snapshot(page);
      assert.equal(tabState.state, 'done', JSON.stringify(tabState.error));
      const [exitA, exitB] = await within(
        Promise.all([a.exited, b.exited]),
        60_000,
        'the Node peers finish',
      );
      for (const exit of [exitA, exitB]) {
        assert.equal(exit.code, 0, exit.stderr);
      }

      const summary = tabState.summary;
      assert.ok(summary !== undefined);
      assert.ok(summary.steps >= 30, `${summary.steps} steps`);
      assert.equal(summary.steps, exitA.summary?.steps);
      assert.ok(summary.bytesSent > 0 && summary.bytesReceived > 0);
      assert.ok(summary.bytesSent * 10 < summary.denseBytes);
      assert.deepEqual(
        [exitA.summary?.modelHash, exitB.summary?.modelHash],
        [summary.modelHash, summary.modelHash],
        'the three replicas end bit-identical',
      );
      const ended = await waitForStatus(
        server.url,
        'mixed',
        (s) => s.hashCheck?.step === summary.steps,
        10_000,
      );
      assert.deepEqual(ended.hashCheck, {
        step: summary.steps,
        agreed: true,
        peers: 3,
      });
      assert.equal(ended.mismatchCount, 0);
      assert.deepEqual(errors, []);
      await context.close();
    },
  );

  it(
    'joins a run in progress: gets the weights and ends identical',
    T,
    async () => {
      // The page is loaded first: two Node peers alone run ~60 steps a
      // second, the tab must join before they are done.
      const { page, errors, context } = await openJoinPage('joining');
      const [a, b] = await startNodePeers('joining');
      await waitForStatus(
        server.url,
        'joining',
        (s) => s.peers.every((p) => (p.step ?? 0) >= 5),
        120_000,
      );
      await page.click('#join');
      await page.waitForFunction(
        () => ['done', 'failed'].includes(document.body.dataset['state'] ?? ''),
        undefined,
        { timeout: 180_000 },
      );
      const tab = await snapshot(page);
      assert.equal(tab.state, 'done', JSON.stringify(tab.error));
      const exits = await within(
        Promise.all([a.exited, b.exited]),
        60_000,
        'the Node peers finish',
      );
      // The run is the room's: 6 epochs of 1,600 / (2 x 16) = 300 steps.
      for (const exit of exits) {
        assert.equal(exit.code, 0, exit.stderr);
        assert.equal(exit.summary?.steps, 300);
        assert.equal(exit.summary?.modelHash, tab.summary?.modelHash);
      }
      assert.equal(tab.summary?.steps, 300);
      console.log(`late tab: ran ${tab.stepsRun} of the run's 300 steps`);
      // It joined late: it took part in the later steps only.
      assert.ok(
        tab.stepsRun > 0 && tab.stepsRun <= 295,
        `${tab.stepsRun} steps run`,
      );
      assert.deepEqual(errors, []);
      await context.close();
    },
  );

  it(
    "a tab whose model is not the room's is refused at join, the difference named",
    T,
    async () => {
      // The room's first member trains a model with another first variable:
      // the tab, building the room's mlp, must be refused by name.
      const impostor = await SignalingClient.connect({
        url: server.url,
        room: 'refusing',
        kind: 'node',
        backend: 'cpu',
        fingerprint: {
          variables: [
            { name: 'impostor/kernel', shape: [3, 3], dtype: 'float32' },
          ],
        },
        reconnect: false,
      });
      try {
        const { page, context } = await joinFromTab('refusing');
        await page.waitForFunction(
          () =>
            ['done', 'failed'].includes(document.body.dataset['state'] ?? ''),
          undefined,
          { timeout: 60_000 },
        );
        const tab = await snapshot(page);
        assert.equal(tab.state, 'failed');
        assert.equal(tab.error?.code, 'ERR_MISMATCH', JSON.stringify(tab));
        assert.match(
          tab.error?.message ?? '',
          /variable 0: room has impostor\/kernel, peer has \S+/,
        );
        await page.screenshot({
          path: `${ARTIFACTS}/browser-peer-refused.png`,
          fullPage: true,
        });
        await context.close();
        const status = await waitForStatus(
          server.url,
          'refusing',
          (s) => s.peers.length === 1,
          10_000,
        );
        assert.equal(status.peers[0].id, impostor.peerId);
      } finally {
        await impostor.leave('test over');
      }
    },
  );

  const endings: [string, (page: Page) => Promise<void>][] = [
    // pagehide: the tab says goodbye on its channels and leaves the room.
    ['is closed', (page) => page.close({ runBeforeUnload: true })],
    // No goodbye at all: the renderer dies with the tab's connections.
    [
      'crashes',
      async (page) => {
        const crashed = new Promise((resolve) => page.once('crash', resolve));
        await page.goto('chrome://crash').catch(() => {});
        await crashed;
      },
    ],
  ];
  for (const [how, end] of endings) {
    it(
      `a tab that ${how} mid-run leaves the Node peers neither hung nor crashed`,
      T,
      async () => {
        const room = how === 'crashes' ? 'crashing' : 'closing';
        const peers = await startNodePeers(room);
        const { page, context } = await joinFromTab(room);
        await page.waitForFunction(
          () => (window.topkPeer?.step ?? 0) >= 20,
          undefined,
          { timeout: 120_000 },
        );
        // auto: no WebGPU adapter, WebGL only in software, so wasm.
        const tab = await snapshot(page);
        assert.equal(tab.backend, 'wasm', JSON.stringify(tab.backendSkipped));
        assert.match(
          tab.backendSkipped?.find((s) => s.name === 'webgl')?.reason ?? '',
          /software/,
        );
        const endedAtMs = performance.now();
        await end(page);
        await context.close();

        // Bounded: the departure aborts the step in flight, and a failed
        // step waits at most 4 peer timeouts (20 s) for a new ring.
        const exits = await within(
          Promise.all(peers.map((p) => p.exited)),
          150_000,
          `the Node peers end after the tab ${how === 'crashes' ? 'crashed' : 'closed'}`,
        );
        const afterMs = Math.round(performance.now() - endedAtMs);
        for (const exit of exits) {
          assert.equal(exit.signal, null, exit.stderr);
          if (exit.code === 0) {
            // Went on without the tab, to the room's end: 8 epochs of 33.
            assert.equal(
              exit.summary?.steps,
              8 * 33,
              `${JSON.stringify(exit.summary)}\n${exit.stderr.slice(-3000)}`,
            );
          } else {
            // Ended cleanly: a typed error with its code, no stack trace.
            assert.match(exit.stderr, /topk-ring: ERR_[A-Z_]+: /);
            assert.doesNotMatch(exit.stderr, /unexpected failure/);
          }
        }
        const finished = exits.filter((e) => e.code === 0);
        if (finished.length === 2) {
          assert.equal(
            finished[0].summary?.modelHash,
            finished[1].summary?.modelHash,
            'the two Node replicas that went on end identical',
          );
        }
        console.log(
          `tab ${how}: Node peers exited ${exits.map((e) => e.code).join(', ')} ` +
            `${afterMs} ms later`,
        );
      },
    );
  }
});
