/**
 * One peer's socket.io connection on the server: every event it sends is
 * rate-limited and validated before a handler sees it, every handler runs
 * guarded, and every failure is answered to this peer alone (through the
 * event's acknowledgement, or a `rejected` event when there is none). No
 * handler throws; no peer can make the server speak for another.
 */
import debugFactory from 'debug';
import type { Server, Socket, DefaultEventsMap } from 'socket.io';

import {
  isTopkError,
  topkError,
  type TopkRingError,
} from '../shared/errors.ts';
import type {
  ClientToServerEvents,
  JoinRequest,
  LeaveRequest,
  PeerReport,
  ServerToClientEvents,
  SignalRequest,
  FinishReply,
  FinishRequest,
  StalledReply,
  StalledRequest,
  SuspectReply,
  SuspectRequest,
  WireError,
} from '../shared/signaling-protocol.ts';
import { checkAdmission, type AdmissionPolicy } from './admission.ts';
import type { HistoryStore } from './history.ts';
import {
  checkEvent,
  eventNameAndAck,
  isClientEventName,
  TokenBucket,
  type ServerLimits,
} from './limits.ts';
import type { SignalingMetrics } from './metrics.ts';
import { resyncIfDue } from './resync.ts';
import { recordReport } from './room-status.ts';
import type { Room, RoomRegistry } from './rooms.ts';

const log = debugFactory('topk:signaling:connection');

/** What the server keeps on each socket. */
export interface SocketData {
  peerId?: string;
  room?: string;
}

/** The typed socket.io server. */
export type SignalingIo = Server<
  ClientToServerEvents,
  ServerToClientEvents,
  DefaultEventsMap,
  SocketData
>;
/** A typed server-side socket. */
export type PeerSocket = Socket<
  ClientToServerEvents,
  ServerToClientEvents,
  DefaultEventsMap,
  SocketData
>;

/** What connections share: the server's state and its reactions. */
export interface ServerContext {
  readonly registry: RoomRegistry;
  readonly metrics: SignalingMetrics;
  readonly limits: ServerLimits;
  readonly admission: AdmissionPolicy;
  /** The live socket of each joined peer. */
  readonly sockets: Map<string, PeerSocket>;
  /** Reports over steps, for the dashboard. */
  readonly history: HistoryStore;
  /** Tells a room's peers its membership and updates metrics. */
  membershipChanged(room: Room, name: string): void;
  /** Reports something operators must see (a model-hash mismatch). */
  warn(message: string, context: Record<string, unknown>): void;
}

/** The socket.io room a signaling room's sockets are in. */
export function roomChannel(room: string): string {
  return `room:${room}`;
}

/** Only one rate-limit notice per second goes to a flooding peer. */
const RATE_NOTICE_INTERVAL_MS = 1000;

/** Sets up a newly connected socket. */
export function acceptConnection(socket: PeerSocket, ctx: ServerContext): void {
  const bucket = new TokenBucket(
    ctx.limits.eventBurst,
    ctx.limits.eventsPerSecond,
  );
  // Accusations have a bucket of their own, well below the event rate.
  const suspects = new TokenBucket(
    ctx.limits.suspectBurst,
    ctx.limits.suspectsPerSecond,
  );
  let lastRateNoticeMs = -Infinity;
  let joinTimer: ReturnType<typeof setTimeout> | undefined;
  const armJoinTimer = () => {
    clearTimeout(joinTimer);
    joinTimer = setTimeout(() => {
      const error = topkError(
        'ERR_ADMISSION',
        `no join within ${ctx.limits.joinTimeoutMs} ms; closing`,
        { reason: 'join-timeout' },
      );
      answer(socket, ctx, 'join', undefined, error);
      socket.disconnect(true);
    }, ctx.limits.joinTimeoutMs);
  };
  armJoinTimer();

  socket.use((packet, next) => {
    const first = eventNameAndAck(packet);
    const label = isClientEventName(packet[0]) ? first.name : 'unknown';
    ctx.metrics.events.inc({ event: label });
    if (!bucket.take()) {
      // Each refused event with an ack gets its answer; without one, a
      // flood earns one notice per second, not one per event.
      const nowMs = performance.now();
      const notice =
        first.ack !== undefined ||
        nowMs - lastRateNoticeMs > RATE_NOTICE_INTERVAL_MS;
      if (!notice) {
        ctx.metrics.rejected.inc({ code: 'ERR_RATE_LIMIT' });
        return;
      }
      if (first.ack === undefined) lastRateNoticeMs = nowMs;
      const error = topkError(
        'ERR_RATE_LIMIT',
        `more than ${ctx.limits.eventsPerSecond} events per second ` +
          `(burst ${ctx.limits.eventBurst}); events are being dropped`,
        { limit: ctx.limits.eventsPerSecond },
      );
      answer(socket, ctx, first.name, first.ack, error);
      return;
    }

    const checked = checkEvent(packet, ctx.limits.maxEventBytes);
    if (!checked.ok) {
      answer(socket, ctx, checked.name, checked.ack, checked.error);
      return;
    }
    // Hand the handler the parsed payload, not what was sent.
    packet.length = 0;
    packet.push(checked.name, checked.payload);
    if (checked.ack !== undefined) packet.push(checked.ack);
    next();
  });

  socket.on('join', (request, ack) =>
    guard(socket, ctx, 'join', ack, () => {
      onJoin(socket, ctx, request, ack);
      clearTimeout(joinTimer);
    }),
  );
  socket.on('leave', (request, ack) =>
    guard(socket, ctx, 'leave', ack, () => {
      onLeave(socket, ctx, request);
      ack({ ok: true });
      armJoinTimer();
    }),
  );
  socket.on('signal', (request) =>
    guard(socket, ctx, 'signal', undefined, () =>
      onSignal(socket, ctx, request),
    ),
  );
  socket.on('report', (report) =>
    guard(socket, ctx, 'report', undefined, () =>
      onReport(socket, ctx, report),
    ),
  );
  // Accusations, stall reports and finishes share one bucket: each may
  // start a new generation of the ring.
  const takeRingRequest = (events: string): void => {
    if (suspects.take()) return;
    throw topkError(
      'ERR_RATE_LIMIT',
      `more than ${ctx.limits.suspectsPerSecond} ${events} events per ` +
        `second (burst ${ctx.limits.suspectBurst})`,
      { limit: ctx.limits.suspectsPerSecond },
    );
  };
  socket.on('suspect', (request, ack) =>
    guard(socket, ctx, 'suspect', ack, () => {
      takeRingRequest('suspect');
      onSuspect(socket, ctx, request, ack);
    }),
  );
  socket.on('stalled', (request, ack) =>
    guard(socket, ctx, 'stalled', ack, () => {
      takeRingRequest('suspect or stalled');
      onStalled(socket, ctx, request, ack);
    }),
  );
  socket.on('finish', (request, ack) =>
    guard(socket, ctx, 'finish', ack, () => {
      takeRingRequest('suspect, stalled or finish');
      onFinish(socket, ctx, request, ack);
    }),
  );
  socket.on('disconnect', (reason) => {
    clearTimeout(joinTimer);
    log('%s disconnected: %s', socket.data.peerId ?? socket.id, reason);
    guard(socket, ctx, 'disconnect', undefined, () =>
      departed(socket, ctx, reason),
    );
  });
}

function onJoin(
  socket: PeerSocket,
  ctx: ServerContext,
  request: JoinRequest,
  ack: Parameters<ClientToServerEvents['join']>[1],
): void {
  if (socket.data.peerId !== undefined) {
    throw topkError(
      'ERR_BAD_MESSAGE',
      `join: already in room ${JSON.stringify(socket.data.room)} as ` +
        `${socket.data.peerId}; leave first`,
      { room: socket.data.room },
    );
  }
  checkAdmission(ctx.admission, request.room, request.token);
  const { room, peer, replacedConnection } = ctx.registry.join(request);

  const old = ctx.sockets.get(peer.id);
  if (replacedConnection && old !== undefined && old !== socket) {
    old.data = {};
    old.emit('rejected', {
      event: 'join',
      code: 'ERR_ADMISSION',
      message: `peer ${peer.id} connected again elsewhere; closing this one`,
    });
    old.disconnect(true);
  }
  socket.data = { peerId: peer.id, room: room.name };
  ctx.sockets.set(peer.id, socket);
  void socket.join(roomChannel(room.name));

  ack({
    ok: true,
    peerId: peer.id,
    resumeKey: peer.resumeKey ?? '',
    config: room.config,
    membership: ctx.registry.membership(room),
  });
  ctx.membershipChanged(room, room.name);
}

function onLeave(
  socket: PeerSocket,
  ctx: ServerContext,
  request: LeaveRequest,
): void {
  const { peerId, room } = socket.data;
  if (peerId === undefined || room === undefined) return;
  log('%s leaves %s: %s', peerId, room, request.reason ?? '');
  socket.data = {};
  void socket.leave(roomChannel(room));
  removePeer(ctx, peerId, room);
}

function onSignal(
  socket: PeerSocket,
  ctx: ServerContext,
  request: SignalRequest,
): void {
  const from = socket.data.peerId;
  if (from === undefined) {
    throw topkError('ERR_BAD_MESSAGE', 'signal: join a room first', {});
  }
  const decision = ctx.registry.relay(from, request);
  const target = decision.deliver ? ctx.sockets.get(decision.to) : undefined;
  if (target === undefined) {
    const reason = decision.deliver ? 'absent' : decision.reason;
    ctx.metrics.dropped.inc({ reason });
    log('signal %s -> %s dropped: %s', from, request.to, reason);
    return;
  }
  // `from` is stamped here: the sender's own claims are never relayed.
  target.emit('signal', {
    from,
    generation: request.generation,
    data: request.data,
  });
  ctx.metrics.relayed.inc();
}

function onReport(
  socket: PeerSocket,
  ctx: ServerContext,
  report: PeerReport,
): void {
  const { peerId, room: name } = socket.data;
  const room = name === undefined ? undefined : ctx.registry.room(name);
  // A benched peer still reports (its last step before the ejection).
  const peer = room === undefined ? undefined : ctx.registry.peer(room, peerId);
  if (room === undefined || peer === undefined) {
    throw topkError('ERR_BAD_MESSAGE', 'report: join a room first', {});
  }
  const nowMs = Date.now();
  const mismatch = recordReport(room, peer, report, nowMs);
  ctx.history.record(room.name, peer, report, nowMs);
  ctx.metrics.setPeer(room.name, peer.id, report);
  ctx.metrics.roomStep.set({ room: room.name }, room.step);
  if (mismatch !== undefined) {
    ctx.metrics.mismatches.inc({ room: room.name });
    const hashes = mismatch.hashes
      .map((h) => `${h.peerId}=${h.modelHash}`)
      .join(', ');
    ctx.warn(
      `model hash mismatch in room ${room.name} at step ${mismatch.step}: ` +
        hashes,
      { room: room.name, step: mismatch.step, hashes: mismatch.hashes },
    );
    socket.nsp.to(roomChannel(room.name)).emit('mismatch', mismatch);
  }
  if (report.modelHash === undefined) return;
  const resync = resyncIfDue(room, report.step, nowMs);
  if (resync === undefined) return;
  ctx.metrics.resyncs.inc({ room: room.name });
  ctx.warn(
    `room ${room.name}: generation ${resync.generation} resynchronises ` +
      `the weights of ${resync.peers.join(', ')} from a ring neighbour ` +
      `(they disagreed at step ${resync.step})`,
    { room: room.name, ...resync },
  );
  ctx.membershipChanged(room, room.name);
}

/**
 * A ring neighbour is accused (ejection.ts judges): counted, logged, and
 * when the accused is taken out of the ring, told why and the room told
 * its new membership. A refusal goes back through the ack (guard).
 */
function onSuspect(
  socket: PeerSocket,
  ctx: ServerContext,
  request: SuspectRequest,
  ack: (reply: SuspectReply) => void,
): void {
  const accuser = socket.data.peerId;
  if (accuser === undefined) {
    throw topkError('ERR_BAD_MESSAGE', 'suspect: join a room first', {
      reason: 'not-in-ring',
    });
  }
  const { room, outcome } = ctx.registry.accuse(accuser, request);
  ctx.metrics.accusations.inc({
    reason: request.reason,
    verdict: outcome.verdict,
  });
  log(
    '%s accuses %s in %s (%s: %s): %s',
    accuser,
    request.peerId,
    room.name,
    request.reason,
    request.detail ?? '',
    outcome.verdict,
  );
  if (outcome.verdict === 'strike') {
    ack({ ok: true, verdict: 'strike', strikes: outcome.strikes });
    return;
  }
  const ejection = outcome.ejection;
  ctx.metrics.ejections.inc({ room: room.name, reason: ejection.reason });
  ctx.sockets.get(ejection.peerId)?.emit('ejected', ejection);
  ack({ ok: true, verdict: 'ejected', strikes: 0 });
  ctx.membershipChanged(room, room.name);
}

/**
 * A ring member's step ran out of time with nobody to blame (stall.ts):
 * the first report of a generation starts a new one of the same members,
 * counted, logged and announced.
 */
function onStalled(
  socket: PeerSocket,
  ctx: ServerContext,
  request: StalledRequest,
  ack: (reply: StalledReply) => void,
): void {
  const peerId = socket.data.peerId;
  if (peerId === undefined) {
    throw topkError('ERR_BAD_MESSAGE', 'stalled: join a room first', {
      reason: 'not-in-ring',
    });
  }
  const { room, outcome } = ctx.registry.stalled(peerId, request);
  if (outcome.verdict === 'late') {
    ack({ ok: true, verdict: 'late', generation: room.generation });
    return;
  }
  ctx.metrics.stalls.inc({ room: room.name });
  ctx.warn(
    `room ${room.name}: step ${request.step} stalled in generation ` +
      `${request.generation} (reported by ${peerId}); generation ` +
      `${outcome.stall.generation} restarts the ring`,
    { room: room.name, ...outcome.stall },
  );
  ack({ ok: true, verdict: 'restarted', generation: room.generation });
  ctx.membershipChanged(room, room.name);
}

/**
 * A peer completed the run (finish.ts): the room remembers it, and a
 * benched member put back to receive the final weights starts a new
 * generation, announced.
 */
function onFinish(
  socket: PeerSocket,
  ctx: ServerContext,
  request: FinishRequest,
  ack: (reply: FinishReply) => void,
): void {
  const peerId = socket.data.peerId;
  if (peerId === undefined) {
    throw topkError('ERR_BAD_MESSAGE', 'finish: join a room first', {
      reason: 'not-in-ring',
    });
  }
  const { room, outcome } = ctx.registry.finish(peerId, request);
  ack({ ok: true, verdict: outcome.verdict, generation: room.generation });
  if (outcome.readmitted.length === 0) return;
  ctx.warn(
    `room ${room.name}: the run finished at step ${request.step}; ` +
      `${outcome.readmitted.join(', ')} back from the bench for the final ` +
      `weights (generation ${room.generation})`,
    { room: room.name, readmitted: outcome.readmitted },
  );
  ctx.membershipChanged(room, room.name);
}

function departed(socket: PeerSocket, ctx: ServerContext, reason: string) {
  const { peerId, room } = socket.data;
  if (peerId === undefined || room === undefined) return;
  if (ctx.sockets.get(peerId) !== socket) return;
  log('%s lost from %s (%s)', peerId, room, reason);
  removePeer(ctx, peerId, room);
}

function removePeer(ctx: ServerContext, peerId: string, name: string): void {
  ctx.sockets.delete(peerId);
  ctx.metrics.removePeer(name, peerId);
  const room = ctx.registry.leave(peerId);
  if (room !== undefined) ctx.membershipChanged(room, name);
}

/** Runs a handler; any failure becomes an answer to this peer alone. */
function guard(
  socket: PeerSocket,
  ctx: ServerContext,
  event: string,
  ack: ((reply: { ok: false; error: WireError }) => void) | undefined,
  handler: () => void,
): void {
  try {
    handler();
  } catch (error) {
    const typed = isTopkError(error)
      ? error
      : topkError('ERR_INTERNAL', `${event}: internal error`, {}, error);
    if (typed.code === 'ERR_INTERNAL') log('%s failed: %O', event, error);
    answer(
      socket,
      ctx,
      event,
      ack as ((reply: unknown) => void) | undefined,
      typed,
    );
  }
}

/** Tells the sender why its event was refused. */
function answer(
  socket: PeerSocket,
  ctx: ServerContext,
  event: string,
  ack: ((reply: unknown) => void) | undefined,
  error: TopkRingError,
): void {
  ctx.metrics.rejected.inc({ code: error.code });
  log(
    '%s: %s refused: %s',
    socket.data.peerId ?? socket.id,
    event,
    error.message,
  );
  const wire: WireError = {
    code: error.code,
    message: error.message,
    context: error.context,
  };
  if (ack !== undefined) ack({ ok: false, error: wire });
  else socket.emit('rejected', { event, ...wire });
}
