/**
 * The Node WebRTC bindings a peer can run on, and what each needs to work
 * with simple-peer on these machines (see ../shared/FACTS.md, re-measured):
 *
 * - `roamhq` (@roamhq/wrtc, the maintained continuation of `wrtc`): works
 *   as shipped; it never fires `bufferedamountlow` (the threshold property
 *   does not exist), so senders must poll; it closes both peers on a 1 MiB
 *   message and drops data above 16 MiB buffered, which chunking and the
 *   high-water cap keep us well away from.
 * - `node-datachannel` (libdatachannel's polyfill): its session
 *   descriptions have a read-only `sdp`, which simple-peer 9 assigns to,
 *   so createOffer/createAnswer are wrapped to return plain objects; on a
 *   host whose only interface is loopback (`unshare --net`) it gathers no
 *   usable candidate unless bound to 127.0.0.1; and it fails a few
 *   negotiations in a hundred when the answerer reaches the offerer
 *   before the offerer applied the answer, which PeerChannel prevents.
 *
 * A binding is loaded only when asked for, so a broken native module
 * affects only the peers that chose it.
 */
import { networkInterfaces } from 'node:os';

import { topkError } from '../../shared/errors.ts';
import { MAX_CHUNK_BYTES } from '../../shared/framing.ts';

/** The binding names accepted by `--webrtc`. */
export const WEBRTC_BINDINGS = ['roamhq', 'node-datachannel'] as const;

/** A Node WebRTC binding. */
export type WebRtcBindingName = (typeof WEBRTC_BINDINGS)[number];

/**
 * The default binding. Chosen from `bench transport` on this machine (see
 * docs/benchmarks.md): the faster of the two with framing, both reliable.
 */
export const DEFAULT_WEBRTC_BINDING: WebRtcBindingName = 'roamhq';

/** The WebRTC classes simple-peer needs, as its `wrtc` option. */
export interface WrtcClasses {
  readonly RTCPeerConnection: typeof RTCPeerConnection;
  readonly RTCSessionDescription: typeof RTCSessionDescription;
  readonly RTCIceCandidate: typeof RTCIceCandidate;
}

/** A loaded binding, ready to hand to simple-peer. */
export interface WebRtcBinding {
  /** Which binding this is ('browser': a tab's native classes). */
  readonly name: WebRtcBindingName | 'browser';
  /** The classes for simple-peer's `wrtc` option. */
  readonly wrtc: WrtcClasses;
  /** Whether its data channels fire `bufferedamountlow` at all. */
  readonly firesBufferedAmountLow: boolean;
  /**
   * Whether the offerer's address must reach the answerer only after the
   * offerer applied the answer (candidates in descriptions dropped,
   * trickled ones held), to avoid a race inside the binding (see
   * PeerChannel.signal).
   */
  readonly ignoreSdpCandidates?: boolean;
  /**
   * Releases what the binding holds for the whole process, once every
   * connection is closed: node-datachannel keeps libdatachannel's threads
   * (and so the process) alive until it is told to stop. Idempotent.
   */
  shutdown(): void;
}

/** Options that adapt a binding to the host. */
export interface BindingOptions {
  /**
   * node-datachannel only: the local address to gather candidates on.
   * Default: 127.0.0.1 when the host has no interface but loopback,
   * otherwise every interface.
   */
  readonly bindAddress?: string;
}

/** Parses a `--webrtc` value; throws `ERR_UNKNOWN_NAME` for anything else. */
export function parseBindingName(value: string): WebRtcBindingName {
  const found = WEBRTC_BINDINGS.find((name) => name === value);
  if (found === undefined) {
    throw topkError(
      'ERR_UNKNOWN_NAME',
      `--webrtc: expected one of ${WEBRTC_BINDINGS.join(', ')}, got ` +
        JSON.stringify(value),
      { expected: WEBRTC_BINDINGS, received: value },
    );
  }
  return found;
}

/**
 * Loads binding `name`. Rejects with `ERR_MISSING_DEPENDENCY` when its
 * package or native module cannot be loaded.
 */
export async function loadBinding(
  name: WebRtcBindingName,
  options: BindingOptions = {},
): Promise<WebRtcBinding> {
  try {
    return name === 'roamhq'
      ? await loadRoamhq()
      : await loadNodeDataChannel(options);
  } catch (cause) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `WebRTC binding '${name}' could not be loaded: ${String(cause)}`,
      { binding: name },
      cause,
    );
  }
}

async function loadRoamhq(): Promise<WebRtcBinding> {
  const wrtc = (await import('@roamhq/wrtc')).default;
  return {
    name: 'roamhq',
    // The package declares its own classes; they implement the DOM ones.
    wrtc: wrtc as unknown as WrtcClasses,
    firesBufferedAmountLow: false,
    shutdown() {},
  };
}

async function loadNodeDataChannel(
  options: BindingOptions,
): Promise<WebRtcBinding> {
  const polyfill = await import('node-datachannel/polyfill');
  const native = await import('node-datachannel');
  const bindAddress = options.bindAddress ?? defaultBindAddress();
  const extra = {
    ...(bindAddress === undefined ? {} : { bindAddress }),
    // Our chunks are at most this big; say so explicitly rather than rely
    // on libdatachannel's default matching it.
    maxMessageSize: MAX_CHUNK_BYTES,
  };

  /** The polyfill's connection with the two changes simple-peer needs. */
  class PeerConnection extends polyfill.RTCPeerConnection {
    constructor(config: RTCConfiguration = {}) {
      const merged: RTCConfiguration = { ...config, ...extra };
      super(merged);
    }

    override async createOffer(): Promise<RTCSessionDescriptionInit> {
      return plainDescription(await super.createOffer());
    }

    override async createAnswer(): Promise<RTCSessionDescriptionInit> {
      return plainDescription(await super.createAnswer());
    }
  }

  return {
    name: 'node-datachannel',
    wrtc: {
      RTCPeerConnection: PeerConnection,
      RTCSessionDescription: polyfill.RTCSessionDescription,
      RTCIceCandidate: polyfill.RTCIceCandidate,
    } as unknown as WrtcClasses,
    firesBufferedAmountLow: true,
    ignoreSdpCandidates: true,
    shutdown() {
      native.cleanup();
    },
  };
}

/** A writable copy of a session description (simple-peer edits `sdp`). */
function plainDescription(
  description: RTCSessionDescriptionInit,
): RTCSessionDescriptionInit {
  return { type: description.type, sdp: description.sdp };
}

/**
 * 127.0.0.1 on a host whose only interfaces are loopback, where
 * node-datachannel would otherwise find no candidate pair; undefined
 * elsewhere, so real networks keep working.
 */
function defaultBindAddress(): string | undefined {
  const external = Object.values(networkInterfaces()).some((addresses) =>
    (addresses ?? []).some((address) => !address.internal),
  );
  return external ? undefined : '127.0.0.1';
}
