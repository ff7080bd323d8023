/**
 * The peer-to-peer wire protocol: every message that one peer sends another
 * over a data channel. One envelope, one discriminated union keyed on
 * `type`, one line of meaning per message. The byte layout lives in
 * `codec.ts`; the signaling events (peer <-> server) live in
 * `signaling-protocol.ts`.
 */

/** The wire protocol version; a decoder refuses any other. */
export const PROTOCOL_VERSION = 1;

/** Fields every peer-to-peer message carries. */
export interface EnvelopeFields {
  /** Protocol version, always {@link PROTOCOL_VERSION} when sent. */
  readonly v: number;
  /** The room (training job) the sender believes it is in. */
  readonly room: string;
  /** The ring membership the message belongs to; others are never summed. */
  readonly generation: number;
  /** The training step the message belongs to. */
  readonly step: number;
  /** The hop of the all-reduce (algorithm-defined; 0 outside it). */
  readonly phase: number;
  /** The segment (or, in allgather, the origin ring index); 0 outside it. */
  readonly segment: number;
  /** The sender's server-assigned peer id. */
  readonly sender: string;
}

/**
 * A sparse slice of the index space: `indices` are relative to the start
 * of the slice, strictly increasing and below `length`.
 */
export interface SparsePayload {
  /** Number of coordinates the slice covers. */
  readonly length: number;
  /** Positions of the non-zeros, relative to the slice start. */
  readonly indices: Uint32Array;
  /** Values at those positions; same length as `indices`, all finite. */
  readonly values: Float32Array;
  /** Set when some peer's gradient was non-finite this step: skip it. */
  readonly skip: boolean;
}

/** A dense slice of the index space: one value per coordinate. */
export interface DensePayload {
  /** All values of the slice; all finite. */
  readonly values: Float32Array;
  /** Set when some peer's gradient was non-finite this step: skip it. */
  readonly skip: boolean;
}

/**
 * The generation handshake: at the start of every generation each peer's
 * hello travels the whole ring, so every peer learns where every other
 * stands before the first step (see peer/session/sync.ts).
 */
export interface HelloPayload {
  /** The ring index of the peer the hello is about (its origin). */
  readonly ringIndex: number;
  /** The next step that peer would run. */
  readonly step: number;
  /** True for a newcomer without weights: it needs a `state`. */
  readonly fresh: boolean;
  /** Hash of that peer's weights (empty when fresh). */
  readonly modelHash: string;
  /**
   * Hash of its weights before its last step (empty when it cannot take
   * that step back): what it would hold after a rollback.
   */
  readonly previousHash: string;
}

/**
 * Weights for a newcomer, from its previous ring neighbour, at the step
 * the generation starts from. The receiver checks them by hash.
 */
export interface StatePayload {
  /** The step these weights are the start of. */
  readonly step: number;
  /** Hash of `weights` as the model holds them. */
  readonly modelHash: string;
  /** Every trainable weight, flattened; all finite. */
  readonly weights: Float32Array;
}

/** A graceful goodbye: the sender is leaving and will send nothing more. */
export interface ByePayload {
  /** Why the sender leaves (free text for logs, at most 200 characters). */
  readonly reason: string;
}

/** Liveness probe; answered by nothing, expected every heartbeat period. */
export interface HeartbeatPayload {
  /** Sender's clock in milliseconds (for round-trip estimates only). */
  readonly sentAtMs: number;
}

/** The sender aborts `step` of `generation`; everything of it is dropped. */
export interface AbortPayload {
  /** Why (free text for logs, at most 200 characters). */
  readonly reason: string;
}

/** Every peer-to-peer message, discriminated by `type`. */
export type PeerMessage =
  /** A sparse slice: a partial sum, a reduced segment or a gathered TopK. */
  | (EnvelopeFields & {
      readonly type: 'sparse';
      readonly payload: SparsePayload;
    })
  /** A dense slice: a segment whose sparse form would be larger. */
  | (EnvelopeFields & {
      readonly type: 'dense';
      readonly payload: DensePayload;
    })
  /** One peer's place at the start of a generation. */
  | (EnvelopeFields & {
      readonly type: 'hello';
      readonly payload: HelloPayload;
    })
  /** Closes a channel gracefully. */
  | (EnvelopeFields & { readonly type: 'bye'; readonly payload: ByePayload })
  /** Keeps a channel known to be alive. */
  | (EnvelopeFields & {
      readonly type: 'heartbeat';
      readonly payload: HeartbeatPayload;
    })
  /** Aborts a step. */
  | (EnvelopeFields & {
      readonly type: 'abort';
      readonly payload: AbortPayload;
    })
  /** Hands a newcomer the ring's weights. */
  | (EnvelopeFields & {
      readonly type: 'state';
      readonly payload: StatePayload;
    });

/** The `type` of a peer message. */
export type PeerMessageType = PeerMessage['type'];

/** The payload of the message of type `T`. */
export type PayloadOf<T extends PeerMessageType> = Extract<
  PeerMessage,
  { type: T }
>['payload'];

/** The message types, in the order of their wire codes (see codec.ts). */
export const PEER_MESSAGE_TYPES: readonly PeerMessageType[] = [
  'sparse',
  'dense',
  'hello',
  'bye',
  'heartbeat',
  'abort',
  'state',
];

/** Longest model hash accepted on the wire. */
export const MAX_HASH_LENGTH = 64;

/** Longest room name or peer id accepted on the wire. */
export const MAX_NAME_LENGTH = 64;

/** Longest free-text reason accepted on the wire. */
export const MAX_REASON_LENGTH = 200;
