/**
 * The `topk-ring` command line. Each subcommand lives in its own module and
 * registers itself here.
 */
import { Command } from 'commander';

import { registerBenchCommand } from './bench.ts';

const program = new Command('topk-ring')
  .description(
    'Data-parallel training with TopK-sparsified gradients and error ' +
      'feedback over a WebRTC ring',
  )
  .showHelpAfterError();

registerBenchCommand(program);

await program.parseAsync(process.argv);
