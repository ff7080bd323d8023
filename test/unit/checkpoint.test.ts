import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { parseRoomConfig } from '../../shared/config.ts';
import { isTopkError } from '../../shared/errors.ts';
import { RingSimulator } from '../../shared/simulator.ts';
import type { Dataset } from '../../peer/data/dataset.ts';
import { loadDataset } from '../../peer/data/registry.ts';
import { initBackend } from '../../peer/tf/backend.ts';
import {
  loadCheckpoint,
  saveCheckpoint,
} from '../../peer/training/checkpoint.ts';
import { Trainer } from '../../peer/training/trainer.ts';

let dataset: Dataset;
let dir: string;

before(async () => {
  await initBackend('wasm');
  dataset = await loadDataset('mnist', { maxTrain: 1000, maxTest: 100 });
  dir = await mkdtemp(path.join(tmpdir(), 'topk-ckpt-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = parseRoomConfig({ density: 0.05, batchSize: 16 });
const where = { room: 'r', generation: 0, ringIndex: 0, peers: 1 };

async function steps(trainer: Trainer, count: number): Promise<void> {
  const link = new RingSimulator({ peers: 1 }).links[0];
  for (let i = 0; i < count; i++) {
    await trainer.runStep({ ...where, link, firstStep: 0 });
  }
}

describe('checkpoints', () => {
  it('resume continues with the same weights, residual and step', async () => {
    const original = new Trainer({ config, dataset, room: 'r', peerId: 'a' });
    await steps(original, 5);
    await saveCheckpoint(dir, original, where);

    const loaded = await loadCheckpoint(dir);
    assert.equal(loaded.state.step, 5);
    const resumed = new Trainer({
      config: loaded.state.config,
      dataset,
      room: 'r',
      peerId: 'a',
    });
    resumed.restoreState({ ...loaded, step: loaded.state.step });
    assert.equal(resumed.modelHash(), original.modelHash());

    await steps(original, 5);
    await steps(resumed, 5);
    assert.equal(resumed.step, 10);
    assert.equal(resumed.modelHash(), original.modelHash());
    assert.deepEqual(
      resumed.compressor.residualView(),
      original.compressor.residualView(),
    );
    original.dispose();
    resumed.dispose();
  });

  it('refuses a checkpoint whose weights do not match their hash', async () => {
    const trainer = new Trainer({ config, dataset, room: 'r', peerId: 'a' });
    await saveCheckpoint(dir, trainer, where);
    const weights = path.join(dir, 'weights.bin');
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(weights);
    bytes[100] ^= 0xff;
    await writeFile(weights, bytes);
    await assert.rejects(loadCheckpoint(dir), (error) =>
      isTopkError(error, 'ERR_BAD_CHECKPOINT'),
    );
    trainer.dispose();
  });

  it('names the missing file of an incomplete checkpoint', async () => {
    await assert.rejects(
      loadCheckpoint(path.join(dir, 'nowhere')),
      (error) =>
        isTopkError(error, 'ERR_BAD_CHECKPOINT') &&
        error.context.file === 'state.json',
    );
  });
});
