/**
 * The dashboard page: `/dashboard` lists the rooms, `/dashboard?room=R`
 * shows one room, kept live through the read-only socket.io namespace
 * `/dashboard`. Updates arrive at most a few times a second (the server
 * batches them); the page redraws at most every {@link RENDER_INTERVAL_MS}.
 */
import { io, type Socket } from 'socket.io-client';

import {
  DASHBOARD_NAMESPACE,
  type DashboardClientEvents,
  type DashboardServerEvents,
  type RoomHistory,
} from '../../shared/dashboard-protocol.ts';
import { byId, h, replaceChildren } from './dom.ts';
import { RoomModel } from './model.ts';
import { RoomView } from './room-view.ts';
import { showRoomList } from './rooms-list.ts';

/** Least time between two redraws of the room view. */
const RENDER_INTERVAL_MS = 250;

function setLink(state: string, text: string): void {
  const link = byId('link');
  link.dataset['state'] = state;
  link.textContent = text;
}

function showRoom(room: string): void {
  document.title = `${room} · topk-ring dashboard`;
  replaceChildren(
    byId('crumb'),
    h('a', { href: '/dashboard' }, 'rooms'),
    ' / ',
    h('strong', {}, room),
  );
  const model = new RoomModel(room);
  const view = new RoomView(model);
  let renderTimer: ReturnType<typeof setTimeout> | undefined;
  let lastRenderMs = -Infinity;
  const render = () => {
    renderTimer = undefined;
    lastRenderMs = performance.now();
    requestAnimationFrame(() => {
      const startMs = performance.now();
      view.render();
      // Read by the browser tests: how many renders, and the last one's cost.
      const data = document.body.dataset;
      data['renderMs'] = (performance.now() - startMs).toFixed(1);
      data['rendered'] = String(Number(data['rendered'] ?? '0') + 1);
    });
  };
  const scheduleRender = () => {
    if (renderTimer !== undefined) return;
    const waitMs = Math.max(
      0,
      lastRenderMs + RENDER_INTERVAL_MS - performance.now(),
    );
    renderTimer = setTimeout(render, waitMs);
  };

  const refetch = async () => {
    const response = await fetch(
      `/api/rooms/${encodeURIComponent(room)}/history`,
      { cache: 'no-store' },
    );
    if (!response.ok) return;
    model.replace((await response.json()) as RoomHistory);
    scheduleRender();
  };

  const socket: Socket<DashboardServerEvents, DashboardClientEvents> = io(
    DASHBOARD_NAMESPACE,
    { auth: { room } },
  );
  socket.on('connect', () => setLink('live', 'live'));
  socket.on('disconnect', () => setLink('down', 'disconnected; retrying'));
  socket.on('connect_error', (error) =>
    setLink('down', `cannot connect: ${error.message}`),
  );
  socket.on('update', (update) => {
    if (!model.apply(update)) void refetch();
    scheduleRender();
  });
}

const room = new URLSearchParams(location.search).get('room');
if (room === null || room === '') showRoomList(setLink);
else showRoom(room);
