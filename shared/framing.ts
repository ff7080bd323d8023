/**
 * Framing: splits each logical message into chunks small enough for every
 * data channel we talk to, and puts them back together on the other side.
 *
 * One binding silently closes the channel on a 1 MiB message, the other
 * throws, and Chromium advertises 256 KiB as its maximum; a sparse gradient
 * of a mid-sized model is ~1 MB. So every message travels as chunks of at
 * most {@link MAX_CHUNK_BYTES} (default {@link DEFAULT_CHUNK_BYTES}), each
 * with a fixed little-endian header of {@link FRAME_HEADER_BYTES}:
 *
 *   offset  size  field
 *        0     1  magic (0xC7): rejects bytes that are not ours at once
 *        1     1  kind: 0 = chunk, 1 = bye (graceful goodbye, header only)
 *        2     2  reserved, must be 0
 *        4     4  message id (per sender, wraps at 2^32)
 *        8     4  sequence number of this chunk, 0-based
 *       12     4  chunk count of the message (no 255-chunk limit)
 *       16     4  total payload bytes of the message
 *       20     4  stride: payload bytes of every chunk but the last
 *
 * With the stride on every chunk, a chunk's place in the message is known
 * on its own, so chunks may arrive in any order and chunks of different
 * messages may interleave. Each payload byte is copied once on each side:
 * into its chunk when sending, into the message buffer when reassembling
 * (a one-chunk message is handed on as a view, without a copy).
 *
 * Browser-safe: Uint8Array and DataView only.
 */
import { topkError, type TopkRingError } from './errors.ts';

/** Bytes of the header in front of every chunk. */
export const FRAME_HEADER_BYTES = 24;

/** Largest chunk, header included: the browser's advertised maximum. */
export const MAX_CHUNK_BYTES = 256 * 1024;

/** Default chunk size, header included: safe with every peer we know. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** Default cap on one reassembled message (matches the codec's cap). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const MAGIC = 0xc7;
const KIND_CHUNK = 0;
const KIND_BYE = 1;
const MAX_U32 = 0xffffffff;
/** Rejected message ids remembered per source, so their later chunks are
 * discarded quietly instead of each raising the same error again. */
const REJECTED_IDS_KEPT = 64;

/** Options of a {@link Framer}. */
export interface FramerOptions {
  /** Largest chunk in bytes, header included; default 64 KiB, max 256 KiB. */
  readonly maxChunkBytes?: number;
  /** Largest message the framer agrees to send; default 64 MiB. */
  readonly maxMessageBytes?: number;
}

/** One message cut into chunks; each chunk is built when asked for. */
export interface FramedMessage {
  /** The id shared by all chunks of the message. */
  readonly messageId: number;
  /** How many chunks the message takes (at least 1). */
  readonly chunkCount: number;
  /** Chunk `sequence` with its header: a new buffer, safe to hand over. */
  chunkAt(sequence: number): Uint8Array<ArrayBuffer>;
}

/** The sending half: numbers messages and cuts them into chunks. */
export class Framer {
  readonly #strideBytes: number;
  readonly #maxMessageBytes: number;
  #nextId = 0;

  constructor(options: FramerOptions = {}) {
    const maxChunkBytes = options.maxChunkBytes ?? DEFAULT_CHUNK_BYTES;
    checkChunkBytes(maxChunkBytes);
    this.#strideBytes = maxChunkBytes - FRAME_HEADER_BYTES;
    this.#maxMessageBytes = checkMessageCap(
      options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    );
  }

  /** Payload bytes carried by every chunk but the last. */
  get strideBytes(): number {
    return this.#strideBytes;
  }

  /**
   * Frames `message`. Throws `ERR_MESSAGE_TOO_LARGE` when it is above the
   * cap: refusing here beats having the receiver drop it half-way.
   */
  frame(message: Uint8Array): FramedMessage {
    if (message.byteLength > this.#maxMessageBytes) {
      throw topkError(
        'ERR_MESSAGE_TOO_LARGE',
        `Framer.frame: expected a message of at most ` +
          `${this.#maxMessageBytes} bytes, got ${message.byteLength}`,
        { limit: this.#maxMessageBytes, received: message.byteLength },
      );
    }
    const messageId = this.#nextId;
    this.#nextId = messageId === MAX_U32 ? 0 : messageId + 1;
    const stride = this.#strideBytes;
    const chunkCount = Math.max(1, Math.ceil(message.byteLength / stride));
    return {
      messageId,
      chunkCount,
      chunkAt: (sequence) => {
        if (!Number.isInteger(sequence) || sequence < 0) {
          throw chunkIndexError(sequence, chunkCount);
        }
        if (sequence >= chunkCount) throw chunkIndexError(sequence, chunkCount);
        const start = sequence * stride;
        const payload = message.subarray(start, start + stride);
        const chunk = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
        writeHeader(chunk, KIND_CHUNK, messageId, sequence, chunkCount, {
          totalBytes: message.byteLength,
          strideBytes: stride,
        });
        chunk.set(payload, FRAME_HEADER_BYTES);
        return chunk;
      },
    };
  }

  /** A goodbye frame: the sender will send nothing more. */
  bye(): Uint8Array<ArrayBuffer> {
    const frame = new Uint8Array(FRAME_HEADER_BYTES);
    writeHeader(frame, KIND_BYE, 0, 0, 0, { totalBytes: 0, strideBytes: 0 });
    return frame;
  }
}

/** Limits of a {@link Reassembler}. */
export interface ReassemblerOptions {
  /** Largest message accepted, in bytes; default 64 MiB. */
  readonly maxMessageBytes?: number;
  /** Most messages being reassembled at once, all sources; default 16. */
  readonly maxPartialMessages?: number;
  /** Most bytes held by partial messages, all sources; default 2 caps. */
  readonly maxPartialBytes?: number;
}

/** What one chunk completed. */
export type ReassembleResult =
  /** A whole message: a fresh buffer, or a view of a one-chunk message. */
  | { readonly kind: 'message'; readonly bytes: Uint8Array }
  /** Part of a message that is not complete yet. */
  | { readonly kind: 'pending' }
  /** A chunk of a message rejected earlier: dropped without a new error. */
  | { readonly kind: 'discarded' }
  /** The sender said goodbye. */
  | { readonly kind: 'bye' };

interface Partial {
  readonly totalBytes: number;
  readonly chunkCount: number;
  readonly strideBytes: number;
  readonly buffer: Uint8Array;
  readonly received: Uint8Array;
  receivedCount: number;
}

interface SourceState {
  readonly partials: Map<number, Partial>;
  readonly rejected: Set<number>;
}

const PENDING: ReassembleResult = Object.freeze({ kind: 'pending' });
const DISCARDED: ReassembleResult = Object.freeze({ kind: 'discarded' });
const BYE: ReassembleResult = Object.freeze({ kind: 'bye' });

/**
 * The receiving half: validates chunks and reassembles messages, per source
 * (a remote peer). Invalid input raises a {@link TopkRingError}
 * (`ERR_BAD_MESSAGE`, `ERR_MESSAGE_TOO_LARGE`) and drops that message;
 * nothing else is affected.
 */
export class Reassembler {
  readonly #maxMessageBytes: number;
  readonly #maxPartialMessages: number;
  readonly #maxPartialBytes: number;
  readonly #sources = new Map<string, SourceState>();
  #partialCount = 0;
  #partialBytes = 0;

  constructor(options: ReassemblerOptions = {}) {
    this.#maxMessageBytes = checkMessageCap(
      options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    );
    this.#maxPartialMessages = options.maxPartialMessages ?? 16;
    this.#maxPartialBytes =
      options.maxPartialBytes ?? 2 * this.#maxMessageBytes;
    if (
      !Number.isSafeInteger(this.#maxPartialMessages) ||
      this.#maxPartialMessages < 1
    ) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `Reassembler: maxPartialMessages must be an integer >= 1, got ` +
          `${String(this.#maxPartialMessages)}`,
        { maxPartialMessages: this.#maxPartialMessages },
      );
    }
  }

  /** Messages being reassembled now, all sources. */
  get partialCount(): number {
    return this.#partialCount;
  }

  /** Bytes reserved by messages being reassembled, all sources. */
  get partialBytes(): number {
    return this.#partialBytes;
  }

  /**
   * Takes one chunk from `source`. Returns the completed message, or what
   * else the chunk was; throws `ERR_BAD_MESSAGE` / `ERR_MESSAGE_TOO_LARGE`
   * for a chunk that breaks the format or a limit.
   */
  accept(chunk: Uint8Array, source = ''): ReassembleResult {
    const header = readHeader(chunk);
    if (header.kind === KIND_BYE) return BYE;
    const state = this.#state(source);
    const { messageId } = header;
    if (state.rejected.has(messageId)) return DISCARDED;

    const partial = state.partials.get(messageId);
    try {
      const payload = checkChunk(chunk, header, partial, this.#maxMessageBytes);
      if (partial === undefined && header.chunkCount === 1) {
        return { kind: 'message', bytes: payload };
      }
      const target = partial ?? this.#open(state, header);
      target.buffer.set(payload, header.sequence * target.strideBytes);
      target.received[header.sequence] = 1;
      target.receivedCount++;
      if (target.receivedCount < target.chunkCount) return PENDING;
      this.#close(state, messageId, target);
      return { kind: 'message', bytes: target.buffer };
    } catch (error) {
      const held = state.partials.get(messageId);
      if (held !== undefined) this.#close(state, messageId, held);
      reject(state, messageId);
      throw error;
    }
  }

  /**
   * Drops every partial message of `source` (a departed peer): nothing it
   * sent half-way is ever completed. Returns how many were dropped.
   */
  dropSource(source = ''): number {
    const state = this.#sources.get(source);
    if (state === undefined) return 0;
    const dropped = state.partials.size;
    for (const [id, partial] of state.partials) this.#close(state, id, partial);
    this.#sources.delete(source);
    return dropped;
  }

  /** Drops every partial message of every source. */
  clear(): void {
    for (const source of [...this.#sources.keys()]) this.dropSource(source);
  }

  #state(source: string): SourceState {
    let state = this.#sources.get(source);
    if (state === undefined) {
      state = { partials: new Map(), rejected: new Set() };
      this.#sources.set(source, state);
    }
    return state;
  }

  #open(state: SourceState, header: ChunkHeader): Partial {
    if (this.#partialCount >= this.#maxPartialMessages) {
      throw topkError(
        'ERR_MESSAGE_TOO_LARGE',
        `Reassembler: expected at most ${this.#maxPartialMessages} ` +
          `messages in reassembly, message ${header.messageId} would be one more`,
        { limit: this.#maxPartialMessages, messageId: header.messageId },
      );
    }
    if (this.#partialBytes + header.totalBytes > this.#maxPartialBytes) {
      throw topkError(
        'ERR_MESSAGE_TOO_LARGE',
        `Reassembler: expected at most ${this.#maxPartialBytes} bytes in ` +
          `reassembly, message ${header.messageId} needs ${header.totalBytes} ` +
          `more on top of ${this.#partialBytes}`,
        {
          limit: this.#maxPartialBytes,
          held: this.#partialBytes,
          received: header.totalBytes,
        },
      );
    }
    const partial: Partial = {
      totalBytes: header.totalBytes,
      chunkCount: header.chunkCount,
      strideBytes: header.strideBytes,
      buffer: new Uint8Array(header.totalBytes),
      received: new Uint8Array(header.chunkCount),
      receivedCount: 0,
    };
    state.partials.set(header.messageId, partial);
    this.#partialCount++;
    this.#partialBytes += header.totalBytes;
    return partial;
  }

  #close(state: SourceState, messageId: number, partial: Partial): void {
    state.partials.delete(messageId);
    this.#partialCount--;
    this.#partialBytes -= partial.totalBytes;
  }
}

interface ChunkHeader {
  readonly kind: number;
  readonly messageId: number;
  readonly sequence: number;
  readonly chunkCount: number;
  readonly totalBytes: number;
  readonly strideBytes: number;
}

function readHeader(chunk: Uint8Array): ChunkHeader {
  if (chunk.byteLength < FRAME_HEADER_BYTES) {
    throw bad(
      `a chunk of at least ${FRAME_HEADER_BYTES} bytes`,
      `${chunk.byteLength} bytes`,
    );
  }
  if (chunk.byteLength > MAX_CHUNK_BYTES) {
    throw bad(
      `a chunk of at most ${MAX_CHUNK_BYTES} bytes`,
      `${chunk.byteLength} bytes`,
    );
  }
  const view = new DataView(chunk.buffer, chunk.byteOffset, FRAME_HEADER_BYTES);
  const magic = view.getUint8(0);
  const kind = view.getUint8(1);
  const reserved = view.getUint16(2, true);
  if (magic !== MAGIC) {
    throw bad(`magic byte ${MAGIC}`, String(magic));
  }
  if (kind !== KIND_CHUNK && kind !== KIND_BYE) {
    throw bad(`frame kind ${KIND_CHUNK} or ${KIND_BYE}`, String(kind));
  }
  if (reserved !== 0) throw bad('reserved field 0', String(reserved));
  const header: ChunkHeader = {
    kind,
    messageId: view.getUint32(4, true),
    sequence: view.getUint32(8, true),
    chunkCount: view.getUint32(12, true),
    totalBytes: view.getUint32(16, true),
    strideBytes: view.getUint32(20, true),
  };
  if (kind === KIND_BYE && chunk.byteLength !== FRAME_HEADER_BYTES) {
    throw bad('a bye frame of header size only', `${chunk.byteLength} bytes`);
  }
  return header;
}

/**
 * Checks `header` against itself, the cap and the partial message it
 * belongs to; returns the payload (a view of `chunk`).
 */
function checkChunk(
  chunk: Uint8Array,
  header: ChunkHeader,
  partial: Partial | undefined,
  maxMessageBytes: number,
): Uint8Array {
  const { messageId, sequence, chunkCount, totalBytes, strideBytes } = header;
  if (totalBytes > maxMessageBytes) {
    throw topkError(
      'ERR_MESSAGE_TOO_LARGE',
      `Reassembler: expected a message of at most ${maxMessageBytes} ` +
        `bytes, message ${messageId} declares ${totalBytes}`,
      { limit: maxMessageBytes, received: totalBytes, messageId },
    );
  }
  if (strideBytes < 1 || strideBytes > MAX_CHUNK_BYTES - FRAME_HEADER_BYTES) {
    throw bad(
      `a stride of 1 to ${MAX_CHUNK_BYTES - FRAME_HEADER_BYTES} bytes`,
      String(strideBytes),
    );
  }
  const expectedCount = Math.max(1, Math.ceil(totalBytes / strideBytes));
  if (chunkCount !== expectedCount) {
    throw bad(
      `${expectedCount} chunks for ${totalBytes} bytes at stride ${strideBytes}`,
      String(chunkCount),
    );
  }
  if (sequence >= chunkCount) {
    throw bad(`a sequence number below ${chunkCount}`, String(sequence));
  }
  const expectedPayload =
    sequence < chunkCount - 1
      ? strideBytes
      : totalBytes - strideBytes * (chunkCount - 1);
  const payloadBytes = chunk.byteLength - FRAME_HEADER_BYTES;
  if (payloadBytes !== expectedPayload) {
    throw bad(
      `${expectedPayload} payload bytes in chunk ${sequence}`,
      String(payloadBytes),
    );
  }
  if (partial !== undefined) {
    if (
      partial.totalBytes !== totalBytes ||
      partial.chunkCount !== chunkCount ||
      partial.strideBytes !== strideBytes
    ) {
      throw bad(
        `the layout of message ${messageId}'s first chunk ` +
          `(${partial.totalBytes} bytes, stride ${partial.strideBytes})`,
        `${totalBytes} bytes, stride ${strideBytes}`,
      );
    }
    if (partial.received[sequence] === 1) {
      throw bad(`chunk ${sequence} of message ${messageId} once`, 'a repeat');
    }
  }
  return chunk.subarray(FRAME_HEADER_BYTES);
}

function writeHeader(
  target: Uint8Array,
  kind: number,
  messageId: number,
  sequence: number,
  chunkCount: number,
  sizes: { totalBytes: number; strideBytes: number },
): void {
  const view = new DataView(
    target.buffer,
    target.byteOffset,
    FRAME_HEADER_BYTES,
  );
  view.setUint8(0, MAGIC);
  view.setUint8(1, kind);
  view.setUint16(2, 0, true);
  view.setUint32(4, messageId, true);
  view.setUint32(8, sequence, true);
  view.setUint32(12, chunkCount, true);
  view.setUint32(16, sizes.totalBytes, true);
  view.setUint32(20, sizes.strideBytes, true);
}

function reject(state: SourceState, messageId: number): void {
  state.rejected.add(messageId);
  if (state.rejected.size > REJECTED_IDS_KEPT) {
    // Sets iterate in insertion order: the first is the oldest.
    const oldest = state.rejected.values().next().value;
    if (oldest !== undefined) state.rejected.delete(oldest);
  }
}

function checkChunkBytes(maxChunkBytes: number): void {
  if (
    !Number.isSafeInteger(maxChunkBytes) ||
    maxChunkBytes <= FRAME_HEADER_BYTES ||
    maxChunkBytes > MAX_CHUNK_BYTES
  ) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `Framer: maxChunkBytes must be an integer from ` +
        `${FRAME_HEADER_BYTES + 1} to ${MAX_CHUNK_BYTES}, got ` +
        `${String(maxChunkBytes)}`,
      { maxChunkBytes },
    );
  }
}

function checkMessageCap(maxMessageBytes: number): number {
  if (
    !Number.isSafeInteger(maxMessageBytes) ||
    maxMessageBytes < 0 ||
    maxMessageBytes > MAX_U32
  ) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `framing: maxMessageBytes must be an integer from 0 to ${MAX_U32}, ` +
        `got ${String(maxMessageBytes)}`,
      { maxMessageBytes },
    );
  }
  return maxMessageBytes;
}

function chunkIndexError(sequence: number, chunkCount: number): TopkRingError {
  return topkError(
    'ERR_INTERNAL',
    `FramedMessage.chunkAt: expected a sequence number from 0 to ` +
      `${chunkCount - 1}, got ${String(sequence)}`,
    { sequence, chunkCount },
  );
}

function bad(expected: string, received: string): TopkRingError {
  return topkError(
    'ERR_BAD_MESSAGE',
    `Reassembler: expected ${expected}, got ${received}`,
    { expected, received },
  );
}
