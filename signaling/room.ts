/**
 * One room (a training job) as the server holds it: its ring places, in
 * ring order, and the checks a joining peer must pass before it gets one
 * (same config, same model). The registry in rooms.ts owns the rooms.
 */
import { randomBytes } from 'node:crypto';

import {
  describeConfigDifference,
  parseRoomConfig,
  type RoomConfig,
} from '../shared/config.ts';
import { topkError } from '../shared/errors.ts';
import {
  describeFingerprintDifference,
  type ModelFingerprint,
} from '../shared/fingerprint.ts';
import type {
  EjectionStatus,
  FinishedRun,
  JoinRequest,
  PeerKind,
  ResyncStatus,
  StallStatus,
  SuspectReason,
} from '../shared/signaling-protocol.ts';
import { newPeerTrack, type PeerTrack } from './room-status.ts';

/** One ring place and what its peer last reported. */
export interface PeerRecord {
  readonly id: string;
  kind: PeerKind;
  backend: string;
  /** False while a restored place waits for its peer to rejoin. */
  connected: boolean;
  /**
   * Proves a reconnecting peer owns the id. Without a resume secret it is
   * undefined for a place restored from another peer's word, and the
   * first key presented for it is adopted; with one it is the id's
   * signed key (rooms.ts).
   */
  resumeKey: string | undefined;
  track: PeerTrack;
  /** The generation in which it took its current ring place. */
  placedIn: number;
}

/** A peer taken out of the ring, waiting to be put back. */
export interface BenchedPeer {
  readonly peer: PeerRecord;
  readonly reason: SuspectReason;
  /** When the server puts it back in the ring (ms, `now()` clock). */
  untilMs: number;
}

/** A room: one training job. */
export interface Room {
  readonly name: string;
  readonly config: RoomConfig;
  readonly configSource: 'server' | 'default' | 'peer';
  /** The latest generation issued; never goes down. */
  generation: number;
  /** Ring order. */
  members: PeerRecord[];
  fingerprint: ModelFingerprint | undefined;
  /** Set while restored places wait for their peers. */
  restoreUntilMs: number | undefined;
  /** State of model-hash checks; see room-status.ts. */
  step: number;
  readonly hashes: Map<number, Map<string, string>>;
  /** Step -> the generation whose hashes `hashes` holds for it. */
  readonly hashGenerations: Map<number, number>;
  readonly mismatches: { step: number; hashes: Map<string, string> }[];
  mismatchCount: number;
  /** The latest automatic resyncs (resync.ts), for the status API. */
  readonly resyncs: ResyncStatus[];
  resyncCount: number;
  /** The latest restarts of a stalled ring (stall.ts), for the status API. */
  readonly stalls: StallStatus[];
  stallCount: number;
  /** Peers out of the ring for a while (ejected); see rooms.ts. */
  benched: BenchedPeer[];
  /** The latest ejections, for the status API (bounded). */
  readonly ejections: EjectionStatus[];
  ejectionCount: number;
  /** Peer id -> times it was ejected (its bench doubles each time). */
  readonly timesEjected: Map<string, number>;
  /** Peer id -> steps at which it missed a straggler deadline. */
  readonly strikes: Map<string, number[]>;
  /** Accuser id -> when its accusations ejected someone (ms). */
  readonly ejectionsCaused: Map<string, number[]>;
  /** The completed run (finish.ts), until the room empties. */
  finished: (FinishedRun & { atMs: number }) | undefined;
  /** Benched peers already put back to receive the final weights. */
  readonly finishOffered: Set<string>;
}

/** No peer holds a place in `room`, in the ring or on the bench. */
export function isEmptyRoom(room: Room): boolean {
  return room.members.length === 0 && room.benched.length === 0;
}

/**
 * Refuses (`ERR_RUN_FINISHED`) a peer resumed from a checkpoint older than
 * the room's finished run when nobody is left in the room to hand it the
 * final weights: it would train the remaining steps alone and end with
 * another model. A newcomer is admitted (it starts a new run).
 */
export function checkNotFinished(room: Room, request: JoinRequest): void {
  const finished = room.finished;
  const holds = request.holdsStep;
  if (finished === undefined || holds === undefined) return;
  if (holds >= finished.step) return;
  if (!isEmptyRoom(room)) return;
  throw topkError(
    'ERR_RUN_FINISHED',
    `room ${room.name}: its run finished at step ${finished.step} (model ` +
      `${finished.modelHash}) and every peer holding those weights left; ` +
      `this checkpoint is at step ${holds}, so it would train the rest ` +
      `alone into another model. Start a new run without --resume`,
    {
      room: room.name,
      finishedStep: finished.step,
      finishedHash: finished.modelHash,
      step: holds,
    },
  );
}

/**
 * Refuses (`ERR_MISMATCH`) a peer that brings a config other than the
 * room's, naming the first setting that differs.
 */
export function checkConfig(room: Room, request: JoinRequest): void {
  if (request.config === undefined) return;
  const difference = describeConfigDifference(
    room.config,
    expectedConfig(room.config, request.config),
  );
  if (difference !== null) {
    throw topkError(
      'ERR_MISMATCH',
      `room ${JSON.stringify(room.name)} has another config (${difference})`,
      { room: room.name, difference },
    );
  }
}

/**
 * The config a peer expects, from the settings it wrote: the room's, with
 * those settings put over it, so a partial config (`{"density": 0.1}`) is
 * compared on what it names, not on defaults it never chose. Throws
 * `ERR_BAD_CONFIG` for settings that are not valid.
 */
function expectedConfig(config: RoomConfig, written: unknown): RoomConfig {
  parseRoomConfig(written);
  if (typeof written !== 'object' || written === null) return config;
  const named = written as Record<string, unknown>;
  const base: Record<string, unknown> = { ...config };
  // K is a count or a density: naming one replaces the room's other.
  if ('k' in named) delete base['density'];
  if ('density' in named) delete base['k'];
  const limits =
    typeof named['limits'] === 'object' && named['limits'] !== null
      ? { ...config.limits, ...(named['limits'] as object) }
      : config.limits;
  return parseRoomConfig({ ...base, ...named, limits });
}

/** Refuses (`ERR_MISMATCH`) a peer whose model differs from the room's. */
export function checkFingerprint(
  room: Room,
  fingerprint: ModelFingerprint | undefined,
): void {
  if (room.fingerprint === undefined || fingerprint === undefined) return;
  const difference = describeFingerprintDifference(
    room.fingerprint,
    fingerprint,
  );
  if (difference !== null) {
    throw topkError(
      'ERR_MISMATCH',
      `room ${JSON.stringify(room.name)} trains another model (${difference})`,
      { room: room.name, difference },
    );
  }
}

/** An empty room. */
export function newRoom(
  name: string,
  config: RoomConfig,
  configSource: Room['configSource'],
): Room {
  return {
    name,
    config,
    configSource,
    generation: 0,
    members: [],
    fingerprint: undefined,
    restoreUntilMs: undefined,
    step: 0,
    hashes: new Map(),
    hashGenerations: new Map(),
    mismatches: [],
    mismatchCount: 0,
    resyncs: [],
    resyncCount: 0,
    stalls: [],
    stallCount: 0,
    benched: [],
    ejections: [],
    ejectionCount: 0,
    timesEjected: new Map(),
    strikes: new Map(),
    ejectionsCaused: new Map(),
    finished: undefined,
    finishOffered: new Set(),
  };
}

/** A connected ring place for `id`, with no resume key yet. */
export function newPeer(
  id: string,
  kind: PeerKind,
  backend: string,
): PeerRecord {
  return {
    id,
    kind,
    backend,
    connected: true,
    resumeKey: undefined,
    track: newPeerTrack(),
    placedIn: 0,
  };
}

/** A fresh resume key: 144 random bits. */
export function newResumeKey(): string {
  return randomBytes(18).toString('base64url');
}

/** A fresh server-assigned peer id: 16 URL-safe characters, 96 bits. */
export function newPeerId(): string {
  return randomBytes(12).toString('base64url');
}
