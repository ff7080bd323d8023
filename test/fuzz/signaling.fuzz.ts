import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import fc from 'fast-check';
import { io, type Socket } from 'socket.io-client';

import { ERROR_CODES, type ErrorCode } from '../../shared/errors.ts';
import {
  CLIENT_EVENT_SCHEMAS,
  EVENTS_WITH_ACK,
  type ClientEventName,
} from '../../shared/signaling-protocol.ts';
import { checkEvent } from '../../signaling/limits.ts';
import {
  startSignalingServer,
  type SignalingServer,
} from '../../signaling/server.ts';
import {
  assertTypedRejection,
  describeStats,
  fuzz,
  fuzzAsync,
} from '../helpers/fuzz.ts';
import {
  eventArbitrary,
  payloadFor,
  type FuzzEvent,
} from '../helpers/signaling-arbitraries.ts';

// Every signaling event handler under hostile input. First the check every
// event passes before a handler sees it (signaling/limits.ts), with random
// payloads for each event name; then random sequences of events from
// several raw clients against a real server on loopback. No input makes
// the server throw, hang or answer with anything but a typed refusal of a
// known code (never ERR_INTERNAL), and it serves a valid join afterwards.

const MAX_EVENT_BYTES = 4096;
const CHECK_CODES: readonly ErrorCode[] = [
  'ERR_BAD_MESSAGE',
  'ERR_MESSAGE_TOO_LARGE',
];
const KNOWN_CODES = new Set<string>(ERROR_CODES);
const ack = (): void => {};

/** The answer of checkEvent, thrown or returned, as a comparable value. */
function checkOutcome(packet: readonly unknown[]): string {
  try {
    const checked = checkEvent(packet, MAX_EVENT_BYTES);
    if (checked.ok) return `ok ${checked.name}`;
    assertTypedRejection(
      checked.error,
      CHECK_CODES,
      `checkEvent ${checked.name}`,
    );
    return checked.error.code;
  } catch (error) {
    // checkEvent promises never to throw.
    assert.fail(`checkEvent threw ${String(error)}`);
  }
}

describe('signaling event checks fuzz', () => {
  const names = Object.keys(CLIENT_EVENT_SCHEMAS) as ClientEventName[];
  for (const name of names) {
    it(`'${name}' with random payloads`, (t) => {
      const schema = CLIENT_EVENT_SCHEMAS[name];
      const stats = fuzz(
        fc.tuple(payloadFor(name), fc.boolean()),
        ([payload, withAck]) => {
          const packet = [name, payload, ...(withAck ? [ack] : [])];
          const outcome = checkOutcome(packet);
          assert.equal(checkOutcome(packet), outcome, 'the same answer twice');
          const checked = checkEvent(packet, MAX_EVENT_BYTES);
          if (!checked.ok) return;
          // What passed is what the schema accepts, with its ack.
          assert.ok(schema.safeParse(checked.payload).success);
          if (EVENTS_WITH_ACK.has(name)) assert.equal(checked.ack, ack);
        },
        { defaultRuns: 600 },
      );
      t.diagnostic(describeStats(`checkEvent ${name}`, stats));
    });
  }

  it('random names, argument counts and acks', (t) => {
    const stats = fuzz(
      eventArbitrary,
      ({ name, args, withAck }) => {
        const packet = [name, ...args, ...(withAck ? [ack] : [])];
        assert.equal(checkOutcome(packet), checkOutcome(packet));
      },
      { defaultRuns: 600 },
    );
    t.diagnostic(describeStats('checkEvent any event', stats));
  });
});

/** One action of a client in a fuzzed sequence. */
type Action =
  | {
      readonly client: number;
      readonly kind: 'emit';
      readonly event: FuzzEvent;
    }
  | { readonly client: number; readonly kind: 'reconnect' };

const CLIENTS = 3;

const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
  {
    arbitrary: fc.record({
      client: fc.nat(CLIENTS - 1),
      kind: fc.constant('emit' as const),
      event: eventArbitrary,
    }),
    weight: 30,
  },
  fc.record({
    client: fc.nat(CLIENTS - 1),
    kind: fc.constant('reconnect' as const),
  }),
);

/** A raw client that records every problem instead of throwing. */
class FuzzClient {
  socket: Socket;
  readonly problems: string[] = [];
  readonly #url: string;

  private constructor(url: string, socket: Socket) {
    this.#url = url;
    this.socket = socket;
    this.#watch();
  }

  static async connect(url: string): Promise<FuzzClient> {
    return new FuzzClient(url, await openSocket(url));
  }

  /** Emits `event`; resolves with its ack's reply, or at once without ack. */
  emit(event: FuzzEvent): Promise<unknown> | undefined {
    if (!event.withAck) {
      this.socket.emit(event.name, ...event.args);
      return undefined;
    }
    return new Promise((resolve) =>
      this.socket.emit(event.name, ...event.args, resolve),
    );
  }

  /**
   * Drops the connection without a goodbye and opens a new one; resolves
   * once the server has handled the old one's departure.
   */
  async reconnect(
    departed: (socketId: string) => Promise<void>,
  ): Promise<void> {
    const gone = departed(this.socket.id ?? '');
    this.socket.disconnect();
    await gone;
    this.socket = await openSocket(this.#url);
    this.#watch();
  }

  #watch(): void {
    this.socket.on('rejected', (rejection: unknown) => {
      const problem = wireErrorProblem(rejection, 'rejected');
      if (problem !== undefined) this.problems.push(problem);
    });
    this.socket.on('membership', (membership: unknown) => {
      const members = (membership as { members?: { ringIndex: number }[] })
        .members;
      if (
        !Array.isArray(members) ||
        members.some((member, i) => member.ringIndex !== i)
      ) {
        this.problems.push(
          `a malformed membership ${JSON.stringify(membership)}`,
        );
      }
    });
  }
}

function openSocket(url: string): Promise<Socket> {
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

/** What is wrong with a refusal from the server, if anything. */
function wireErrorProblem(value: unknown, where: string): string | undefined {
  const code = (value as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !KNOWN_CODES.has(code)) {
    return `${where}: untyped refusal ${JSON.stringify(value)}`;
  }
  if (code === 'ERR_INTERNAL') {
    return `${where}: ERR_INTERNAL ${JSON.stringify(value)}`;
  }
  return undefined;
}

/** What is wrong with an ack reply, if anything. */
function replyProblem(reply: unknown, event: string): string | undefined {
  if (typeof reply !== 'object' || reply === null || !('ok' in reply)) {
    return `${event}: a reply without ok: ${JSON.stringify(reply)}`;
  }
  if (reply.ok === true) return undefined;
  return wireErrorProblem((reply as { error?: unknown }).error, event);
}

/** Rejects after `timeoutMs` unless `promise` settles first. */
async function within<T>(
  promise: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer to ${what} within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('signaling server fuzz (loopback)', () => {
  let server: SignalingServer;
  let clients: FuzzClient[] = [];
  // The server's departure handling of each connection, by socket id (the
  // client's id is the server's): its own listener runs first.
  const departures = new Map<string, Promise<void>>();
  const departed = (socketId: string): Promise<void> =>
    departures.get(socketId) ??
    Promise.reject(new Error(`unknown socket ${socketId}`));

  before(async () => {
    server = await startSignalingServer({
      rooms: { main: { limits: { maxPeers: 3 } } },
      allowPeerConfig: true,
      dashboard: false,
      onWarning: () => {},
      limits: {
        maxRooms: 3,
        maxEventBytes: MAX_EVENT_BYTES,
        // The rate limit has its own tests; here it would hide handlers.
        eventsPerSecond: 1e9,
        eventBurst: 1e9,
      },
    });
    server.io.on('connection', (socket) => {
      departures.set(
        socket.id,
        new Promise((resolve) => socket.once('disconnect', () => resolve())),
      );
    });
    clients = await Promise.all(
      Array.from({ length: CLIENTS }, () => FuzzClient.connect(server.url)),
    );
  });

  after(async () => {
    for (const client of clients) client.socket.disconnect();
    await server.close();
  });

  it('random event sequences from several clients', async (t) => {
    let events = 0;
    const stats = await fuzzAsync(
      fc.array(actionArbitrary, { minLength: 1, maxLength: 12 }),
      async (actions) => {
        const replies: Promise<string | undefined>[] = [];
        for (const action of actions) {
          const client = clients[action.client];
          if (action.kind === 'reconnect') {
            // Answers still on their way would be lost with the connection.
            await Promise.all(replies);
            await client.reconnect(departed);
            continue;
          }
          events++;
          const { event } = action;
          const reply = client.emit(event);
          if (reply === undefined) continue;
          const answered = reply.then((value) =>
            replyProblem(value, event.name),
          );
          // Join and leave always answer; others answer only a refusal.
          if (EVENTS_WITH_ACK.has(event.name as ClientEventName)) {
            replies.push(within(answered, 5000, event.name));
          }
        }
        // Every client leaves: its answer comes after all it sent before.
        for (const client of clients) {
          events++;
          const left = client.emit({
            name: 'leave',
            args: [{}],
            withAck: true,
          });
          replies.push(
            within(left ?? Promise.resolve(), 5000, 'leave').then((value) =>
              replyProblem(value, 'leave'),
            ),
          );
        }
        const problems = (await Promise.all(replies)).filter(
          (problem) => problem !== undefined,
        );
        for (const client of clients)
          problems.push(...client.problems.splice(0));
        assert.deepEqual(problems, []);
        for (const status of server.roomStatuses()) {
          assert.equal(
            status.peers.length,
            0,
            `room ${status.room} kept peers`,
          );
        }
      },
      // About 8 events a sequence, the 3 closing leaves included.
      { defaultRuns: 1200, inputsPerCase: 8, maxInputMs: 5000 },
    );
    t.diagnostic(
      `${describeStats('signaling server sequences', stats)}, ${events} events`,
    );

    // The server still serves a well-formed join.
    const reply = await within(
      clients[0].emit({
        name: 'join',
        args: [{ room: 'main', kind: 'node', backend: 'wasm' }],
        withAck: true,
      }) ?? Promise.resolve(),
      5000,
      'join',
    );
    assert.equal((reply as { ok?: unknown }).ok, true, JSON.stringify(reply));
  });
});
