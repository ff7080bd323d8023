/**
 * Serves the dashboard page: `/dashboard` (the HTML), `/dashboard/app.js`
 * and `/dashboard/app.css`. The page's TypeScript (with uPlot and the
 * socket.io client) is bundled by esbuild on the first request and kept in
 * memory, so a clean clone needs no build step and nothing generated is
 * committed; later requests are served from the cache.
 */
import type { HttpHandler } from '../http-api.ts';
import {
  pageBundler,
  sendBuildFailure,
  type PageBundle,
} from '../page-bundle.ts';

/** The built page: its HTML, script and style sheet. */
export type DashboardBundle = PageBundle;

/**
 * The dashboard's files, bundled once per process. The style sheet
 * @imports uPlot's; esbuild inlines it.
 */
export const dashboardBundle = pageBundler({
  name: 'the dashboard',
  folder: new URL('./', import.meta.url),
});

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
      sendBuildFailure(response, 'the dashboard', error);
      return true;
    }
    const body = bundle[file.key];
    response.writeHead(200, {
      'content-type': file.type,
      'content-length': body.byteLength,
      // Built once per server run: a restart may bring another bundle.
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    response.end(request.method === 'HEAD' ? undefined : body);
    return true;
  };
}
