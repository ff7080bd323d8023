/**
 * Waiting on a room's membership: until this peer is in a ring big enough
 * and fully connected, until the next generation, or until a new
 * generation replaces one whose step failed. Browser-safe.
 */
import { topkError } from '../../shared/errors.ts';
import type { SignalingClient } from '../../shared/signaling-client.ts';
import type {
  Membership,
  RingPosition,
} from '../../shared/signaling-protocol.ts';

/**
 * Resolves once `ok(membership)` holds. Rejects when the signaling
 * session closes (`ERR_PEER_GONE` or its own error), when `signal` aborts
 * (`ERR_RING_ABORTED`), and after `timeoutMs` (`ERR_RING_TIMEOUT`, with
 * `cause` as its cause) if given.
 */
export function waitForMembership(
  client: SignalingClient,
  ok: (membership: Membership) => boolean,
  options: { timeoutMs?: number; cause?: unknown; signal?: AbortSignal } = {},
): Promise<void> {
  if (ok(client.membership)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (error?: unknown): void => {
      clearTimeout(timer);
      offMembership();
      offClosed();
      options.signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void =>
      finish(
        topkError('ERR_RING_ABORTED', 'stopped while waiting for the ring', {
          reason: String(options.signal?.reason ?? 'aborted'),
        }),
      );
    const offMembership = client.on('membership', (m) => {
      if (ok(m)) finish();
    });
    const offClosed = client.on('closed', (error) =>
      finish(
        error ?? topkError('ERR_PEER_GONE', 'the signaling session closed', {}),
      ),
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted === true) onAbort();
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () =>
          finish(
            topkError(
              'ERR_RING_TIMEOUT',
              `no new ring formed within ${timeoutMs} ms after a failed step`,
              { timeoutMs },
              options.cause,
            ),
          ),
        timeoutMs,
      );
    }
  });
}

/**
 * Waits until this peer is in a ring of at least `minPeers` whose members
 * are all connected; resolves with its position there.
 */
export async function waitForRing(
  client: SignalingClient,
  minPeers: number,
  signal?: AbortSignal,
): Promise<RingPosition> {
  await waitForMembership(
    client,
    (m) =>
      client.position !== null &&
      m.members.length >= minPeers &&
      m.members.every((member) => member.connected),
    { signal },
  );
  return client.position as RingPosition;
}

/** Waits for a membership newer than the one seen now. */
export function waitForNewGeneration(
  client: SignalingClient,
  signal?: AbortSignal,
): Promise<void> {
  const seen = client.membership.generation;
  return waitForMembership(client, (m) => m.generation > seen, { signal });
}
