/**
 * `bench allreduce --transport webrtc`: the all-reduce benchmark over real
 * WebRTC data channels between P peer processes, with a signaling server
 * this process starts on loopback. Same figures as the simulated one,
 * plus the time per step measured on the peers.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { topkError } from '../../shared/errors.ts';
import { startSignalingServer } from '../../signaling/server.ts';
import type { WebRtcBindingName } from '../webrtc/bindings.ts';
import type { BenchPeerStep } from './allreduce-peer.ts';
import {
  lowerBoundBytes,
  type AllReduceBenchOptions,
  type AllReduceBenchReport,
} from './allreduce.ts';
import { seededRandom, syntheticVectors } from './gradients.ts';

const PEER = fileURLToPath(new URL('./allreduce-peer.ts', import.meta.url));

/** Runs the benchmark over WebRTC; rejects when a peer fails. */
export async function runWebRtcAllReduceBench(
  options: AllReduceBenchOptions & { webrtc: WebRtcBindingName },
): Promise<AllReduceBenchReport & { webrtc: WebRtcBindingName }> {
  const { peers, size: n, steps } = options;
  const k = Math.min(n, Math.round(options.density * n));
  const room = 'bench';
  const server = await startSignalingServer({
    port: 0,
    rooms: { [room]: { minPeers: peers } },
    dashboard: false,
  });
  const children = Array.from({ length: peers }, () =>
    fork(PEER, [JSON.stringify({ ...options, server: server.url, room, k })], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  );
  let reports: { ringIndex: number; steps: BenchPeerStep[] }[];
  try {
    reports = await Promise.all(
      children.map(
        (child, i) =>
          new Promise<{ ringIndex: number; steps: BenchPeerStep[] }>(
            (resolve, reject) => {
              child.once('message', (message) =>
                resolve(
                  message as { ringIndex: number; steps: BenchPeerStep[] },
                ),
              );
              child.once('exit', (code) =>
                reject(
                  topkError(
                    'ERR_PEER_GONE',
                    `bench peer ${i} exited (${code})`,
                    {
                      code,
                    },
                  ),
                ),
              );
            },
          ),
      ),
    );
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.send('done');
          }),
      ),
    );
  } finally {
    for (const child of children) child.kill();
    await server.close();
  }

  // The same seeded vectors the peers drew, for the lower bound.
  const random = seededRandom(options.seed);
  let lowerBoundTotal = 0;
  for (let step = 0; step < steps; step++) {
    const vectors = syntheticVectors({ ...options, n, k, random });
    lowerBoundTotal += lowerBoundBytes(vectors);
  }
  const perStep = (pick: (s: BenchPeerStep) => number) =>
    reports.map((r) => r.steps.reduce((sum, s) => sum + pick(s), 0) / steps);
  const bytesPerPeer = Math.max(...perStep((s) => s.bytesSent));
  const msPerStep = Math.max(...perStep((s) => s.ms));
  const identical = reports[0].steps.every((s, step) =>
    reports.every((r) => r.steps[step].hash === s.hash),
  );
  const lowerBound = lowerBoundTotal / steps;
  return {
    algorithm: options.algorithm,
    chosen: reports[0].steps.map(
      (s) => s.algorithm,
    ) as AllReduceBenchReport['chosen'],
    peers,
    size: n,
    density: options.density,
    k,
    overlap: options.overlap,
    steps,
    identical,
    maxAbsError: Math.max(
      ...reports.flatMap((r) => r.steps.map((s) => s.maxAbsError)),
    ),
    bytesPerPeer,
    unionSize:
      reports[0].steps.reduce((sum, s) => sum + s.unionSize, 0) / steps,
    lowerBoundBytes: lowerBound,
    ratioToLowerBound: lowerBound > 0 ? bytesPerPeer / lowerBound : 0,
    ms: msPerStep * steps,
    msPerStep,
    webrtc: options.webrtc,
  };
}
