/**
 * A stalled ring (issue 6): a step ran out of `stepTimeoutMs` on a peer
 * and no neighbour was silent, gone or misbehaving (those are ejected,
 * ejection.ts), so a message it waits for will never come. Its peer says
 * `stalled`; the server starts a new generation of the same members, and
 * every peer, already waiting for a change of membership after its failed
 * step, redoes the step in it (each put its selection back in its
 * residual). Once per generation: the first report restarts the ring,
 * those after it are late.
 */
import debugFactory from 'debug';

import { topkError } from '../shared/errors.ts';
import type {
  StallStatus,
  StalledRequest,
} from '../shared/signaling-protocol.ts';
import type { Room } from './room.ts';

const log = debugFactory('topk:signaling:stall');

/** Restarts kept for the status API. */
const STALLS_KEPT = 20;

/** What a `stalled` report did. */
export type StallOutcome =
  | { readonly verdict: 'restarted'; readonly stall: StallStatus }
  | { readonly verdict: 'late' };

/**
 * Handles `reporter`'s `stalled` report in `room`: a new generation of the
 * same members when the report is about the current generation of a ring
 * of two or more, `late` otherwise. Throws `ERR_BAD_MESSAGE` when the
 * reporter is not in the ring (benched, or never placed).
 */
export function restartStalled(
  room: Room,
  reporterId: string,
  request: StalledRequest,
  nowMs: number,
): StallOutcome {
  if (!room.members.some((m) => m.id === reporterId)) {
    throw topkError(
      'ERR_BAD_MESSAGE',
      `stalled: ${reporterId} is not in the ring of room ${room.name}`,
      { reason: 'not-in-ring' },
    );
  }
  if (
    request.generation !== room.generation ||
    room.members.length < 2 ||
    room.restoreUntilMs !== undefined
  ) {
    return { verdict: 'late' };
  }
  room.generation += 1;
  const stall: StallStatus = {
    step: request.step,
    generation: room.generation,
    peerId: reporterId,
    atMs: nowMs,
  };
  room.stalls.push(stall);
  if (room.stalls.length > STALLS_KEPT) room.stalls.shift();
  room.stallCount += 1;
  log(
    '%s: %s stalled at step %d; generation %d restarts the ring',
    room.name,
    reporterId,
    stall.step,
    stall.generation,
  );
  return { verdict: 'restarted', stall };
}
