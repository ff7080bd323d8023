/**
 * What the signaling server tells dashboards: the history of a room's
 * reports (`GET /api/rooms/:room/history`) and live updates on the
 * read-only socket.io namespace {@link DASHBOARD_NAMESPACE}.
 *
 * Histories are kept in step buckets of `bucketSteps` steps (a power of
 * two, the same for every peer of a room, doubled when a series grows too
 * long): each point is the mean of what the reports of its steps said, at
 * the bucket's first step.
 *
 * Browser-safe: types and constants only.
 */
import type { PeerKind, Rejection, RoomStatus } from './signaling-protocol.ts';

/** The socket.io namespace dashboards connect to. */
export const DASHBOARD_NAMESPACE = '/dashboard';

/**
 * One peer's points as columns of equal length: `step[i]` is the first
 * step of bucket i, and null means no report of that bucket said it.
 */
export interface SeriesColumns {
  readonly step: number[];
  readonly loss: (number | null)[];
  readonly accuracy: (number | null)[];
  /** Wire bytes per step, from differences of the cumulative counters. */
  readonly sentPerStep: (number | null)[];
  readonly receivedPerStep: (number | null)[];
  /** What a dense ring all-reduce would have sent per step. */
  readonly densePerStep: (number | null)[];
  readonly computeMs: (number | null)[];
  readonly selectMs: (number | null)[];
  readonly communicateMs: (number | null)[];
  /** `||acc - TopK(acc)|| / ||acc||`, when the peer reports it. */
  readonly compressionError: (number | null)[];
}

/** The history of one peer of a room (present or departed). */
export interface PeerHistory {
  readonly id: string;
  readonly kind: PeerKind;
  readonly backend: string;
  /** Entries sent per step and model size, as last reported. */
  readonly k: number | null;
  readonly n: number | null;
  /** The latest report's step and cumulative counters. */
  readonly lastStep: number | null;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly denseBytes: number | null;
  /** Reports received from this peer. */
  readonly reports: number;
  readonly updatedAtMs: number;
  readonly points: SeriesColumns;
}

/** A room's history, or the part of it from `sinceStep` on. */
export interface RoomHistory {
  readonly room: string;
  /** Width of a bucket in steps. */
  readonly bucketSteps: number;
  /** A series is coarsened once it would hold more points than this. */
  readonly maxPointsPerPeer: number;
  /** Points of buckets starting at or after this step are included. */
  readonly sinceStep: number;
  readonly peers: readonly PeerHistory[];
}

/** A room the server holds history for, as `GET /api/history` lists it. */
export interface HistorySummary {
  readonly room: string;
  readonly peers: number;
  readonly lastStep: number;
  readonly updatedAtMs: number;
  /** False once the room is gone from the server (the run ended). */
  readonly live: boolean;
}

/**
 * A push to a dashboard watching one room. With `full`, the history
 * replaces what the dashboard holds; otherwise, for each peer included,
 * its points from `history.sinceStep` on replace the dashboard's points
 * from that step on, and peers left out are unchanged.
 */
export interface DashboardUpdate {
  readonly room: string;
  readonly full: boolean;
  readonly history: RoomHistory;
  /** The room as the status API serves it; null once it is gone. */
  readonly status: RoomStatus | null;
  readonly sentAtMs: number;
}

/** Events the server sends on the dashboard namespace. */
export interface DashboardServerEvents {
  update: (update: DashboardUpdate) => void;
  /** Dashboards may not send events; each attempt is refused. */
  rejected: (rejection: Rejection) => void;
}

/** Dashboards send nothing: the namespace is read-only. */
export type DashboardClientEvents = Record<string, never>;

/** What a dashboard presents when connecting (socket.io `auth`). */
export interface DashboardAuth {
  /** The room to watch; none for just the list of rooms. */
  readonly room?: string;
}
