/**
 * `topk-ring bench ...`: benchmarks that print numbers (JSON with --json).
 * Each benchmark registers itself as a subcommand here.
 */
import type { Command } from 'commander';

import { registerAllBench } from '../bench/all.ts';
import { registerAllReduceBench } from '../bench/allreduce.ts';
import { registerCodecBench } from '../bench/codec.ts';
import { registerConvBench } from '../bench/conv.ts';
import { registerTopkBench } from '../bench/topk.ts';
import { registerTransportBench } from '../bench/transport.ts';

/** Adds `bench` and its subcommands to `program`. */
export function registerBenchCommand(program: Command): void {
  const bench = program
    .command('bench')
    .description('benchmarks of the core and the transport');
  registerAllBench(bench);
  registerAllReduceBench(bench);
  registerCodecBench(bench);
  registerConvBench(bench);
  registerTopkBench(bench);
  registerTransportBench(bench);
}
