/**
 * A browser tab's training session: start a TensorFlow.js backend, read
 * the room's config and fetch the test slice from the server, join the
 * room presenting the model's fingerprint, and run the same
 * RingSession as a Node peer (session/ring-session.ts) over the
 * browser's own WebRTC, downloading this tab's shard for each generation.
 */
import type { ModelFingerprint } from '../../shared/fingerprint.ts';
import { SignalingClient } from '../../shared/signaling-client.ts';
import type { RingConnector } from '../session/connector.ts';
import {
  fetchRoomConfig,
  fingerprintFor,
} from '../session/join-fingerprint.ts';
import { RingSession, ringConnector } from '../session/ring-session.ts';
import { Trainer } from '../training/trainer.ts';
import { startBrowserBackend, type BrowserBackendChoice } from './backend.ts';
import { browserBinding } from './binding.ts';
import type { BrowserPeerEvent, BrowserSummary } from './events.ts';
import { RemoteDataset } from './remote-data.ts';

/** Settings of a {@link BrowserSession}. */
export interface BrowserSessionOptions {
  /** The signaling server's origin, e.g. `location.origin`. */
  readonly server: string;
  readonly room: string;
  readonly token?: string;
  readonly backend: BrowserBackendChoice;
  /** Where the server serves the wasm backend's files. */
  readonly wasmPaths: string;
  /** Test samples downloaded for evaluation. */
  readonly testSamples: number;
  /** Receives progress. Must not throw. */
  readonly onEvent: (event: BrowserPeerEvent) => void;
}

/** One tab's session from joining to leaving. */
export class BrowserSession {
  readonly #options: BrowserSessionOptions;
  #client: SignalingClient | undefined;
  #trainer: Trainer | undefined;
  #ring: RingSession | undefined;
  #connector: RingConnector | undefined;
  #stopRequested = false;
  #closed = false;

  constructor(options: BrowserSessionOptions) {
    this.#options = options;
  }

  /** Runs the session to its end (done, stopped or failed), then leaves. */
  async run(): Promise<BrowserSummary> {
    try {
      return await this.#run();
    } finally {
      await this.#close();
    }
  }

  /** Stops between steps; {@link run} then leaves gracefully. */
  stop(): void {
    this.#stopRequested = true;
    this.#ring?.stop();
  }

  /**
   * Leaves at once, for a page that is going away: the goodbyes on the
   * data channels and the `leave` to the server go out synchronously,
   * before the page is torn down; nothing is awaited.
   */
  leaveNow(): void {
    this.#stopRequested = true;
    void this.#close();
  }

  async #run(): Promise<BrowserSummary> {
    const options = this.#options;
    const startMs = performance.now();
    const emit = (event: BrowserPeerEvent): void => {
      try {
        options.onEvent(event);
      } catch {
        // The page's listener must not break the session.
      }
    };
    emit({ type: 'status', text: 'starting the backend' });
    const backend = await startBrowserBackend(
      options.backend,
      options.wasmPaths,
    );
    emit({ type: 'backend', ...backend });

    // Like a Node peer (session/join-fingerprint.ts), the tab presents
    // the fingerprint of the model it will train, built from the room's
    // config read before joining: a tab whose code builds another model
    // (a stale page, another version) is refused at join with the
    // difference named, instead of failing the ring mid-run.
    emit({ type: 'status', text: "reading the room's config" });
    const expected = await fetchRoomConfig(options.server, options.room);
    let early: RemoteDataset | undefined;
    let fingerprint: ModelFingerprint | undefined;
    if (expected !== undefined) {
      emit({ type: 'status', text: 'downloading test samples' });
      early = await RemoteDataset.open({
        baseUrl: options.server,
        room: options.room,
        dataset: expected.dataset,
        seed: expected.seed,
        testSamples: options.testSamples,
      });
      fingerprint = fingerprintFor(expected, early);
    }

    emit({ type: 'status', text: 'joining the room' });
    const client = await SignalingClient.connect({
      url: options.server,
      room: options.room,
      token: options.token,
      kind: 'browser',
      backend: backend.name,
      fingerprint,
    });
    this.#client = client;
    const config = client.config;
    const connector = ringConnector(client, browserBinding());
    this.#connector = connector;

    let dataset = early;
    if (
      dataset === undefined ||
      expected?.dataset !== config.dataset ||
      expected.seed !== config.seed
    ) {
      emit({ type: 'status', text: 'downloading test samples' });
      dataset = await RemoteDataset.open({
        baseUrl: options.server,
        room: options.room,
        dataset: config.dataset,
        seed: config.seed,
        testSamples: options.testSamples,
      });
    }
    const trainer = new Trainer({
      config,
      dataset,
      room: options.room,
      peerId: client.peerId,
    });
    this.#trainer = trainer;
    emit({
      type: 'joined',
      peerId: client.peerId,
      config,
      n: trainer.n,
      k: trainer.compressor.config.totalK,
      dataBytes: dataset.bytesDownloaded,
    });

    const ring = new RingSession({
      client,
      trainer,
      connector,
      room: options.room,
      backend: backend.name,
      fresh: true,
      onEvent: (event) => emit(event),
      prepareGeneration: async (placement) => {
        await dataset.holdShard(placement);
        emit({
          type: 'shard',
          ...placement,
          samples: dataset.train.heldCount,
          dataBytes: dataset.bytesDownloaded,
        });
      },
    });
    this.#ring = ring;
    if (this.#stopRequested) ring.stop();
    emit({
      type: 'status',
      text: `waiting for the ring (${config.minPeers} peers to start)`,
    });
    const result = await ring.run();
    const summary: BrowserSummary = {
      ...result,
      peerId: client.peerId,
      backend: backend.name,
      n: trainer.n,
      k: trainer.compressor.config.totalK,
      dataBytes: dataset.bytesDownloaded,
      wallMs: performance.now() - startMs,
    };
    emit({ type: 'done', summary });
    return summary;
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Before any await: see leaveNow().
    const closing = this.#ring?.close() ?? this.#client?.leave('left');
    await closing;
    this.#connector?.dispose();
    this.#trainer?.dispose();
  }
}
