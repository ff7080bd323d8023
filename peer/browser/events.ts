/**
 * What a browser session tells its page: the ring session's events plus
 * the tab's own (backend, joining, data), and the summary at the end.
 */
import type { RoomConfig } from '../../shared/config.ts';
import type {
  Placement,
  RingSessionEvent,
  RingSessionResult,
} from '../session/ring-session-types.ts';
import type { BrowserBackendName } from './backend.ts';

/** Progress of a browser session. */
export type BrowserPeerEvent =
  | RingSessionEvent
  | { readonly type: 'status'; readonly text: string }
  | {
      readonly type: 'backend';
      readonly name: BrowserBackendName;
      readonly skipped: readonly { name: string; reason: string }[];
    }
  | {
      readonly type: 'joined';
      readonly peerId: string;
      readonly config: RoomConfig;
      readonly n: number;
      readonly k: number;
      /** Bytes of samples downloaded so far. */
      readonly dataBytes: number;
    }
  | ({
      /** This tab's shard of a generation is held. */
      readonly type: 'shard';
      readonly samples: number;
      readonly dataBytes: number;
    } & Placement)
  | { readonly type: 'done'; readonly summary: BrowserSummary };

/** How a browser session ended. */
export interface BrowserSummary extends RingSessionResult {
  readonly peerId: string;
  readonly backend: string;
  readonly n: number;
  readonly k: number;
  /** Bytes of samples downloaded (compressed, where the browser tells). */
  readonly dataBytes: number;
  readonly wallMs: number;
}
