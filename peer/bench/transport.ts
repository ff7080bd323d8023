/**
 * `topk-ring bench transport`: throughput of a bare data channel next to
 * throughput through our framing and backpressure, on the same connection
 * in the same run, for each WebRTC binding.
 *
 * Two peers run in this process, connected over loopback with their
 * signals relayed directly. Rounds alternate raw, framed, raw, framed...
 * so a machine that gets busier or quieter mid-run affects both alike;
 * each figure is the median of its rounds. MB means MiB (2^20 bytes)
 * throughout.
 *
 * - raw: a tight loop of 64 KiB data-channel messages straight on the
 *   channel, waiting while bufferedAmount is above the high-water mark
 *   (woken at the low-water mark by event or poll, as our sender is).
 * - framed: messages of `--message-kb` through {@link FramedChannel}:
 *   chunking with headers, the ordered backpressured send, reassembly.
 */
import { Command, Option } from 'commander';

import { isTopkError, topkError } from '../../shared/errors.ts';
import { DEFAULT_CHUNK_BYTES } from '../../shared/framing.ts';
import {
  WEBRTC_BINDINGS,
  loadBinding,
  type WebRtcBindingName,
} from '../webrtc/bindings.ts';
import { FramedChannel } from '../webrtc/framed-channel.ts';
import { connectLoopbackPair } from '../webrtc/loopback.ts';
import type { PeerChannel } from '../webrtc/peer-channel.ts';

const MIB = 1024 * 1024;
const RAW_MESSAGE_BYTES = 64 * 1024;

/** What to run. */
export interface TransportBenchOptions {
  /** MiB sent per round and mode. */
  readonly mb: number;
  /** Rounds per mode; the median is reported. */
  readonly rounds: number;
  /** Size of each framed (logical) message, KiB. */
  readonly messageKb: number;
  /** Chunk size of the framing, KiB, header included. */
  readonly chunkKb: number;
  /** High-water mark of both senders, KiB. */
  readonly highWaterKb: number;
  /** Poll interval of both senders' backpressure wait, ms. */
  readonly pollMs: number;
}

/** One binding's figures (an element of the `--json` output). */
export interface TransportBenchReport {
  readonly webrtc: WebRtcBindingName;
  /** Median raw throughput, MiB/s. */
  readonly rawMBps: number;
  /** Median framed throughput, MiB/s. */
  readonly framedMBps: number;
  /** framedMBps / rawMBps; the target is at least 0.8. */
  readonly ratio: number;
  readonly rawSamplesMBps: readonly number[];
  readonly framedSamplesMBps: readonly number[];
  /** Time to connect the pair, ms. */
  readonly connectMs: number;
  /** Most bytes buffered after a framed send; bounded by high + chunk. */
  readonly maxBufferedBytes: number;
  readonly mb: number;
  readonly rounds: number;
  readonly messageBytes: number;
  readonly chunkBytes: number;
  readonly highWaterMarkBytes: number;
  /** Both peers ran in this one process. */
  readonly processes: 1;
}

/** Measures one binding. Rejects with a typed error if a transfer fails. */
export async function runTransportBench(
  webrtc: WebRtcBindingName,
  options: TransportBenchOptions,
): Promise<TransportBenchReport> {
  checkOptions(options);
  const binding = await loadBinding(webrtc);
  const highWaterMarkBytes = options.highWaterKb * 1024;
  const chunkBytes = options.chunkKb * 1024;
  const messageBytes = options.messageKb * 1024;
  const totalBytes = options.mb * MIB;

  const connectStart = performance.now();
  const [sender, receiver] = await connectLoopbackPair(
    binding,
    { highWaterMarkBytes, pollIntervalMs: options.pollMs },
    webrtc,
  );
  const connectMs = performance.now() - connectStart;
  const raw: number[] = [];
  const framed: number[] = [];
  try {
    for (let round = 0; round < options.rounds; round++) {
      raw.push(await rawRound(sender, receiver, totalBytes, options.pollMs));
      framed.push(
        await framedRound(sender, receiver, totalBytes, {
          messageBytes,
          chunkBytes,
        }),
      );
    }
  } finally {
    await sender.close();
    await receiver.waitClosed();
    binding.shutdown();
  }
  const rawMBps = median(raw);
  const framedMBps = median(framed);
  return {
    webrtc,
    rawMBps: round1(rawMBps),
    framedMBps: round1(framedMBps),
    ratio: Math.round((framedMBps / rawMBps) * 1000) / 1000,
    rawSamplesMBps: raw.map(round1),
    framedSamplesMBps: framed.map(round1),
    connectMs: Math.round(connectMs),
    maxBufferedBytes: sender.maxBufferedBytes,
    mb: options.mb,
    rounds: options.rounds,
    messageBytes,
    chunkBytes,
    highWaterMarkBytes,
    processes: 1,
  };
}

/** A tight loop of 64 KiB messages on the bare channel; MiB/s. */
async function rawRound(
  sender: PeerChannel,
  receiver: PeerChannel,
  totalBytes: number,
  pollMs: number,
): Promise<number> {
  const channel = sender.dataChannel;
  if (channel === null) throw notOpen();
  const payload = new Uint8Array(RAW_MESSAGE_BYTES).fill(7);
  const count = Math.ceil(totalBytes / RAW_MESSAGE_BYTES);
  const arrived = countArrivals(receiver, 'message', count);

  const start = performance.now();
  for (let i = 0; i < count; i++) {
    while (channel.bufferedAmount > sender.highWaterMarkBytes) {
      await bufferLow(channel, pollMs);
    }
    if (channel.readyState !== 'open') throw notOpen();
    channel.send(payload);
  }
  await arrived;
  return mibPerSecond(count * RAW_MESSAGE_BYTES, performance.now() - start);
}

/** Messages through framing and backpressure; MiB/s. */
async function framedRound(
  sender: PeerChannel,
  receiver: PeerChannel,
  totalBytes: number,
  sizes: { messageBytes: number; chunkBytes: number },
): Promise<number> {
  const outbound = new FramedChannel(sender, {
    maxChunkBytes: sizes.chunkBytes,
  });
  const inbound = new FramedChannel(receiver, {
    maxChunkBytes: sizes.chunkBytes,
  });
  try {
    const message = new Uint8Array(sizes.messageBytes);
    for (let i = 0; i < message.length; i++) message[i] = i % 251;
    const count = Math.ceil(totalBytes / sizes.messageBytes);
    const arrived = countArrivals(inbound, 'message', count, (bytes) =>
      checkMessage(bytes, message),
    );

    const start = performance.now();
    for (let i = 0; i < count; i++) await outbound.sendMessage(message);
    await arrived;
    return mibPerSecond(count * sizes.messageBytes, performance.now() - start);
  } finally {
    outbound.detach();
    inbound.detach();
  }
}

/**
 * Resolves after `count` events `name` from `source` (each passed to
 * `check`), rejects if the underlying channel closes first.
 */
function countArrivals(
  source: PeerChannel | FramedChannel,
  name: 'message',
  count: number,
  check: (bytes: Uint8Array) => void = () => {},
): Promise<void> {
  const channel = 'channel' in source ? source.channel : source;
  return new Promise((resolve, reject) => {
    let seen = 0;
    const finish = (error?: unknown): void => {
      source.off(name, onMessage);
      channel.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onMessage = (bytes: Uint8Array): void => {
      try {
        check(bytes);
      } catch (error) {
        finish(error);
        return;
      }
      if (++seen === count) finish();
    };
    const onClose = (): void => finish(notOpen());
    source.on(name, onMessage);
    channel.on('close', onClose);
  });
}

/** Waits for `bufferedamountlow` or one poll interval, whichever first. */
function bufferLow(channel: RTCDataChannel, pollMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      channel.removeEventListener('bufferedamountlow', done);
      resolve();
    };
    const timer = setTimeout(done, pollMs);
    channel.addEventListener('bufferedamountlow', done);
  });
}

function checkMessage(bytes: Uint8Array, expected: Uint8Array): void {
  const last = expected.length - 1;
  if (
    bytes.length !== expected.length ||
    bytes[0] !== expected[0] ||
    bytes[last] !== expected[last] ||
    bytes[last >> 1] !== expected[last >> 1]
  ) {
    throw topkError(
      'ERR_BAD_MESSAGE',
      `bench transport: expected ${expected.length} bytes of the sent ` +
        `pattern, got ${bytes.length} bytes that differ`,
      { expected: expected.length, received: bytes.length },
    );
  }
}

function notOpen(): Error {
  return topkError(
    'ERR_CHANNEL_CLOSED',
    'bench transport: the channel closed during a round',
  );
}

function mibPerSecond(bytes: number, ms: number): number {
  return bytes / MIB / (ms / 1000);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function checkOptions(options: TransportBenchOptions): void {
  const limits: Array<[keyof TransportBenchOptions, number, number]> = [
    ['mb', 1, 4096],
    ['rounds', 1, 100],
    ['messageKb', 1, 64 * 1024],
    ['chunkKb', 1, 256],
    ['highWaterKb', 64, 4096],
    ['pollMs', 1, 1000],
  ];
  for (const [name, min, max] of limits) {
    const value = options[name];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `bench transport: --${kebab(name)} must be an integer from ${min} ` +
          `to ${max}, got ${String(value)}`,
        { [name]: value },
      );
    }
  }
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** Adds `transport` to the `bench` command. */
export function registerTransportBench(bench: Command): void {
  bench
    .command('transport')
    .description(
      'raw data-channel vs framed throughput between two loopback peers ' +
        '(MB = MiB)',
    )
    .addOption(
      new Option('--webrtc <binding>', 'WebRTC binding')
        .choices([...WEBRTC_BINDINGS, 'both'])
        .default('both'),
    )
    .option('--mb <MiB>', 'MiB sent per round and mode', Number, 64)
    .option('--rounds <R>', 'rounds per mode (median reported)', Number, 3)
    .option('--message-kb <KiB>', 'framed message size', Number, 1024)
    .option(
      '--chunk-kb <KiB>',
      'framing chunk size, header included',
      Number,
      DEFAULT_CHUNK_BYTES / 1024,
    )
    .option('--high-water-kb <KiB>', 'sender high-water mark', Number, 1024)
    .option('--poll-ms <ms>', 'backpressure poll interval', Number, 2)
    .option('--json', 'print a JSON array, one object per binding')
    .action(
      async (
        flags: TransportBenchOptions & { webrtc: string; json?: boolean },
      ) => {
        const names = WEBRTC_BINDINGS.filter(
          (name) => flags.webrtc === 'both' || flags.webrtc === name,
        );
        const reports: TransportBenchReport[] = [];
        try {
          for (const name of names) {
            reports.push(await runTransportBench(name, flags));
          }
        } catch (error) {
          if (!isTopkError(error)) throw error;
          console.error(`error ${error.code}: ${error.message}`);
          process.exitCode = 1;
          return;
        }
        console.log(
          flags.json
            ? JSON.stringify(reports)
            : reports.map(formatReport).join('\n'),
        );
      },
    );
}

function formatReport(report: TransportBenchReport): string {
  return [
    `transport ${report.webrtc}: raw ${report.rawMBps} MiB/s, framed ` +
      `${report.framedMBps} MiB/s, ratio ${report.ratio.toFixed(2)}`,
    `  samples raw [${report.rawSamplesMBps.join(', ')}] framed ` +
      `[${report.framedSamplesMBps.join(', ')}]`,
    `  ${report.mb} MiB x ${report.rounds} rounds, messages ` +
      `${report.messageBytes / 1024} KiB, chunks ${report.chunkBytes / 1024} ` +
      `KiB, high water ${report.highWaterMarkBytes / 1024} KiB, max ` +
      `buffered ${report.maxBufferedBytes}, connect ${report.connectMs} ms`,
  ].join('\n');
}
