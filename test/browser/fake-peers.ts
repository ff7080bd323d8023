/**
 * Peers that only report: they join a room over socket.io and send made-up
 * but plausible training progress (falling loss, rising accuracy, sparse
 * bytes well under the dense baseline, a time split, model hashes), so the
 * dashboard has something to draw without training anything.
 */
import assert from 'node:assert/strict';

import { io, type Socket } from 'socket.io-client';

import type { PeerKind, PeerReport } from '../../shared/signaling-protocol.ts';

/** Model size and entries per step of the made-up run (an MLP at 1%). */
export const N = 101_770;
export const K = 1018;

/** A deterministic pseudo-random number in [0, 1) from two integers. */
function noise(a: number, b: number): number {
  let x = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b, 0xc2b2ae35);
  x ^= x >>> 15;
  x = Math.imul(x, 0x2c1b3c6d);
  x ^= x >>> 12;
  return (x >>> 0) / 2 ** 32;
}

/** A peer that reports synthetic steps. */
export class FakePeer {
  readonly socket: Socket;
  readonly id: string;
  readonly index: number;
  readonly kind: PeerKind;
  #sent = 0;
  #received = 0;
  #dense = 0;
  /** From this step on, this peer reports another model hash. */
  divergeAtStep = Infinity;

  private constructor(
    socket: Socket,
    id: string,
    index: number,
    kind: PeerKind,
  ) {
    this.socket = socket;
    this.id = id;
    this.index = index;
    this.kind = kind;
  }

  /** Connects and joins `room`. */
  static async join(
    url: string,
    room: string,
    index: number,
    kind: PeerKind = 'node',
    backend = kind === 'node' ? 'wasm' : 'webgl',
  ): Promise<FakePeer> {
    const socket = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const reply = (await new Promise((resolve) =>
      socket.emit('join', { room, kind, backend }, resolve),
    )) as { ok: boolean; peerId: string };
    assert.ok(reply.ok, JSON.stringify(reply));
    return new FakePeer(socket, reply.peerId, index, kind);
  }

  /** The report of `step` in a ring of `peers`. */
  report(step: number, peers: number): PeerReport {
    const r = (salt: number) => noise(this.index * 7919 + salt, step);
    const ring = (2 * (peers - 1)) / peers;
    // Sparse ring: K (index, value) pairs per segment pass, some overhead.
    this.#sent += Math.round(ring * K * 6 * (1 + 0.3 * r(1)) + 400);
    this.#received += Math.round(ring * K * 6 * (1 + 0.3 * r(2)) + 400);
    this.#dense += Math.round(ring * 4 * N);
    const slow = this.kind === 'browser' ? 2.2 : 1;
    const hash =
      step >= this.divergeAtStep ? `bad${step}x${this.index}` : `h${step}ok`;
    return {
      step,
      loss: 2.3 * Math.exp(-step / 900) + 0.12 + 0.08 * (r(3) - 0.5),
      ...(step % 20 === 0
        ? {
            accuracy: Math.min(
              1,
              0.97 - 0.85 * Math.exp(-step / 600) + 0.02 * (r(4) - 0.5),
            ),
          }
        : {}),
      bytesSent: this.#sent,
      bytesReceived: this.#received,
      denseBytes: this.#dense,
      k: K,
      n: N,
      compressionError: 0.55 + 0.3 * Math.exp(-step / 1500) + 0.04 * r(5),
      timing: {
        computeMs: slow * (16 + 6 * r(6)),
        selectMs: 3 + 2 * r(7),
        communicateMs: 7 + 6 * r(8) + peers * 0.2,
      },
      ...(step % 10 === 0 ? { modelHash: hash } : {}),
    };
  }

  /** Sends the reports of steps `from` to `to` (exclusive). */
  send(from: number, to: number, peers: number): void {
    for (let step = from; step < to; step++) {
      this.socket.emit('report', this.report(step, peers));
    }
  }

  /** Resolves once the server has handled everything sent so far (a
   * second join is refused, and its answer comes after them). */
  async drained(): Promise<void> {
    await new Promise((resolve) =>
      this.socket.emit(
        'join',
        { room: 'x', kind: 'node', backend: 'wasm' },
        resolve,
      ),
    );
  }

  close(): void {
    this.socket.close();
  }
}
