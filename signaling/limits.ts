/**
 * What the signaling server allows one connection and one room, and the
 * checks every incoming event passes before a handler sees it: the event
 * name is known, the payload is small enough and matches its schema, and
 * the sender has not exceeded its event rate. Each check fails with a typed
 * error that goes back to the sender alone.
 */
import {
  isTopkError,
  topkError,
  type TopkRingError,
} from '../shared/errors.ts';
import { parseWithSchema } from '../shared/schema-errors.ts';
import {
  CLIENT_EVENT_SCHEMAS,
  EVENTS_WITH_ACK,
  type ClientEventName,
} from '../shared/signaling-protocol.ts';

/** Server-wide limits; every field has a default in {@link DEFAULT_LIMITS}. */
export interface ServerLimits {
  /** Most rooms that exist at once. */
  readonly maxRooms: number;
  /** Most peers in one room, whatever the room's config says. */
  readonly maxPeersPerRoom: number;
  /** Most socket.io connections at once, joined or not. */
  readonly maxConnections: number;
  /** Largest payload of one event (its JSON size, roughly). */
  readonly maxEventBytes: number;
  /** Largest engine.io packet; above it the connection is closed. */
  readonly maxPacketBytes: number;
  /** Sustained events per second per connection. */
  readonly eventsPerSecond: number;
  /** Events a connection may send in a burst above the sustained rate. */
  readonly eventBurst: number;
  /** A connection that has not joined a room by then is closed. */
  readonly joinTimeoutMs: number;
  /** Silence after which the server drops a peer (socket.io ping). */
  readonly peerTimeoutMs: number;
  /** How long a restarted server keeps ring places for peers to rejoin. */
  readonly rejoinGraceMs: number;
  /** Sustained `suspect` events per second per connection... */
  readonly suspectsPerSecond: number;
  /** ...and the burst above it. */
  readonly suspectBurst: number;
  /**
   * Most ejections one peer's accusations may cause within
   * {@link ejectionWindowMs}; further accusations are refused
   * (`ERR_RATE_LIMIT`), so one peer cannot empty the ring.
   */
  readonly maxEjectionsPerAccuser: number;
  readonly ejectionWindowMs: number;
}

/** Defaults sized for a few dozen peers exchanging WebRTC negotiation. */
export const DEFAULT_LIMITS: ServerLimits = {
  maxRooms: 100,
  maxPeersPerRoom: 256,
  maxConnections: 1000,
  maxEventBytes: 64 * 1024,
  maxPacketBytes: 256 * 1024,
  eventsPerSecond: 50,
  eventBurst: 200,
  joinTimeoutMs: 30_000,
  peerTimeoutMs: 5000,
  rejoinGraceMs: 10_000,
  suspectsPerSecond: 2,
  suspectBurst: 10,
  maxEjectionsPerAccuser: 3,
  ejectionWindowMs: 60_000,
};

/**
 * A token bucket: `capacity` events at once, refilled at `ratePerSecond`.
 * The clock is injectable so tests need no sleeps.
 */
export class TokenBucket {
  #tokens: number;
  #lastMs: number;

  constructor(
    private readonly capacity: number,
    private readonly ratePerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = capacity;
    this.#lastMs = now();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const nowMs = this.now();
    const refill = ((nowMs - this.#lastMs) / 1000) * this.ratePerSecond;
    this.#tokens = Math.min(this.capacity, this.#tokens + refill);
    this.#lastMs = nowMs;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * Roughly the JSON size of `value` in bytes, counting no further than
 * `capBytes`: walks iteratively, so neither a huge nor a deeply nested
 * payload costs more than the cap or overflows the stack.
 */
export function payloadBytes(value: unknown, capBytes: number): number {
  const stack: unknown[] = [value];
  let total = 0;
  while (stack.length > 0 && total <= capBytes) {
    const item = stack.pop();
    if (typeof item === 'string') total += item.length + 2;
    else if (typeof item === 'number' || typeof item === 'boolean') total += 8;
    else if (item === null || item === undefined) total += 4;
    else if (ArrayBuffer.isView(item)) total += item.byteLength;
    else if (item instanceof ArrayBuffer) total += item.byteLength;
    else if (Array.isArray(item)) {
      total += 2 + item.length;
      for (const element of item) stack.push(element);
    } else if (typeof item === 'object') {
      for (const [key, element] of Object.entries(item)) {
        total += key.length + 4;
        stack.push(element);
      }
    } else total += 8;
  }
  return total;
}

/** A checked event, ready for its handler. */
export type CheckedEvent =
  | {
      readonly ok: true;
      readonly name: ClientEventName;
      readonly payload: unknown;
      readonly ack: ((reply: unknown) => void) | undefined;
    }
  | {
      readonly ok: false;
      readonly name: string;
      readonly error: TopkRingError;
      readonly ack: ((reply: unknown) => void) | undefined;
    };

/**
 * Checks one incoming event `[name, ...args]` as socket.io delivers it
 * (an acknowledgement callback, if any, last). Never throws: a failure is
 * returned with the ack, so the caller can answer the sender.
 */
export function checkEvent(
  packet: readonly unknown[],
  maxEventBytes: number,
): CheckedEvent {
  const rawName = packet[0];
  const { name, ack } = eventNameAndAck(packet);
  const args = packet.slice(1, ack === undefined ? undefined : -1);
  const fail = (error: TopkRingError): CheckedEvent => ({
    ok: false,
    name,
    error,
    ack,
  });

  if (!isClientEventName(rawName)) {
    return fail(
      topkError(
        'ERR_BAD_MESSAGE',
        `unknown event ${JSON.stringify(name)}: expected one of ` +
          Object.keys(CLIENT_EVENT_SCHEMAS).join(', '),
        { event: name },
      ),
    );
  }
  if (EVENTS_WITH_ACK.has(rawName) && ack === undefined) {
    return fail(
      topkError(
        'ERR_BAD_MESSAGE',
        `${rawName}: expected an acknowledgement callback, got none`,
        { event: rawName },
      ),
    );
  }
  if (args.length !== 1) {
    return fail(
      topkError(
        'ERR_BAD_MESSAGE',
        `${rawName}: expected exactly one payload, got ${args.length}`,
        { event: rawName, received: args.length },
      ),
    );
  }

  const size = payloadBytes(args[0], maxEventBytes);
  if (size > maxEventBytes) {
    return fail(
      topkError(
        'ERR_MESSAGE_TOO_LARGE',
        `${rawName}: expected a payload of at most ${maxEventBytes} bytes, ` +
          `got more`,
        { event: rawName, limit: maxEventBytes },
      ),
    );
  }

  try {
    const schema = CLIENT_EVENT_SCHEMAS[rawName];
    const payload = parseWithSchema(
      schema,
      args[0],
      'ERR_BAD_MESSAGE',
      rawName,
    );
    return { ok: true, name: rawName, payload, ack };
  } catch (error) {
    return fail(
      isTopkError(error)
        ? error
        : topkError('ERR_BAD_MESSAGE', `${rawName}: payload unreadable`, {
            event: rawName,
          }),
    );
  }
}

/**
 * The event name (cut to 64 characters, for messages and logs) and the
 * acknowledgement callback of a raw packet, without looking further.
 */
export function eventNameAndAck(packet: readonly unknown[]): {
  name: string;
  ack: ((reply: unknown) => void) | undefined;
} {
  const rawName = packet[0];
  const last = packet.length > 1 ? packet[packet.length - 1] : undefined;
  return {
    name: typeof rawName === 'string' ? rawName.slice(0, 64) : '?',
    ack:
      typeof last === 'function'
        ? (last as (reply: unknown) => void)
        : undefined,
  };
}

/** True when `name` is one of the events a peer may send. */
export function isClientEventName(name: unknown): name is ClientEventName {
  return typeof name === 'string' && Object.hasOwn(CLIENT_EVENT_SCHEMAS, name);
}
