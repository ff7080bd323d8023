/**
 * The IDX file format of MNIST and Fashion-MNIST: a 4-byte magic number
 * (two zero bytes, a type code, the number of dimensions), one big-endian
 * uint32 per dimension, then the values. Only unsigned bytes (type 0x08)
 * occur in these data sets. Runs in a browser.
 */
import { topkError } from '../../shared/errors.ts';

/** The type code of unsigned bytes. */
const UBYTE = 0x08;

/** A parsed IDX file: its dimensions and its values. */
export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

/**
 * Parses IDX `bytes` (from `source`, named in errors). `data` is a view
 * into `bytes`, not a copy. Throws ERR_MISSING_DEPENDENCY, since a
 * damaged data file is fixed by fetching it again.
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  const fail = (what: string): never => {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `${source} is not a valid IDX file of bytes (${what}); it may be ` +
        'damaged: fetch the data set again',
      { source },
    );
  };
  if (bytes.length < 4) fail(`${bytes.length} bytes long`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (bytes[0] !== 0 || bytes[1] !== 0) fail('bad magic number');
  if (bytes[2] !== UBYTE) fail(`type code 0x${bytes[2].toString(16)}`);
  const rank = bytes[3];
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) fail('truncated header');

  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== headerBytes + count) {
    fail(`${bytes.length - headerBytes} values for dimensions ${dims}`);
  }
  return { dims, data: bytes.subarray(headerBytes) };
}
