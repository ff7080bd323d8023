/**
 * Rooms, their membership and ring order. Pure state with no sockets, so
 * it can be tested and fuzzed on its own; the server turns its outcomes
 * into socket.io events.
 *
 * Ring placement: a newcomer takes the last ring position; a peer that
 * leaves is cut out and the others keep their order, so only the two
 * peers next to the change need a new connection. Every membership change
 * starts a new generation, and negotiation is relayed only between ring
 * neighbours of the current generation.
 *
 * Reconnection (case 8): a peer keeps its id by presenting it with the
 * resume key from its first join. A restarted server knows nobody; the
 * first peer back tells it the membership it last saw, and the server
 * holds those ring places, unchanged and in the same generation, for the
 * other peers to reclaim within a grace period. Training goes on over the
 * existing links because no peer sees its ring change.
 *
 * Ejection (ejection.ts): a ring neighbour's accusation can take a peer
 * out of the ring for a while. It stays in the room, benched: connected,
 * told the membership, but in no ring place; it is put back at the end
 * of the ring when its bench is over.
 */
import debugFactory from 'debug';

import { parseRoomConfig, type RoomConfig } from '../shared/config.ts';
import { topkError } from '../shared/errors.ts';
import type {
  FinishRequest,
  JoinRequest,
  Membership,
  SignalRequest,
  StalledRequest,
  SuspectRequest,
} from '../shared/signaling-protocol.ts';
import { constantTimeEqual, signedResumeKey } from './admission.ts';
import {
  accuse,
  benchedPlace,
  forget,
  nextBenchEndMs,
  readmitDue,
  unbench,
  type AccusationOutcome,
} from './ejection.ts';
import type { ServerLimits } from './limits.ts';
import {
  checkConfig,
  checkNotFinished,
  isEmptyRoom,
  checkFingerprint,
  newPeer,
  newPeerId,
  newResumeKey,
  newRoom,
  type PeerRecord,
  type Room,
} from './room.ts';
import { restartStalled, type StallOutcome } from './stall.ts';
import { finishRun, type FinishOutcome } from './finish.ts';

export type { PeerRecord, Room } from './room.ts';

/** Finished runs of emptied rooms made on demand that are remembered. */
const FINISHED_RUNS_KEPT = 1024;

const log = debugFactory('topk:signaling:rooms');

/** What a join did. */
export interface JoinOutcome {
  readonly room: Room;
  readonly peer: PeerRecord;
  /** The peer took back a place whose old connection must be dropped. */
  readonly replacedConnection: boolean;
}

/** Where a signal goes, or why it is dropped. */
export type RelayDecision =
  | { readonly deliver: true; readonly to: string }
  | { readonly deliver: false; readonly reason: 'stale' | 'absent' };

/** How a registry creates rooms and admits peers. */
export interface RoomRegistryOptions {
  readonly limits: ServerLimits;
  /** Rooms that exist from the start, with their configs. */
  readonly rooms?: ReadonlyMap<string, RoomConfig>;
  /** When set, an unknown room is created with this config on first join. */
  readonly defaultRoomConfig?: RoomConfig;
  /** When set, the first peer of an unknown room may bring its config. */
  readonly allowPeerConfig?: boolean;
  /**
   * When set (the server's `--token-secret`), resume keys are MACs of the
   * room and peer id, so a restarted server admits a peer to its restored
   * place only with its own key; otherwise they are random.
   */
  readonly resumeSecret?: string;
  readonly now?: () => number;
}

/** All rooms of one server, and the peer ids in use. */
export class RoomRegistry {
  readonly #rooms = new Map<string, Room>();
  /** Peer id -> room name, for every place held (connected or not). */
  readonly #peerRooms = new Map<string, string>();
  /** Finished runs of rooms made on demand that emptied (#emptied). */
  readonly #finishedRuns = new Map<string, NonNullable<Room['finished']>>();
  readonly #options: RoomRegistryOptions;
  readonly #now: () => number;

  constructor(options: RoomRegistryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    for (const [name, config] of options.rooms ?? []) {
      this.#rooms.set(name, newRoom(name, config, 'server'));
    }
  }

  /** The room named `name`, if it exists. */
  room(name: string): Room | undefined {
    return this.#rooms.get(name);
  }

  /** Every room, in creation order. */
  rooms(): Room[] {
    return [...this.#rooms.values()];
  }

  /** The current membership of `room`. */
  membership(room: Room): Membership {
    return {
      room: room.name,
      generation: room.generation,
      members: room.members.map((m, ringIndex) => ({
        peerId: m.id,
        ringIndex,
        kind: m.kind,
        backend: m.backend,
        connected: m.connected,
      })),
      ...(room.finished === undefined
        ? {}
        : {
            finished: {
              step: room.finished.step,
              modelHash: room.finished.modelHash,
            },
          }),
    };
  }

  /**
   * Admits a validated join request (admission by token is checked by the
   * caller). Throws `ERR_ADMISSION` (no such room, full, id taken),
   * `ERR_BAD_CONFIG` or `ERR_MISMATCH` (config or fingerprint differs);
   * nothing changes when it throws.
   */
  join(request: JoinRequest): JoinOutcome {
    const existing = this.#rooms.get(request.room);
    const room = existing ?? this.#roomToCreate(request);
    checkConfig(room, request);
    checkFingerprint(room, request.fingerprint);

    const claimed = request.peerId;
    const slot =
      claimed === undefined
        ? undefined
        : (room.members.find((m) => m.id === claimed) ??
          benchedPlace(room, claimed)?.peer);
    if (claimed !== undefined && slot === undefined) {
      const other = this.#peerRooms.get(claimed);
      if (other !== undefined) {
        throw topkError(
          'ERR_ADMISSION',
          `peer id ${claimed} is in use in another room`,
          { room: request.room, reason: 'id-in-use' },
        );
      }
    }
    if (claimed !== undefined) {
      this.#checkResumeKey(room, claimed, request.resumeKey);
    }
    if (slot === undefined) this.#checkCapacity(room);
    const restoring = slot === undefined && this.#canRestore(room, request);
    if (slot === undefined && !restoring) checkNotFinished(room, request);
    if (existing === undefined) {
      this.#rooms.set(room.name, room);
      this.#finishedRuns.delete(room.name);
    }
    room.fingerprint ??= request.fingerprint;

    if (slot !== undefined) return this.#reclaim(room, slot, request);
    if (restoring) return this.#restore(room, request);
    return this.#append(room, request);
  }

  /**
   * Removes `peerId` from its room (graceful leave or lost connection) and
   * starts a new generation. Returns the room, or undefined when the peer
   * held no place. An empty room made on demand is deleted.
   */
  leave(peerId: string): Room | undefined {
    const room = this.#roomOf(peerId);
    if (room === undefined) return undefined;
    this.#peerRooms.delete(peerId);
    if (unbench(room, peerId)) {
      // Benched: no ring place, so no new generation.
      log('%s: %s left from the bench', room.name, peerId);
      if (isEmptyRoom(room)) this.#emptied(room);
      return room;
    }
    room.members = room.members.filter((m) => m.id !== peerId);
    forget(room, peerId);
    this.#endRestore(room);
    room.generation += 1;
    log('%s: %s left, generation %d', room.name, peerId, room.generation);
    if (isEmptyRoom(room)) this.#emptied(room);
    return room;
  }

  /**
   * A ring member accuses a neighbour (ejection.ts): returns the room and
   * what happened. Throws `ERR_BAD_MESSAGE` or `ERR_RATE_LIMIT` when the
   * accusation is refused; nothing changes then.
   */
  accuse(
    accuserId: string,
    request: SuspectRequest,
  ): { room: Room; outcome: AccusationOutcome } {
    const room = this.#roomOf(accuserId);
    if (room === undefined) {
      throw topkError('ERR_BAD_MESSAGE', 'suspect: join a room first', {
        reason: 'not-in-ring',
      });
    }
    const outcome = accuse(
      room,
      accuserId,
      request,
      this.#options.limits,
      this.#now(),
    );
    return { room, outcome };
  }

  /**
   * A ring member's step ran out of time with nobody to blame (stall.ts):
   * returns the room and whether a new generation of the same members
   * began. Throws `ERR_BAD_MESSAGE` for a peer not in a ring.
   */
  stalled(
    peerId: string,
    request: StalledRequest,
  ): { room: Room; outcome: StallOutcome } {
    const room = this.#roomOf(peerId);
    if (room === undefined) {
      throw topkError('ERR_BAD_MESSAGE', 'stalled: join a room first', {
        reason: 'not-in-ring',
      });
    }
    return {
      room,
      outcome: restartStalled(room, peerId, request, this.#now()),
    };
  }

  /**
   * A peer completed the run (finish.ts): returns the room and whether the
   * peer may leave or must follow a new generation first. Throws
   * `ERR_BAD_MESSAGE` for a peer that is not a member of a room.
   */
  finish(
    peerId: string,
    request: FinishRequest,
  ): { room: Room; outcome: FinishOutcome } {
    const room = this.#roomOf(peerId);
    if (room === undefined) {
      throw topkError('ERR_BAD_MESSAGE', 'finish: join a room first', {
        reason: 'not-in-ring',
      });
    }
    return { room, outcome: finishRun(room, peerId, request, this.#now()) };
  }

  /**
   * Puts back the benched peers of room `name` whose bench is over;
   * forgets those that disconnected meanwhile. Returns the room when
   * anything changed.
   */
  readmitBenched(name: string): Room | undefined {
    const room = this.#rooms.get(name);
    if (room === undefined) return undefined;
    const { changed, dropped } = readmitDue(room, this.#now());
    for (const id of dropped) this.#peerRooms.delete(id);
    if (!changed && dropped.length === 0) return undefined;
    if (changed) {
      log('%s: bench over, generation %d', room.name, room.generation);
    }
    if (isEmptyRoom(room)) this.#emptied(room);
    return room;
  }

  /** When the next bench of room `name` ends (`now()` clock), if any. */
  benchEndMs(name: string): number | undefined {
    const room = this.#rooms.get(name);
    return room === undefined ? undefined : nextBenchEndMs(room);
  }

  /** The record of `peerId` in `room`, in the ring or on the bench. */
  peer(room: Room, peerId: string | undefined): PeerRecord | undefined {
    if (peerId === undefined) return undefined;
    return (
      room.members.find((m) => m.id === peerId) ??
      benchedPlace(room, peerId)?.peer
    );
  }

  /**
   * Ends a restore whose grace period is over: places nobody reclaimed are
   * dropped and a new generation starts. Returns the room when it changed.
   */
  expireRestore(name: string): Room | undefined {
    const room = this.#rooms.get(name);
    if (room?.restoreUntilMs === undefined) return undefined;
    if (this.#now() < room.restoreUntilMs) return undefined;
    const absent = room.members.filter((m) => !m.connected).length;
    this.#endRestore(room);
    if (absent === 0) return undefined;
    room.generation += 1;
    log('%s: restore over, %d never came back', room.name, absent);
    if (isEmptyRoom(room)) this.#emptied(room);
    return room;
  }

  /**
   * Decides where a peer's signal goes. Throws `ERR_BAD_MESSAGE` when the
   * sender is not in a room, names a future generation, or targets a peer
   * that is not its ring neighbour; a stale generation or an absent target
   * is dropped quietly (negotiation races membership changes).
   */
  relay(fromId: string, request: SignalRequest): RelayDecision {
    const room = this.#roomOf(fromId);
    if (room === undefined) {
      throw topkError('ERR_BAD_MESSAGE', 'signal: join a room first', {});
    }
    if (request.generation < room.generation) {
      return { deliver: false, reason: 'stale' };
    }
    if (request.generation > room.generation) {
      throw topkError(
        'ERR_BAD_MESSAGE',
        `signal: expected generation ${room.generation} or older, ` +
          `got ${request.generation}`,
        { expected: room.generation, received: request.generation },
      );
    }
    const size = room.members.length;
    const at = room.members.findIndex((m) => m.id === fromId);
    if (at < 0) {
      throw topkError(
        'ERR_BAD_MESSAGE',
        `signal: ${fromId} is benched, not in the ring of generation ` +
          `${room.generation}`,
        { generation: room.generation },
      );
    }
    const next = room.members[(at + 1) % size]!;
    const prev = room.members[(at - 1 + size) % size]!;
    const target = [next, prev].find(
      (m) => m.id === request.to && m.id !== fromId,
    );
    if (target === undefined) {
      throw topkError(
        'ERR_BAD_MESSAGE',
        `signal: ${request.to} is not a ring neighbour of ${fromId} in ` +
          `generation ${room.generation}`,
        { to: request.to, generation: room.generation },
      );
    }
    if (!target.connected) return { deliver: false, reason: 'absent' };
    return { deliver: true, to: target.id };
  }

  /** The room `peerId` holds a place in. */
  #roomOf(peerId: string): Room | undefined {
    const name = this.#peerRooms.get(peerId);
    return name === undefined ? undefined : this.#rooms.get(name);
  }

  /** The room a join would create; not stored until the join succeeds. */
  #roomToCreate(request: JoinRequest): Room {
    const { defaultRoomConfig, allowPeerConfig, limits } = this.#options;
    if (this.#rooms.size >= limits.maxRooms) {
      throw topkError(
        'ERR_ADMISSION',
        `cannot create room ${JSON.stringify(request.room)}: the server ` +
          `already has its maximum of ${limits.maxRooms} rooms`,
        { room: request.room, reason: 'too-many-rooms' },
      );
    }
    const finished = this.#finishedRuns.get(request.room);
    const made = (room: Room): Room => {
      room.finished = finished;
      return room;
    };
    if (allowPeerConfig === true) {
      const config = parseRoomConfig(request.config ?? defaultRoomConfig ?? {});
      return made(newRoom(request.room, config, 'peer'));
    }
    if (defaultRoomConfig !== undefined) {
      return made(newRoom(request.room, defaultRoomConfig, 'default'));
    }
    throw topkError(
      'ERR_ADMISSION',
      `no room named ${JSON.stringify(request.room)} on this server`,
      { room: request.room, reason: 'unknown-room' },
    );
  }

  #checkCapacity(room: Room): void {
    const maxPeers = Math.min(
      room.config.limits.maxPeers,
      this.#options.limits.maxPeersPerRoom,
    );
    if (room.members.length + room.benched.length >= maxPeers) {
      throw topkError(
        'ERR_ADMISSION',
        `room ${JSON.stringify(room.name)} is full (${maxPeers} peers)`,
        { room: room.name, reason: 'room-full', limit: maxPeers },
      );
    }
  }

  /** A reconnecting peer takes back its own place: no new generation. */
  #reclaim(room: Room, slot: PeerRecord, request: JoinRequest): JoinOutcome {
    const known = slot.resumeKey;
    const presented = request.resumeKey;
    if (
      known !== undefined &&
      (presented === undefined || !constantTimeEqual(presented, known))
    ) {
      throw topkError(
        'ERR_ADMISSION',
        `peer id ${slot.id} is taken in room ${JSON.stringify(room.name)} ` +
          `and the resume key does not match`,
        { room: room.name, reason: 'id-in-use' },
      );
    }
    const replacedConnection = slot.connected;
    slot.resumeKey = known ?? presented ?? newResumeKey();
    slot.connected = true;
    slot.kind = request.kind;
    slot.backend = request.backend;
    if (room.members.every((m) => m.connected)) room.restoreUntilMs = undefined;
    log('%s: %s reconnected', room.name, slot.id);
    return { room, peer: slot, replacedConnection };
  }

  /**
   * Restore after a server restart: the room is empty here, and the peer
   * says which ring it was in. Only forward in generations, so a stale
   * peer cannot roll a room back.
   */
  #canRestore(room: Room, request: JoinRequest): boolean {
    const previous = request.previous;
    return (
      room.members.length === 0 &&
      previous !== undefined &&
      request.peerId !== undefined &&
      previous.generation > room.generation &&
      previous.members.includes(request.peerId) &&
      new Set(previous.members).size === previous.members.length &&
      previous.members.length <= room.config.limits.maxPeers &&
      previous.members.every(
        (id) => id === request.peerId || !this.#peerRooms.has(id),
      )
    );
  }

  /**
   * With a resume secret, a peer that claims an id must present that id's
   * signed key, whether it reconnects, restores a restarted server's ring
   * or takes a place anew. Throws `ERR_ADMISSION` otherwise.
   */
  #checkResumeKey(
    room: Room,
    peerId: string,
    presented: string | undefined,
  ): void {
    const expected = this.#signedKey(room, peerId);
    if (expected === undefined) return;
    if (presented !== undefined && constantTimeEqual(presented, expected)) {
      return;
    }
    throw topkError(
      'ERR_ADMISSION',
      `peer id ${peerId} in room ${JSON.stringify(room.name)}: the ` +
        `resume key does not match`,
      { room: room.name, reason: 'bad-resume-key' },
    );
  }

  #signedKey(room: Room, peerId: string): string | undefined {
    const secret = this.#options.resumeSecret;
    return secret === undefined
      ? undefined
      : signedResumeKey(secret, room.name, peerId);
  }

  // TODO(#6): without a resume secret (`--token-secret`), a restored place
  // is taken by the first peer that claims its id during the grace period,
  // and every room member knows the ids.
  #restore(room: Room, request: JoinRequest): JoinOutcome {
    const previous = request.previous!;
    room.generation = previous.generation;
    room.members = previous.members.map((id) => {
      const peer = newPeer(id, request.kind, request.backend);
      peer.connected = id === request.peerId;
      peer.resumeKey = this.#signedKey(room, id);
      peer.placedIn = previous.generation;
      return peer;
    });
    for (const m of room.members) this.#peerRooms.set(m.id, room.name);
    room.restoreUntilMs =
      room.members.length > 1
        ? this.#now() + this.#options.limits.rejoinGraceMs
        : undefined;
    const peer = room.members.find((m) => m.id === request.peerId)!;
    peer.resumeKey = request.resumeKey ?? newResumeKey();
    log('%s: restoring generation %d', room.name, room.generation);
    return { room, peer, replacedConnection: false };
  }

  #append(room: Room, request: JoinRequest): JoinOutcome {
    this.#endRestore(room);
    if (isEmptyRoom(room) && request.holdsStep === undefined) {
      // A newcomer in an empty room starts a new run.
      room.finished = undefined;
    }
    const id = request.peerId ?? newPeerId();
    const peer = newPeer(id, request.kind, request.backend);
    peer.resumeKey =
      this.#signedKey(room, id) ?? request.resumeKey ?? newResumeKey();
    room.members.push(peer);
    this.#peerRooms.set(id, room.name);
    room.generation += 1;
    peer.placedIn = room.generation;
    log('%s: %s joined, generation %d', room.name, id, room.generation);
    return { room, peer, replacedConnection: false };
  }

  /** Drops the places of peers that have not come back. */
  #endRestore(room: Room): void {
    if (room.restoreUntilMs === undefined) return;
    room.restoreUntilMs = undefined;
    for (const m of room.members) {
      if (!m.connected) this.#peerRooms.delete(m.id);
    }
    room.members = room.members.filter((m) => m.connected);
  }

  #emptied(room: Room): void {
    room.fingerprint = undefined;
    room.finishOffered.clear();
    if (room.configSource === 'server') return;
    this.#rooms.delete(room.name);
    // A finished run outlives its room, so that a peer resumed from an
    // older checkpoint is told (checkNotFinished); bounded.
    if (room.finished === undefined) return;
    this.#finishedRuns.delete(room.name);
    this.#finishedRuns.set(room.name, room.finished);
    if (this.#finishedRuns.size > FINISHED_RUNS_KEPT) {
      this.#finishedRuns.delete(
        this.#finishedRuns.keys().next().value as string,
      );
    }
  }
}
