/**
 * The signaling server's HTTP side: room status as JSON, a health check,
 * Prometheus metrics, and a hook for more handlers (the browser client and
 * dashboard are served through it). socket.io answers its own path before
 * any of this runs.
 *
 *   GET /healthz          {ok, uptimeMs, rooms, connections}
 *   GET /api/rooms        {rooms: RoomStatus[]}
 *   GET /api/rooms/:room  RoomStatus, or 404
 *   GET /api/rooms/:room/history?since=STEP
 *                         RoomHistory (the dashboard's curves), or 404
 *   GET /api/history      {rooms: HistorySummary[]}, ended runs included
 *   GET /metrics          Prometheus text format
 *
 * TODO(#5): the status API answers anyone who can reach the server (peer
 * ids, steps, configs; ICE credentials are hidden); the dashboard may want
 * it behind the room token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import debugFactory from 'debug';

import type {
  HistorySummary,
  RoomHistory,
} from '../shared/dashboard-protocol.ts';
import type { RoomStatus } from '../shared/signaling-protocol.ts';
import type { SignalingMetrics } from './metrics.ts';

const log = debugFactory('topk:signaling:http');

/**
 * A handler for requests the API does not answer. Resolves true when it
 * answered the request; the next handler (or a 404) runs otherwise.
 */
export type HttpHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
) => boolean | Promise<boolean>;

/** What the API reads from the server. */
export interface HttpApiSource {
  readonly metrics: SignalingMetrics;
  readonly startedAtMs: number;
  connections(): number;
  roomStatuses(): RoomStatus[];
  roomStatus(name: string): RoomStatus | undefined;
  /** A room's history from `sinceStep` on, or undefined if none. */
  history(name: string, sinceStep: number): RoomHistory | undefined;
  /** Rooms with history. */
  historyRooms(): HistorySummary[];
  /** Extra handlers, tried in order after the API's own routes. */
  readonly handlers: readonly HttpHandler[];
}

/** Builds the `request` listener of the HTTP server. */
export function httpApi(
  source: HttpApiSource,
): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    route(source, request, response).catch((error: unknown) => {
      log('request %s failed: %O', request.url, error);
      if (!response.headersSent) {
        sendJson(response, 500, {
          error: { code: 'ERR_INTERNAL', message: 'internal error' },
        });
      } else {
        response.destroy();
      }
    });
  };
}

async function route(
  source: HttpApiSource,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const path = url.pathname;
  const isRead = request.method === 'GET' || request.method === 'HEAD';

  if (isRead && path === '/healthz') {
    sendJson(response, 200, {
      ok: true,
      uptimeMs: Date.now() - source.startedAtMs,
      rooms: source.roomStatuses().length,
      connections: source.connections(),
    });
    return;
  }
  if (isRead && path === '/metrics') {
    const body = await source.metrics.registry.metrics();
    response.writeHead(200, {
      'content-type': source.metrics.registry.contentType,
    });
    response.end(body);
    return;
  }
  if (isRead && (path === '/api/rooms' || path === '/api/rooms/')) {
    sendJson(response, 200, { rooms: source.roomStatuses() });
    return;
  }
  if (isRead && path === '/api/history') {
    sendJson(response, 200, { rooms: source.historyRooms() });
    return;
  }
  const historyOf = /^\/api\/rooms\/([^/]+)\/history$/.exec(path);
  if (isRead && historyOf !== null) {
    sendHistory(source, response, url, historyOf[1]!);
    return;
  }
  if (isRead && path.startsWith('/api/rooms/')) {
    const name = safeDecode(path.slice('/api/rooms/'.length));
    const status = name === undefined ? undefined : source.roomStatus(name);
    if (status === undefined) {
      sendJson(response, 404, {
        error: {
          code: 'ERR_UNKNOWN_NAME',
          message: `no room named ${JSON.stringify(name ?? path)}`,
        },
      });
      return;
    }
    sendJson(response, 200, status);
    return;
  }

  for (const handler of source.handlers) {
    if (await handler(request, response, url)) return;
  }
  sendJson(response, isRead ? 404 : 405, {
    error: {
      code: 'ERR_UNKNOWN_NAME',
      message: isRead
        ? `nothing at ${path}`
        : `method ${request.method ?? '?'} is not allowed on ${path}`,
    },
  });
}

function sendHistory(
  source: HttpApiSource,
  response: ServerResponse,
  url: URL,
  encodedName: string,
): void {
  const path = url.pathname;
  const name = safeDecode(encodedName);
  const sinceText = url.searchParams.get('since') ?? '0';
  const sinceStep = /^\d{1,15}$/.test(sinceText) ? Number(sinceText) : NaN;
  if (Number.isNaN(sinceStep)) {
    sendJson(response, 400, {
      error: {
        code: 'ERR_BAD_MESSAGE',
        message: `since: expected a step (an integer >= 0), got ${JSON.stringify(sinceText.slice(0, 32))}`,
      },
    });
    return;
  }
  const history =
    name === undefined ? undefined : source.history(name, sinceStep);
  if (history !== undefined) {
    sendJson(response, 200, history);
    return;
  }
  sendJson(response, 404, {
    error: {
      code: 'ERR_UNKNOWN_NAME',
      message: `no history for a room named ${JSON.stringify(name ?? path)}`,
    },
  });
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Sends `body` as JSON with `status`. */
export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  response.end(text);
}
