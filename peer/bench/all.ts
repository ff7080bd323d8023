/**
 * `topk-ring bench all` (`npm run bench`): the standard set, run side by
 * side in one process, written as a Markdown report with the machine it
 * ran on. Ratios within one run are what to compare: these machines are
 * noisy.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';

import type { Command } from 'commander';

import type { AllReduceChoice } from '../../shared/allreduce/index.ts';
import { runWebRtcAllReduceBench } from './allreduce-webrtc.ts';
import { runAllReduceBench } from './allreduce.ts';
import { runCodecBench } from './codec.ts';
import { runConvBench } from './conv.ts';
import { runTopkBench } from './topk.ts';
import { runTransportBench } from './transport.ts';

const fixed = (value: number | null, digits = 2): string =>
  value === null ? '-' : value.toFixed(digits);

/** A Markdown table's header row and separator. */
const header = (columns: readonly string[]): string[] => [
  `| ${columns.join(' | ')} |`,
  `|${' --- |'.repeat(columns.length)}`,
];

/** A Markdown table row. */
const row = (cells: readonly (string | number | boolean)[]): string =>
  `| ${cells.join(' | ')} |`;

/** Runs every benchmark; returns the Markdown report. */
export async function runAllBenchmarks(
  say: (line: string) => void,
): Promise<string> {
  const lines: string[] = [];
  const cpus = os.cpus();
  lines.push(
    '# Benchmarks',
    '',
    'Written by `npm run bench` (`topk-ring bench all`); every figure below ' +
      'comes from one run, on this machine:',
    '',
    `- ${new Date().toISOString()}, Node ${process.version}, ` +
      `${os.platform()} ${os.arch()}`,
    `- ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB memory, load average ` +
      `${os.loadavg()[0].toFixed(1)} at the start`,
    '',
  );

  say('TopK selection...');
  lines.push(
    '## TopK selection (n = 10,000,000)',
    '',
    'Target: fast selection at most 3x one plain pass (aim 1.5x) and at ' +
      'least 2x faster than `tf.topk` on wasm.',
    '',
    ...header([
      'density',
      'k',
      'fast ms',
      'exact ms',
      'tf.topk (wasm) ms',
      'plain pass ms',
      'fast / pass',
      'tf.topk / fast',
      'same set',
    ]),
  );
  for (const density of [0.001, 0.01]) {
    const r = await runTopkBench({
      size: 10_000_000,
      density,
      repeat: 7,
      warmup: 2,
      seed: 1,
      backend: 'wasm',
    });
    lines.push(
      row([
        density,
        r.k,
        fixed(r.msSelect, 1),
        fixed(r.msExact, 1),
        fixed(r.msTfTopk, 1),
        fixed(r.msPass, 1),
        fixed(r.ratioToPass),
        fixed(r.speedupOverTf),
        r.exact,
      ]),
    );
  }

  say('codec...');
  const codec = runCodecBench({
    entries: 100_000,
    length: 10_000_000,
    repeat: 200,
  });
  lines.push(
    '',
    '## Codec (100,000 entries, sparse message)',
    '',
    'Target: encode + decode at 1 GB/s or more (8 logical bytes per ' +
      'entry), at most 8 bytes per entry plus a small header.',
    '',
    ...header([
      'bytes on the wire',
      'bytes / entry',
      'encode + decode ms',
      'GB/s',
      'plain copy of 8 B/entry ms',
      'codec / copy',
    ]),
    row([
      codec.messageBytes,
      fixed(codec.bytesPerEntry),
      fixed(codec.msEncodeDecode, 3),
      fixed(codec.gbPerSecond),
      fixed(codec.msCopy, 3),
      fixed(codec.copyRatio, 1),
    ]),
  );

  say('all-reduce (simulated ring)...');
  lines.push(
    '',
    '## Ring all-reduce (simulated, P = 8, n = 1,000,000, density 0.001)',
    '',
    'Target: `auto` at most 2.5x the lower bound (aim 1.5x) at overlap ' +
      '0, 0.5 and 0.9, and under a tenth of `dense`. Bytes are sent by the ' +
      'busiest peer per step; the lower bound is what it must receive ' +
      'with 4-byte indices and values, so a cheaper index coding (gaps of ' +
      '1-2 bytes) can go below 1.',
    '',
    ...header([
      'algorithm',
      'overlap',
      'chose',
      'bytes/peer',
      'lower bound',
      'ratio',
      'vs dense',
      'identical',
      'max abs error',
    ]),
  );
  const algorithms: AllReduceChoice[] = [
    'auto',
    'sparse-ring',
    'allgather',
    'dense',
  ];
  for (const overlap of [0, 0.5, 0.9]) {
    const reports = [];
    for (const algorithm of algorithms) {
      reports.push(
        await runAllReduceBench({
          peers: 8,
          size: 1_000_000,
          density: 0.001,
          algorithm,
          overlap,
          steps: 3,
          seed: 1,
        }),
      );
    }
    const dense = reports[reports.length - 1].bytesPerPeer;
    for (const r of reports) {
      lines.push(
        `| ${r.algorithm} | ${overlap} | ${[...new Set(r.chosen)].join(', ')} | ` +
          `${Math.round(r.bytesPerPeer)} | ${Math.round(r.lowerBoundBytes)} | ` +
          `${fixed(r.ratioToLowerBound)} | ${fixed(r.bytesPerPeer / dense, 4)} | ` +
          `${r.identical} | ${r.maxAbsError.toExponential(1)} |`,
      );
    }
  }

  say('all-reduce over WebRTC (4 peer processes)...');
  lines.push(
    '',
    '## Ring all-reduce over WebRTC (4 peer processes, n = 1,000,000, density 0.01)',
    '',
    'Seeded steps like those above (here P = 4, density 0.01), between ' +
      "peer processes on loopback; time per step is the slowest peer's.",
    '',
    ...header([
      'algorithm',
      'chose',
      'bytes/peer',
      'ms/step',
      'identical',
      'max abs error',
    ]),
  );
  for (const algorithm of ['auto', 'dense'] as const) {
    const r = await runWebRtcAllReduceBench({
      peers: 4,
      size: 1_000_000,
      density: 0.01,
      algorithm,
      overlap: 0,
      steps: 5,
      seed: 1,
      webrtc: 'roamhq',
    });
    lines.push(
      `| ${r.algorithm} | ${[...new Set(r.chosen)].join(', ')} | ` +
        `${Math.round(r.bytesPerPeer)} | ${fixed(r.msPerStep, 1)} | ` +
        `${r.identical} | ${r.maxAbsError.toExponential(1)} |`,
    );
  }

  say('transport (WebRTC on loopback)...');
  lines.push(
    '',
    '## WebRTC data channels on loopback (two peers, one process)',
    '',
    'Target: framed throughput (64 KiB chunks, backpressure) at least 80% ' +
      'of raw data-channel throughput, for both bindings.',
    '',
    ...header([
      'binding',
      'raw MiB/s',
      'framed MiB/s',
      'framed / raw',
      'connect ms',
      'max buffered bytes',
    ]),
  );
  for (const webrtc of ['roamhq', 'node-datachannel'] as const) {
    try {
      const r = await runTransportBench(webrtc, {
        mb: 32,
        rounds: 3,
        messageKb: 1024,
        chunkKb: 64,
        highWaterKb: 1024,
        pollMs: 2,
      });
      lines.push(
        `| ${webrtc} | ${fixed(r.rawMBps, 1)} | ${fixed(r.framedMBps, 1)} | ` +
          `${fixed(r.ratio)} | ${Math.round(r.connectMs)} | ${r.maxBufferedBytes} |`,
      );
    } catch (error) {
      lines.push(
        `| ${webrtc} | failed: ${String(error).slice(0, 120)} | | | | |`,
      );
    }
  }

  say('training steps, wasm against cpu...');
  lines.push(
    '',
    '## One training step, wasm against cpu (batch 32)',
    '',
    'Target: a conv training step at least 10x faster on wasm.',
    '',
    ...header([
      'model',
      'parameters',
      'wasm ms/step',
      'cpu ms/step',
      'speedup',
    ]),
  );
  for (const model of ['cnn', 'mlp'] as const) {
    const r = await runConvBench({
      model,
      batch: 32,
      repeat: 10,
      cpuRepeat: model === 'cnn' ? 1 : 3,
      warmup: 1,
      seed: 1,
    });
    lines.push(
      `| ${model} | ${r.parameters} | ${fixed(r.msPerStepWasm, 1)} | ` +
        `${fixed(r.msPerStepCpu, 1)} | ${fixed(r.speedup, 1)} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

/** Adds `bench all`. */
export function registerAllBench(bench: Command): void {
  bench
    .command('all')
    .description('the standard set, as a Markdown report')
    .option('--write <file>', 'write the report here instead of stdout')
    .action(async (options: { write?: string }) => {
      const report = await runAllBenchmarks((line) => console.error(line));
      if (options.write === undefined) console.log(report);
      else {
        await writeFile(options.write, report);
        console.error(`wrote ${options.write}`);
      }
    });
}
