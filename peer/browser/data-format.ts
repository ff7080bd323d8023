/**
 * The binary body in which the server sends a browser tab training or test
 * samples (see data-routes.ts), and what a tab learns about a room's data
 * set before it downloads any. Browser-safe: used by the server to write
 * and by the tab to read.
 *
 * A sample block, 4-byte aligned throughout so the tab reads every array
 * as a view, without a copy; the header is little-endian, the arrays are
 * in the platform's order, which is little-endian on every machine and
 * browser this project runs on (models/fingerprint.ts assumes the same):
 *
 *   offset            size         field
 *        0               4         magic 0x53444b54 ("TKDS")
 *        4               4         format version (1)
 *        8               4         sample count C
 *       12               4         features per sample F
 *       16               4         target width T
 *       20             4*C         sample indices (u32), in the order sent
 *   20+4C           4*C*F         features (f32), sample after sample
 *   20+4C+4CF       4*C*T         targets (f32), sample after sample
 *
 * Float32 as is, not quantized: a tab trains on the very values a Node
 * peer would. The server compresses the body (gzip) for the wire.
 */
import { topkError } from '../../shared/errors.ts';
import type { Task } from '../data/dataset.ts';

/** "TKDS" read as a little-endian u32. */
const MAGIC = 0x53444b54;
const VERSION = 1;
/** Bytes of the header. */
export const SAMPLE_BLOCK_HEADER_BYTES = 20;

/** What `GET /api/data/:room` answers: the data set's geometry and sizes. */
export interface DatasetInfo {
  readonly room: string;
  /** The data set's name (the room config's `dataset`). */
  readonly dataset: string;
  readonly task: Task;
  readonly featureShape: readonly number[];
  readonly targetWidth: number;
  readonly classNames?: readonly string[];
  /** Training samples the server deals shards from (after `maxTrain`). */
  readonly trainSize: number;
  /** Test samples available (after `maxTest`). */
  readonly testSize: number;
}

/** Samples with their indices in the split they come from. */
export interface SampleBlock {
  readonly indices: Uint32Array;
  /** `indices.length * featureSize` features. */
  readonly x: Float32Array;
  /** `indices.length * targetWidth` targets. */
  readonly y: Float32Array;
  readonly featureSize: number;
  readonly targetWidth: number;
}

/** Bytes of a block of `count` samples. */
export function sampleBlockBytes(
  count: number,
  featureSize: number,
  targetWidth: number,
): number {
  return (
    SAMPLE_BLOCK_HEADER_BYTES + 4 * count * (1 + featureSize + targetWidth)
  );
}

/** Writes `block` into a new buffer. */
export function encodeSampleBlock(block: SampleBlock): Uint8Array {
  const count = block.indices.length;
  const { featureSize, targetWidth } = block;
  checkSizes(block);
  const buffer = new ArrayBuffer(
    sampleBlockBytes(count, featureSize, targetWidth),
  );
  const header = new DataView(buffer, 0, SAMPLE_BLOCK_HEADER_BYTES);
  header.setUint32(0, MAGIC, true);
  header.setUint32(4, VERSION, true);
  header.setUint32(8, count, true);
  header.setUint32(12, featureSize, true);
  header.setUint32(16, targetWidth, true);
  const views = viewsOf(buffer, 0, count, featureSize, targetWidth);
  views.indices.set(block.indices);
  views.x.set(block.x);
  views.y.set(block.y);
  return new Uint8Array(buffer);
}

/**
 * Reads a block. Throws `ERR_BAD_MESSAGE` when the bytes are not a block
 * of this format or their length disagrees with the header.
 */
export function decodeSampleBlock(bytes: Uint8Array): SampleBlock {
  if (bytes.byteLength < SAMPLE_BLOCK_HEADER_BYTES) {
    throw badBlock(
      `expected at least ${SAMPLE_BLOCK_HEADER_BYTES} bytes, got ` +
        bytes.byteLength,
    );
  }
  const header = new DataView(
    bytes.buffer,
    bytes.byteOffset,
    SAMPLE_BLOCK_HEADER_BYTES,
  );
  const magic = header.getUint32(0, true);
  const version = header.getUint32(4, true);
  if (magic !== MAGIC || version !== VERSION) {
    throw badBlock(
      `expected magic 0x${MAGIC.toString(16)} version ${VERSION}, got ` +
        `0x${magic.toString(16)} version ${version}`,
    );
  }
  const count = header.getUint32(8, true);
  const featureSize = header.getUint32(12, true);
  const targetWidth = header.getUint32(16, true);
  const expected = sampleBlockBytes(count, featureSize, targetWidth);
  if (bytes.byteLength !== expected) {
    throw badBlock(
      `expected ${expected} bytes for ${count} samples of ${featureSize} ` +
        `features and ${targetWidth} targets, got ${bytes.byteLength}`,
    );
  }
  // Typed-array views need an aligned start; a copy makes one if needed.
  const aligned =
    bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes.slice());
  return {
    ...viewsOf(
      aligned.buffer,
      aligned.byteOffset,
      count,
      featureSize,
      targetWidth,
    ),
    featureSize,
    targetWidth,
  };
}

function viewsOf(
  buffer: ArrayBufferLike,
  offset: number,
  count: number,
  featureSize: number,
  targetWidth: number,
): Pick<SampleBlock, 'indices' | 'x' | 'y'> {
  let at = offset + SAMPLE_BLOCK_HEADER_BYTES;
  const indices = new Uint32Array(buffer, at, count);
  at += 4 * count;
  const x = new Float32Array(buffer, at, count * featureSize);
  at += 4 * count * featureSize;
  const y = new Float32Array(buffer, at, count * targetWidth);
  return { indices, x, y };
}

function checkSizes(block: SampleBlock): void {
  const count = block.indices.length;
  if (
    block.x.length !== count * block.featureSize ||
    block.y.length !== count * block.targetWidth
  ) {
    throw topkError(
      'ERR_INTERNAL',
      `sample block: expected ${count * block.featureSize} features and ` +
        `${count * block.targetWidth} targets for ${count} samples, got ` +
        `${block.x.length} and ${block.y.length}`,
      { count, featureSize: block.featureSize },
    );
  }
}

function badBlock(detail: string) {
  return topkError('ERR_BAD_MESSAGE', `sample block: ${detail}`, {});
}
