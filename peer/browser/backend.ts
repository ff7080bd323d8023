/**
 * The TensorFlow.js backend of a browser tab: WebGPU where the browser has
 * it, else WebGL (both on the GPU), then wasm, then cpu.
 *
 * Replicas stay bit-identical across backends because the weights' master
 * copy is a Float32Array updated in JavaScript (training/trainer.ts); a
 * backend only computes gradients. It must still hold the weights in
 * float32, or the gradient is taken at rounded weights and `modelHash`
 * (read back from the backend) differs: WebGL is therefore used only where
 * it renders to float32 textures, never with 16-bit ones.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgl';
// Registers itself only where `navigator.gpu` exists.
import '@tensorflow/tfjs-backend-webgpu';
import createDebug from 'debug';

import { topkError } from '../../shared/errors.ts';
import { initBackend } from '../tf/backend.ts';

const debug = createDebug('topk:browser:backend');

/** The backends a tab can train on, best first. */
export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;

/** A backend a tab can train on. */
export type BrowserBackendName = (typeof BROWSER_BACKENDS)[number];

/** What the page's backend field accepts. */
export type BrowserBackendChoice = 'auto' | BrowserBackendName;

/** True when `value` is a {@link BrowserBackendChoice}. */
export function isBrowserBackendChoice(
  value: string,
): value is BrowserBackendChoice {
  return (
    value === 'auto' || (BROWSER_BACKENDS as readonly string[]).includes(value)
  );
}

/** A started backend and what was tried before it. */
export interface BrowserBackend {
  readonly name: BrowserBackendName;
  /** Backends that were tried first and could not start, with why. */
  readonly skipped: readonly { name: BrowserBackendName; reason: string }[];
}

/**
 * Starts `choice` (or, for `auto`, the first of {@link BROWSER_BACKENDS}
 * that starts, skipping WebGL drawn in software) and makes it current. `wasmPaths` is where the page serves
 * the wasm backend's `.wasm` files (a prefix ending in '/'). Rejects with
 * `ERR_MISSING_DEPENDENCY` when the chosen backend (or, for `auto`, every
 * backend) cannot start here.
 */
export async function startBrowserBackend(
  choice: BrowserBackendChoice,
  wasmPaths: string,
): Promise<BrowserBackend> {
  const order = choice === 'auto' ? BROWSER_BACKENDS : [choice];
  const skipped: { name: BrowserBackendName; reason: string }[] = [];
  for (const name of order) {
    try {
      await start(name, wasmPaths, choice === 'auto');
      debug('backend %s (skipped: %o)', name, skipped);
      return { name, skipped };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      debug('backend %s unavailable: %s', name, reason);
      skipped.push({ name, reason });
    }
  }
  throw topkError(
    'ERR_MISSING_DEPENDENCY',
    `no TensorFlow.js backend could start in this browser (tried ` +
      skipped.map((s) => `${s.name}: ${s.reason}`).join('; ') +
      ')',
    { tried: skipped.map((s) => s.name) },
  );
}

async function start(
  name: BrowserBackendName,
  wasmPaths: string,
  auto: boolean,
) {
  if (name === 'wasm' || name === 'cpu') {
    await initBackend(name, { wasmPaths });
    return;
  }
  // Production mode: no debug checks, as in initBackend.
  tf.enableProdMode();
  if (name === 'webgl') {
    // A software renderer is slower than wasm; chosen only by name.
    if (auto) checkWebGlHardware();
    checkWebGlFloat32();
  }
  // setBackend throws for a backend that is not registered (WebGPU
  // without navigator.gpu) and resolves false when its factory fails.
  const started = await tf.setBackend(name);
  if (!started || tf.getBackend() !== name) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `the ${name} backend did not start`,
      { backend: name },
    );
  }
  await tf.ready();
}

/** Renderers that draw on the CPU: WebGL through them is no GPU. */
const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software/i;

/**
 * Refuses WebGL drawn in software (SwiftShader, llvmpipe: a browser
 * without a usable GPU, or started with --disable-gpu), where the wasm
 * backend is several times faster.
 */
function checkWebGlHardware(): void {
  const canvas = document.createElement('canvas');
  const gl = canvas.getContext('webgl2') ?? canvas.getContext('webgl');
  if (gl === null) return;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(
    gl.getParameter(info === null ? gl.RENDERER : info.UNMASKED_RENDERER_WEBGL),
  );
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  if (SOFTWARE_RENDERER.test(renderer)) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `WebGL renders in software here (${renderer.slice(0, 80)}); wasm is ` +
        'faster',
      { renderer: renderer.slice(0, 80) },
    );
  }
}

/** Refuses WebGL where it would keep the weights in 16-bit floats. */
function checkWebGlFloat32(): void {
  const env = tf.env();
  const version = env.getNumber('WEBGL_VERSION');
  if (version === 0) {
    throw topkError('ERR_MISSING_DEPENDENCY', 'no WebGL context', {});
  }
  if (
    !env.getBool('WEBGL_RENDER_FLOAT32_ENABLED') ||
    !env.getBool('WEBGL_DOWNLOAD_FLOAT_ENABLED')
  ) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `WebGL ${version} here cannot render to and read float32 textures; ` +
        'its 16-bit weights would make this replica differ',
      { webglVersion: version },
    );
  }
}
