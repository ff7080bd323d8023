/**
 * Two {@link PeerChannel}s in one process with their signals relayed
 * directly, no signaling server: for benchmarks and tests on loopback.
 */
import type { WebRtcBinding } from './bindings.ts';
import { PeerChannel, type PeerChannelOptions } from './peer-channel.ts';

/** Options of {@link connectLoopbackPair}; `binding` and `initiator` are set. */
export type LoopbackPairOptions = Omit<
  PeerChannelOptions,
  'binding' | 'initiator' | 'label'
>;

/**
 * Creates and connects two channels. Resolves with [offerer, answerer]
 * once both are open; if either fails to open, both are destroyed and the
 * failure is the rejection.
 */
export async function connectLoopbackPair(
  binding: WebRtcBinding,
  options: LoopbackPairOptions = {},
  label = 'pair',
): Promise<[PeerChannel, PeerChannel]> {
  const offerer = new PeerChannel({
    ...options,
    binding,
    initiator: true,
    label: `${label}:a`,
  });
  const answerer = new PeerChannel({
    ...options,
    binding,
    initiator: false,
    label: `${label}:b`,
  });
  offerer.on('signal', (data) => answerer.signal(data));
  answerer.on('signal', (data) => offerer.signal(data));
  try {
    await Promise.all([offerer.waitOpen(), answerer.waitOpen()]);
  } catch (error) {
    offerer.destroy();
    answerer.destroy();
    throw error;
  }
  return [offerer, answerer];
}
