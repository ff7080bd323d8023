/**
 * The WebRTC "binding" of a browser tab: the browser's own
 * RTCPeerConnection classes, handed to simple-peer exactly where a Node
 * peer hands it @roamhq/wrtc's or node-datachannel's.
 */
import { topkError } from '../../shared/errors.ts';
import type { WebRtcBinding } from '../webrtc/bindings.ts';

/**
 * The browser's WebRTC classes. Throws `ERR_MISSING_DEPENDENCY` in a
 * browser without WebRTC (or with it disabled).
 */
export function browserBinding(): WebRtcBinding {
  if (typeof globalThis.RTCPeerConnection !== 'function') {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      'this browser has no WebRTC (RTCPeerConnection is missing or ' +
        'disabled); a tab cannot join the ring without it',
      {},
    );
  }
  return {
    name: 'browser',
    wrtc: {
      RTCPeerConnection: globalThis.RTCPeerConnection,
      RTCSessionDescription: globalThis.RTCSessionDescription,
      RTCIceCandidate: globalThis.RTCIceCandidate,
    },
    // Browsers fire it; PeerChannel still polls as a fallback.
    firesBufferedAmountLow: true,
    // The tab's own classes hold nothing beyond their connections.
    shutdown() {},
  };
}
