import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';

import { decodeSampleBlock } from '../../peer/browser/data-format.ts';
import { RemoteDataset } from '../../peer/browser/remote-data.ts';
import { browserPeerHandlers } from '../../peer/browser/serve.ts';
import { featureSize, type Dataset } from '../../peer/data/dataset.ts';
import { loadDataset } from '../../peer/data/registry.ts';
import { shardFor } from '../../peer/data/shard.ts';
import { parseRoomConfig, type RoomConfig } from '../../shared/config.ts';
import { isTopkError } from '../../shared/errors.ts';
import {
  startSignalingServer,
  type SignalingServer,
} from '../../signaling/server.ts';

// What the signaling server serves browser tabs: the join page and its
// bundle, the wasm backend's files, and each room's data cut into exactly
// the shards a Node peer would train on.

const MAX_TRAIN = 300;
const MAX_TEST = 50;
const ROOMS: Record<string, RoomConfig> = {
  digits: parseRoomConfig({ dataset: 'mnist', seed: 7 }),
  // Its own training-set size wins over the server's --max-train.
  few: parseRoomConfig({ dataset: 'mnist', seed: 7, trainSamples: 120 }),
};

let server: SignalingServer;
let local: Dataset;

before(async () => {
  server = await startSignalingServer({
    rooms: ROOMS,
    httpHandlers: browserPeerHandlers({
      roomConfig: (name) => ROOMS[name],
      maxTrain: MAX_TRAIN,
      maxTest: MAX_TEST,
    }),
    dashboard: false,
    onWarning: () => {},
  });
  local = await loadDataset('mnist', {
    maxTrain: MAX_TRAIN,
    maxTest: MAX_TEST,
  });
});

after(() => server.close());

function get(path: string, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, { headers });
}

async function errorCode(response: Response): Promise<string> {
  const body = (await response.json()) as { error: { code: string } };
  return body.error.code;
}

describe('the data routes', () => {
  it('describe the room’s data set', async () => {
    const response = await get('/api/data/digits');
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      room: 'digits',
      dataset: 'mnist',
      task: 'classification',
      featureShape: [28, 28, 1],
      targetWidth: 10,
      classNames: local.classNames,
      trainSize: MAX_TRAIN,
      testSize: MAX_TEST,
    });
  });

  it("cut the room's own training set when its config names one", async () => {
    const response = await get('/api/data/few');
    assert.equal(response.status, 200);
    const info = (await response.json()) as { trainSize: number };
    assert.equal(info.trainSize, 120);
  });

  it('send a shard: shardFor’s indices and the very samples', async () => {
    const response = await get(
      '/api/data/digits/train?generation=3&ringIndex=1&peers=4',
      { 'accept-encoding': 'identity' },
    );
    assert.equal(response.status, 200);
    const block = decodeSampleBlock(
      new Uint8Array(await response.arrayBuffer()),
    );
    const expected = shardFor({
      datasetSize: MAX_TRAIN,
      seed: 7,
      generation: 3,
      ringIndex: 1,
      peers: 4,
    });
    assert.deepEqual([...block.indices], [...expected]);
    const batch = local.train.gather(expected);
    assert.equal(block.featureSize, featureSize(local));
    assert.deepEqual(block.x, batch.x);
    assert.deepEqual(block.y, batch.y);
  });

  it('gzip the body when the client accepts it', async () => {
    const response = await fetch(
      `${server.url}/api/data/digits/test?limit=20`,
      { headers: { 'accept-encoding': 'gzip' } },
    );
    // fetch inflates by itself; compare with a raw request's length.
    const inflated = new Uint8Array(await response.arrayBuffer());
    const raw = await rawGet('/api/data/digits/test?limit=20');
    assert.equal(raw.encoding, 'gzip');
    assert.ok(raw.body.byteLength < inflated.byteLength / 2);
    assert.deepEqual(new Uint8Array(gunzipSync(raw.body)), inflated);
    assert.deepEqual(
      [...decodeSampleBlock(inflated).indices],
      [...Array(20).keys()],
    );
  });

  it('refuse bad parameters and unknown rooms with a code', async () => {
    for (const query of [
      'generation=0&ringIndex=4&peers=4',
      'generation=0&ringIndex=0&peers=0',
      'generation=-1&ringIndex=0&peers=2',
      'ringIndex=0&peers=2',
      'generation=0&ringIndex=0&peers=99999',
    ]) {
      const response = await get(`/api/data/digits/train?${query}`);
      assert.equal(response.status, 400, query);
      assert.equal(await errorCode(response), 'ERR_BAD_CONFIG');
    }
    const unknown = await get('/api/data/nowhere');
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'ERR_UNKNOWN_NAME');
  });

  it('feed a RemoteDataset that checks each shard it receives', async () => {
    const dataset = await RemoteDataset.open({
      baseUrl: server.url,
      room: 'digits',
      dataset: 'mnist',
      seed: 7,
      testSamples: 30,
    });
    assert.equal(dataset.test.size, 30);
    assert.equal(dataset.train.size, MAX_TRAIN);
    const key = { generation: 2, ringIndex: 0, peers: 3 };
    await dataset.holdShard(key);
    const indices = shardFor({ datasetSize: MAX_TRAIN, seed: 7, ...key });
    assert.deepEqual(
      dataset.train.gather(indices),
      local.train.gather(indices),
    );

    const wrongSeed = await RemoteDataset.open({
      baseUrl: server.url,
      room: 'digits',
      dataset: 'mnist',
      seed: 8,
      testSamples: 1,
    });
    await assert.rejects(
      wrongSeed.holdShard(key),
      (error: unknown) => isTopkError(error) && error.code === 'ERR_MISMATCH',
    );
    await assert.rejects(
      RemoteDataset.open({
        baseUrl: server.url,
        room: 'digits',
        dataset: 'fashion-mnist',
        seed: 7,
        testSamples: 1,
      }),
      (error: unknown) => isTopkError(error) && error.code === 'ERR_MISMATCH',
    );
  });
});

describe('the join page', () => {
  it('serves the page at / and /join', async () => {
    for (const path of ['/', '/join?room=main&token=x']) {
      const response = await get(path);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /text\/html/);
      assert.match(await response.text(), /src="\/browser\/app\.js"/);
    }
  });

  it(
    'bundles the browser peer on first request',
    { timeout: 120_000 },
    async () => {
      const js = await get('/browser/app.js');
      assert.equal(js.status, 200);
      const text = await js.text();
      // The bundle carries the ring code and no Node built-in import.
      assert.ok(text.length > 500_000, `${text.length} bytes`);
      assert.doesNotMatch(text, /from\s*"node:/);
      const css = await get('/browser/app.css');
      assert.match(await css.text(), /\.uplot/);
    },
  );

  it('serves the wasm backend’s files, and only those', async () => {
    const wasm = await get('/browser/wasm/tfjs-backend-wasm-simd.wasm');
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    const bytes = new Uint8Array(await wasm.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 4)], [0, 0x61, 0x73, 0x6d]);
    for (const path of [
      '/browser/wasm/../package.json',
      '/browser/wasm/x.wasm',
    ]) {
      assert.equal((await get(path)).status, 404, path);
    }
  });
});

/** A GET that does not inflate, to see the bytes on the wire. */
async function rawGet(
  path: string,
): Promise<{ encoding: string | undefined; body: Buffer }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${path}`,
      { headers: { 'accept-encoding': 'gzip' } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            encoding: response.headers['content-encoding'],
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}
