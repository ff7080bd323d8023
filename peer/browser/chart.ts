/**
 * The join page's loss chart: this tab's batch loss over steps, drawn by
 * uPlot. Points are kept at most {@link MAX_POINTS}: past that, every
 * other one is dropped, so a long run costs the page no more than a short
 * one.
 */
import uPlot from 'uplot';

/** Most points kept on the chart. */
const MAX_POINTS = 4000;
/** Distances between step ticks that uPlot may choose from. */
const STEP_TICKS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000,
  100_000,
];
/** Least time between two redraws. */
const REDRAW_INTERVAL_MS = 250;

/** A loss-over-steps chart inside `container`. */
export class LossChart {
  readonly #plot: uPlot;
  readonly #container: HTMLElement;
  #steps: number[] = [];
  #losses: number[] = [];
  /** Keep one point in `#stride` (doubles each time the chart fills). */
  #stride = 1;
  #redrawTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #resize = new ResizeObserver(() => this.#fit());

  constructor(container: HTMLElement) {
    this.#container = container;
    this.#plot = new uPlot(
      {
        width: Math.max(300, container.clientWidth),
        height: 220,
        scales: { x: { time: false } },
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        axes: [
          // Steps are whole numbers: no ticks between them.
          { label: 'step', stroke: '#6b7280', incrs: STEP_TICKS },
          { label: 'loss', stroke: '#6b7280', size: 60 },
        ],
        series: [{}, { label: 'loss', stroke: '#2563eb', width: 1.5 }],
      },
      [[], []],
      container,
    );
    this.#resize.observe(container);
  }

  /** Starts over (a new session). */
  clear(): void {
    this.#steps = [];
    this.#losses = [];
    this.#stride = 1;
    this.#plot.setData([[], []]);
  }

  /** Adds the loss of `step`; non-finite losses are skipped. */
  add(step: number, loss: number): void {
    if (!Number.isFinite(loss) || step % this.#stride !== 0) return;
    this.#steps.push(step);
    this.#losses.push(loss);
    if (this.#steps.length > MAX_POINTS) {
      this.#stride *= 2;
      const keep = (_: number, i: number) =>
        this.#steps[i] % this.#stride === 0;
      this.#losses = this.#losses.filter(keep);
      this.#steps = this.#steps.filter((s) => s % this.#stride === 0);
    }
    if (this.#redrawTimer !== undefined) return;
    this.#redrawTimer = setTimeout(() => {
      this.#redrawTimer = undefined;
      this.#plot.setData([this.#steps, this.#losses]);
    }, REDRAW_INTERVAL_MS);
  }

  /** Draws what was added since the last redraw, now. */
  flush(): void {
    clearTimeout(this.#redrawTimer);
    this.#redrawTimer = undefined;
    this.#plot.setData([this.#steps, this.#losses]);
  }

  #fit(): void {
    const width = Math.max(300, this.#container.clientWidth);
    this.#plot.setSize({ width, height: 220 });
  }
}
