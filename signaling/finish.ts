/**
 * The end of a run (issue 6). A peer that completed the last step says
 * `finish` before it leaves. The server remembers the run as finished
 * (its last step and final weights hash, shown in the status API and
 * sent with every membership), and answers:
 *
 * - `wait` when peers took a ring place since the generation the peer
 *   finished in (newcomers, peers back from the bench): they need the
 *   final weights, handed on in the next generation's handshake; peers
 *   that left need nothing;
 * - `wait` when ring members sit on the bench (ejected a while ago and
 *   still connected): they are put back in the ring at once, in a new
 *   generation, so the finished peers hand them the final weights in its
 *   handshake instead of leaving them to train the last steps alone from
 *   stale weights. Once per benched peer and run: one that fails again
 *   is not waited for twice;
 * - `done` otherwise: the peer may leave.
 *
 * A member that comes back after everyone holding the final weights left
 * learns from `membership.finished` that its own weights are stale and
 * stops (peer/session/ring-session.ts).
 */
import debugFactory from 'debug';

import { topkError } from '../shared/errors.ts';
import type { FinishRequest } from '../shared/signaling-protocol.ts';
import type { Room } from './room.ts';

const log = debugFactory('topk:signaling:finish');

/** What a `finish` did. */
export interface FinishOutcome {
  readonly verdict: 'done' | 'wait';
  /** Benched peers put back in the ring to receive the final weights. */
  readonly readmitted: readonly string[];
}

/**
 * Handles `peerId`'s `finish` in `room`; see the module comment. A new
 * generation begins when benched peers are put back. Throws
 * `ERR_BAD_MESSAGE` when the peer is neither in the ring nor benched.
 */
export function finishRun(
  room: Room,
  peerId: string,
  request: FinishRequest,
  nowMs: number,
): FinishOutcome {
  const inRing = room.members.some((m) => m.id === peerId);
  if (!inRing && !room.benched.some((b) => b.peer.id === peerId)) {
    throw topkError(
      'ERR_BAD_MESSAGE',
      `finish: ${peerId} is not a member of room ${room.name}`,
      { reason: 'not-in-ring' },
    );
  }
  if (room.finished === undefined || request.step > room.finished.step) {
    room.finished = {
      step: request.step,
      modelHash: request.modelHash,
      atMs: nowMs,
    };
    log(
      '%s: run finished at step %d (%s), said %s',
      room.name,
      request.step,
      request.modelHash,
      peerId,
    );
  }
  // A benched finisher holds the final weights too; it just leaves.
  if (!inRing) return { verdict: 'done', readmitted: [] };
  // Placed in the ring since the generation the peer finished in: it
  // needs the final weights (members that left need nothing).
  if (room.members.some((m) => m.placedIn > request.generation)) {
    return { verdict: 'wait', readmitted: [] };
  }
  const waiting = room.benched.filter(
    (b) => b.peer.connected && !room.finishOffered.has(b.peer.id),
  );
  if (waiting.length === 0 || room.restoreUntilMs !== undefined) {
    return { verdict: 'done', readmitted: [] };
  }
  const readmitted = waiting.map((b) => b.peer.id);
  room.benched = room.benched.filter((b) => !readmitted.includes(b.peer.id));
  for (const b of waiting) {
    room.finishOffered.add(b.peer.id);
    room.members.push(b.peer);
  }
  room.generation += 1;
  for (const b of waiting) b.peer.placedIn = room.generation;
  log(
    '%s: %s back in the ring for the final weights, generation %d',
    room.name,
    readmitted.join(', '),
    room.generation,
  );
  return { verdict: 'wait', readmitted };
}
