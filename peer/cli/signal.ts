/**
 * `topk-ring signal`: runs a signaling server until Ctrl-C.
 *
 *   topk-ring signal --port 8080                  any room, default config
 *   topk-ring signal --room main --room-config job.json --token s3cret
 *   topk-ring signal --host 0.0.0.0 --port 8080   reachable from the LAN
 *   topk-ring signal --room main --max-train 6000 tabs join at /?room=main
 *
 * Port 0 picks a free port; the URL is printed either way.
 */
import { InvalidArgumentError, type Command } from 'commander';

import { isTopkError, topkError } from '../../shared/errors.ts';
import { RoomNameSchema } from '../../shared/signaling-protocol.ts';
import { browserPeerHandlers } from '../browser/serve.ts';
import {
  startSignalingServer,
  type SignalingServerOptions,
} from '../../signaling/server.ts';
import { integerOption, readRoomConfig } from './options.ts';

interface SignalOptions {
  port: number;
  host: string;
  roomConfig?: string;
  room?: string;
  token?: string;
  tokenSecret?: string;
  allowPeerConfig?: boolean;
  maxTrain?: number;
  maxTest?: number;
}

/** Adds `signal` to `program`. */
export function registerSignalCommand(program: Command): void {
  program
    .command('signal')
    .description('run a signaling server (rooms, WebRTC negotiation, status)')
    .option(
      '--port <port>',
      'port to listen on; 0 picks a free one',
      port,
      8080,
    )
    .option(
      '--host <host>',
      'interface to listen on (0.0.0.0 to accept peers from the LAN)',
      '127.0.0.1',
    )
    .option(
      '--room-config <file>',
      'room config as JSON (see shared/config.ts)',
    )
    .option(
      '--room <name>',
      'create this room at start; without it any room is made on first join',
    )
    .option('--token <token>', 'shared secret every peer must present')
    .option('--token-secret <secret>', 'secret that signs room tokens (HMAC)')
    .option(
      '--allow-peer-config',
      "let the first peer of a room set the room's config",
    )
    .option(
      '--max-train <n>',
      "the room trains on the first n training samples (its config's " +
        'trainSamples): peers and tabs alike',
      integerOption(1),
    )
    .option(
      '--max-test <n>',
      'serve browser tabs only the first n test samples',
      integerOption(1),
    )
    .action(async (options: SignalOptions) => {
      try {
        await runSignal(options);
      } catch (error) {
        console.error(
          isTopkError(error) ? `${error.code}: ${error.message}` : error,
        );
        process.exitCode = 1;
      }
    });
}

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) {
    throw new InvalidArgumentError(
      `expected a port in [0, 65535], got ${value}`,
    );
  }
  return parsed;
}

async function runSignal(options: SignalOptions): Promise<void> {
  const fromFile = await readRoomConfig(options.roomConfig, '--room-config');
  if (
    options.maxTrain !== undefined &&
    fromFile.trainSamples !== undefined &&
    fromFile.trainSamples !== options.maxTrain
  ) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `--max-train ${options.maxTrain} contradicts the room config's ` +
        `trainSamples ${fromFile.trainSamples}`,
      { setting: 'trainSamples' },
    );
  }
  // The training-set size is the room's: peers and tabs cut the same set.
  const config =
    options.maxTrain === undefined
      ? fromFile
      : { ...fromFile, trainSamples: options.maxTrain };
  if (
    options.room !== undefined &&
    !RoomNameSchema.safeParse(options.room).success
  ) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `--room: expected 1-64 of A-Z a-z 0-9 . _ - (starting with a letter ` +
        `or digit), got ${JSON.stringify(options.room)}`,
      { room: options.room },
    );
  }
  const serverOptions: SignalingServerOptions = {
    port: options.port,
    host: options.host,
    allowPeerConfig: options.allowPeerConfig === true,
    admission: {
      ...(options.token === undefined ? {} : { sharedToken: options.token }),
      ...(options.tokenSecret === undefined
        ? {}
        : { tokenSecret: options.tokenSecret }),
    },
    ...(options.room === undefined
      ? { defaultRoomConfig: config }
      : { rooms: { [options.room]: config } }),
    onWarning: (message) => console.warn(`WARNING: ${message}`),
  };

  const server = await startSignalingServer(serverOptions);
  // Browser tabs: the join page at `/`, and each room's data set.
  for (const handler of browserPeerHandlers({
    roomConfig: (name) => server.roomStatus(name)?.config,
    maxTrain: options.maxTrain,
    maxTest: options.maxTest,
  })) {
    server.addHttpHandler(handler);
  }
  console.log(`signaling server listening on ${server.url}`);
  console.log(
    options.room === undefined
      ? '  rooms: created on first join'
      : `  room: ${options.room}`,
  );
  console.log(
    `  status: ${server.url}/api/rooms  metrics: ${server.url}/metrics`,
  );
  console.log(`  dashboard: ${server.url}/dashboard`);
  console.log(`  join from a browser: ${server.url}/?room=ROOM`);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      console.log(`\n${signal}: closing`);
      server.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
