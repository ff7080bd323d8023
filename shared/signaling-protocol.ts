/**
 * The signaling protocol between a peer and the signaling server, declared
 * once and used through socket.io's TypeScript generics on both sides:
 *
 *   peer -> server   join, signal, report, leave, suspect, stalled, finish
 *   server -> peer   membership, signal, mismatch, ejected, rejected
 *
 * Every payload a peer sends has a zod schema here; the server validates
 * each incoming event against it (with a size cap) before anything reads
 * it. Server-to-peer payloads are plain types, checked by the client.
 *
 * Browser-safe: no node: imports.
 */
import { z } from 'zod';

import type { RoomConfig } from './config.ts';
import type { ErrorCode } from './errors.ts';
import { ModelFingerprintSchema } from './fingerprint.ts';

/** Peer ids are server-assigned: 8-64 URL-safe characters. */
export const PeerIdSchema = z
  .string({ error: 'a peer id (8-64 of A-Z a-z 0-9 _ -)' })
  .regex(/^[A-Za-z0-9_-]{8,64}$/);

/** Room names: 1-64 characters, letters, digits, `.`, `_`, `-`. */
export const RoomNameSchema = z
  .string({ error: 'a room name (1-64 of A-Z a-z 0-9 . _ -)' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);

/** Node process or browser tab. */
export const PeerKindSchema = z.enum(['node', 'browser']);
/** A peer's kind. */
export type PeerKind = z.output<typeof PeerKindSchema>;

/** The TensorFlow.js backend a peer trains on ("wasm", "webgl", ...). */
export const BackendSchema = z
  .string({ error: 'a backend name (1-32 of a-z 0-9 . _ -)' })
  .regex(/^[A-Za-z0-9._-]{1,32}$/);

const generation = z
  .number({ error: 'a generation (integer >= 0)' })
  .int()
  .min(0);

/** The last membership a reconnecting peer saw (case 8). */
const PreviousMembershipSchema = z.strictObject({
  generation,
  members: z.array(PeerIdSchema).min(1).max(1024),
});

/** `join`: enter a room. */
export const JoinRequestSchema = z.strictObject({
  room: RoomNameSchema,
  /** A shared secret or a signed room token, when the server wants one. */
  token: z.string().max(2048).optional(),
  kind: PeerKindSchema,
  backend: BackendSchema,
  /** The id to keep when reconnecting; new peers leave it out. */
  peerId: PeerIdSchema.optional(),
  /** The secret from the first join's reply, proving `peerId` is ours. */
  resumeKey: z.string().min(16).max(128).optional(),
  /** Lets a restarted server restore the ring as it was. */
  previous: PreviousMembershipSchema.optional(),
  /** A config for a room that does not exist yet (when the server allows
   * it), or the config the peer expects; validated as a room config. */
  config: z.unknown().optional(),
  fingerprint: ModelFingerprintSchema.optional(),
  /**
   * The step of the weights a peer resumed from a checkpoint brings; left
   * out by a newcomer. A room whose run finished at a later step, with
   * nobody left to hand on the final weights, refuses it
   * (`ERR_RUN_FINISHED`) rather than let it train the rest alone.
   */
  holdsStep: z
    .number({ error: 'a step (an integer >= 0)' })
    .int()
    .min(0)
    .optional(),
});
/** The payload of `join`. */
export type JoinRequest = z.output<typeof JoinRequestSchema>;

/** A JSON scalar inside signal data. */
const scalar = z.union([
  z.string().max(16_384),
  z.number(),
  z.boolean(),
  z.null(),
]);
/** WebRTC negotiation data (offer, answer, candidate, ...). Kept shallow:
 * simple-peer's signal objects are at most two levels deep. */
const SignalDataSchema = z.record(
  z.string().max(64),
  z.union([
    scalar,
    z.record(z.string().max(64), z.union([scalar, z.array(scalar).max(64)])),
  ]),
);
/** WebRTC negotiation data as relayed; opaque to the server. */
export type SignalData = z.output<typeof SignalDataSchema>;

/** `signal`: negotiation data for a ring neighbour. */
export const SignalRequestSchema = z.strictObject({
  to: PeerIdSchema,
  /** The generation the negotiation belongs to; a stale one is dropped. */
  generation,
  data: SignalDataSchema,
});
/** The payload of a peer's `signal`. */
export type SignalRequest = z.output<typeof SignalRequestSchema>;

const nonNegative = (what: string) =>
  z.number({ error: `${what} (a finite number >= 0)` }).min(0);
const count = (what: string) =>
  z
    .number({ error: `${what} (an integer >= 0)` })
    .int()
    .min(0);

/** A weights hash as peers report it (trainer.modelHash()). */
const ModelHashSchema = z
  .string({ error: 'a hash (1-128 of A-Z a-z 0-9 _ -)' })
  .regex(/^[A-Za-z0-9_-]{1,128}$/);

/** `report`: a peer's progress, kept by the server for status, checks and
 * the dashboard's history. Byte counts are cumulative since the peer
 * started; the server derives bytes per step from their differences. */
export const PeerReportSchema = z.strictObject({
  step: count('a step'),
  generation: generation.optional(),
  epoch: count('an epoch').optional(),
  loss: z.number({ error: 'a finite loss or null' }).nullable().optional(),
  accuracy: z.number().min(0).max(1).nullable().optional(),
  bytesSent: count('a byte count'),
  bytesReceived: count('a byte count'),
  /** Hash of the weights after `step`; compared across peers. */
  modelHash: ModelHashSchema.optional(),
  backend: BackendSchema.optional(),
  timing: z
    .strictObject({
      computeMs: nonNegative('a time'),
      selectMs: nonNegative('a time'),
      communicateMs: nonNegative('a time'),
    })
    .optional(),
  /** Cumulative bytes a dense ring all-reduce would have sent by `step`:
   * the baseline the dashboard compares `bytesSent` with. */
  denseBytes: count('a byte count').optional(),
  /** Entries this peer sends per step (K) and the model's size (n). */
  k: count('an entry count').optional(),
  n: count('a model size').optional(),
  /** The measured `||acc - TopK(acc)|| / ||acc||` of the last step. */
  compressionError: nonNegative('a compression error').optional(),
});
/** The payload of `report`. */
export type PeerReport = z.output<typeof PeerReportSchema>;

/** `leave`: a graceful goodbye. */
export const LeaveRequestSchema = z.strictObject({
  reason: z.string().max(200).optional(),
});
/** The payload of `leave`. */
export type LeaveRequest = z.output<typeof LeaveRequestSchema>;

/**
 * Why a peer accuses a ring neighbour: `silent` (no bytes on the data
 * channel for peerTimeoutMs), `malformed` (a message the codec, framing
 * or all-reduce refused), `unreachable` (the channel closed without a
 * goodbye, or never opened), `straggler` (the previous peer missed the
 * step's straggler deadline).
 */
export const SUSPECT_REASONS = [
  'silent',
  'malformed',
  'unreachable',
  'straggler',
] as const;
/** A reason of {@link SUSPECT_REASONS}. */
export type SuspectReason = (typeof SUSPECT_REASONS)[number];

/** `suspect`: a ring neighbour of this generation misbehaves. */
export const SuspectRequestSchema = z.strictObject({
  /** The generation the accuser saw it in; only the current one counts. */
  generation,
  /** The accused: the accuser's next or previous peer. */
  peerId: PeerIdSchema,
  reason: z.enum(SUSPECT_REASONS),
  /** What was seen, for people (logs, status). */
  detail: z.string().max(200).optional(),
  /** `straggler`: the step whose deadline was missed. */
  step: count('a step').optional(),
});
/** The payload of `suspect`. */
export type SuspectRequest = z.output<typeof SuspectRequestSchema>;

/**
 * `stalled`: this peer's step in `generation` ran out of `stepTimeoutMs`
 * with no neighbour silent, gone or misbehaving to blame (a message that
 * never came). The server starts a new generation of the same members,
 * once per generation, so the ring redoes the step instead of waiting.
 */
export const StalledRequestSchema = z.strictObject({
  generation,
  step: count('a step'),
});
/** The payload of `stalled`. */
export type StalledRequest = z.output<typeof StalledRequestSchema>;

/**
 * `finish`: this peer completed the run's last step (`step`) in
 * `generation`, with weights `modelHash`. The server remembers the
 * finished run, and before the peer leaves it may ask it to wait: a ring
 * member that is out of the ring (benched) is put back so that the
 * finished peers hand it the final weights.
 */
export const FinishRequestSchema = z.strictObject({
  generation,
  step: count('a step'),
  modelHash: ModelHashSchema,
});
/** The payload of `finish`. */
export type FinishRequest = z.output<typeof FinishRequestSchema>;

/** Schemas of every peer-to-server event, by name. */
export const CLIENT_EVENT_SCHEMAS = {
  join: JoinRequestSchema,
  signal: SignalRequestSchema,
  report: PeerReportSchema,
  leave: LeaveRequestSchema,
  suspect: SuspectRequestSchema,
  stalled: StalledRequestSchema,
  finish: FinishRequestSchema,
} as const;

/** The name of a peer-to-server event. */
export type ClientEventName = keyof typeof CLIENT_EVENT_SCHEMAS;

/** Events whose sender must pass an acknowledgement callback. */
export const EVENTS_WITH_ACK: ReadonlySet<ClientEventName> = new Set([
  'join',
  'leave',
  'suspect',
  'stalled',
  'finish',
]);

/** An error as it travels: the fields of a TopkRingError. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly context?: Readonly<Record<string, unknown>>;
}

/** One ring position of a membership. */
export interface Member {
  readonly peerId: string;
  readonly ringIndex: number;
  readonly kind: PeerKind;
  readonly backend: string;
  /** False while a restarted server waits for this member to rejoin. */
  readonly connected: boolean;
}

/** A run that some peer completed: its last step and final weights. */
export interface FinishedRun {
  readonly step: number;
  readonly modelHash: string;
}

/** A membership: who is in the ring, in ring order, in which generation. */
export interface Membership {
  readonly room: string;
  readonly generation: number;
  /** Sorted by ringIndex, which runs 0..members.length-1. */
  readonly members: readonly Member[];
  /**
   * Set once a peer of the room completed the run: a member whose ring
   * holds only older weights is stale and stops (`ERR_RUN_FINISHED`)
   * instead of training the last steps on its own.
   */
  readonly finished?: FinishedRun;
}

/** The reply to `join`. */
export type JoinReply =
  | {
      readonly ok: true;
      readonly peerId: string;
      /** Present this with `peerId` when reconnecting. */
      readonly resumeKey: string;
      readonly config: RoomConfig;
      readonly membership: Membership;
    }
  | { readonly ok: false; readonly error: WireError };

/**
 * The reply to `suspect`: the accused was taken out of the ring
 * (`ejected`, a new generation follows), or a straggler accusation was
 * counted (`strike`, with the accused's strikes in the window).
 */
export type SuspectReply =
  | {
      readonly ok: true;
      readonly verdict: 'ejected' | 'strike';
      readonly strikes: number;
    }
  | { readonly ok: false; readonly error: WireError };

/**
 * The reply to `stalled`: the server started a new generation of the same
 * members (`restarted`), or the ring had moved on already (`late`: a newer
 * generation exists, the peer is alone, or a restarted server is waiting
 * for its peers), and the peer follows the membership it gets.
 */
export type StalledReply =
  | {
      readonly ok: true;
      readonly verdict: 'restarted' | 'late';
      /** The room's generation after the request. */
      readonly generation: number;
    }
  | { readonly ok: false; readonly error: WireError };

/**
 * The reply to `finish`: the peer may leave (`done`), or peers took a
 * ring place since the generation it finished in (`wait`: a benched
 * member put back to receive the final weights, or a newcomer) and the
 * peer follows the new membership to hand them on, then finishes again.
 */
export type FinishReply =
  | {
      readonly ok: true;
      readonly verdict: 'done' | 'wait';
      /** The room's generation after the request. */
      readonly generation: number;
    }
  | { readonly ok: false; readonly error: WireError };

/** What the server tells a peer it took out of the ring, and why. */
export interface Ejection {
  readonly room: string;
  /** The generation that starts without the peer. */
  readonly generation: number;
  readonly peerId: string;
  readonly reason: SuspectReason;
  readonly detail: string;
  /** The ring neighbour that accused it. */
  readonly accuser: string;
  /** The peer is put back in the ring after this long, if connected. */
  readonly benchMs: number;
}

/** The reply to `leave`. */
export type LeaveReply =
  { readonly ok: true } | { readonly ok: false; readonly error: WireError };

/** A relayed `signal`, with the sender stamped by the server. */
export interface RelayedSignal {
  /** The sender's peer id, set by the server, never by the sender. */
  readonly from: string;
  readonly generation: number;
  readonly data: SignalData;
}

/** Peers whose weights differ at the same step. */
export interface HashMismatch {
  readonly room: string;
  readonly step: number;
  readonly hashes: readonly { peerId: string; modelHash: string }[];
}

/** A refused event: which one, and why. */
export interface Rejection extends WireError {
  /** The event name that was refused (as sent, cut to 64 characters). */
  readonly event: string;
}

/**
 * Events a peer sends. Acknowledgement callbacks come last. `suspect`
 * tells the server that a ring neighbour misbehaves on the data channel
 * (peers that both still reach the server but not each other).
 */
export interface ClientToServerEvents {
  join: (request: JoinRequest, ack: (reply: JoinReply) => void) => void;
  signal: (request: SignalRequest) => void;
  report: (report: PeerReport) => void;
  leave: (request: LeaveRequest, ack: (reply: LeaveReply) => void) => void;
  suspect: (
    request: SuspectRequest,
    ack: (reply: SuspectReply) => void,
  ) => void;
  stalled: (
    request: StalledRequest,
    ack: (reply: StalledReply) => void,
  ) => void;
  finish: (request: FinishRequest, ack: (reply: FinishReply) => void) => void;
}

/** Events the server sends. */
export interface ServerToClientEvents {
  /** The room's membership changed (or a member reconnected). */
  membership: (membership: Membership) => void;
  /** Negotiation data from a ring neighbour. */
  signal: (signal: RelayedSignal) => void;
  /** Weights of the room's peers disagree at a step. */
  mismatch: (mismatch: HashMismatch) => void;
  /** This peer was taken out of the ring (benched), and why. */
  ejected: (ejection: Ejection) => void;
  /** An event without an acknowledgement was refused, or the server is
   * dropping this connection. */
  rejected: (rejection: Rejection) => void;
}

/** Checks a `membership` event from the server before a client uses it. */
export const MembershipSchema: z.ZodType<Membership> = z.object({
  room: z.string(),
  generation,
  finished: z
    .object({ step: z.number().int().min(0), modelHash: z.string() })
    .optional(),
  members: z.array(
    z.object({
      peerId: z.string(),
      ringIndex: z.number().int().min(0),
      kind: PeerKindSchema,
      backend: z.string(),
      connected: z.boolean(),
    }),
  ),
});

/** Checks an `ejected` event from the server before a client uses it. */
export const EjectionSchema: z.ZodType<Ejection> = z.object({
  room: z.string(),
  generation,
  peerId: z.string(),
  reason: z.enum(SUSPECT_REASONS),
  detail: z.string(),
  accuser: z.string(),
  benchMs: z.number().min(0),
});

/** Checks a relayed `signal` from the server before a client uses it. */
export const RelayedSignalSchema: z.ZodType<RelayedSignal> = z.object({
  from: z.string(),
  generation,
  data: SignalDataSchema,
});

/** A peer's place in a membership. */
export interface RingPosition {
  readonly ringIndex: number;
  /** Ring size. */
  readonly size: number;
  /** The peer this one sends to; itself when alone. */
  readonly next: string;
  /** The peer this one receives from; itself when alone. */
  readonly prev: string;
}

/** Where `peerId` sits in `membership`, or null when it is not a member. */
export function ringPosition(
  membership: Membership,
  peerId: string,
): RingPosition | null {
  const size = membership.members.length;
  const ringIndex = membership.members.findIndex((m) => m.peerId === peerId);
  if (ringIndex < 0) return null;
  const at = (i: number) => membership.members[(i + size) % size]!.peerId;
  return { ringIndex, size, next: at(ringIndex + 1), prev: at(ringIndex - 1) };
}

/** One peer as `GET /api/rooms/:room` shows it. */
export interface PeerStatus {
  readonly id: string;
  readonly kind: PeerKind;
  readonly ringIndex: number;
  readonly connected: boolean;
  readonly backend: string;
  readonly step: number | null;
  readonly epoch: number | null;
  readonly loss: number | null;
  readonly accuracy: number | null;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** The last hash the peer reported, and the step it was taken at. */
  readonly modelHash: string | null;
  readonly modelHashStep: number | null;
  readonly timing: PeerReport['timing'] | null;
  /** When the last report arrived (ms since the Unix epoch), or null. */
  readonly updatedAtMs: number | null;
}

/** A room as `GET /api/rooms/:room` shows it. */
export interface RoomStatus {
  readonly room: string;
  readonly generation: number;
  /** The highest step any peer of the room has reported. */
  readonly step: number;
  /** Where the config came from: the server, its default, or a peer. */
  readonly configSource: 'server' | 'default' | 'peer';
  /** The config, with ICE credentials hidden. */
  readonly config: RoomConfig;
  readonly peers: readonly PeerStatus[];
  /** True while a restarted server waits for the ring's peers to rejoin. */
  readonly restoring: boolean;
  /** The latest step at which two or more peers reported a model hash. */
  readonly hashCheck: {
    readonly step: number;
    readonly agreed: boolean;
    readonly peers: number;
  } | null;
  /** Steps at which peers' weights disagreed (most recent last, bounded). */
  readonly mismatches: readonly HashMismatch[];
  /** All mismatches seen since the room was created. */
  readonly mismatchCount: number;
  /** The latest automatic resyncs after a mismatch (most recent last,
   * bounded). */
  readonly resyncs: readonly ResyncStatus[];
  /** All resyncs since the room was created. */
  readonly resyncCount: number;
  /** Peers taken out of the ring, waiting to be put back. */
  readonly benched: readonly BenchedStatus[];
  /** The latest ejections (most recent last, bounded). */
  readonly ejections: readonly EjectionStatus[];
  /** All ejections since the room was created. */
  readonly ejectionCount: number;
  /** The latest restarts of a stalled ring (most recent last, bounded). */
  readonly stalls: readonly StallStatus[];
  /** All restarts of a stalled ring since the room was created. */
  readonly stallCount: number;
  /** The run as the first peer to complete it reported it, or null. */
  readonly finished: (FinishedRun & { readonly atMs: number }) | null;
}

/**
 * A stalled ring restarted: `peerId` reported that `step` ran out of time
 * in the generation before `generation`, which the server then started
 * with the same members.
 */
export interface StallStatus {
  readonly step: number;
  readonly generation: number;
  readonly peerId: string;
  readonly atMs: number;
}

/**
 * A resync: the weights of the ring's peers disagreed at `step`, and the
 * server started `generation`, of the same members, whose handshake hands
 * the weights most peers hold to the others (`peers`, as the hashes at
 * `step` said).
 */
export interface ResyncStatus {
  readonly step: number;
  readonly generation: number;
  readonly peers: readonly string[];
  readonly atMs: number;
}

/** A benched peer as the status shows it. */
export interface BenchedStatus {
  readonly id: string;
  readonly kind: PeerKind;
  readonly connected: boolean;
  readonly reason: SuspectReason;
  /** When the server puts it back (ms since the Unix epoch). */
  readonly untilMs: number;
  /** Times this peer was ejected from the room's ring. */
  readonly ejections: number;
}

/** One ejection as the status shows it. */
export interface EjectionStatus {
  readonly generation: number;
  readonly peerId: string;
  readonly accuser: string;
  readonly reason: SuspectReason;
  readonly detail: string;
  /** The room's step when it happened. */
  readonly step: number;
  readonly atMs: number;
}
