/**
 * One peer process of `bench allreduce --transport webrtc`: joins the
 * bench room, connects to its ring neighbours over WebRTC, and runs the
 * same seeded steps as the simulated benchmark, its own vector each step.
 * Reports to the parent over IPC: per step the hash of the sum, the error
 * against a float64 reference, bytes and time.
 *
 *   node --import tsx allreduce-peer.ts <json options>
 */
import {
  allReduce,
  AutoPlanner,
  resultToDense,
  type AllReduceChoice,
} from '../../shared/allreduce/index.ts';
import { SignalingClient } from '../../shared/signaling-client.ts';
import { ringPosition } from '../../shared/signaling-protocol.ts';
import { bytesOf, fnv1a64 } from '../models/hash.ts';
import { ringConnector } from '../session/ring-session.ts';
import { loadBinding, type WebRtcBindingName } from '../webrtc/bindings.ts';
import { checkResults } from './allreduce.ts';
import { seededRandom, syntheticVectors } from './gradients.ts';

/** What the parent passes. */
export interface BenchPeerOptions {
  readonly server: string;
  readonly room: string;
  readonly peers: number;
  readonly size: number;
  readonly k: number;
  readonly overlap: number;
  readonly steps: number;
  readonly seed: number;
  readonly algorithm: AllReduceChoice;
  readonly webrtc: WebRtcBindingName;
}

/** One step as a peer saw it. */
export interface BenchPeerStep {
  readonly hash: string;
  readonly maxAbsError: number;
  readonly bytesSent: number;
  readonly algorithm: string;
  readonly unionSize: number;
  readonly ms: number;
}

const options = JSON.parse(process.argv[2]) as BenchPeerOptions;
const binding = await loadBinding(options.webrtc);
const client = await SignalingClient.connect({
  url: options.server,
  room: options.room,
  kind: 'node',
  backend: 'none',
});
const connector = ringConnector(client, binding);
try {
  const membership = await new Promise<typeof client.membership>((resolve) => {
    if (client.membership.members.length === options.peers) {
      resolve(client.membership);
      return;
    }
    const off = client.on('membership', (m) => {
      if (m.members.length === options.peers) {
        off();
        resolve(m);
      }
    });
  });
  const position = ringPosition(membership, client.peerId);
  if (position === null) throw new Error('not in the ring');
  const link = await connector.connect(membership.generation, position);
  const random = seededRandom(options.seed);
  const planner = new AutoPlanner();
  const steps: BenchPeerStep[] = [];
  for (let step = 0; step < options.steps; step++) {
    const vectors = syntheticVectors({
      peers: options.peers,
      n: options.size,
      k: options.k,
      overlap: options.overlap,
      random,
    });
    const startMs = performance.now();
    const result = await allReduce(
      {
        room: options.room,
        peerId: client.peerId,
        generation: membership.generation,
        step,
        ringIndex: position.ringIndex,
        peers: options.peers,
        link: link.link,
      },
      { vector: vectors[position.ringIndex], skip: false },
      { algorithm: options.algorithm, planner, k: options.k },
    );
    const ms = performance.now() - startMs;
    steps.push({
      hash: fnv1a64(bytesOf(resultToDense(result))),
      maxAbsError: checkResults(vectors, [result]).maxAbsError,
      bytesSent: result.bytesSent,
      algorithm: result.algorithm,
      unionSize: result.unionSize,
      ms,
    });
  }
  process.send?.({ ringIndex: position.ringIndex, steps });
  // Everyone's last messages must arrive before anyone closes: wait for
  // the parent's word that every peer reported.
  await new Promise<void>((resolve) =>
    process.once('message', () => resolve()),
  );
  await link.close();
} finally {
  connector.dispose();
  binding.shutdown();
  await client.leave('bench done').catch(() => {});
  client.close();
  process.disconnect?.();
}
