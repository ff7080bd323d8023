/**
 * The client's handshake with the signaling server: wait for the socket to
 * connect, send `join`, and turn every way it can end (an answer, a
 * refusal, a dropped connection, silence) into a joined state or one typed
 * error. Used by signaling-client.ts for the first join and each rejoin.
 *
 * Browser-safe: no node: imports.
 */
import type { Socket } from 'socket.io-client';

import type { RoomConfig } from './config.ts';
import { isTopkError, topkError, type TopkRingError } from './errors.ts';
import type {
  ClientToServerEvents,
  JoinRequest,
  Membership,
  Rejection,
  ServerToClientEvents,
  WireError,
} from './signaling-protocol.ts';

/** The client's typed socket. */
export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** What a successful join gives. */
export interface JoinedState {
  readonly peerId: string;
  readonly resumeKey: string;
  readonly config: RoomConfig;
  readonly membership: Membership;
}

/** Where and how long to wait. */
export interface HandshakeTarget {
  readonly url: string;
  readonly timeoutMs: number;
  /** The server's last `rejected` event: why it closed the connection. */
  readonly lastRejection: () => Rejection | undefined;
}

/**
 * Connects `socket` and resolves once connected. Rejects with
 * `ERR_UNREACHABLE` after `timeoutMs`, or at the first failed attempt when
 * `retry` is false.
 */
export function waitForConnection(
  socket: ClientSocket,
  target: Omit<HandshakeTarget, 'lastRejection'>,
  retry: boolean,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let lastError = 'no answer';
    const fail = (why: string) => {
      cleanup();
      reject(
        topkError(
          'ERR_UNREACHABLE',
          `cannot reach the signaling server at ${target.url} (${why})`,
          { url: target.url, timeoutMs: target.timeoutMs },
        ),
      );
    };
    const timer = setTimeout(
      () => fail(`${lastError}; gave up after ${target.timeoutMs} ms`),
      target.timeoutMs,
    );
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      lastError = error.message;
      if (!retry) fail(lastError);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
    socket.connect();
  });
}

/**
 * Sends `request` and resolves with the joined state. Throws the server's
 * refusal as it sent it, the reason it closed the connection, or
 * `ERR_UNREACHABLE` when it does not answer within `timeoutMs`.
 */
export async function requestJoin(
  socket: ClientSocket,
  request: JoinRequest,
  target: HandshakeTarget,
): Promise<JoinedState> {
  if (!socket.connected) {
    // Dropped already (a full server closes at once). Emitting now would
    // queue the join for a later connection: fail instead.
    throw droppedError(target);
  }
  const answered = socket
    .timeout(target.timeoutMs)
    .emitWithAck('join', request);
  // A server that refuses a connection closes it instead of answering:
  // fail with its reason at once rather than at the timeout.
  let onDrop = () => {};
  const dropped = new Promise<never>((_, reject) => {
    onDrop = () => reject(droppedError(target));
    socket.once('disconnect', onDrop);
  });

  let reply;
  try {
    reply = await Promise.race([answered, dropped]);
  } catch (error) {
    answered.catch(() => {});
    if (isTopkError(error)) throw error;
    throw topkError(
      'ERR_UNREACHABLE',
      `signaling server at ${target.url} did not answer join within ` +
        `${target.timeoutMs} ms`,
      { url: target.url },
      error,
    );
  } finally {
    socket.off('disconnect', onDrop);
  }
  if (!reply.ok) throw fromWire(reply.error);
  return reply;
}

function droppedError(target: HandshakeTarget): TopkRingError {
  const rejection = target.lastRejection();
  return rejection === undefined
    ? topkError(
        'ERR_UNREACHABLE',
        `signaling server at ${target.url} closed the connection before ` +
          `answering join`,
        { url: target.url },
      )
    : fromWire(rejection);
}

/** The error a {@link WireError} stands for. */
export function fromWire(error: WireError): TopkRingError {
  return topkError(error.code, error.message, error.context ?? {});
}

/** What a join request is built from. */
export interface JoinFields {
  readonly room: string;
  readonly kind: JoinRequest['kind'];
  readonly backend: string;
  readonly token?: string;
  readonly config?: unknown;
  readonly fingerprint?: JoinRequest['fingerprint'];
  /** The step of the weights this peer resumed from, if any. */
  readonly holdsStep?: number;
  readonly peerId?: string;
  readonly resumeKey?: string;
  /** The last membership seen, for a restarted server to restore. */
  readonly previous?: Membership;
}

/** A join request with only the fields that are set. */
export function joinRequest(fields: JoinFields): JoinRequest {
  const { previous } = fields;
  const optional = {
    token: fields.token,
    config: fields.config,
    fingerprint: fields.fingerprint,
    holdsStep: fields.holdsStep,
    peerId: fields.peerId || undefined,
    resumeKey: fields.resumeKey || undefined,
    previous:
      previous === undefined || previous.members.length === 0
        ? undefined
        : {
            generation: previous.generation,
            members: previous.members.map((m) => m.peerId),
          },
  };
  return {
    room: fields.room,
    kind: fields.kind,
    backend: fields.backend,
    ...Object.fromEntries(
      Object.entries(optional).filter(([, value]) => value !== undefined),
    ),
  };
}
