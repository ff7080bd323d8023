/**
 * The signaling server: socket.io 4 on a plain node:http server. Peers
 * join rooms (training jobs), learn their ring neighbours and generation,
 * and exchange WebRTC negotiation with their neighbours through it; the
 * same HTTP server answers the status API, metrics, and whatever handlers
 * are added (the browser client and dashboard).
 *
 * Layers: rooms.ts (membership), admission.ts (tokens), limits.ts (event
 * checks), connection.ts (one socket), http-api.ts (HTTP), metrics.ts,
 * history.ts (reports over steps), live.ts and dashboard/ (the dashboard).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import debugFactory from 'debug';
import { Server } from 'socket.io';

import {
  parseRoomConfig,
  type RoomConfig,
  type RoomConfigInput,
} from '../shared/config.ts';
import { topkError } from '../shared/errors.ts';
import type { RoomHistory } from '../shared/dashboard-protocol.ts';
import type { RoomStatus } from '../shared/signaling-protocol.ts';
import type { AdmissionPolicy } from './admission.ts';
import {
  acceptConnection,
  roomChannel,
  type PeerSocket,
  type ServerContext,
  type SignalingIo,
} from './connection.ts';
import { dashboardHandler } from './dashboard/serve.ts';
import { HistoryStore, type HistoryLimits } from './history.ts';
import { httpApi, type HttpHandler } from './http-api.ts';
import { DEFAULT_LIMITS, type ServerLimits } from './limits.ts';
import { startLiveUpdates } from './live.ts';
import { SignalingMetrics } from './metrics.ts';
import { roomStatus } from './room-status.ts';
import { RoomRegistry, type Room } from './rooms.ts';

const log = debugFactory('topk:signaling:server');

/** How to start a signaling server; every field is optional. */
export interface SignalingServerOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Interface to listen on; 127.0.0.1 by default, 0.0.0.0 for a LAN. */
  readonly host?: string;
  /** Rooms that exist from the start, by name, with their configs. */
  readonly rooms?: Readonly<Record<string, RoomConfigInput>>;
  /** Config of rooms created on demand; unknown rooms are refused when
   * this is absent and peers may not bring a config. */
  readonly defaultRoomConfig?: RoomConfigInput;
  /** Let the first peer of an unknown room set its config. */
  readonly allowPeerConfig?: boolean;
  /** Tokens required to join; open when absent. */
  readonly admission?: AdmissionPolicy;
  /** Server limits; see {@link DEFAULT_LIMITS}. `peerTimeoutMs` defaults
   * to the smallest of the room configs' (5 s unless they say less). */
  readonly limits?: Partial<ServerLimits>;
  /** HTTP handlers tried after the API (static files, dashboard). */
  readonly httpHandlers?: readonly HttpHandler[];
  /** Serve the dashboard page at `/dashboard` (true by default). The
   * history API and live namespace exist either way. */
  readonly dashboard?: boolean;
  /** Limits of the report history; see {@link HistoryStore}. */
  readonly history?: Partial<HistoryLimits>;
  /** Least time between two live pushes of one room (500 ms). */
  readonly dashboardUpdateIntervalMs?: number;
  /**
   * Called for what an operator must see (model-hash mismatches). By
   * default a Node process warning, which is printed to stderr.
   */
  readonly onWarning?: (
    message: string,
    context: Record<string, unknown>,
  ) => void;
}

/** A running signaling server. */
export interface SignalingServer {
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  /** The typed socket.io server, for more namespaces (dashboard). */
  readonly io: SignalingIo;
  readonly httpServer: HttpServer;
  /** Adds an HTTP handler, tried after those already added. */
  addHttpHandler(handler: HttpHandler): void;
  /** Status of every room, as `GET /api/rooms` serves it. */
  roomStatuses(): RoomStatus[];
  /** Status of one room, or undefined. */
  roomStatus(name: string): RoomStatus | undefined;
  /** The reports of every room over steps (what the dashboard draws). */
  readonly history: HistoryStore;
  /** Closes every connection, timer and the listener; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a signaling server and resolves once it listens. Throws
 * `ERR_BAD_CONFIG` for an invalid room config before binding anything.
 */
export async function startSignalingServer(
  options: SignalingServerOptions = {},
): Promise<SignalingServer> {
  const rooms = new Map<string, RoomConfig>(
    Object.entries(options.rooms ?? {}).map(([name, input]) => [
      name,
      parseRoomConfig(input),
    ]),
  );
  const defaultRoomConfig =
    options.defaultRoomConfig === undefined
      ? undefined
      : parseRoomConfig(options.defaultRoomConfig);
  const limits = resolveLimits(options.limits, [
    ...rooms.values(),
    ...(defaultRoomConfig === undefined ? [] : [defaultRoomConfig]),
  ]);

  const metrics = new SignalingMetrics();
  const registry = new RoomRegistry({
    limits,
    rooms,
    defaultRoomConfig,
    allowPeerConfig: options.allowPeerConfig === true,
    resumeSecret: options.admission?.tokenSecret,
  });
  const handlers: HttpHandler[] = [...(options.httpHandlers ?? [])];
  if (options.dashboard !== false) handlers.push(dashboardHandler());
  const history = new HistoryStore({
    maxRooms: limits.maxRooms,
    ...options.history,
  });
  const sockets = new Map<string, PeerSocket>();
  const restoreTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Per room: the timer that puts benched peers back, and when. */
  const benchTimers = new Map<
    string,
    { timer: ReturnType<typeof setTimeout>; atMs: number }
  >();
  let closing = false;

  const httpServer = createServer(
    httpApi({
      metrics,
      startedAtMs: Date.now(),
      connections: () => io.engine.clientsCount,
      roomStatuses: () => registry.rooms().map(roomStatus),
      roomStatus: (name) => {
        const room = registry.room(name);
        return room === undefined ? undefined : roomStatus(room);
      },
      history: (name, sinceStep) => roomHistory(name, sinceStep),
      historyRooms: () =>
        history.rooms((name) => registry.room(name) !== undefined),
      handlers,
    }),
  );
  // Half the timeout between pings and half waiting for the answer: a
  // silent peer is dropped within peerTimeoutMs, not socket.io's 45 s.
  const pingIntervalMs = Math.ceil(limits.peerTimeoutMs / 2);
  const io: SignalingIo = new Server(httpServer, {
    serveClient: false,
    pingInterval: pingIntervalMs,
    pingTimeout: limits.peerTimeoutMs - pingIntervalMs,
    maxHttpBufferSize: limits.maxPacketBytes,
    connectTimeout: Math.min(limits.joinTimeoutMs, 45_000),
  });

  const live = startLiveUpdates(
    io,
    {
      history,
      roomStatus: (name) => {
        const room = registry.room(name);
        return room === undefined ? undefined : roomStatus(room);
      },
      full: () => io.engine.clientsCount > limits.maxConnections,
    },
    options.dashboardUpdateIntervalMs,
  );
  history.onChange((room, fromStep) => live.changed(room, fromStep));

  /** A room's history; an empty one for a room that has no reports yet. */
  function roomHistory(
    name: string,
    sinceStep: number,
  ): RoomHistory | undefined {
    const found = history.history(name, sinceStep);
    if (found !== undefined || registry.room(name) === undefined) return found;
    return {
      room: name,
      bucketSteps: 1,
      maxPointsPerPeer: history.limits.maxPointsPerPeer,
      sinceStep: 0,
      peers: [],
    };
  }

  const warn =
    options.onWarning ??
    ((message: string) => {
      process.emitWarning(message, { code: 'TOPK_SIGNALING' });
    });
  const ctx: ServerContext = {
    registry,
    metrics,
    limits,
    admission: options.admission ?? {},
    sockets,
    history,
    warn(message, context) {
      log('warning: %s', message);
      warn(message, context);
    },
    membershipChanged(room, name) {
      if (closing) return;
      announce(room, name);
    },
  };

  function announce(room: Room, name: string): void {
    metrics.rooms.set(registry.rooms().length);
    live.changed(name);
    if (registry.room(name) !== room) {
      metrics.removeRoom(name);
      return;
    }
    metrics.setRoom(name, room.members.length, room.generation, room.step);
    io.to(roomChannel(name)).emit('membership', registry.membership(room));
    scheduleRestoreEnd(room);
    scheduleBenchEnd(name);
  }

  /** Arms the timer for the room's earliest bench end (ejection.ts). */
  function scheduleBenchEnd(name: string): void {
    const atMs = registry.benchEndMs(name);
    const armed = benchTimers.get(name);
    if (armed !== undefined && armed.atMs === atMs) return;
    if (armed !== undefined) clearTimeout(armed.timer);
    benchTimers.delete(name);
    if (atMs === undefined) return;
    const timer = setTimeout(
      () => {
        benchTimers.delete(name);
        if (closing) return;
        const changed = registry.readmitBenched(name);
        if (changed !== undefined) announce(changed, name);
        else scheduleBenchEnd(name);
      },
      Math.max(0, atMs - Date.now()),
    );
    benchTimers.set(name, { timer, atMs });
  }

  function scheduleRestoreEnd(room: Room): void {
    const name = room.name;
    const untilMs = room.restoreUntilMs;
    if (untilMs === undefined || restoreTimers.has(name)) return;
    const timer = setTimeout(
      () => {
        restoreTimers.delete(name);
        const changed = registry.expireRestore(name);
        if (changed !== undefined && !closing) announce(changed, name);
      },
      Math.max(0, untilMs - Date.now()),
    );
    restoreTimers.set(name, timer);
  }

  io.on('connection', (socket) => {
    metrics.connections.set(io.engine.clientsCount);
    socket.on('disconnect', () => {
      metrics.connections.set(io.engine.clientsCount);
    });
    if (io.engine.clientsCount > limits.maxConnections) {
      socket.emit('rejected', {
        event: 'connect',
        code: 'ERR_ADMISSION',
        message:
          `the server is full (${limits.maxConnections} connections); ` +
          `try again later`,
      });
      socket.disconnect(true);
      return;
    }
    acceptConnection(socket, ctx);
  });

  const host = options.host ?? '127.0.0.1';
  try {
    await listen(httpServer, options.port ?? 0, host);
  } catch (error) {
    await new Promise<void>((resolve) => void io.close(() => resolve()));
    throw topkError(
      'ERR_BAD_CONFIG',
      `signaling server: cannot listen on ${host}:${options.port ?? 0} ` +
        `(${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      { host, port: options.port ?? 0 },
      error,
    );
  }
  const address = httpServer.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${address.port}`;
  log('listening on %s', url);

  let closed: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    host,
    io,
    httpServer,
    addHttpHandler: (handler) => {
      handlers.push(handler);
    },
    roomStatuses: () => registry.rooms().map(roomStatus),
    roomStatus: (name) => {
      const room = registry.room(name);
      return room === undefined ? undefined : roomStatus(room);
    },
    history,
    close() {
      closed ??= (async () => {
        closing = true;
        live.close();
        for (const timer of restoreTimers.values()) clearTimeout(timer);
        restoreTimers.clear();
        for (const { timer } of benchTimers.values()) clearTimeout(timer);
        benchTimers.clear();
        await new Promise<void>((resolve) => {
          // io.close() disconnects every socket, then closes httpServer.
          void io.close(() => resolve());
          httpServer.closeAllConnections();
        });
        log('closed %s', url);
      })();
      return closed;
    },
  };
}

function resolveLimits(
  given: Partial<ServerLimits> | undefined,
  configs: readonly RoomConfig[],
): ServerLimits {
  const peerTimeoutMs = Math.min(
    DEFAULT_LIMITS.peerTimeoutMs,
    ...configs.map((c) => c.limits.peerTimeoutMs),
  );
  return { ...DEFAULT_LIMITS, peerTimeoutMs, ...given };
}

function listen(server: HttpServer, port: number, host: string) {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
