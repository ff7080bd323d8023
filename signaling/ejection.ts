/**
 * Accusations and the bench: how the server takes a misbehaving peer out
 * of a room's ring on the word of a ring neighbour, and puts it back
 * later. Pure state on a {@link Room}, like rooms.ts, so it is tested
 * without sockets; the registry calls it and the connection turns its
 * outcomes into events.
 *
 * Rules:
 *
 * - Only a ring member may accuse, only in the current generation, and
 *   only its next or previous peer (a straggler only its previous peer:
 *   the one whose first message of a step it waited for). Anything else
 *   is refused with `ERR_BAD_MESSAGE`, naming why.
 * - `silent`, `malformed` and `unreachable` take the accused out of the
 *   ring at once: it is benched, a new generation starts without it, and
 *   it is put back at the end of the ring after the room's `benchMs`,
 *   doubled for each earlier ejection of the same peer (at most 16x).
 * - `straggler` is a strike: the accused is benched once it has
 *   `stragglerStrikes` strikes within `stragglerWindowSteps` steps, so a
 *   single slow step (a GC pause) costs nothing but a slow step.
 * - One peer's accusations eject at most `maxEjectionsPerAccuser` peers
 *   per `ejectionWindowMs`; every accepted ejection ends the generation,
 *   so at most one per generation. Further accusations are refused with
 *   `ERR_RATE_LIMIT`.
 *
 * TODO(#6): the server believes the accuser. A peer that lies can still
 * bench each of its neighbours in turn, up to its ejection budget, and
 * two peers whose link is broken both are right: the first accusation
 * wins, and a benched peer put back next to the same neighbour may be
 * ejected again (with a longer bench). Weighing accusations by who else
 * agrees, and placing a returning peer away from its accuser, would help.
 */
import debugFactory from 'debug';

import { topkError } from '../shared/errors.ts';
import type { Ejection, SuspectRequest } from '../shared/signaling-protocol.ts';
import type { ServerLimits } from './limits.ts';
import type { BenchedPeer, Room } from './room.ts';

const log = debugFactory('topk:signaling:ejection');

/** Ejections kept for the status API. */
const EJECTIONS_KEPT = 20;
/** The bench doubles with each ejection, up to this factor. */
const MAX_BENCH_DOUBLINGS = 4;

/** What an accepted accusation did. */
export type AccusationOutcome =
  | { readonly verdict: 'ejected'; readonly ejection: Ejection }
  | { readonly verdict: 'strike'; readonly strikes: number };

/** The limits an accusation is judged by. */
export type AccusationLimits = Pick<
  ServerLimits,
  'maxEjectionsPerAccuser' | 'ejectionWindowMs'
>;

/**
 * Judges `request` from `accuserId` about a neighbour in `room`; see the
 * module comment. Throws `ERR_BAD_MESSAGE` (with `context.reason`:
 * `not-in-ring`, `stale-generation`, `self`, `not-a-neighbour`,
 * `not-previous`) or `ERR_RATE_LIMIT`; nothing changes when it throws.
 */
export function accuse(
  room: Room,
  accuserId: string,
  request: SuspectRequest,
  limits: AccusationLimits,
  nowMs: number,
): AccusationOutcome {
  const refuse = (reason: string, message: string, more = {}): never => {
    throw topkError('ERR_BAD_MESSAGE', `suspect: ${message}`, {
      reason,
      ...more,
    });
  };
  const size = room.members.length;
  const at = room.members.findIndex((m) => m.id === accuserId);
  if (at < 0) {
    refuse('not-in-ring', `${accuserId} is not in the ring of this room`);
  }
  if (request.generation !== room.generation) {
    refuse(
      'stale-generation',
      `expected generation ${room.generation}, got ${request.generation}`,
      { expected: room.generation, received: request.generation },
    );
  }
  if (request.peerId === accuserId) {
    refuse('self', 'a peer cannot accuse itself');
  }
  const next = room.members[(at + 1) % size]!;
  const prev = room.members[(at - 1 + size) % size]!;
  if (request.peerId !== next.id && request.peerId !== prev.id) {
    refuse(
      'not-a-neighbour',
      `${request.peerId} is not a ring neighbour of ${accuserId} in ` +
        `generation ${room.generation}`,
    );
  }
  if (request.reason === 'straggler' && request.peerId !== prev.id) {
    refuse(
      'not-previous',
      `a straggler is the previous peer, whose message was awaited; ` +
        `${request.peerId} is the next`,
    );
  }
  const caused = recent(
    room.ejectionsCaused.get(accuserId),
    nowMs - limits.ejectionWindowMs,
  );
  if (caused.length >= limits.maxEjectionsPerAccuser) {
    throw topkError(
      'ERR_RATE_LIMIT',
      `suspect: ${accuserId} already had ${caused.length} peers ejected ` +
        `within ${limits.ejectionWindowMs} ms; accusation refused`,
      { limit: limits.maxEjectionsPerAccuser },
    );
  }

  if (request.reason === 'straggler') {
    const strikes = strike(room, request.peerId, request.step ?? room.step);
    if (strikes < room.config.limits.stragglerStrikes) {
      log(
        '%s: %s strike %d against %s',
        room.name,
        accuserId,
        strikes,
        request.peerId,
      );
      return { verdict: 'strike', strikes };
    }
  }
  room.ejectionsCaused.set(accuserId, [...caused, nowMs]);
  return {
    verdict: 'ejected',
    ejection: bench(room, accuserId, request, nowMs),
  };
}

/**
 * Puts back every benched peer whose bench is over, at the end of the
 * ring, and drops those that are no longer connected. Returns the ids
 * dropped (to be forgotten by the caller) and whether the ring changed
 * (then a new generation has started).
 */
export function readmitDue(
  room: Room,
  nowMs: number,
): { changed: boolean; dropped: string[] } {
  const due = room.benched.filter((b) => b.untilMs <= nowMs);
  if (due.length === 0) return { changed: false, dropped: [] };
  room.benched = room.benched.filter((b) => b.untilMs > nowMs);
  const dropped: string[] = [];
  let changed = false;
  for (const { peer } of due) {
    if (!peer.connected) {
      dropped.push(peer.id);
      forget(room, peer.id);
      continue;
    }
    room.members.push(peer);
    changed = true;
    log('%s: %s back in the ring', room.name, peer.id);
  }
  if (changed) {
    room.generation += 1;
    for (const { peer } of due) peer.placedIn = room.generation;
  }
  return { changed, dropped };
}

/** When the next bench of `room` ends, if any peer is benched. */
export function nextBenchEndMs(room: Room): number | undefined {
  if (room.benched.length === 0) return undefined;
  return Math.min(...room.benched.map((b) => b.untilMs));
}

/** The benched place of `peerId` in `room`, if it has one. */
export function benchedPlace(
  room: Room,
  peerId: string,
): BenchedPeer | undefined {
  return room.benched.find((b) => b.peer.id === peerId);
}

/**
 * Removes `peerId` from the bench (it left the room) and forgets what
 * was counted about it. Returns true when it was benched.
 */
export function unbench(room: Room, peerId: string): boolean {
  const before = room.benched.length;
  room.benched = room.benched.filter((b) => b.peer.id !== peerId);
  forget(room, peerId);
  return room.benched.length !== before;
}

/** Forgets the counts about a peer that left the room. */
export function forget(room: Room, peerId: string): void {
  room.timesEjected.delete(peerId);
  room.strikes.delete(peerId);
  room.ejectionsCaused.delete(peerId);
}

function bench(
  room: Room,
  accuserId: string,
  request: SuspectRequest,
  nowMs: number,
): Ejection {
  const at = room.members.findIndex((m) => m.id === request.peerId);
  const [peer] = room.members.splice(at, 1);
  const times = (room.timesEjected.get(peer!.id) ?? 0) + 1;
  room.timesEjected.set(peer!.id, times);
  room.strikes.delete(peer!.id);
  const benchMs =
    room.config.limits.benchMs * 2 ** Math.min(times - 1, MAX_BENCH_DOUBLINGS);
  room.benched.push({
    peer: peer!,
    reason: request.reason,
    untilMs: nowMs + benchMs,
  });
  room.generation += 1;
  const detail = request.detail ?? '';
  room.ejections.push({
    generation: room.generation,
    peerId: peer!.id,
    accuser: accuserId,
    reason: request.reason,
    detail,
    step: room.step,
    atMs: nowMs,
  });
  if (room.ejections.length > EJECTIONS_KEPT) room.ejections.shift();
  room.ejectionCount += 1;
  log(
    '%s: %s ejected on the word of %s (%s: %s), benched %d ms, generation %d',
    room.name,
    peer!.id,
    accuserId,
    request.reason,
    detail,
    benchMs,
    room.generation,
  );
  return {
    room: room.name,
    generation: room.generation,
    peerId: peer!.id,
    reason: request.reason,
    detail,
    accuser: accuserId,
    benchMs,
  };
}

/** Adds a strike at `step`; returns the strikes within the window. */
function strike(room: Room, peerId: string, step: number): number {
  const window = room.config.limits.stragglerWindowSteps;
  const latest = Math.max(step, room.step);
  const kept = (room.strikes.get(peerId) ?? []).filter(
    (s) => s > latest - window && s !== step,
  );
  kept.push(step);
  room.strikes.set(peerId, kept);
  return kept.length;
}

function recent(times: readonly number[] | undefined, sinceMs: number) {
  return (times ?? []).filter((t) => t > sinceMs);
}
