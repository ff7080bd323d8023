/**
 * Live updates for dashboards on the socket.io namespace `/dashboard`.
 * A dashboard names the room it watches in its handshake (`auth.room`),
 * gets the room's whole history at once, then batched updates: reports and
 * membership changes mark the room changed, and a room is pushed at most
 * once per `updateIntervalMs` (500 ms: two updates a second), however many
 * peers report. Rooms nobody watches cost nothing but the mark.
 *
 * The namespace is read-only: it has no handler for any event, and every
 * event a dashboard sends is refused (a few notices, then one a second),
 * so a dashboard connection can never act as a peer.
 *
 * TODO(#5): like the status API, anyone who reaches the server may watch
 * any room (peer ids, steps, losses); a room token could guard it.
 */
import debugFactory from 'debug';
import type { Namespace, Socket } from 'socket.io';

import {
  DASHBOARD_NAMESPACE,
  type DashboardClientEvents,
  type DashboardServerEvents,
  type DashboardUpdate,
  type RoomHistory,
} from '../shared/dashboard-protocol.ts';
import { RoomNameSchema } from '../shared/signaling-protocol.ts';
import type { RoomStatus } from '../shared/signaling-protocol.ts';
import type { SignalingIo } from './connection.ts';
import type { HistoryStore } from './history.ts';
import { TokenBucket } from './limits.ts';

const log = debugFactory('topk:signaling:live');

/** Minimum time between two pushes of one room, by default. */
export const DEFAULT_UPDATE_INTERVAL_MS = 500;
const REFUSAL_NOTICE_BURST = 10;

type DashboardNamespace = Namespace<
  DashboardClientEvents,
  DashboardServerEvents
>;
type DashboardSocket = Socket<DashboardClientEvents, DashboardServerEvents>;

/** What live updates read from the server. */
export interface LiveSource {
  readonly history: HistoryStore;
  roomStatus(name: string): RoomStatus | undefined;
  /** Whether one more connection would pass the server's limit. */
  full(): boolean;
}

/** The live side of the dashboard. */
export interface LiveUpdates {
  /** Marks `room` changed from `fromStep` on (membership: no step). */
  changed(room: string, fromStep?: number): void;
  /** Pushes sent so far (for tests and metrics). */
  readonly pushes: number;
  /** Stops every timer; the namespace closes with the server. */
  close(): void;
}

interface RoomPush {
  /** Earliest bucket changed since the last push. */
  fromStep: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  lastPushMs: number;
  /** Bucket width of the last push: a change means a full update. */
  bucketSteps: number | undefined;
}

/** The socket.io room a dashboard watching `room` is in. */
function watchChannel(room: string): string {
  return `watch:${room}`;
}

/** Sets up the dashboard namespace on `io`. */
export function startLiveUpdates(
  io: SignalingIo,
  source: LiveSource,
  updateIntervalMs = DEFAULT_UPDATE_INTERVAL_MS,
): LiveUpdates {
  // The peers' namespace is typed with the peer events; this one has its
  // own, read-only, event map.
  const nsp = io.of(DASHBOARD_NAMESPACE) as unknown as DashboardNamespace;
  const pending = new Map<string, RoomPush>();
  let pushes = 0;
  let closed = false;

  nsp.use((socket, next) => {
    if (source.full()) {
      next(new Error('the server is full; try again later'));
      return;
    }
    const room = (socket.handshake.auth as { room?: unknown }).room;
    if (room !== undefined && !RoomNameSchema.safeParse(room).success) {
      next(new Error('auth.room: expected a room name'));
      return;
    }
    next();
  });

  nsp.on('connection', (socket) => {
    refuseEverything(socket);
    const room = (socket.handshake.auth as { room?: string }).room;
    if (room === undefined) return;
    void socket.join(watchChannel(room));
    socket.emit('update', update(room, true, 0));
  });

  function update(
    room: string,
    full: boolean,
    fromStep: number,
  ): DashboardUpdate {
    // Only the membership changed: no points, every peer's kept as is.
    const none: RoomHistory = {
      room,
      bucketSteps: source.history.bucketSteps(room) ?? 1,
      maxPointsPerPeer: source.history.limits.maxPointsPerPeer,
      sinceStep: 0,
      peers: [],
    };
    const history =
      full || Number.isFinite(fromStep)
        ? (source.history.history(room, full ? 0 : fromStep) ?? none)
        : none;
    return {
      room,
      full,
      history,
      status: source.roomStatus(room) ?? null,
      sentAtMs: Date.now(),
    };
  }

  function push(room: string, state: RoomPush): void {
    state.timer = undefined;
    state.lastPushMs = performance.now();
    const fromStep = state.fromStep;
    state.fromStep = Infinity;
    const watchers = nsp.adapter.rooms.get(watchChannel(room))?.size ?? 0;
    if (watchers === 0) {
      // Nobody to tell; forget the room until someone watches it.
      pending.delete(room);
      return;
    }
    const bucketSteps = source.history.bucketSteps(room);
    const full = state.bucketSteps !== bucketSteps;
    state.bucketSteps = bucketSteps;
    nsp.to(watchChannel(room)).emit('update', update(room, full, fromStep));
    pushes += 1;
  }

  return {
    changed(room, fromStep = Infinity) {
      if (closed) return;
      let state = pending.get(room);
      if (state === undefined) {
        state = {
          fromStep,
          timer: undefined,
          lastPushMs: -Infinity,
          bucketSteps: source.history.bucketSteps(room),
        };
        pending.set(room, state);
      }
      state.fromStep = Math.min(state.fromStep, fromStep);
      if (state.timer !== undefined) return;
      const waitMs = Math.max(
        0,
        state.lastPushMs + updateIntervalMs - performance.now(),
      );
      const scheduled = state;
      state.timer = setTimeout(() => push(room, scheduled), waitMs);
    },
    get pushes() {
      return pushes;
    },
    close() {
      closed = true;
      for (const state of pending.values()) clearTimeout(state.timer);
      pending.clear();
    },
  };
}

/** Answers every event from a dashboard with a refusal, and runs none. A
 * flood gets a burst of notices, then one a second. */
function refuseEverything(socket: DashboardSocket): void {
  const notices = new TokenBucket(REFUSAL_NOTICE_BURST, 1);
  socket.use((packet, _next) => {
    if (!notices.take()) return;
    const name = typeof packet[0] === 'string' ? packet[0].slice(0, 64) : '?';
    log('dashboard %s sent %s; refused', socket.id, name);
    socket.emit('rejected', {
      event: name,
      code: 'ERR_BAD_MESSAGE',
      message: `the dashboard namespace is read-only; ${JSON.stringify(name)} refused`,
    });
  });
}
