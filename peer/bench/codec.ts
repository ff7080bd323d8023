/**
 * `topk-ring bench codec`: encode + decode of one sparse message, against
 * a plain copy of the same bytes (the memory floor), and the bytes per
 * entry on the wire.
 */
import type { Command } from 'commander';

import { decodeMessage, encodeMessage } from '../../shared/codec.ts';
import type { PeerMessage } from '../../shared/protocol.ts';
import { integerOption, numberOption } from '../cli/options.ts';
import { seededRandom } from './gradients.ts';

/** What to encode. */
export interface CodecBenchOptions {
  /** Entries of the sparse vector. */
  readonly entries: number;
  /** Length of the index space they are drawn from. */
  readonly length: number;
  readonly repeat: number;
}

/** The figures (the `--json` object). */
export interface CodecBenchReport {
  readonly entries: number;
  readonly length: number;
  /** Encoded bytes of the whole message. */
  readonly messageBytes: number;
  /** messageBytes / entries: at most 8 plus a small header share. */
  readonly bytesPerEntry: number;
  /** Median encode + decode time, ms. */
  readonly msEncodeDecode: number;
  /** Logical bytes (8 per entry) per second through encode + decode. */
  readonly gbPerSecond: number;
  /** Median time of copying the 8 bytes per entry once, ms. */
  readonly msCopy: number;
  /** msEncodeDecode / msCopy, measured alternately in the same run. */
  readonly copyRatio: number;
}

/** Runs the codec benchmark. */
export function runCodecBench(options: CodecBenchOptions): CodecBenchReport {
  const message = sparseMessage(options.entries, options.length);
  const bytes = encodeMessage(message);
  const logical = new Uint8Array(options.entries * 8);
  // The two measurements alternate, so both see the same load on a noisy
  // machine and their ratio stays meaningful.
  const encodeDecode = (): void => {
    decodeMessage(encodeMessage(message));
  };
  const copy = (): void => {
    logical.slice();
  };
  for (let i = 0; i < 20; i++) {
    encodeDecode();
    copy();
  }
  const codecSamples: number[] = [];
  const copySamples: number[] = [];
  for (let i = 0; i < options.repeat; i++) {
    codecSamples.push(timed(encodeDecode));
    copySamples.push(timed(copy));
  }
  const msEncodeDecode = median(codecSamples);
  const msCopy = median(copySamples);
  return {
    entries: options.entries,
    length: options.length,
    messageBytes: bytes.byteLength,
    bytesPerEntry: bytes.byteLength / options.entries,
    msEncodeDecode,
    gbPerSecond: (options.entries * 8) / msEncodeDecode / 1e6,
    msCopy,
    copyRatio: msEncodeDecode / msCopy,
  };
}

function timed(work: () => void): number {
  const start = performance.now();
  work();
  return performance.now() - start;
}

function median(samples: number[]): number {
  return samples.sort((a, b) => a - b)[samples.length >> 1];
}

function sparseMessage(entries: number, length: number): PeerMessage {
  const random = seededRandom(7);
  const picked = new Set<number>();
  while (picked.size < entries) picked.add(Math.floor(random() * length));
  const indices = Uint32Array.from([...picked].sort((a, b) => a - b));
  const values = Float32Array.from(indices, () => random() * 2 - 1);
  return {
    v: 1,
    type: 'sparse',
    room: 'bench',
    generation: 0,
    step: 0,
    phase: 0,
    segment: 0,
    sender: 'peer-0',
    payload: { length, indices, values, skip: false },
  };
}

/** Adds `bench codec`. */
export function registerCodecBench(bench: Command): void {
  bench
    .command('codec')
    .description('encode + decode of a sparse message, against a plain copy')
    .option(
      '--entries <n>',
      'entries of the message',
      integerOption(1),
      100_000,
    )
    .option(
      '--density <d>',
      'entries / length of the index space',
      numberOption(1e-6, 1),
      0.01,
    )
    .option('--repeat <n>', 'measured repetitions', integerOption(1), 200)
    .option('--json', 'print JSON')
    .action(
      (options: {
        entries: number;
        density: number;
        repeat: number;
        json?: boolean;
      }) => {
        const report = runCodecBench({
          entries: options.entries,
          length: Math.ceil(options.entries / options.density),
          repeat: options.repeat,
        });
        if (options.json === true) console.log(JSON.stringify(report, null, 2));
        else {
          console.log(
            `${report.entries} entries: ${report.bytesPerEntry.toFixed(2)} B/entry, ` +
              `encode+decode ${report.msEncodeDecode.toFixed(3)} ms ` +
              `(${report.gbPerSecond.toFixed(2)} GB/s), plain copy ${report.msCopy.toFixed(3)} ms ` +
              `(${report.copyRatio.toFixed(1)}x)`,
          );
        }
      },
    );
}
