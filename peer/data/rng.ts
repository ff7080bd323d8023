/**
 * A small seeded pseudo-random generator (sfc32, seeded through a 32-bit
 * mixer) for shuffling, sharding and synthetic data. Pure JS, so every
 * peer, Node or browser, draws the same numbers from the same seed; its
 * whole state is four words and a spare, so a checkpoint can store it.
 */
import { topkError } from '../../shared/errors.ts';

/** 2^32, as a float. */
const TWO_32 = 4294967296;

/** Finalizer of a 32-bit hash: spreads every input bit over the output. */
function mix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x21f0aaad);
  h ^= h >>> 15;
  h = Math.imul(h, 0x735a2d97);
  h ^= h >>> 15;
  return h >>> 0;
}

/** Throws ERR_BAD_CONFIG unless `seed` is a safe integer. */
function checkSeed(seed: number, what: string): void {
  if (!Number.isSafeInteger(seed)) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `${what} must be a safe integer, got ${String(seed)}`,
      { [what]: seed },
    );
  }
}

/**
 * Combines integers (a seed, a generation, a layer index...) into one
 * 32-bit seed. Order matters: deriveSeed(1, 2) != deriveSeed(2, 1).
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    checkSeed(part, 'seed');
    const low = part >>> 0;
    const high = Math.floor(part / TWO_32) >>> 0;
    h = mix32(h ^ low);
    h = mix32((h + 0x7f4a7c15) ^ high);
  }
  return h;
}

/** The saved state of an {@link Rng}. */
export interface RngState {
  /** The four sfc32 words. */
  readonly words: readonly [number, number, number, number];
  /** The second Gaussian of the last Box-Muller pair, not yet used. */
  readonly spare: number | null;
}

/** A seeded generator of uniform and Gaussian numbers. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  /** A generator seeded by `seed` (any safe integer). */
  constructor(seed: number) {
    let s = deriveSeed(seed);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      s = (s + 0x9e3779b9) >>> 0;
      words.push(mix32(s));
    }
    [this.a, this.b, this.c, this.d] = words;
    // sfc32 needs a few rounds before its output stops echoing the seed.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** A generator that continues from `state`. */
  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    [rng.a, rng.b, rng.c, rng.d] = state.words.map((w) => w >>> 0);
    rng.spare = state.spare;
    return rng;
  }

  /** The state to continue from later with {@link Rng.fromState}. */
  state(): RngState {
    return { words: [this.a, this.b, this.c, this.d], spare: this.spare };
  }

  /** A uniform integer in [0, 2^32). */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /**
   * A uniform integer in [0, n). The bias of scaling a 53-bit float is
   * below n / 2^53: nothing for any array that fits in memory.
   */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /** A standard normal number (Box-Muller, both halves used). */
  nextGaussian(): number {
    if (this.spare !== null) {
      const value = this.spare;
      this.spare = null;
      return value;
    }
    const u = 1 - this.nextFloat(); // (0, 1]: log(u) is finite
    const v = this.nextFloat();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<A extends { length: number; [index: number]: unknown }>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const held = array[i];
      array[i] = array[j];
      array[j] = held;
    }
    return array;
  }

  /** A uniformly random permutation of 0 .. n - 1. */
  permutation(n: number): Uint32Array {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }
}
