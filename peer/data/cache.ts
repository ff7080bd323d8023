/**
 * The folder where fetched data sets are kept: `$TOPK_RING_CACHE`, else
 * `$XDG_CACHE_HOME/topk-ring`, else `~/.cache/topk-ring`. Node-only.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The environment variable that overrides the cache folder. */
export const CACHE_ENV = 'TOPK_RING_CACHE';

/** The cache folder for the given environment. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env[CACHE_ENV];
  if (override !== undefined && override !== '') return resolve(override);
  const xdg = env.XDG_CACHE_HOME;
  const base =
    xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache');
  return join(base, 'topk-ring');
}
