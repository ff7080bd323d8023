/**
 * The join page's view: turns a browser session's events into the page's
 * numbers, neighbour badges and loss chart. Also keeps a plain snapshot
 * of the session on `window.topkPeer`, for people debugging in the
 * console and for the browser tests.
 */
import { topkError } from '../../shared/errors.ts';
import { LossChart } from './chart.ts';
import type { StepRecord } from '../training/trainer.ts';
import type { BrowserPeerEvent, BrowserSummary } from './events.ts';

/** What the page knows about its session (`window.topkPeer`). */
export interface PeerSnapshot {
  state: 'idle' | 'running' | 'done' | 'stopped' | 'failed';
  /** Steps this tab took part in (fewer than `step` for a late joiner). */
  stepsRun: number;
  backend?: string;
  /** Backends tried before `backend`, and why each could not be used. */
  backendSkipped?: readonly { name: string; reason: string }[];
  peerId?: string;
  step: number;
  generation?: number;
  ringIndex?: number;
  peers?: number;
  summary?: BrowserSummary;
  error?: { code: string; message: string };
  /** Milliseconds per step, by phase, averaged over the last steps. */
  stepMs?: { compute: number; select: number; communicate: number };
}

declare global {
  interface Window {
    topkPeer: PeerSnapshot;
  }
}

/** Steps the shown step time is averaged over. */
const TIMED_STEPS = 20;

/** The page's view of one session after another. */
export class PeerView {
  readonly #chart: LossChart;
  readonly #recentTimes: [number, number, number][] = [];
  readonly snapshot: PeerSnapshot = { state: 'idle', step: 0, stepsRun: 0 };

  constructor() {
    this.#chart = new LossChart(byId('loss-chart'));
    window.topkPeer = this.snapshot;
  }

  /** Clears the numbers for a new session. */
  reset(): void {
    for (const key of Object.keys(this.snapshot)) {
      delete (this.snapshot as unknown as Record<string, unknown>)[key];
    }
    Object.assign(this.snapshot, { state: 'running', step: 0, stepsRun: 0 });
    for (const output of document.querySelectorAll('.stat output')) {
      output.textContent = '–';
    }
    this.#neighbour('prev', '–', 'none');
    this.#neighbour('next', '–', 'none');
    this.#chart.clear();
    this.#recentTimes.length = 0;
    this.setState('running');
  }

  /** The page's state, shown by the button and the status colour. */
  setState(state: PeerSnapshot['state']): void {
    this.snapshot.state = state;
    document.body.dataset['state'] = state;
  }

  /** A line of status under the form. */
  status(text: string): void {
    byId('status').textContent = text;
  }

  /** Shows one session event. */
  show(event: BrowserPeerEvent): void {
    switch (event.type) {
      case 'status':
        this.status(event.text);
        break;
      case 'backend':
        this.snapshot.backend = event.name;
        this.snapshot.backendSkipped = event.skipped;
        set(
          'stat-backend',
          event.name,
          event.skipped.map((s) => `${s.name}: ${s.reason}`).join('\n'),
        );
        break;
      case 'joined':
        this.snapshot.peerId = event.peerId;
        set('stat-peer', event.peerId);
        set('stat-data', bytes(event.dataBytes));
        this.status(
          `joined: ${event.config.model} on ${event.config.dataset}, ` +
            `n = ${event.n.toLocaleString()}, K = ${event.k.toLocaleString()}`,
        );
        break;
      case 'neighbours': {
        // Alone in the ring, this peer is its own neighbour: no channel.
        const state = event.alone ? 'alone' : event.state;
        this.#neighbour('prev', event.alone ? '–' : event.prev, state);
        this.#neighbour('next', event.alone ? '–' : event.next, state);
        break;
      }
      case 'departed':
        if (event.generation === this.snapshot.generation) {
          this.#neighbour(event.side, event.peerId, 'closed');
        }
        break;
      case 'waiting':
        this.status(
          `waiting for more peers: the run starts with ${event.minPeers}`,
        );
        break;
      case 'shard':
        // The shard may arrive after training started: no status line.
        set(
          'stat-data',
          bytes(event.dataBytes),
          `shard ${event.ringIndex + 1} of ${event.peers} (generation ` +
            `${event.generation}): ${event.samples.toLocaleString()} samples`,
        );
        break;
      case 'generation':
        Object.assign(this.snapshot, {
          generation: event.generation,
          ringIndex: event.ringIndex,
          peers: event.peers,
        });
        set(
          'stat-ring',
          `${event.ringIndex + 1} of ${event.peers} · gen ${event.generation}`,
        );
        this.status(`training: ${event.totalSteps} steps in the run`);
        break;
      case 'handing-on':
        this.status('run complete; handing the final weights on to the ring');
        break;
      case 'step-failed':
        this.status(
          `step failed (${event.error.code}); waiting for the ring to ` +
            're-form',
        );
        break;
      case 'step':
        this.#step(event);
        break;
      case 'evaluation':
        if (event.accuracy !== undefined) {
          set('stat-accuracy', percent(event.accuracy));
        }
        break;
      case 'done':
        this.#done(event.summary);
        break;
    }
  }

  /** Shows a failure. */
  failed(code: string, message: string): void {
    this.snapshot.error = { code, message };
    this.setState('failed');
    this.status(`${code}: ${message}`);
  }

  #step(event: Extract<BrowserPeerEvent, { type: 'step' }>): void {
    const r = event.record;
    this.snapshot.step = r.step + 1;
    this.snapshot.stepsRun++;
    set('stat-step', `${r.step + 1} / ${event.totalSteps}`);
    if (Number.isFinite(r.loss)) set('stat-loss', r.loss.toFixed(4));
    set('stat-sent', bytes(event.totals.bytesSent));
    set('stat-received', bytes(event.totals.bytesReceived));
    const ratio =
      event.totals.bytesSent > 0
        ? ` (${(event.totals.denseBytes / event.totals.bytesSent).toFixed(1)}×)`
        : '';
    set('stat-dense', bytes(event.totals.denseBytes) + ratio);
    const ms = this.#averageTimes(r);
    this.snapshot.stepMs = ms;
    set(
      'stat-time',
      `${Math.round(ms.compute + ms.select + ms.communicate)} ms`,
      `compute ${ms.compute.toFixed(1)} ms, select ${ms.select.toFixed(1)} ` +
        `ms, communicate ${ms.communicate.toFixed(1)} ms`,
    );
    this.#chart.add(r.step, r.loss);
  }

  /** Mean times of the last {@link TIMED_STEPS} steps, by phase. */
  #averageTimes(record: StepRecord): NonNullable<PeerSnapshot['stepMs']> {
    const recent = this.#recentTimes;
    recent.push([record.computeMs, record.selectMs, record.communicateMs]);
    if (recent.length > TIMED_STEPS) recent.shift();
    const mean = (phase: number): number =>
      recent.reduce((sum, times) => sum + times[phase], 0) / recent.length;
    return { compute: mean(0), select: mean(1), communicate: mean(2) };
  }

  #done(summary: BrowserSummary): void {
    this.snapshot.summary = summary;
    this.#chart.flush();
    set('stat-hash', summary.modelHash);
    set('stat-data', bytes(summary.dataBytes));
    if (summary.testAccuracy !== undefined) {
      set('stat-accuracy', percent(summary.testAccuracy));
    }
    this.setState(summary.stopped ? 'stopped' : 'done');
    this.status(
      `${summary.stopped ? 'left' : 'finished'} after ${summary.steps} ` +
        `steps in ${(summary.wallMs / 1000).toFixed(1)} s; test loss ` +
        `${summary.testLoss.toFixed(4)} on ${summary.testSamples} samples`,
    );
  }

  #neighbour(side: 'prev' | 'next', peer: string, state: string): void {
    set(`${side}-peer`, peer);
    const badge = byId(`${side}-state`);
    badge.dataset['state'] = state;
    badge.textContent = state;
  }
}

/** The element with id `id`; the page has every id this module uses. */
export function byId(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (element === null) {
    throw topkError('ERR_INTERNAL', `the page has no #${id}`, { id });
  }
  return element;
}

function set(id: string, text: string, title?: string): void {
  const element = byId(id);
  element.textContent = text;
  if (title !== undefined) element.title = title;
}

function percent(value: number): string {
  return `${(value * 100).toFixed(2)}%`;
}

/** Bytes in B, KiB, MiB or GiB. */
export function bytes(count: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
