/**
 * Pages the server hosts (the dashboard, the browser peer's join page) are
 * TypeScript bundled by esbuild on the first request and kept in memory:
 * a clean clone needs no build step and nothing generated is committed.
 * A failed build is not kept, so a later request tries again.
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';

import debugFactory from 'debug';
import type { BuildOptions } from 'esbuild';

import { isTopkError, topkError } from '../shared/errors.ts';
import { sendJson } from './http-api.ts';

const log = debugFactory('topk:signaling:page');

/** A built page: its HTML, script and style sheet. */
export interface PageBundle {
  readonly html: Uint8Array;
  readonly js: Uint8Array;
  readonly css: Uint8Array;
}

/** What to bundle. */
export interface PageSource {
  /** The page's name, for messages ("the dashboard"). */
  readonly name: string;
  /** The folder with `app.ts`, `style.css` and `index.html`. */
  readonly folder: URL;
  /** esbuild settings beyond the common ones (aliases, shims). */
  readonly esbuild?: BuildOptions;
}

/** Returns the page's bundle, built on the first call and then cached. */
export function pageBundler(source: PageSource): () => Promise<PageBundle> {
  let cached: Promise<PageBundle> | undefined;
  return () => {
    cached ??= build(source).catch((error: unknown) => {
      cached = undefined;
      throw error;
    });
    return cached;
  };
}

async function build(source: PageSource): Promise<PageBundle> {
  const startMs = performance.now();
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `${source.name} is bundled with esbuild, which is not installed ` +
        '(npm ci installs it)',
      {},
      error,
    );
  }
  const here = (file: string) => fileURLToPath(new URL(file, source.folder));
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
      ...source.esbuild,
    }),
    readFile(here('./index.html')),
  ]);
  const output = (ext: string): Uint8Array =>
    result.outputFiles?.find((f) => f.path.endsWith(ext))?.contents ??
    new Uint8Array(0);
  const bundle = { html, js: output('.js'), css: output('.css') };
  log(
    '%s bundled in %d ms: %d KiB of script, %d KiB of style',
    source.name,
    Math.round(performance.now() - startMs),
    Math.round(bundle.js.byteLength / 1024),
    Math.round(bundle.css.byteLength / 1024),
  );
  return bundle;
}

/** Answers a failed build with a typed JSON error (500). */
export function sendBuildFailure(
  response: ServerResponse,
  name: string,
  error: unknown,
): void {
  log('bundling %s failed: %O', name, error);
  const code = isTopkError(error) ? error.code : 'ERR_INTERNAL';
  const message = isTopkError(error)
    ? error.message
    : `bundling ${name} failed: ${String(error).slice(0, 500)}`;
  sendJson(response, 500, { error: { code, message } });
}
