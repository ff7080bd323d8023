/**
 * The little of Node's `process` that browser builds of simple-peer's
 * dependencies (readable-stream) touch: `process.nextTick` and
 * `process.env`. Injected by the bundler wherever a bundled module reads
 * the free variable `process`; nothing else sees it.
 */

/** A stand-in for Node's `process` in the browser bundle. */
export const process = {
  env: {} as Record<string, string | undefined>,
  browser: true,
  version: '',
  // Empty, so code that looks for `process.versions.node` sees no Node.
  versions: {} as Record<string, string>,
  nextTick(callback: (...args: unknown[]) => void, ...args: unknown[]): void {
    queueMicrotask(() => callback(...args));
  },
};
