/**
 * Serves the dashboard page: `/dashboard` (the HTML), `/dashboard/app.js`
 * and `/dashboard/app.css`. The page's TypeScript (with uPlot and the
 * socket.io client) is bundled by esbuild on the first request and kept in
 * memory, so a clean clone needs no build step and nothing generated is
 * committed; later requests are served from the cache.
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';

import debugFactory from 'debug';

import { isTopkError, topkError } from '../../shared/errors.ts';
import { sendJson, type HttpHandler } from '../http-api.ts';

const log = debugFactory('topk:signaling:dashboard');

/** The built page: its HTML, script and style sheet. */
export interface DashboardBundle {
  readonly html: string;
  readonly js: string;
  readonly css: string;
}

let cached: Promise<DashboardBundle> | undefined;

/**
 * The dashboard's files, bundled once per process. A failed build is not
 * kept, so a later request tries again.
 */
export function dashboardBundle(): Promise<DashboardBundle> {
  cached ??= buildBundle().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  return cached;
}

async function buildBundle(): Promise<DashboardBundle> {
  const startMs = performance.now();
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      'the dashboard is bundled with esbuild, which is not installed ' +
        '(npm ci installs it)',
      {},
      error,
    );
  }
  const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
  const [result, html] = await Promise.all([
    esbuild.build({
      // The style sheet @imports uPlot's; esbuild inlines it.
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
    }),
    readFile(here('./index.html'), 'utf8'),
  ]);
  const output = (ext: string) =>
    result.outputFiles.find((f) => f.path.endsWith(ext))?.text ?? '';
  const bundle = { html, js: output('.js'), css: output('.css') };
  log(
    'bundled in %d ms: %d KiB of script, %d KiB of style',
    Math.round(performance.now() - startMs),
    Math.round(bundle.js.length / 1024),
    Math.round(bundle.css.length / 1024),
  );
  return bundle;
}

const FILES: Record<string, { key: keyof DashboardBundle; type: string }> = {
  '/dashboard': { key: 'html', type: 'text/html; charset=utf-8' },
  '/dashboard/': { key: 'html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': {
    key: 'js',
    type: 'text/javascript; charset=utf-8',
  },
  '/dashboard/app.css': { key: 'css', type: 'text/css; charset=utf-8' },
};

/** The HTTP handler of the dashboard's files (GET and HEAD). */
export function dashboardHandler(): HttpHandler {
  return async (request, response, url) => {
    const file = Object.hasOwn(FILES, url.pathname)
      ? FILES[url.pathname]
      : undefined;
    if (file === undefined) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    let bundle: DashboardBundle;
    try {
      bundle = await dashboardBundle();
    } catch (error) {
      sendBuildFailure(response, error);
      return true;
    }
    const body = bundle[file.key];
    response.writeHead(200, {
      'content-type': file.type,
      'content-length': Buffer.byteLength(body),
      // Built once per server run: a restart may bring another bundle.
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    response.end(request.method === 'HEAD' ? undefined : body);
    return true;
  };
}

function sendBuildFailure(response: ServerResponse, error: unknown): void {
  log('bundling the dashboard failed: %O', error);
  const code = isTopkError(error) ? error.code : 'ERR_INTERNAL';
  const message = isTopkError(error)
    ? error.message
    : `bundling the dashboard failed: ${String(error).slice(0, 500)}`;
  sendJson(response, 500, { error: { code, message } });
}
