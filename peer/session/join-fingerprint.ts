/**
 * What a Node peer presents when it joins (issue 6): the fingerprint of the
 * model it will train (variable names, shapes, dtypes, in flat-vector
 * order), so that a peer whose model differs from the room's is refused
 * at join, with the difference named, instead of failing mid-run.
 *
 * The model is built from a config and a data set, and a peer without a
 * config of its own trains with the room's, which the join reply brings.
 * So before joining, such a peer reads the room's config from the
 * server's status API (`GET /api/rooms/:room`), builds the model it would
 * train, and presents that model's fingerprint.
 */
import createDebug from 'debug';

import { parseRoomConfig, type RoomConfig } from '../../shared/config.ts';
import type { ModelFingerprint } from '../../shared/fingerprint.ts';
import type { Dataset } from '../data/dataset.ts';
import { modelFingerprint } from '../models/fingerprint.ts';
import { createModelForDataset } from '../models/registry.ts';

const log = createDebug('topk:session:join');

/** How long the status API may take to answer. */
const FETCH_TIMEOUT_MS = 5000;

/**
 * The config of `room` on the server at `server`, from its status API, or
 * undefined when the room does not exist yet (it is made on the first
 * join) or the server cannot say. ICE credentials come back hidden: the
 * result is good for building the model, not for connecting.
 */
export async function fetchRoomConfig(
  server: string,
  room: string,
): Promise<RoomConfig | undefined> {
  const url = new URL(`/api/rooms/${encodeURIComponent(room)}`, server);
  try {
    const response = await fetch(url, {
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (!response.ok) {
      await response.body?.cancel();
      log('no config for room %s at %s: HTTP %d', room, url, response.status);
      return undefined;
    }
    const status = (await response.json()) as { config?: unknown };
    return parseRoomConfig(status.config);
  } catch (error) {
    log('no config for room %s at %s: %s', room, url, String(error));
    return undefined;
  }
}

/**
 * The fingerprint of the model `config` trains on `dataset`: built, read
 * and disposed (the trainer builds its own after the join).
 */
export function fingerprintFor(
  config: RoomConfig,
  dataset: Pick<Dataset, 'name' | 'task' | 'featureShape' | 'targetWidth'>,
): ModelFingerprint {
  const { model } = createModelForDataset(config.model, dataset, config.seed);
  try {
    return modelFingerprint(model);
  } finally {
    model.dispose();
  }
}
