/**
 * Automatic resynchronisation (issue 6): the weights hash of every peer is
 * compared every few steps (room-status.ts); when peers of the ring
 * disagree at a step, the server starts a new generation of the same
 * members. Its opening handshake (peer/session/sync.ts) compares the
 * peers' hashes and hands the weights most of them hold to every other
 * one from its ring neighbour, so the replicas agree again without anyone
 * leaving. Done at most once per step that disagreed, once every member's
 * hash at that step is in, and recorded for the status API and metrics.
 */
import debugFactory from 'debug';

import type { ResyncStatus } from '../shared/signaling-protocol.ts';
import type { Room } from './room.ts';

const log = debugFactory('topk:signaling:resync');

/** Resyncs kept for the status API. */
const RESYNCS_KEPT = 20;

/**
 * Starts the resync of `room` for the mismatch found at `step`, once every
 * ring member has reported its hash at that step (so `peers` names who
 * holds other weights than most): a new generation of the same members.
 * Called after each report with a hash; returns what was done, or
 * undefined when nothing is due: no mismatch at `step`, hashes still
 * missing, a resync for `step` done already, the ring changed since those
 * hashes (its handshake compared the weights already), or a restarted
 * server waiting for its peers (the next hash check finds the
 * disagreement again).
 */
export function resyncIfDue(
  room: Room,
  step: number,
  nowMs: number,
): ResyncStatus | undefined {
  const found = room.mismatches.find((m) => m.step === step);
  const hashes = room.hashes.get(step);
  if (found === undefined || hashes === undefined || found.hashes !== hashes) {
    return undefined;
  }
  if (room.hashGenerations.get(step) !== room.generation) return undefined;
  if (room.resyncs.some((r) => r.step === step)) return undefined;
  if (room.restoreUntilMs !== undefined) {
    log('%s: step %d disagrees while restoring', room.name, step);
    return undefined;
  }
  if (!room.members.every((m) => hashes.has(m.id))) return undefined;
  const order = new Map(room.members.map((m, ringIndex) => [m.id, ringIndex]));
  const current = [...hashes]
    .filter(([peerId]) => order.has(peerId))
    .map(([peerId, modelHash]) => ({ peerId, modelHash }));
  if (new Set(current.map((h) => h.modelHash)).size < 2) return undefined;

  const majority = majorityHash(current, order);
  room.generation += 1;
  const record: ResyncStatus = {
    step,
    generation: room.generation,
    peers: current.filter((h) => h.modelHash !== majority).map((h) => h.peerId),
    atMs: nowMs,
  };
  room.resyncs.push(record);
  if (room.resyncs.length > RESYNCS_KEPT) room.resyncs.shift();
  room.resyncCount += 1;
  log(
    '%s: step %d disagrees; generation %d resyncs %s',
    room.name,
    record.step,
    record.generation,
    record.peers.join(', '),
  );
  return record;
}

/**
 * The hash most peers reported, ties to the lowest ring index: the rule
 * the handshake applies, so `peers` names who will receive the weights
 * (when everyone is still at that step by the handshake).
 */
function majorityHash(
  hashes: readonly { peerId: string; modelHash: string }[],
  order: ReadonlyMap<string, number>,
): string {
  const votes = new Map<string, { count: number; first: number }>();
  for (const { peerId, modelHash } of hashes) {
    const at = order.get(peerId) as number;
    const vote = votes.get(modelHash) ?? { count: 0, first: at };
    vote.count += 1;
    vote.first = Math.min(vote.first, at);
    votes.set(modelHash, vote);
  }
  const ranked = [...votes].sort(
    ([, a], [, b]) => b.count - a.count || a.first - b.first,
  );
  return ranked[0]![0];
}
