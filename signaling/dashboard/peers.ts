/**
 * The room's peers as text: the model-hash verdict (green when every peer
 * that hashed the latest common step agrees, red and loud when not) and a
 * table of peers in ring order with their latest numbers, time split and
 * hash; peers that left stay listed, greyed, while their history is kept.
 */
import type {
  PeerStatus,
  RoomStatus,
} from '../../shared/signaling-protocol.ts';
import { h, type Child } from './dom.ts';
import {
  formatBytes,
  formatMs,
  formatNumber,
  formatPercent,
  formatRatio,
  short,
} from '../../shared/format.ts';
import type { RoomModel } from './model.ts';

/** The hash the most peers reported at the checked step. */
function majorityHash(status: RoomStatus): string | null {
  const check = status.hashCheck;
  if (check === null) return null;
  const counts = new Map<string, number>();
  for (const peer of status.peers) {
    if (peer.modelHashStep !== check.step || peer.modelHash === null) continue;
    counts.set(peer.modelHash, (counts.get(peer.modelHash) ?? 0) + 1);
  }
  let best: string | null = null;
  for (const [hash, count] of counts) {
    if (best === null || count > counts.get(best)!) best = hash;
  }
  return best;
}

/** The model-hash verdict for the top of the room view. */
export function hashBanner(status: RoomStatus | null): HTMLElement {
  if (status === null) {
    return h(
      'div',
      { class: 'banner gone' },
      'This room is no longer on the server: the run ended or every peer ' +
        'left. Its history is shown as last received.',
    );
  }
  const check = status.hashCheck;
  const earlier =
    status.mismatchCount > 0
      ? ` · ${status.mismatchCount} mismatch${status.mismatchCount === 1 ? '' : 'es'} so far, last at step ${status.mismatches.at(-1)?.step ?? '?'}` +
        (status.resyncCount > 0
          ? `, ${status.resyncCount} resync${status.resyncCount === 1 ? '' : 's'} from a neighbour`
          : '')
      : '';
  if (check === null) {
    return h(
      'div',
      { class: 'banner idle' },
      'Model hashes: no step has been hashed by two peers yet' + earlier,
    );
  }
  if (check.agreed) {
    return h(
      'div',
      { class: `banner ok${earlier === '' ? '' : ' warn'}` },
      h('strong', {}, '✓ Model hashes agree'),
      ` at step ${check.step} (${check.peers} peers)${earlier}`,
    );
  }
  const groups = new Map<string, string[]>();
  for (const peer of status.peers) {
    if (peer.modelHashStep !== check.step || peer.modelHash === null) continue;
    const group = groups.get(peer.modelHash) ?? [];
    group.push(short(peer.id));
    groups.set(peer.modelHash, group);
  }
  return h(
    'div',
    { class: 'banner bad', role: 'alert' },
    h('strong', {}, `✗ MODEL HASH MISMATCH at step ${check.step}`),
    ' — the replicas have diverged: ',
    [...groups]
      .map(([hash, ids]) => `${short(hash, 8)} ← ${ids.join(', ')}`)
      .join('  |  '),
    earlier,
  );
}

/** Column titles; numeric ones are right-aligned like their cells. */
const HEAD: readonly (readonly [string, boolean])[] = [
  ['', false],
  ['#', true],
  ['peer', false],
  ['kind', false],
  ['backend', false],
  ['step', true],
  ['loss', true],
  ['accuracy', true],
  ['sent/step', true],
  ['dense/step', true],
  ['ratio', true],
  ['time split (compute · select · communicate)', false],
  ['model hash', false],
];

/** The table of peers: the ring first, in order, then those that left. */
export function peerTable(
  model: RoomModel,
  colorOf: (id: string) => string,
): HTMLElement {
  const status = model.status;
  const majority = status === null ? null : majorityHash(status);
  const rows: HTMLElement[] = [];
  const inRing = new Set<string>();
  for (const peer of status?.peers ?? []) {
    inRing.add(peer.id);
    rows.push(peerRow(model, peer, colorOf, status, majority));
  }
  for (const id of model.peerIds()) {
    if (!inRing.has(id)) rows.push(departedRow(model, id, colorOf));
  }
  return h(
    'table',
    { class: 'peers' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...HEAD.map(([title, numeric]) =>
          h('th', numeric ? { class: 'num' } : {}, title),
        ),
      ),
    ),
    h('tbody', {}, ...rows),
  );
}

function peerRow(
  model: RoomModel,
  peer: PeerStatus,
  colorOf: (id: string) => string,
  status: RoomStatus | null,
  majority: string | null,
): HTMLElement {
  const meta = model.meta(peer.id);
  const ratio =
    meta !== undefined && meta.denseBytes !== null && meta.bytesSent > 0
      ? meta.denseBytes / meta.bytesSent
      : null;
  return h(
    'tr',
    { class: peer.connected ? '' : 'waiting' },
    h('td', {}, swatch(colorOf(peer.id))),
    h('td', { class: 'num' }, peer.ringIndex),
    h('td', { class: 'mono', title: peer.id }, short(peer.id, 10)),
    h('td', {}, h('span', { class: `badge ${peer.kind}` }, peer.kind)),
    h(
      'td',
      {},
      peer.backend,
      peer.connected ? null : h('span', { class: 'muted' }, ' (waiting)'),
    ),
    h('td', { class: 'num' }, peer.step ?? '–'),
    // Reports carry accuracy only after an evaluation: show the last one.
    h(
      'td',
      { class: 'num' },
      formatNumber(peer.loss ?? model.latest(peer.id, 'loss'), 4),
    ),
    h(
      'td',
      { class: 'num' },
      formatPercent(peer.accuracy ?? model.latest(peer.id, 'accuracy')),
    ),
    h(
      'td',
      { class: 'num' },
      formatBytes(model.latest(peer.id, 'sentPerStep')),
    ),
    h(
      'td',
      { class: 'num' },
      formatBytes(model.latest(peer.id, 'densePerStep')),
    ),
    h('td', { class: 'num' }, formatRatio(ratio)),
    h('td', {}, timeSplit(peer.timing)),
    hashCell(peer, status, majority),
  );
}

function departedRow(
  model: RoomModel,
  id: string,
  colorOf: (id: string) => string,
): HTMLElement {
  const meta = model.meta(id);
  const cells: Child[] = [
    h('td', {}, swatch(colorOf(id))),
    h('td', { class: 'num' }, '–'),
    h('td', { class: 'mono', title: id }, short(id, 10)),
    h('td', {}, meta === undefined ? '' : meta.kind),
    h('td', {}, meta?.backend ?? ''),
    h('td', { class: 'num' }, meta?.lastStep ?? '–'),
    h('td', { class: 'num' }, formatNumber(model.latest(id, 'loss'), 4)),
    h('td', { class: 'num' }, formatPercent(model.latest(id, 'accuracy'))),
    h('td', { class: 'num' }, formatBytes(model.latest(id, 'sentPerStep'))),
    h('td', { class: 'num' }, formatBytes(model.latest(id, 'densePerStep'))),
    h('td', {}, ''),
    h('td', { class: 'muted' }, 'left the ring'),
    h('td', {}, ''),
  ];
  return h('tr', { class: 'departed' }, ...cells);
}

function swatch(color: string): HTMLElement {
  return h('span', { class: 'swatch', style: `background:${color}` });
}

function timeSplit(timing: PeerStatus['timing']): HTMLElement {
  if (timing === null || timing === undefined) {
    return h('span', { class: 'muted' }, '–');
  }
  const total = timing.computeMs + timing.selectMs + timing.communicateMs;
  const part = (ms: number, kind: string) =>
    h('span', {
      class: `split ${kind}`,
      style: `width:${total > 0 ? (100 * ms) / total : 0}%`,
    });
  return h(
    'div',
    {
      class: 'split-cell',
      title:
        `compute ${formatMs(timing.computeMs)}, select ` +
        `${formatMs(timing.selectMs)}, communicate ` +
        `${formatMs(timing.communicateMs)}`,
    },
    h(
      'div',
      { class: 'split-bar' },
      part(timing.computeMs, 'compute'),
      part(timing.selectMs, 'select'),
      part(timing.communicateMs, 'communicate'),
    ),
    h('span', { class: 'split-total' }, formatMs(total)),
  );
}

function hashCell(
  peer: PeerStatus,
  status: RoomStatus | null,
  majority: string | null,
): HTMLElement {
  if (peer.modelHash === null) return h('td', { class: 'muted' }, '–');
  const check = status?.hashCheck ?? null;
  const atCheck = check !== null && peer.modelHashStep === check.step;
  const kind = !atCheck
    ? 'hash-other'
    : peer.modelHash === majority && check.agreed
      ? 'hash-ok'
      : 'hash-bad';
  return h(
    'td',
    {
      class: `mono ${kind}`,
      title: `${peer.modelHash} at step ${peer.modelHashStep}`,
    },
    `${short(peer.modelHash, 8)} @${peer.modelHashStep ?? '?'}`,
  );
}
