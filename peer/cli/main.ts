/**
 * The `topk-ring` command line. Each subcommand lives in its own module and
 * registers itself here.
 */
import { Command } from 'commander';

import { registerBenchCommand } from './bench.ts';
import { registerChaosCommand } from './chaos.ts';
import { registerPeerCommand } from './peer.ts';
import { registerRunCommand } from './run.ts';
import { registerSignalCommand } from './signal.ts';

const program = new Command('topk-ring')
  .description(
    'Data-parallel training with TopK-sparsified gradients and error ' +
      'feedback over a WebRTC ring',
  )
  .showHelpAfterError();

registerRunCommand(program);
registerPeerCommand(program);
registerChaosCommand(program);
registerBenchCommand(program);
registerSignalCommand(program);

await program.parseAsync(process.argv);
