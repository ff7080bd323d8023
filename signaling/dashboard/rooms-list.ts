/**
 * The list of rooms: the server's live rooms and those whose history it
 * still holds, each with a link to its view. Polled every two seconds
 * (the list is small; live pushes are for a room's view).
 */
import type { HistorySummary } from '../../shared/dashboard-protocol.ts';
import type { RoomStatus } from '../../shared/signaling-protocol.ts';
import { byId, h, replaceChildren } from './dom.ts';
import { formatAgo } from '../../shared/format.ts';

const POLL_MS = 2000;

/** Shows the room list in `#main` and keeps it current. */
export function showRoomList(
  setLink: (state: string, text: string) => void,
): void {
  const body = h('div', { class: 'table-slot' });
  replaceChildren(
    byId('main'),
    h('section', { class: 'card table-card' }, h('h3', {}, 'Rooms'), body),
  );
  replaceChildren(byId('crumb'), 'all rooms');

  const poll = async () => {
    try {
      const [live, history] = await Promise.all([
        getJson<{ rooms: RoomStatus[] }>('/api/rooms'),
        getJson<{ rooms: HistorySummary[] }>('/api/history'),
      ]);
      replaceChildren(body, roomTable(live.rooms, history.rooms));
      setLink('live', 'live');
    } catch (error) {
      setLink('down', `server unreachable (${String(error)})`);
    }
    setTimeout(() => void poll(), POLL_MS);
  };
  void poll();
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

function roomTable(
  live: readonly RoomStatus[],
  history: readonly HistorySummary[],
): HTMLElement {
  const nowMs = Date.now();
  const seen = new Set(live.map((r) => r.room));
  const rows = live.map((room) => {
    const check = room.hashCheck;
    const hash =
      check === null
        ? h('span', { class: 'muted' }, 'not checked yet')
        : check.agreed
          ? h('span', { class: 'hash-ok' }, `agree at step ${check.step}`)
          : h('span', { class: 'hash-bad' }, `MISMATCH at step ${check.step}`);
    const connected = room.peers.filter((p) => p.connected).length;
    return h(
      'tr',
      {},
      h('td', {}, link(room.room)),
      h('td', {}, h('span', { class: 'badge live' }, 'live')),
      h('td', { class: 'num' }, `${connected}`),
      h('td', { class: 'num' }, room.generation),
      h('td', { class: 'num' }, room.step),
      h('td', {}, hash),
      h('td', {}, `${room.config.model} on ${room.config.dataset}`),
    );
  });
  for (const past of history) {
    if (seen.has(past.room)) continue;
    rows.push(
      h(
        'tr',
        { class: 'departed' },
        h('td', {}, link(past.room)),
        h('td', {}, h('span', { class: 'badge ended' }, 'ended')),
        h('td', { class: 'num' }, `${past.peers} (history)`),
        h('td', { class: 'num' }, '–'),
        h('td', { class: 'num' }, past.lastStep),
        h(
          'td',
          { class: 'muted' },
          `last report ${formatAgo(past.updatedAtMs, nowMs)}`,
        ),
        h('td', {}, ''),
      ),
    );
  }
  if (rows.length === 0) {
    return h(
      'p',
      { class: 'muted empty' },
      'No rooms yet: rooms appear when the first peer joins.',
    );
  }
  return h(
    'table',
    { class: 'peers rooms' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...(
          [
            ['room', false],
            ['', false],
            ['peers', true],
            ['generation', true],
            ['step', true],
            ['model hashes', false],
            ['job', false],
          ] as const
        ).map(([t, numeric]) => h('th', numeric ? { class: 'num' } : {}, t)),
      ),
    ),
    h('tbody', {}, ...rows),
  );
}

function link(room: string): HTMLElement {
  return h('a', { href: `/dashboard?room=${encodeURIComponent(room)}` }, room);
}
