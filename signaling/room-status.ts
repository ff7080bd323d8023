/**
 * What peers report about their training, kept per room for the status
 * API, and the model-hash check: peers at the same step must have the same
 * weights, so two different hashes at one step are a divergence, reported
 * loudly. Memory is bounded: the latest report per peer, hashes of the
 * last few steps, the last few mismatches.
 */
import type { RoomConfig } from '../shared/config.ts';
import type {
  HashMismatch,
  PeerReport,
  PeerStatus,
  RoomStatus,
} from '../shared/signaling-protocol.ts';
import type { PeerRecord, Room } from './room.ts';

/** Steps whose hashes are kept for comparison. */
const HASH_STEPS_KEPT = 16;
/** Mismatches kept for the status API. */
const MISMATCHES_KEPT = 20;

/** The latest report of one peer. */
export interface PeerTrack {
  report: PeerReport | undefined;
  /** The last hash reported (reports carry one only every few steps). */
  modelHash: string | null;
  modelHashStep: number | null;
  updatedAtMs: number | null;
}

/** An empty track for a new peer. */
export function newPeerTrack(): PeerTrack {
  return {
    report: undefined,
    modelHash: null,
    modelHashStep: null,
    updatedAtMs: null,
  };
}

/**
 * Records `report` from `peer` of `room`. Returns the mismatch when this
 * report makes the hashes at its step (in its generation) disagree for
 * the first time at that step.
 */
export function recordReport(
  room: Room,
  peer: PeerRecord,
  report: PeerReport,
  nowMs: number,
): HashMismatch | undefined {
  peer.track.report = report;
  peer.track.updatedAtMs = nowMs;
  if (report.backend !== undefined) peer.backend = report.backend;
  room.step = Math.max(room.step, report.step);
  if (report.modelHash === undefined) return undefined;

  peer.track.modelHash = report.modelHash;
  peer.track.modelHashStep = report.step;
  const atStep = hashesAt(room, report.step, report.generation ?? -1);
  if (atStep === undefined) return undefined;
  atStep.set(peer.id, report.modelHash);
  if (new Set(atStep.values()).size < 2) return undefined;

  const known = room.mismatches.find((m) => m.step === report.step);
  if (known !== undefined) return undefined;
  room.mismatches.push({ step: report.step, hashes: atStep });
  room.mismatchCount += 1;
  if (room.mismatches.length > MISMATCHES_KEPT) room.mismatches.shift();
  return toMismatch(room.name, report.step, atStep);
}

/**
 * The hashes reported at `step` in `generation`, to which a report of that
 * generation adds its own; undefined for a report older than the hashes
 * held. Only hashes of one generation are compared: a step that some
 * peers completed and others aborted is redone in the next generation
 * (on other batches), and the hashes its first run gave are no longer
 * anyone's weights.
 */
function hashesAt(
  room: Room,
  step: number,
  generation: number,
): Map<string, string> | undefined {
  const held = room.hashes.get(step);
  const heldGeneration = room.hashGenerations.get(step) ?? -1;
  if (held !== undefined && heldGeneration > generation) return undefined;
  if (held !== undefined && heldGeneration === generation) return held;
  const atStep = new Map<string, string>();
  room.hashes.set(step, atStep);
  room.hashGenerations.set(step, generation);
  if (room.hashes.size > HASH_STEPS_KEPT) {
    const oldest = Math.min(...room.hashes.keys());
    room.hashes.delete(oldest);
    room.hashGenerations.delete(oldest);
  }
  return atStep;
}

function toMismatch(
  room: string,
  step: number,
  hashes: ReadonlyMap<string, string>,
): HashMismatch {
  return {
    room,
    step,
    hashes: [...hashes].map(([peerId, modelHash]) => ({ peerId, modelHash })),
  };
}

/** The status of `room` as the HTTP API serves it. */
export function roomStatus(room: Room): RoomStatus {
  return {
    room: room.name,
    generation: room.generation,
    step: room.step,
    configSource: room.configSource,
    config: redactCredentials(room.config),
    peers: room.members.map(peerStatus),
    restoring: room.restoreUntilMs !== undefined,
    hashCheck: latestHashCheck(room),
    mismatches: room.mismatches.map((m) =>
      toMismatch(room.name, m.step, m.hashes),
    ),
    mismatchCount: room.mismatchCount,
    resyncs: room.resyncs.map((r) => ({ ...r, peers: [...r.peers] })),
    resyncCount: room.resyncCount,
    benched: room.benched.map((b) => ({
      id: b.peer.id,
      kind: b.peer.kind,
      connected: b.peer.connected,
      reason: b.reason,
      untilMs: b.untilMs,
      ejections: room.timesEjected.get(b.peer.id) ?? 1,
    })),
    ejections: room.ejections.map((e) => ({ ...e })),
    ejectionCount: room.ejectionCount,
    stalls: room.stalls.map((s) => ({ ...s })),
    stallCount: room.stallCount,
    finished: room.finished === undefined ? null : { ...room.finished },
  };
}

function peerStatus(peer: PeerRecord, ringIndex: number): PeerStatus {
  const report = peer.track.report;
  return {
    id: peer.id,
    kind: peer.kind,
    ringIndex,
    connected: peer.connected,
    backend: peer.backend,
    step: report?.step ?? null,
    epoch: report?.epoch ?? null,
    loss: report?.loss ?? null,
    accuracy: report?.accuracy ?? null,
    bytesSent: report?.bytesSent ?? 0,
    bytesReceived: report?.bytesReceived ?? 0,
    modelHash: peer.track.modelHash,
    modelHashStep: peer.track.modelHashStep,
    timing: report?.timing ?? null,
    updatedAtMs: peer.track.updatedAtMs,
  };
}

function latestHashCheck(room: Room): RoomStatus['hashCheck'] {
  let latest: RoomStatus['hashCheck'] = null;
  for (const [step, hashes] of room.hashes) {
    if (hashes.size < 2 || (latest !== null && step < latest.step)) continue;
    latest = {
      step,
      agreed: new Set(hashes.values()).size === 1,
      peers: hashes.size,
    };
  }
  return latest;
}

/** ICE credentials go to peers in the join reply, never to the public API. */
function redactCredentials(config: RoomConfig): RoomConfig {
  return {
    ...config,
    iceServers: config.iceServers.map((server) =>
      server.credential === undefined
        ? server
        : { ...server, credential: '(hidden)' },
    ),
  };
}
