/**
 * Serves the browser peer from the signaling server: the join page at `/`
 * (and `/join`), its script and style sheet, the wasm backend's `.wasm`
 * files, and the data routes (data-routes.ts). Node-only.
 *
 * The page's TypeScript (the same Trainer, shared/ core and WebRTC ring as
 * a Node peer) is bundled by esbuild on the first request and kept in
 * memory, so a clean clone needs no build step and nothing generated is
 * committed. Node-only modules the ring code imports get browser stand-ins
 * here: `node:events` is the npm `events` package, the `process` that
 * simple-peer's streams touch is shims/process.ts, and `setImmediate`
 * (webrtc/peer-channel.ts) is shims/timers.ts.
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

import createDebug from 'debug';

import { isTopkError, topkError } from '../../shared/errors.ts';
import { sendJson, type HttpHandler } from '../../signaling/http-api.ts';
import { dataRoutes, type DataRoutesOptions } from './data-routes.ts';

const log = createDebug('topk:browser:serve');
const gzipAsync = promisify(gzip);

/** Where the page asks for the wasm backend's files (see app.ts). */
export const WASM_ROUTE = '/browser/wasm/';

/** The wasm backend's files, the only ones served from its folder. */
const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

/** One served file: its bytes, their gzip, and its content type. */
interface Asset {
  readonly body: Uint8Array;
  readonly gzipped?: Uint8Array;
  readonly type: string;
}

/** The built page. */
interface PageBundle {
  readonly html: Asset;
  readonly js: Asset;
  readonly css: Asset;
}

let cached: Promise<PageBundle> | undefined;

/**
 * The page's files, bundled once per process; a failed build is not kept,
 * so a later request tries again.
 */
function pageBundle(): Promise<PageBundle> {
  cached ??= buildBundle().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  return cached;
}

async function buildBundle(): Promise<PageBundle> {
  const startMs = performance.now();
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      'the browser peer is bundled with esbuild, which is not installed ' +
        '(npm ci installs it)',
      {},
      error,
    );
  }
  const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
  const [result, html] = await Promise.all([
    esbuild.build({
      entryPoints: { app: here('./app.ts'), style: here('./style.css') },
      bundle: true,
      write: false,
      outdir: here('./out'),
      format: 'esm',
      platform: 'browser',
      target: ['es2022'],
      minify: true,
      legalComments: 'eof',
      logLevel: 'silent',
      alias: { 'node:events': 'events' },
      inject: [here('./shims/process.ts'), here('./shims/timers.ts')],
      // randombytes (simple-peer) reaches crypto through `global`.
      define: { global: 'globalThis' },
    }),
    readFile(here('./index.html')),
  ]);
  const output = (ext: string): Uint8Array =>
    result.outputFiles.find((f) => f.path.endsWith(ext))?.contents ??
    new Uint8Array(0);
  const js = output('.js');
  const bundle: PageBundle = {
    html: { body: html, type: 'text/html; charset=utf-8' },
    js: {
      body: js,
      gzipped: await gzipAsync(js),
      type: 'text/javascript; charset=utf-8',
    },
    css: { body: output('.css'), type: 'text/css; charset=utf-8' },
  };
  log(
    'bundled in %d ms: %d KiB of script (%d KiB gzipped)',
    Math.round(performance.now() - startMs),
    Math.round(js.byteLength / 1024),
    Math.round((bundle.js.gzipped?.byteLength ?? 0) / 1024),
  );
  return bundle;
}

const PAGE_FILES: Record<string, keyof PageBundle> = {
  '/': 'html',
  '/join': 'html',
  '/browser/app.js': 'js',
  '/browser/app.css': 'css',
};

/** The HTTP handler of the page, its bundle and the wasm files. */
export function pageHandler(): HttpHandler {
  const wasmFolder = path.dirname(
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'),
  );
  return async (request, response, url) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const wasm = url.pathname.startsWith(WASM_ROUTE)
      ? url.pathname.slice(WASM_ROUTE.length)
      : undefined;
    if (wasm !== undefined) {
      if (!WASM_FILES.includes(wasm)) return false;
      const body = await readFile(path.join(wasmFolder, wasm));
      send(request.method, request.headers['accept-encoding'], response, {
        body,
        type: 'application/wasm',
      });
      return true;
    }
    const key = Object.hasOwn(PAGE_FILES, url.pathname)
      ? PAGE_FILES[url.pathname]
      : undefined;
    if (key === undefined) return false;
    try {
      const bundle = await pageBundle();
      send(
        request.method,
        request.headers['accept-encoding'],
        response,
        bundle[key],
      );
    } catch (error) {
      sendBuildFailure(response, error);
    }
    return true;
  };
}

/** Options of {@link browserPeerHandlers}: those of the data routes. */
export type BrowserPeerServeOptions = DataRoutesOptions;

/**
 * Everything the server needs to host browser peers: the page and the
 * data routes. Pass to `startSignalingServer({ httpHandlers })` or
 * `server.addHttpHandler`.
 */
export function browserPeerHandlers(
  options: BrowserPeerServeOptions,
): HttpHandler[] {
  return [pageHandler(), dataRoutes(options)];
}

function send(
  method: string | undefined,
  acceptEncoding: string | undefined,
  response: ServerResponse,
  asset: Asset,
): void {
  const useGzip =
    asset.gzipped !== undefined && /\bgzip\b/.test(acceptEncoding ?? '');
  const body = useGzip ? (asset.gzipped as Uint8Array) : asset.body;
  response.writeHead(200, {
    'content-type': asset.type,
    'content-length': body.byteLength,
    ...(useGzip ? { 'content-encoding': 'gzip' } : {}),
    // Built once per server run: a restart may bring another bundle.
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  response.end(method === 'HEAD' ? undefined : body);
}

function sendBuildFailure(response: ServerResponse, error: unknown): void {
  log('bundling the browser peer failed: %O', error);
  const code = isTopkError(error) ? error.code : 'ERR_INTERNAL';
  const message = isTopkError(error)
    ? error.message
    : `bundling the browser peer failed: ${String(error).slice(0, 500)}`;
  sendJson(response, 500, { error: { code, message } });
}
