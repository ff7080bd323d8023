/**
 * `topk-ring bench ...`: benchmarks that print numbers (JSON with --json).
 * Each benchmark registers itself as a subcommand here.
 */
import type { Command } from 'commander';

import { registerAllReduceBench } from '../bench/allreduce.ts';
import { registerConvBench } from '../bench/conv.ts';
import { registerTopkBench } from '../bench/topk.ts';

/** Adds `bench` and its subcommands to `program`. */
export function registerBenchCommand(program: Command): void {
  const bench = program
    .command('bench')
    .description('benchmarks of the core and the transport');
  registerAllReduceBench(bench);
  registerConvBench(bench);
  registerTopkBench(bench);
  void bench;
}
