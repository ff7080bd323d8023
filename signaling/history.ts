/**
 * The history of what peers report, per room and per peer, for the
 * dashboard: loss, accuracy, bytes per step against dense, the time split
 * and the compression error, over steps.
 *
 * Peers report cumulative byte counters, and only every few steps (the
 * client coalesces reports); bytes per step are the difference between two
 * reports over the steps between them. A counter that goes down (a peer
 * restarted) or a step that goes back starts the differences afresh.
 *
 * Bounded memory: a peer's series holds at most `maxPointsPerPeer` step
 * buckets (the room's bucket width doubles when one would hold more), at
 * most `maxPeers` peer series are kept server-wide and `maxRooms` rooms
 * (the least recently updated go first). History outlives its room, so a
 * finished run can still be looked at until newer ones push it out.
 */
import debugFactory from 'debug';

import type {
  HistorySummary,
  PeerHistory,
  RoomHistory,
} from '../shared/dashboard-protocol.ts';
import { topkError } from '../shared/errors.ts';
import type { PeerKind, PeerReport } from '../shared/signaling-protocol.ts';
import { BucketSeries, type BucketSample } from './series.ts';

const log = debugFactory('topk:signaling:history');

/** Limits of a {@link HistoryStore}. */
export interface HistoryLimits {
  /** Buckets one peer's series may hold before the room coarsens. */
  readonly maxPointsPerPeer: number;
  /** Peer series kept server-wide. */
  readonly maxPeers: number;
  /** Rooms whose history is kept. */
  readonly maxRooms: number;
}

/** Defaults: at most 2,000 points per peer (136 KB), 512 peers. */
export const DEFAULT_HISTORY_LIMITS: HistoryLimits = {
  maxPointsPerPeer: 2000,
  maxPeers: 512,
  maxRooms: 100,
};

/** The reporting peer as the server knows it. */
export interface ReportingPeer {
  readonly id: string;
  readonly kind: PeerKind;
  readonly backend: string;
}

/** Called after a report was recorded: the room and the first bucket
 * start it changed. */
export type HistoryListener = (room: string, fromStep: number) => void;

interface PeerState {
  readonly id: string;
  kind: PeerKind;
  backend: string;
  readonly series: BucketSeries;
  last: PeerReport | undefined;
  reports: number;
  updatedAtMs: number;
}

interface RoomState {
  readonly name: string;
  bucketSteps: number;
  readonly peers: Map<string, PeerState>;
  lastStep: number;
  updatedAtMs: number;
}

/** The report history of every room of one server. */
export class HistoryStore {
  readonly limits: HistoryLimits;
  /** Least recently updated first (a Map keeps insertion order). */
  readonly #rooms = new Map<string, RoomState>();
  /** Every peer series as `room\0peer`, least recently updated first. */
  readonly #peerOrder = new Map<string, RoomState>();
  readonly #listeners = new Set<HistoryListener>();

  /** Throws `ERR_BAD_CONFIG` for a limit below its minimum. */
  constructor(limits: Partial<HistoryLimits> = {}) {
    this.limits = { ...DEFAULT_HISTORY_LIMITS, ...limits };
    for (const [name, min] of [
      ['maxPointsPerPeer', 2],
      ['maxPeers', 1],
      ['maxRooms', 1],
    ] as const) {
      const value = this.limits[name];
      if (!Number.isInteger(value) || value < min) {
        throw topkError(
          'ERR_BAD_CONFIG',
          `history ${name}: expected an integer >= ${min}, got ${value}`,
          { [name]: value },
        );
      }
    }
  }

  /** Calls `listener` after every recorded report; returns its removal. */
  onChange(listener: HistoryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records `report` from `peer` of `room`, received at `nowMs`. */
  record(
    room: string,
    peer: ReportingPeer,
    report: PeerReport,
    nowMs: number,
  ): void {
    const roomState = this.#room(room, nowMs);
    const state = this.#peer(roomState, peer);
    state.kind = peer.kind;
    state.backend = report.backend ?? peer.backend;
    state.series.add(sampleOf(report, state.last), roomState.bucketSteps);
    state.last = report;
    state.reports += 1;
    state.updatedAtMs = nowMs;
    roomState.lastStep = Math.max(roomState.lastStep, report.step);
    roomState.updatedAtMs = nowMs;
    if (state.series.length > this.limits.maxPointsPerPeer) {
      this.#coarsen(roomState);
    }

    const width = roomState.bucketSteps;
    const fromStep = Math.floor(report.step / width) * width;
    for (const listener of this.#listeners) listener(room, fromStep);
  }

  /** The history of `room` from `sinceStep` on, or undefined if none. */
  history(room: string, sinceStep = 0): RoomHistory | undefined {
    const state = this.#rooms.get(room);
    if (state === undefined) return undefined;
    const from = Math.floor(sinceStep / state.bucketSteps) * state.bucketSteps;
    const peers: PeerHistory[] = [];
    for (const peer of state.peers.values()) {
      if (peer.series.lastStart < from) continue;
      peers.push(peerHistory(peer, from));
    }
    return {
      room,
      bucketSteps: state.bucketSteps,
      maxPointsPerPeer: this.limits.maxPointsPerPeer,
      sinceStep: from,
      peers,
    };
  }

  /** The bucket width of `room`, or undefined when it has no history. */
  bucketSteps(room: string): number | undefined {
    return this.#rooms.get(room)?.bucketSteps;
  }

  /** Rooms with history, most recently updated first. */
  rooms(isLive: (room: string) => boolean): HistorySummary[] {
    return [...this.#rooms.values()].reverse().map((state) => ({
      room: state.name,
      peers: state.peers.size,
      lastStep: state.lastStep,
      updatedAtMs: state.updatedAtMs,
      live: isLive(state.name),
    }));
  }

  /** Bytes the series buffers take now (a measure, not an exact figure). */
  memoryBytes(): number {
    let total = 0;
    for (const room of this.#rooms.values()) {
      for (const peer of room.peers.values()) {
        total += peer.series.capacityBytes;
      }
    }
    return total;
  }

  #room(name: string, nowMs: number): RoomState {
    let state = this.#rooms.get(name);
    if (state !== undefined) {
      this.#rooms.delete(name);
      this.#rooms.set(name, state);
      return state;
    }
    state = {
      name,
      bucketSteps: 1,
      peers: new Map(),
      lastStep: 0,
      updatedAtMs: nowMs,
    };
    this.#rooms.set(name, state);
    while (this.#rooms.size > this.limits.maxRooms) {
      const oldest = this.#rooms.values().next().value as RoomState;
      this.#dropRoom(oldest);
    }
    return state;
  }

  #peer(room: RoomState, peer: ReportingPeer): PeerState {
    const key = `${room.name}\0${peer.id}`;
    let state = room.peers.get(peer.id);
    this.#peerOrder.delete(key);
    this.#peerOrder.set(key, room);
    if (state !== undefined) return state;

    state = {
      id: peer.id,
      kind: peer.kind,
      backend: peer.backend,
      series: new BucketSeries(this.limits.maxPointsPerPeer),
      last: undefined,
      reports: 0,
      updatedAtMs: 0,
    };
    room.peers.set(peer.id, state);
    while (this.#peerOrder.size > this.limits.maxPeers) {
      const [oldest, owner] = this.#peerOrder.entries().next().value as [
        string,
        RoomState,
      ];
      this.#peerOrder.delete(oldest);
      owner.peers.delete(oldest.slice(owner.name.length + 1));
      log('dropped the history of %s (peer limit)', oldest);
    }
    return state;
  }

  #dropRoom(room: RoomState): void {
    this.#rooms.delete(room.name);
    for (const id of room.peers.keys()) {
      this.#peerOrder.delete(`${room.name}\0${id}`);
    }
    log('dropped the history of room %s (room limit)', room.name);
  }

  /** Doubles the room's bucket width until every series fits again. */
  #coarsen(room: RoomState): void {
    const fits = () =>
      [...room.peers.values()].every(
        (p) => p.series.length <= this.limits.maxPointsPerPeer,
      );
    while (!fits()) {
      room.bucketSteps *= 2;
      for (const peer of room.peers.values()) {
        peer.series.coarsen(room.bucketSteps);
      }
    }
    log(
      'room %s: buckets of %d steps now (%d KiB of series server-wide)',
      room.name,
      room.bucketSteps,
      Math.round(this.memoryBytes() / 1024),
    );
  }
}

/** What `report` adds to its bucket, given the peer's previous report. */
function sampleOf(
  report: PeerReport,
  previous: PeerReport | undefined,
): BucketSample {
  const steps = previous === undefined ? 0 : report.step - previous.step;
  const counting =
    previous !== undefined &&
    steps > 0 &&
    report.bytesSent >= previous.bytesSent &&
    report.bytesReceived >= previous.bytesReceived;
  const dense = report.denseBytes;
  const previousDense = previous?.denseBytes;
  const denseCounting =
    counting &&
    dense !== undefined &&
    previousDense !== undefined &&
    dense >= previousDense;
  return {
    step: report.step,
    loss: report.loss,
    accuracy: report.accuracy,
    timing: report.timing,
    compressionError: report.compressionError,
    bytes: counting
      ? {
          sent: report.bytesSent - previous.bytesSent,
          received: report.bytesReceived - previous.bytesReceived,
          steps,
        }
      : undefined,
    dense: denseCounting ? { bytes: dense - previousDense, steps } : undefined,
  };
}

function peerHistory(peer: PeerState, fromStep: number): PeerHistory {
  const last = peer.last;
  return {
    id: peer.id,
    kind: peer.kind,
    backend: peer.backend,
    k: last?.k ?? null,
    n: last?.n ?? null,
    lastStep: last?.step ?? null,
    bytesSent: last?.bytesSent ?? 0,
    bytesReceived: last?.bytesReceived ?? 0,
    denseBytes: last?.denseBytes ?? null,
    reports: peer.reports,
    updatedAtMs: peer.updatedAtMs,
    points: peer.series.columns(fromStep),
  };
}
