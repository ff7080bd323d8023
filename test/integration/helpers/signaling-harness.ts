/**
 * Helpers for signaling tests: raw socket.io clients that may send
 * anything, waits on events (never on sleeps), plain HTTP GETs that keep
 * no connection open, and a TCP proxy whose cable can be "pulled".
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';

import { after, before } from 'node:test';

import { io, type Socket as ClientSocket } from 'socket.io-client';

import { isTopkError, type TopkRingError } from '../../../shared/errors.ts';

import type { Membership } from '../../../shared/signaling-protocol.ts';
import {
  SignalingClient,
  type SignalingClientEvents,
  type SignalingClientOptions,
} from '../../../shared/signaling-client.ts';
import {
  startSignalingServer,
  type SignalingServer,
  type SignalingServerOptions,
} from '../../../signaling/server.ts';

/** An untyped socket.io client: it may emit whatever a hostile peer would. */
export type RawSocket = ClientSocket;

/** Connects a raw client (no reconnection) and waits for the connection. */
export function rawClient(url: string): Promise<RawSocket> {
  const socket = io(url, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** Emits `event` with `args` and resolves with the acknowledgement. */
export function emitWithAck(
  socket: RawSocket,
  event: string,
  ...args: unknown[]
): Promise<unknown> {
  return new Promise((resolve) => {
    socket.emit(event, ...args, (reply: unknown) => resolve(reply));
  });
}

/** Resolves with the arguments of the next `event` on a raw socket. */
export function nextEvent(socket: RawSocket, event: string): Promise<unknown> {
  return new Promise((resolve) => socket.once(event, resolve));
}

/** Resolves once `client`'s membership satisfies `accept` (maybe now). */
export function membershipWhere(
  client: SignalingClient,
  accept: (membership: Membership) => boolean,
): Promise<Membership> {
  if (accept(client.membership)) return Promise.resolve(client.membership);
  return new Promise((resolve) => {
    const off = client.on('membership', (membership) => {
      if (!accept(membership)) return;
      off();
      resolve(membership);
    });
  });
}

/** Resolves with the first argument of `client`'s next `event`. */
export function nextClientEvent<E extends keyof SignalingClientEvents>(
  client: SignalingClient,
  event: E,
): Promise<Parameters<SignalingClientEvents[E]>[0]> {
  return new Promise((resolve) => {
    const off = client.on(event, ((
      value: Parameters<SignalingClientEvents[E]>[0],
    ) => {
      off();
      resolve(value);
    }) as SignalingClientEvents[E]);
  });
}

/** A GET that closes its connection: status, content type and body. */
export function httpGet(
  url: string,
): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          contentType: String(response.headers['content-type'] ?? ''),
          body,
        }),
      );
    });
    request.on('error', reject);
  });
}

/**
 * A TCP proxy to `port` on loopback. `cut()` stops forwarding in both
 * directions without closing anything, like a pulled cable: neither end
 * learns of it until its own timeout.
 */
export class CuttableProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut = false;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Starts a proxy to 127.0.0.1:`port` on a free port. */
  static async start(port: number): Promise<CuttableProxy> {
    const server = createServer();
    const proxy = new CuttableProxy(server);
    server.on('connection', (inbound) => proxy.#forward(inbound, port));
    await new Promise<void>((resolve) =>
      server.listen(0, '127.0.0.1', resolve),
    );
    return proxy;
  }

  /** `http://127.0.0.1:<proxy port>`. */
  get url(): string {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') return '';
    return `http://127.0.0.1:${address.port}`;
  }

  /** Pulls the cable. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  /** Closes every connection and the listener. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(inbound: Socket, port: number): void {
    this.#sockets.add(inbound);
    inbound.on('close', () => this.#sockets.delete(inbound));
    inbound.on('error', () => inbound.destroy());
    if (this.#cut) {
      inbound.pause();
      return;
    }
    const outbound = connect(port, '127.0.0.1');
    this.#sockets.add(outbound);
    outbound.on('close', () => {
      this.#sockets.delete(outbound);
      inbound.destroy();
    });
    outbound.on('error', () => outbound.destroy());
    inbound.on('close', () => outbound.destroy());
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  }
}

/**
 * Starts a server (with room `main`) before a describe block's tests and
 * closes it and every client it joined after them.
 */
export function serverFor(options: SignalingServerOptions = {}) {
  const state: { server: SignalingServer; clients: SignalingClient[] } = {
    server: undefined as unknown as SignalingServer,
    clients: [],
  };
  before(async () => {
    state.server = await startSignalingServer({
      rooms: { main: {} },
      onWarning: () => {},
      ...options,
    });
  });
  after(async () => {
    for (const client of state.clients) client.close();
    await state.server.close();
  });
  const join = async (extra: Partial<SignalingClientOptions> = {}) => {
    const client = await SignalingClient.connect({
      url: state.server.url,
      room: 'main',
      kind: 'node',
      backend: 'wasm',
      reconnect: false,
      ...extra,
    });
    state.clients.push(client);
    return client;
  };
  return { state, join };
}

/** Resolves with the typed error `promise` rejects with; fails if it resolves. */
export async function refusal(
  promise: Promise<unknown>,
): Promise<TopkRingError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isTopkError(error), String(error));
    return error;
  }
  assert.fail('expected a refusal');
}
