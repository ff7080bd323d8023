/**
 * One chart card of the dashboard: a title and a uPlot chart of lines
 * over steps. New data goes in with `setData` (cheap, a few times a
 * second); the chart is rebuilt only when its set of lines changes (a peer
 * joined or left).
 */
import uPlot from 'uplot';

import { h } from './dom.ts';
import type { Column } from './model.ts';

/** One line of a chart. */
export interface LineSpec {
  readonly label: string;
  readonly stroke: string;
  /** Fill under the line (stacked areas). */
  readonly fill?: string;
  readonly dash?: number[];
  readonly width?: number;
  /** The value the legend shows at index `idx` (defaults to the y value). */
  readonly legendValue?: (idx: number) => string;
}

/** How a chart draws its y axis. */
export interface ChartSpec {
  readonly title: string;
  /** A line of small print under the title. */
  readonly note?: string;
  readonly log?: boolean;
  readonly yRange?: readonly [number, number];
  /** Start the y axis at zero (stacked areas). */
  readonly yFromZero?: boolean;
  readonly formatY: (value: number) => string;
  /** Show uPlot's legend (for charts with a handful of lines); a chart
   * of one line per peer shows it only while there are few peers. */
  readonly legend: boolean | { readonly maxLines: number };
}

const HEIGHT_PX = 150;
const AXIS = {
  stroke: '#6b7280',
  font: '11px system-ui, sans-serif',
  grid: { stroke: '#eef0f3', width: 1 },
  ticks: { stroke: '#e5e7eb', width: 1, size: 4 },
} as const;

/** A chart card; append `element` to the page, then call `update`. */
export class Chart {
  readonly element: HTMLElement;
  readonly #body: HTMLElement;
  readonly #empty: HTMLElement;
  readonly #note: HTMLElement;
  readonly #spec: ChartSpec;
  #plot: uPlot | undefined;
  #signature = '';
  #lines: readonly LineSpec[] = [];

  constructor(spec: ChartSpec) {
    this.#spec = spec;
    this.#body = h('div', { class: 'chart-body' });
    this.#empty = h('div', { class: 'chart-empty' }, 'no data yet');
    this.#note = h('span', { class: 'chart-note' }, spec.note ?? '');
    this.element = h(
      'section',
      { class: 'card chart' },
      h('h3', {}, spec.title, this.#note),
      this.#body,
      this.#empty,
    );
  }

  /** Sets the small print under the title. */
  setNote(note: string): void {
    if (this.#note.textContent !== note) this.#note.textContent = note;
  }

  /** Draws `columns` (one per line of `lines`) over `steps`. */
  update(
    steps: number[],
    lines: readonly LineSpec[],
    columns: readonly Column[],
  ): void {
    const hasData = columns.some((c) => c.some((v) => v !== null));
    this.#empty.hidden = hasData;
    this.#body.hidden = !hasData;
    if (!hasData) return;

    const data = [steps, ...columns] as uPlot.AlignedData;
    const signature = lines.map((l) => `${l.label}|${l.stroke}`).join(',');
    this.#lines = lines;
    if (this.#plot !== undefined && signature === this.#signature) {
      this.#plot.setData(data);
      return;
    }
    this.#plot?.destroy();
    this.#signature = signature;
    this.#plot = new uPlot(this.#options(lines), data, this.#body);
  }

  /** Fits the chart to its card's width. */
  resize(): void {
    if (this.#plot === undefined) return;
    const width = this.#width();
    if (width !== this.#plot.width) {
      this.#plot.setSize({ width, height: HEIGHT_PX });
    }
  }

  #width(): number {
    return Math.max(200, this.element.clientWidth - 16);
  }

  #options(lines: readonly LineSpec[]): uPlot.Options {
    const spec = this.#spec;
    const formatY = spec.formatY;
    return {
      width: this.#width(),
      height: HEIGHT_PX,
      legend: {
        show:
          typeof spec.legend === 'boolean'
            ? spec.legend
            : lines.length <= spec.legend.maxLines,
        live: true,
      },
      cursor: { drag: { x: true, y: false }, points: { size: 5 } },
      scales: {
        x: { time: false },
        y: {
          distr: spec.log === true ? 3 : 1,
          ...(spec.yRange === undefined
            ? {}
            : { range: [spec.yRange[0], spec.yRange[1]] }),
          ...(spec.yFromZero === true
            ? { range: (_u, _min, max) => [0, max > 0 ? max * 1.08 : 1] }
            : {}),
        },
      },
      axes: [
        { ...AXIS, size: 28 },
        {
          ...AXIS,
          size: 62,
          // uPlot passes null for ticks it leaves unlabelled (log scales).
          values: (_u, splits) =>
            splits.map((v) => (v === null ? '' : formatY(v))),
        },
      ],
      series: [
        { label: 'step', value: (_u, v) => (v === null ? '–' : String(v)) },
        ...lines.map((line, i): uPlot.Series => ({
          label: line.label,
          stroke: line.stroke,
          width: line.width ?? 1.5,
          spanGaps: true,
          points: { show: false },
          ...(line.fill === undefined ? {} : { fill: line.fill }),
          ...(line.dash === undefined ? {} : { dash: line.dash }),
          value: (_u, v, _s, idx) => {
            const custom = this.#lines[i]?.legendValue;
            if (custom !== undefined && idx !== null) return custom(idx);
            return v === null ? '–' : formatY(v);
          },
        })),
      ],
    };
  }
}

/** A colour per peer: hues spread by the golden angle, never repeating
 * next to each other. */
export function peerColor(index: number): string {
  const hue = (index * 137.508 + 210) % 360;
  const lightness = 42 + (index % 3) * 8;
  return `hsl(${hue.toFixed(1)} 65% ${lightness}%)`;
}
