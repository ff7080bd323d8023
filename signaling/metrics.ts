/**
 * Prometheus metrics of one signaling server, in a registry of its own so
 * that two servers in one process (tests) never share or clash. Per-room
 * and per-peer series are removed when the room or peer goes, so the
 * number of series stays bounded by the limits on rooms and peers.
 */
import { Counter, Gauge, Registry } from 'prom-client';

import {
  SUSPECT_REASONS,
  type PeerReport,
} from '../shared/signaling-protocol.ts';

/** The metrics of one server. */
export class SignalingMetrics {
  /** The registry `GET /metrics` serves. */
  readonly registry = new Registry();

  readonly connections = new Gauge({
    name: 'topk_signaling_connections',
    help: 'Open socket.io connections, joined or not',
    registers: [this.registry],
  });
  readonly rooms = new Gauge({
    name: 'topk_signaling_rooms',
    help: 'Rooms that exist',
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'topk_signaling_events_total',
    help: 'Events received from peers, accepted or not',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'topk_signaling_rejected_total',
    help: 'Events refused, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly relayed = new Counter({
    name: 'topk_signaling_signals_relayed_total',
    help: 'Signals delivered to a ring neighbour',
    registers: [this.registry],
  });
  readonly dropped = new Counter({
    name: 'topk_signaling_signals_dropped_total',
    help: 'Signals dropped: stale generation or absent target',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly mismatches = new Counter({
    name: 'topk_signaling_model_hash_mismatches_total',
    help: 'Steps at which peers of a room reported different model hashes',
    labelNames: ['room'] as const,
    registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: 'topk_room_resyncs_total',
    help: 'New generations started to resynchronise disagreeing weights',
    labelNames: ['room'] as const,
    registers: [this.registry],
  });
  readonly stalls = new Counter({
    name: 'topk_room_stall_restarts_total',
    help: 'New generations started because a step of the ring ran out of time with nobody to blame',
    labelNames: ['room'] as const,
    registers: [this.registry],
  });
  readonly accusations = new Counter({
    name: 'topk_signaling_accusations_total',
    help: 'Accusations of a ring neighbour accepted, by reason and verdict (ejected, strike)',
    labelNames: ['reason', 'verdict'] as const,
    registers: [this.registry],
  });
  readonly ejections = new Counter({
    name: 'topk_room_ejections_total',
    help: 'Peers taken out of a room ring on a neighbour accusation, by reason',
    labelNames: ['room', 'reason'] as const,
    registers: [this.registry],
  });
  readonly roomPeers = new Gauge({
    name: 'topk_room_peers',
    help: 'Peers in the ring of a room',
    labelNames: ['room'] as const,
    registers: [this.registry],
  });
  readonly roomGeneration = new Gauge({
    name: 'topk_room_generation',
    help: 'Current generation (ring membership) of a room',
    labelNames: ['room'] as const,
    registers: [this.registry],
  });
  readonly roomStep = new Gauge({
    name: 'topk_room_step',
    help: 'Highest step reported by a peer of a room',
    labelNames: ['room'] as const,
    registers: [this.registry],
  });
  readonly peerStep = this.#peerGauge('topk_peer_step', 'Step a peer reported');
  readonly peerLoss = this.#peerGauge('topk_peer_loss', 'Loss a peer reported');
  readonly peerBytesSent = this.#peerGauge(
    'topk_peer_bytes_sent',
    'Bytes a peer reported sending over data channels',
  );
  readonly peerBytesReceived = this.#peerGauge(
    'topk_peer_bytes_received',
    'Bytes a peer reported receiving over data channels',
  );

  constructor() {
    new Gauge({
      name: 'topk_signaling_heap_used_bytes',
      help: 'V8 heap in use by the server process',
      registers: [this.registry],
      collect() {
        this.set(process.memoryUsage().heapUsed);
      },
    });
  }

  #peerGauge(name: string, help: string) {
    return new Gauge({
      name,
      help,
      labelNames: ['room', 'peer'] as const,
      registers: [this.registry],
    });
  }

  /** Sets the room's gauges after a membership change or report. */
  setRoom(room: string, peers: number, generation: number, step: number) {
    this.roomPeers.set({ room }, peers);
    this.roomGeneration.set({ room }, generation);
    this.roomStep.set({ room }, step);
  }

  /** Removes every series of a room that no longer exists. */
  removeRoom(room: string): void {
    this.roomPeers.remove({ room });
    this.roomGeneration.remove({ room });
    this.roomStep.remove({ room });
    this.mismatches.remove({ room });
    this.resyncs.remove({ room });
    this.stalls.remove({ room });
    for (const reason of SUSPECT_REASONS)
      this.ejections.remove({ room, reason });
  }

  /** Sets a peer's gauges from its report. */
  setPeer(room: string, peer: string, report: PeerReport): void {
    const labels = { room, peer };
    this.peerStep.set(labels, report.step);
    if (typeof report.loss === 'number') this.peerLoss.set(labels, report.loss);
    this.peerBytesSent.set(labels, report.bytesSent);
    this.peerBytesReceived.set(labels, report.bytesReceived);
  }

  /** Removes a departed peer's series. */
  removePeer(room: string, peer: string): void {
    const labels = { room, peer };
    this.peerStep.remove(labels);
    this.peerLoss.remove(labels);
    this.peerBytesSent.remove(labels);
    this.peerBytesReceived.remove(labels);
  }
}
