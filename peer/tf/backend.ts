/**
 * Chooses and starts the TensorFlow.js backend: `--backend
 * auto|wasm|cpu|tensorflow`.
 *
 * The default install is the lean set (tfjs-core, -layers, -backend-cpu,
 * -backend-wasm). The native `tensorflow` backend comes from
 * `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`, which the user
 * installs on a machine with an open network: their install scripts
 * download libtensorflow from outside the npm registry. This module has no
 * Node imports, so a browser tab starts its backend through it too.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
// tfjs-layers registers the gradient of every op with the engine; without
// it tf.variableGrads fails ("gradient function not found").
import '@tensorflow/tfjs-layers';
import createDebug from 'debug';

import { topkError } from '../../shared/errors.ts';
import { registerWasmGradientKernels } from './wasm-kernels.ts';

const debug = createDebug('topk:tf');

/** The values `--backend` accepts. */
export const BACKEND_CHOICES = ['auto', 'wasm', 'cpu', 'tensorflow'] as const;

/** A value of `--backend`. */
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** A backend that can actually run. */
export type BackendName = Exclude<BackendChoice, 'auto'>;

/** The packages that provide the `tensorflow` backend, best first. */
export const NATIVE_PACKAGES = [
  '@tensorflow/tfjs-node-gpu',
  '@tensorflow/tfjs-node',
] as const;

/** The message for a `tensorflow` backend whose package is not installed. */
export const NATIVE_MISSING_MESSAGE =
  'the tensorflow backend needs @tensorflow/tfjs-node or ' +
  '@tensorflow/tfjs-node-gpu, and neither is installed. These packages ' +
  'download libtensorflow at install time, which needs an open network: ' +
  'install with `npm install @tensorflow/tfjs-node` (or ' +
  '`npm install @tensorflow/tfjs-node-gpu`) on such a machine, or use ' +
  '--backend wasm';

/** Options of {@link initBackend}. */
export interface BackendOptions {
  /**
   * Where a browser finds the backend's .wasm files (see tfjs
   * `setWasmPaths`); a prefix ending in '/' or a map by file name. Node
   * finds them beside the package and needs nothing.
   */
  readonly wasmPaths?: string | Record<string, string>;
}

/** True when `choice` is a value of `--backend`. */
export function isBackendChoice(choice: string): choice is BackendChoice {
  return (BACKEND_CHOICES as readonly string[]).includes(choice);
}

/**
 * Starts the backend `choice` and makes it current. `auto` takes the best
 * one available: tensorflow when its package is installed and loads, else
 * wasm, else cpu. Resolves to the name of the backend now in use.
 *
 * Throws ERR_UNKNOWN_NAME for a choice outside {@link BACKEND_CHOICES},
 * ERR_MISSING_DEPENDENCY when `tensorflow` cannot be loaded, and
 * ERR_INTERNAL when wasm or cpu fail to start.
 */
export async function initBackend(
  choice: string,
  options: BackendOptions = {},
): Promise<BackendName> {
  if (!isBackendChoice(choice)) {
    throw topkError(
      'ERR_UNKNOWN_NAME',
      `unknown backend ${JSON.stringify(choice)}; expected one of ` +
        BACKEND_CHOICES.join(', '),
      { name: choice, known: BACKEND_CHOICES },
    );
  }
  // Production mode drops tfjs debug checks and the console banner that
  // recommends tfjs-node whenever the cpu backend is used in Node.
  tf.enableProdMode();

  if (choice === 'auto') return autoBackend(options);
  if (choice === 'tensorflow') {
    await loadNativePackage();
  }
  await startBackend(choice, options);
  return choice;
}

/** Tries tensorflow, then wasm, then cpu. */
async function autoBackend(options: BackendOptions): Promise<BackendName> {
  const order: BackendName[] = ['tensorflow', 'wasm', 'cpu'];
  let lastError: unknown;
  for (const name of order) {
    try {
      if (name === 'tensorflow') await loadNativePackage();
      await startBackend(name, options);
      debug('auto backend: %s', name);
      return name;
    } catch (error) {
      debug('auto backend: %s unavailable: %s', name, String(error));
      lastError = error;
    }
  }
  throw topkError(
    'ERR_INTERNAL',
    'no TensorFlow.js backend could start (tried tensorflow, wasm, cpu)',
    { tried: order },
    lastError,
  );
}

/**
 * Imports the first installed package of {@link NATIVE_PACKAGES}, which
 * registers the `tensorflow` backend with the shared tfjs engine.
 *
 * TODO(#4): only the missing-package path is tested; tfjs-node cannot be
 * installed on these machines (its install downloads libtensorflow), so
 * loading it for real has not been tried here.
 */
async function loadNativePackage(): Promise<string> {
  for (const name of NATIVE_PACKAGES) {
    try {
      // A string variable keeps bundlers and tsc from resolving a package
      // that is usually absent.
      const specifier: string = name;
      await import(/* @vite-ignore */ specifier);
      debug('loaded %s', name);
      return name;
    } catch (error) {
      if (isModuleNotFound(error, name)) continue;
      throw topkError(
        'ERR_MISSING_DEPENDENCY',
        `${name} is installed but failed to load (${errorText(error)}); ` +
          'reinstall it on a machine with an open network, or use ' +
          '--backend wasm',
        { package: name },
        error,
      );
    }
  }
  throw topkError('ERR_MISSING_DEPENDENCY', NATIVE_MISSING_MESSAGE, {
    packages: NATIVE_PACKAGES,
    install: 'npm install @tensorflow/tfjs-node',
  });
}

/** Makes `name` the current backend, with our kernels for wasm. */
async function startBackend(
  name: BackendName,
  options: BackendOptions,
): Promise<void> {
  if (name === 'wasm') {
    registerWasmGradientKernels();
    if (options.wasmPaths !== undefined) setWasmPaths(options.wasmPaths);
  }
  const started = await withoutNewProcessHooks(() => tf.setBackend(name));
  if (!started || tf.getBackend() !== name) {
    throw topkError(
      name === 'tensorflow' ? 'ERR_MISSING_DEPENDENCY' : 'ERR_INTERNAL',
      `the ${name} backend did not start (current backend: ` +
        `${String(tf.getBackend())})`,
      { backend: name },
    );
  }
  await tf.ready();
}

/** Process events that the wasm module's Emscripten runtime hooks. */
const HOOKED_EVENTS = ['uncaughtException', 'unhandledRejection'] as const;

/** The parts of Node's `process` this module touches, if present. */
interface ProcessHooks {
  listeners(event: string): ((...args: unknown[]) => void)[];
  removeListener(event: string, listener: (...args: unknown[]) => void): void;
}

/**
 * Runs `start`, then removes the `uncaughtException` and
 * `unhandledRejection` listeners it added. The Emscripten runtime inside
 * the wasm backend installs listeners that rethrow, so every later crash
 * prints a line of minified wasm glue instead of the real stack; without
 * them Node reports errors as usual.
 */
async function withoutNewProcessHooks<T>(start: () => Promise<T>): Promise<T> {
  const proc = (globalThis as { process?: ProcessHooks }).process;
  if (proc === undefined || typeof proc.listeners !== 'function') {
    return start();
  }
  const before = new Map(
    HOOKED_EVENTS.map((event) => [event, new Set(proc.listeners(event))]),
  );
  try {
    return await start();
  } finally {
    for (const event of HOOKED_EVENTS) {
      for (const listener of proc.listeners(event)) {
        if (!before.get(event)?.has(listener)) {
          proc.removeListener(event, listener);
        }
      }
    }
  }
}

/** True when `error` says the package `name` itself cannot be found. */
function isModuleNotFound(error: unknown, name: string): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  const notFound =
    code === 'ERR_MODULE_NOT_FOUND' ||
    code === 'MODULE_NOT_FOUND' ||
    /Cannot find (package|module)/.test(error.message);
  return notFound && error.message.includes(name);
}

/** A short text for an unknown thrown value. */
function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
