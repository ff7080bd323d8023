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

import type { HttpHandler } from '../../signaling/http-api.ts';
import { pageBundler, sendBuildFailure } from '../../signaling/page-bundle.ts';
import { dataRoutes, type DataRoutesOptions } from './data-routes.ts';

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

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

const pageSource = pageBundler({
  name: 'the browser peer',
  folder: new URL('./', import.meta.url),
  esbuild: {
    alias: { 'node:events': 'events' },
    inject: [here('./shims/process.ts'), here('./shims/timers.ts')],
    // randombytes (simple-peer) reaches crypto through `global`.
    define: { global: 'globalThis' },
  },
});

let gzippedScript: Promise<Uint8Array> | undefined;

/** The page's files with their types; the script also gzipped, once. */
async function pageBundle(): Promise<PageBundle> {
  const built = await pageSource();
  gzippedScript ??= gzipAsync(built.js);
  return {
    html: { body: built.html, type: 'text/html; charset=utf-8' },
    js: {
      body: built.js,
      gzipped: await gzippedScript,
      type: 'text/javascript; charset=utf-8',
    },
    css: { body: built.css, type: 'text/css; charset=utf-8' },
  };
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
      sendBuildFailure(response, 'the browser peer', error);
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
