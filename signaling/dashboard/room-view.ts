/**
 * The view of one room: summary chips, the model-hash verdict, the ring,
 * six charts (loss and accuracy per peer; the room's mean bytes per step
 * against dense, compression ratio, time split and compression error) and
 * the peer table. `render()` redraws from the model; the caller decides
 * how often (a few times a second at most).
 */
import { Chart, peerColor, type LineSpec } from './charts.ts';
import { byId, h, replaceChildren } from './dom.ts';
import {
  formatBytes,
  formatBytesDecimal,
  formatMs,
  formatNumber,
  formatPercent,
  formatRatio,
  short,
} from '../../shared/format.ts';
import { faultSummary, type Column, type RoomModel } from './model.ts';
import { hashBanner, peerTable } from './peers.ts';
import { KIND_COLOR, ringPicture } from './ring.ts';

const COLORS = {
  sent: '#2563eb',
  received: '#0891b2',
  dense: '#9ca3af',
  ratio: '#7c3aed',
  compute: '#2563eb',
  select: '#f59e0b',
  communicate: '#10b981',
  error: '#db2777',
} as const;

/** Opaque fills of the stacked time split: each area paints over the
 * larger one drawn before it, so no colour mixes with another. */
const FILLS = {
  compute: '#bfdbfe',
  select: '#fde68a',
  communicate: '#a7f3d0',
} as const;

/** Lines of a per-peer chart get a legend only while it stays small. */
const LEGEND_MAX_PEERS = 8;

/** The room view, mounted in `#main`. */
export class RoomView {
  readonly #model: RoomModel;
  readonly #banner = h('div', { class: 'banner-slot' });
  readonly #ring = h('div', { class: 'ring-slot' });
  readonly #summary = h('dl', { class: 'summary' });
  readonly #table = h('div', { class: 'table-slot' });
  readonly #charts = {
    loss: new Chart({
      title: 'Loss',
      formatY: (v) => formatNumber(v, 3),
      legend: { maxLines: LEGEND_MAX_PEERS },
    }),
    accuracy: new Chart({
      title: 'Accuracy',
      formatY: (v) => formatPercent(v),
      yRange: [0, 1],
      legend: { maxLines: LEGEND_MAX_PEERS },
    }),
    bytes: new Chart({
      title: 'Bytes per step (mean over peers)',
      formatY: (v) => formatBytesDecimal(v),
      log: true,
      legend: true,
    }),
    ratio: new Chart({
      title: 'Compression ratio (dense ÷ sent)',
      formatY: (v) => formatRatio(v),
      legend: true,
    }),
    time: new Chart({
      title: 'Time per step (mean over peers)',
      formatY: (v) => formatMs(v),
      yFromZero: true,
      legend: true,
    }),
    error: new Chart({
      title: 'Compression error ‖acc−TopK‖ ÷ ‖acc‖',
      formatY: (v) => formatNumber(v, 3),
      legend: true,
    }),
  };

  constructor(model: RoomModel) {
    this.#model = model;
    const c = this.#charts;
    replaceChildren(
      byId('main'),
      this.#banner,
      h(
        'div',
        { class: 'layout' },
        h(
          'aside',
          { class: 'side' },
          h(
            'section',
            { class: 'card' },
            h(
              'h3',
              {},
              'Ring',
              h('span', { class: 'chart-note' }, 'arrows: who sends to whom'),
            ),
            this.#ring,
            h(
              'div',
              { class: 'legend-kinds' },
              h('span', {
                class: 'dot',
                style: `background:${KIND_COLOR.node}`,
              }),
              'node',
              h('span', {
                class: 'dot',
                style: `background:${KIND_COLOR.browser}`,
              }),
              'browser',
              h('span', { class: 'dot hollow' }),
              'waiting',
            ),
          ),
          h('section', { class: 'card' }, h('h3', {}, 'Totals'), this.#summary),
        ),
        h(
          'div',
          { class: 'charts' },
          c.loss.element,
          c.accuracy.element,
          c.bytes.element,
          c.ratio.element,
          c.time.element,
          c.error.element,
        ),
      ),
      h(
        'section',
        { class: 'card table-card' },
        h('h3', {}, 'Peers'),
        this.#table,
      ),
    );
    window.addEventListener('resize', () => {
      for (const chart of Object.values(this.#charts)) chart.resize();
    });
  }

  /** Redraws everything from the model. */
  render(): void {
    const model = this.#model;
    const colorOf = (id: string) => peerColor(model.colorIndex(id));
    const status = model.status;
    const faults = status === null ? null : faultSummary(status, Date.now());
    replaceChildren(
      this.#banner,
      hashBanner(status),
      faults === null ? null : h('div', { class: 'banner faults' }, faults),
    );
    replaceChildren(this.#ring, ringPicture(status?.peers ?? [], colorOf));
    replaceChildren(this.#table, peerTable(model, colorOf));
    this.#renderSummary();
    this.#renderChips();
    this.#renderCharts(colorOf);
  }

  #renderCharts(colorOf: (id: string) => string): void {
    const view = this.#model.view();
    const c = this.#charts;
    const peerLines = view.peerIds.map((id): LineSpec => ({
      label: short(id),
      stroke: colorOf(id),
      width: 1.25,
    }));
    const perPeerLegend = view.peerIds.length <= LEGEND_MAX_PEERS;
    c.loss.update(view.steps, peerLines, view.loss);
    c.accuracy.update(view.steps, peerLines, view.accuracy);
    const peersNote = perPeerLegend
      ? ''
      : `${view.peerIds.length} peers; colours as in the table`;
    c.loss.setNote(peersNote);
    c.accuracy.setNote(peersNote);

    const positive = (column: Column) =>
      column.map((v) => (v !== null && v > 0 ? v : null));
    c.bytes.update(
      view.steps,
      [
        { label: 'sent', stroke: COLORS.sent, width: 2 },
        { label: 'received', stroke: COLORS.received, dash: [2, 3] },
        { label: 'dense ring', stroke: COLORS.dense, dash: [6, 4], width: 2 },
      ],
      [
        positive(view.mean.sentPerStep),
        positive(view.mean.receivedPerStep),
        positive(view.mean.densePerStep),
      ],
    );
    c.ratio.update(
      view.steps,
      [{ label: 'dense ÷ sent', stroke: COLORS.ratio, width: 2 }],
      [view.ratio],
    );

    // Stacked areas: each line is the sum of its part and those below, drawn
    // largest first so the smaller ones paint over it; the legend shows parts.
    const { computeMs, selectMs, communicateMs } = view.mean;
    const sum = (...columns: Column[]) =>
      columns[0]!.map((_, i) => {
        const parts = columns.map((col) => col[i]);
        return parts.every((p) => p === null || p === undefined)
          ? null
          : parts.reduce<number>((acc, p) => acc + (p ?? 0), 0);
      });
    const partValue = (column: Column) => (idx: number) =>
      formatMs(column[idx]);
    c.time.update(
      view.steps,
      [
        {
          label: 'communicate',
          stroke: COLORS.communicate,
          fill: FILLS.communicate,
          legendValue: partValue(communicateMs),
        },
        {
          label: 'select',
          stroke: COLORS.select,
          fill: FILLS.select,
          legendValue: partValue(selectMs),
        },
        {
          label: 'compute',
          stroke: COLORS.compute,
          fill: FILLS.compute,
          legendValue: partValue(computeMs),
        },
      ],
      [
        sum(computeMs, selectMs, communicateMs),
        sum(computeMs, selectMs),
        computeMs,
      ],
    );
    c.error.update(
      view.steps,
      [{ label: 'mean', stroke: COLORS.error, width: 2 }],
      [view.mean.compressionError],
    );
    const width = this.#model.bucketSteps;
    const note = width === 1 ? '' : `1 point = ${width} steps`;
    for (const chart of [c.bytes, c.ratio, c.time, c.error])
      chart.setNote(note);
    for (const chart of Object.values(c)) chart.resize();
  }

  #renderSummary(): void {
    const model = this.#model;
    let sent = 0;
    let received = 0;
    let dense = 0;
    let denseKnown = false;
    let k: number | null = null;
    let n: number | null = null;
    for (const id of model.peerIds()) {
      const meta = model.meta(id)!;
      sent += meta.bytesSent;
      received += meta.bytesReceived;
      if (meta.denseBytes !== null) {
        dense += meta.denseBytes;
        denseKnown = true;
      }
      k ??= meta.k;
      n ??= meta.n;
    }
    const rows: [string, string][] = [
      ['sent (all peers)', formatBytes(sent)],
      ['received (all peers)', formatBytes(received)],
      ['dense ring would send', denseKnown ? formatBytes(dense) : '–'],
      [
        'compression ratio',
        denseKnown && sent > 0 ? formatRatio(dense / sent) : '–',
      ],
      [
        'K / n',
        k !== null && n !== null
          ? `${k} / ${n} (${formatPercent(k / n)})`
          : '–',
      ],
      [
        'points per peer',
        `${model.largestSeries()} (max ${model.maxPointsPerPeer})`,
      ],
    ];
    replaceChildren(
      this.#summary,
      ...rows.flatMap(([term, value]) => [
        h('dt', {}, term),
        h('dd', {}, value),
      ]),
    );
  }

  #renderChips(): void {
    const status = this.#model.status;
    const chip = (label: string, value: string) =>
      h(
        'span',
        { class: 'chip' },
        h('span', { class: 'chip-label' }, label),
        value,
      );
    if (status === null) {
      replaceChildren(byId('chips'), chip('room', 'ended'));
      return;
    }
    const connected = status.peers.filter((p) => p.connected).length;
    replaceChildren(
      byId('chips'),
      chip('generation', String(status.generation)),
      chip('step', String(status.step)),
      chip(
        'peers',
        connected === status.peers.length
          ? String(connected)
          : `${connected}/${status.peers.length}`,
      ),
      chip('model', status.config.model),
      status.config.density !== undefined
        ? chip('density', formatPercent(status.config.density))
        : chip('K', String(status.config.k ?? '–')),
      status.restoring ? chip('restoring', 'yes') : null,
    );
  }
}
