/**
 * The data a browser tab trains on, served by the signaling server's HTTP
 * side. Node-only: the data sets are loaded by the Node loaders
 * (data/registry.ts) on the first request for them and kept.
 *
 *   GET /api/data/:room          DatasetInfo (JSON)
 *   GET /api/data/:room/train?generation=G&ringIndex=I&peers=P
 *                                the shard of ring index I (sample block)
 *   GET /api/data/:room/test?limit=N
 *                                the first N test samples (sample block)
 *
 * A shard is `shardFor(...)` of the room's seed over the whole training
 * set: exactly the samples a Node peer at that place would draw batches
 * from. Bodies are sample blocks (data-format.ts), gzipped when the
 * client accepts it.
 *
 * TODO(#5): these routes answer anyone who can reach the server, like the
 * status API; the public data sets served here make that harmless, a
 * private one would want the room token.
 */
import type { ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

import createDebug from 'debug';

import type { RoomConfig } from '../../shared/config.ts';
import { isTopkError, topkError } from '../../shared/errors.ts';
import { sendJson, type HttpHandler } from '../../signaling/http-api.ts';
import { featureSize, range, type Dataset } from '../data/dataset.ts';
import { loadDataset } from '../data/registry.ts';
import { shardFor } from '../data/shard.ts';
import { encodeSampleBlock, type DatasetInfo } from './data-format.ts';

const log = createDebug('topk:browser:data');
const gzipAsync = promisify(gzip);

/** Most test samples one request may ask for. */
const MAX_TEST_LIMIT = 10_000;

/** How the server finds and cuts data sets. */
export interface DataRoutesOptions {
  /** The config of room `name`, or undefined when there is no such room. */
  roomConfig(name: string): RoomConfig | undefined;
  /** Serve only the first N training samples for rooms whose config has
   * no `trainSamples` (the room's own value wins). */
  readonly maxTrain?: number;
  /** Serve only the first N test samples. */
  readonly maxTest?: number;
}

/** The HTTP handler of the data routes. */
export function dataRoutes(options: DataRoutesOptions): HttpHandler {
  const loaded = new Map<string, Promise<Dataset>>();
  const datasetOf = (config: RoomConfig): Promise<Dataset> => {
    const maxTrain = config.trainSamples ?? options.maxTrain;
    const key = `${config.dataset}/${config.seed}/${maxTrain ?? 'all'}`;
    let dataset = loaded.get(key);
    if (dataset === undefined) {
      dataset = loadDataset(config.dataset, {
        seed: config.seed,
        maxTrain,
        maxTest: options.maxTest,
      });
      // A failed load (package missing) is tried again next time.
      dataset.catch(() => loaded.delete(key));
      loaded.set(key, dataset);
    }
    return dataset;
  };

  return async (request, response, url) => {
    const match = /^\/api\/data\/([^/]+)(\/train|\/test)?$/.exec(url.pathname);
    if (match === null) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    try {
      const room = decodeURIComponent(match[1]);
      const config = options.roomConfig(room);
      if (config === undefined) {
        throw topkError(
          'ERR_UNKNOWN_NAME',
          `no room named ${JSON.stringify(room)}`,
          { room },
        );
      }
      const dataset = await datasetOf(config);
      if (match[2] === undefined) {
        sendJson(response, 200, describe(room, dataset));
        return true;
      }
      const indices =
        match[2] === '/train'
          ? shardIndices(url, config, dataset)
          : testIndices(url, dataset);
      const split = match[2] === '/train' ? dataset.train : dataset.test;
      const batch = split.gather(indices);
      const body = encodeSampleBlock({
        indices,
        x: batch.x,
        y: batch.y,
        featureSize: featureSize(dataset),
        targetWidth: dataset.targetWidth,
      });
      await sendBlock(request.headers['accept-encoding'], response, body);
      log('%s%s: %d samples', room, match[2], indices.length);
    } catch (error) {
      sendFailure(response, error);
    }
    return true;
  };
}

/** The body of `GET /api/data/:room`. */
function describe(room: string, dataset: Dataset): DatasetInfo {
  return {
    room,
    dataset: dataset.name,
    task: dataset.task,
    featureShape: dataset.featureShape,
    targetWidth: dataset.targetWidth,
    ...(dataset.classNames === undefined
      ? {}
      : { classNames: dataset.classNames }),
    trainSize: dataset.train.size,
    testSize: dataset.test.size,
  };
}

function shardIndices(
  url: URL,
  config: RoomConfig,
  dataset: Dataset,
): Uint32Array {
  const peers = integerParam(url, 'peers', 1, config.limits.maxPeers);
  return shardFor({
    datasetSize: dataset.train.size,
    seed: config.seed,
    generation: integerParam(url, 'generation', 0, Number.MAX_SAFE_INTEGER),
    ringIndex: integerParam(url, 'ringIndex', 0, peers - 1),
    peers,
  });
}

function testIndices(url: URL, dataset: Dataset): Uint32Array {
  const limit = integerParam(url, 'limit', 0, MAX_TEST_LIMIT);
  return range(Math.min(limit, dataset.test.size));
}

/** A query parameter that must be an integer in [min, max]. */
function integerParam(url: URL, name: string, min: number, max: number) {
  const text = url.searchParams.get(name) ?? '';
  const value = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!(Number.isSafeInteger(value) && value >= min && value <= max)) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `${name}: expected an integer in [${min}, ${max}], got ` +
        JSON.stringify(text.slice(0, 32)),
      { [name]: text.slice(0, 32), min, max },
    );
  }
  return value;
}

async function sendBlock(
  acceptEncoding: string | undefined,
  response: ServerResponse,
  body: Uint8Array,
): Promise<void> {
  // Level 1: most of the gain (features repeat a lot) for little CPU.
  const compressed = /\bgzip\b/.test(acceptEncoding ?? '')
    ? await gzipAsync(body, { level: 1 })
    : undefined;
  response.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': (compressed ?? body).byteLength,
    ...(compressed === undefined ? {} : { 'content-encoding': 'gzip' }),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  response.end(compressed ?? body);
}

const STATUS_OF: Partial<Record<string, number>> = {
  ERR_UNKNOWN_NAME: 404,
  ERR_BAD_CONFIG: 400,
  ERR_MISSING_DEPENDENCY: 503,
};

function sendFailure(response: ServerResponse, error: unknown): void {
  log('data request failed: %O', error);
  const typed = isTopkError(error)
    ? error
    : topkError('ERR_INTERNAL', 'serving data failed', {}, error);
  if (response.headersSent) {
    response.destroy();
    return;
  }
  sendJson(response, STATUS_OF[typed.code] ?? 500, {
    error: { code: typed.code, message: typed.message },
  });
}
