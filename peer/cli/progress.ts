/**
 * The launcher's live display: one progress bar per peer (step, loss,
 * bytes sent, compression against dense) on a terminal, and a line every
 * tenth of the run otherwise (CI logs, pipes).
 */
import cliProgress from 'cli-progress';

import { formatBytes } from '../../shared/format.ts';
import type { ProgressDisplay } from '../launcher/launcher.ts';

type PeerProgress = Parameters<ProgressDisplay['update']>[1];

/** Bars on a terminal, periodic lines elsewhere; nothing when `quiet`. */
export function createProgressDisplay(
  peers: number,
  options: { quiet: boolean },
): ProgressDisplay {
  if (options.quiet) {
    return { update() {}, log() {}, stop() {} };
  }
  return process.stdout.isTTY ? barDisplay(peers) : lineDisplay();
}

function fields(progress: PeerProgress): Record<string, string> {
  const ratio =
    progress.bytesSent > 0 ? progress.denseBytes / progress.bytesSent : 0;
  return {
    loss: Number.isFinite(progress.loss) ? progress.loss.toFixed(4) : '-',
    sent: formatBytes(progress.bytesSent),
    ratio: ratio > 0 ? `${ratio.toFixed(0)}x` : '-',
  };
}

function barDisplay(peers: number): ProgressDisplay {
  const multibar = new cliProgress.MultiBar(
    {
      format:
        'peer {peer} |{bar}| step {value}/{total} | loss {loss} | ' +
        'sent {sent} | {ratio} less than dense',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = Array.from({ length: peers }, (_, peer) =>
    multibar.create(1, 0, { peer, loss: '-', sent: '0 B', ratio: '-' }),
  );
  return {
    update(peer, progress) {
      const bar = bars[peer];
      bar.setTotal(progress.totalSteps);
      bar.update(progress.step, { peer, ...fields(progress) });
    },
    log(line) {
      multibar.log(`${line}\n`);
    },
    stop() {
      multibar.stop();
    },
  };
}

function lineDisplay(): ProgressDisplay {
  const lastTenth = new Map<number, number>();
  return {
    update(peer, progress) {
      const tenth = Math.floor((10 * progress.step) / progress.totalSteps);
      if (tenth === lastTenth.get(peer)) return;
      lastTenth.set(peer, tenth);
      const f = fields(progress);
      console.log(
        `peer ${peer}: step ${progress.step}/${progress.totalSteps} ` +
          `loss ${f.loss} sent ${f.sent} (${f.ratio} less than dense)`,
      );
    },
    log(line) {
      console.log(line);
    },
    stop() {},
  };
}
