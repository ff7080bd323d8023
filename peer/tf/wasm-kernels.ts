/**
 * Gradient kernels for the TensorFlow.js wasm backend (4.22), so that conv
 * nets train on it.
 *
 * The backend ships `MaxPoolGrad`, `AvgPoolGrad`, `Step` (the ReLU
 * gradient) and `Conv2DBackpropInput`, but no `Conv2DBackpropFilter`: the
 * gradient of every conv layer's kernel. Its `Conv2DBackpropInput` is a
 * plain loop, ~10x slower than the forward convolution, and its
 * BatchMatMul is 6-10x slower with a transposed operand, which is how every
 * dense layer's gradient multiplies. The kernels here are forward
 * convolutions and plain products in disguise, so the arithmetic runs in
 * XNNPACK.
 *
 * TODO(#4): MaxPoolGrad and AvgPoolGrad stay the backend's plain loops
 * (10-18 ms a call for a batch of 32 at 28x28x16; the cnn here downsamples
 * with strided convs instead), and DepthwiseConv2dNativeBackpropFilter /
 * -Input are missing on wasm (no model here uses depthwise convs). This
 * module has no Node imports: a browser tab registers the same kernels.
 */
import {
  backend_util,
  getKernel,
  registerKernel,
  unregisterKernel,
  type BatchMatMulAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

import { topkError } from '../../shared/errors.ts';

/** The backend the kernels below are registered for. */
const WASM = 'wasm';

/** What a kernel function receives. */
interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

/**
 * Runs wasm kernels on behalf of one composed kernel and releases every
 * intermediate result when the composed kernel is done.
 */
class KernelScope {
  private readonly owned: TensorInfo[] = [];

  constructor(private readonly backend: KernelBackend) {}

  /** Runs kernel `name`; the result is released by {@link dispose}. */
  run(
    name: string,
    inputs: NamedTensorInfoMap | TensorInfo[],
    attrs: NamedAttrMap = {},
  ): TensorInfo {
    const out = this.keep(name, inputs, attrs);
    this.owned.push(out);
    return out;
  }

  /** Runs kernel `name`; the caller owns the result. */
  keep(
    name: string,
    inputs: NamedTensorInfoMap | TensorInfo[],
    attrs: NamedAttrMap = {},
  ): TensorInfo {
    const config = getKernel(name, WASM);
    if (config === undefined) {
      throw topkError(
        'ERR_INTERNAL',
        `wasm kernel ${name} is needed by a composed gradient kernel but ` +
          'is not registered',
        { kernel: name },
      );
    }
    // Concat takes its inputs as an array, as tf.concat passes them.
    const named = inputs as unknown as NamedTensorInfoMap;
    const out = config.kernelFunc({
      inputs: named,
      backend: this.backend,
      attrs,
    });
    if (Array.isArray(out)) {
      throw topkError(
        'ERR_INTERNAL',
        `wasm kernel ${name} returned ${out.length} tensors where one was ` +
          'expected',
        { kernel: name },
      );
    }
    return out;
  }

  /** Releases every result of {@link run}. */
  dispose(): void {
    for (const info of this.owned) this.backend.disposeData(info.dataId);
    this.owned.length = 0;
  }
}

/** The input `name` of a kernel call; its absence is a bug in tfjs or here. */
function input(inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const info = inputs[name];
  if (info === undefined) {
    throw topkError('ERR_INTERNAL', `kernel input ${name} is missing`, {
      input: name,
    });
  }
  return info;
}

/** Strided-slice attributes with no masks. */
function sliceAttrs(
  begin: number[],
  end: number[],
  strides: number[],
): NamedAttrMap {
  return {
    begin,
    end,
    strides,
    beginMask: 0,
    endMask: 0,
    ellipsisMask: 0,
    newAxisMask: 0,
    shrinkAxisMask: 0,
  };
}

/**
 * The gradient of a 2-D convolution with respect to its filter, as one
 * forward convolution (XNNPACK):
 *
 *   dW[kh, kw, i, o] = sum over b, y, x of
 *                      xPadded[b, y*s + kh, x*s + kw, i] * dy[b, y, x, o]
 *
 * is a 'valid' convolution of the padded input seen as [in, H, W, batch]
 * (channels i act as the batch, the batch b as channels) with dy seen as a
 * filter [outH, outW, batch, out], dilated by the stride. Its output
 * [in, kh, kw, out] is the gradient up to a transpose. An im2col version
 * built from strided slices was 3x slower: wasm slices are plain loops.
 */
function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const { inputs, backend } = args;
  const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  const scope = new KernelScope(backend);
  try {
    // 1. Geometry.
    const channelsFirst = attrs.dataFormat === 'NCHW';
    const x = input(inputs, 'x');
    const dy = input(inputs, 'dy');
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      channelsFirst ? 'channelsFirst' : 'channelsLast',
    );
    const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
    const needH = (info.outHeight - 1) * strideHeight + filterHeight;
    const needW = (info.outWidth - 1) * strideWidth + filterWidth;

    // 2. The input padded (or cropped) to exactly the rows and columns the
    // windows cover, then as [in, H, W, batch].
    const [hAxis, wAxis] = channelsFirst ? [2, 3] : [1, 2];
    const fitted = fitSpatial(
      scope,
      x,
      [hAxis, wAxis],
      [info.padInfo.top, info.padInfo.left],
      [needH, needW],
    );
    const xT = scope.run(
      'Transpose',
      { x: fitted },
      { perm: channelsFirst ? [1, 2, 3, 0] : [3, 1, 2, 0] },
    );

    // 3. dy as a filter [outH, outW, batch, out].
    const dyT = scope.run(
      'Transpose',
      { x: dy },
      { perm: channelsFirst ? [2, 3, 0, 1] : [1, 2, 0, 3] },
    );

    // 4. One convolution, then back to [kh, kw, in, out].
    const product = scope.run(
      'Conv2D',
      { x: xT, filter: dyT },
      {
        strides: 1,
        pad: 'valid',
        dataFormat: 'NHWC',
        dilations: [strideHeight, strideWidth],
      },
    );
    return scope.keep('Transpose', { x: product }, { perm: [1, 2, 0, 3] });
  } finally {
    scope.dispose();
  }
}

/**
 * `x` with `before` zero rows/columns added on its two spatial `axes`,
 * then padded or cropped at the end to `size` along each.
 */
function fitSpatial(
  scope: KernelScope,
  x: TensorInfo,
  axes: readonly [number, number],
  before: readonly [number, number],
  size: readonly [number, number],
): TensorInfo {
  const paddings = x.shape.map(() => [0, 0]);
  const end = [...x.shape];
  let changed = false;
  axes.forEach((axis, k) => {
    const after = size[k] - before[k] - x.shape[axis];
    paddings[axis] = [before[k], Math.max(0, after)];
    end[axis] = size[k];
    changed ||= before[k] !== 0 || after !== 0;
  });
  if (!changed) return x;
  const padded = paddings.some(([a, b]) => a + b > 0)
    ? scope.run('PadV2', { x }, { paddings, constantValue: 0 })
    : x;
  if (end.every((e, axis) => e === padded.shape[axis])) return padded;
  return scope.run(
    'StridedSlice',
    { x: padded },
    sliceAttrs(
      end.map(() => 0),
      end,
      end.map(() => 1),
    ),
  );
}

/**
 * The gradient of a 2-D convolution with respect to its input, as a
 * stride-1 convolution (XNNPACK) of dy, spread out by the stride, with the
 * filter turned by 180 degrees and its in/out channels swapped: the
 * textbook identity behind transposed convolution. Channels-first data and
 * paddings too large for the identity go to the backend's own kernel.
 */
function makeConv2DBackpropInput(shipped: KernelFunc | undefined) {
  return (args: KernelArgs): TensorInfo => {
    const { inputs, backend } = args;
    const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
    const dy = input(inputs, 'dy');
    const filter = input(inputs, 'filter');
    const info = backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      attrs.dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast',
    );
    const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
    const { outHeight, outWidth } = info;
    const spanH = (outHeight - 1) * strideHeight + 1;
    const spanW = (outWidth - 1) * strideWidth + 1;
    const padTop = filterHeight - 1 - info.padInfo.top;
    const padLeft = filterWidth - 1 - info.padInfo.left;
    const padBottom = info.inHeight + filterHeight - 1 - padTop - spanH;
    const padRight = info.inWidth + filterWidth - 1 - padLeft - spanW;
    const fits = Math.min(padTop, padLeft, padBottom, padRight) >= 0;
    if (info.dataFormat !== 'channelsLast' || !fits) {
      if (shipped === undefined) {
        throw topkError(
          'ERR_INTERNAL',
          'Conv2DBackpropInput on wasm needs channels-last data and ' +
            `paddings within the filter; got ${info.dataFormat}, padding ` +
            JSON.stringify(info.padInfo),
          { dataFormat: info.dataFormat },
        );
      }
      return shipped(args) as TensorInfo;
    }

    const scope = new KernelScope(backend);
    try {
      const spread = spreadByStride(scope, dy, strideHeight, strideWidth);
      const flipped = scope.run('Reverse', { x: filter }, { dims: [0, 1] });
      const turned = scope.run(
        'Transpose',
        { x: flipped },
        { perm: [0, 1, 3, 2] },
      );
      const paddings = [
        [0, 0],
        [padTop, padBottom],
        [padLeft, padRight],
        [0, 0],
      ];
      return scope.keep('Conv2D', { x: spread, filter: turned }, {
        strides: 1,
        pad: paddings,
        dataFormat: 'NHWC',
        dilations: 1,
        dimRoundingMode: undefined,
      } as unknown as NamedAttrMap);
    } finally {
      scope.dispose();
    }
  };
}

/**
 * dy [b, h, w, c] with (stride - 1) zero rows and columns between its
 * rows and columns: [b, (h-1)*sh+1, (w-1)*sw+1, c]. Done by padding
 * unit axes after each spatial axis, so it costs one copy.
 */
function spreadByStride(
  scope: KernelScope,
  dy: TensorInfo,
  strideHeight: number,
  strideWidth: number,
): TensorInfo {
  if (strideHeight === 1 && strideWidth === 1) return dy;
  const [batch, height, width, channels] = dy.shape;
  const split = scope.run(
    'Reshape',
    { x: dy },
    { shape: [batch, height, 1, width, 1, channels] },
  );
  const padded = scope.run(
    'PadV2',
    { x: split },
    {
      paddings: [
        [0, 0],
        [0, 0],
        [0, strideHeight - 1],
        [0, 0],
        [0, strideWidth - 1],
        [0, 0],
      ],
      constantValue: 0,
    },
  );
  const merged = scope.run(
    'Reshape',
    { x: padded },
    { shape: [batch, height * strideHeight, width * strideWidth, channels] },
  );
  return scope.run(
    'StridedSlice',
    { x: merged },
    sliceAttrs(
      [0, 0, 0, 0],
      [
        batch,
        (height - 1) * strideHeight + 1,
        (width - 1) * strideWidth + 1,
        channels,
      ],
      [1, 1, 1, 1],
    ),
  );
}

/**
 * Matrix products with `transposeA` or `transposeB`, as an explicit
 * transpose and the backend's plain product. The backward pass of every
 * dense layer takes these products (dW = x^T dy, dx = dy W^T), and the
 * backend's transposed path is 6-10x slower than transposing first: 9 ms
 * against 1.4 ms for x^T dy of a 32x784 batch into 256 units.
 */
function makeBatchMatMul(shipped: KernelFunc) {
  return (args: KernelArgs): TensorInfo => {
    const attrs = args.attrs as unknown as BatchMatMulAttrs;
    if (!attrs.transposeA && !attrs.transposeB)
      return shipped(args) as TensorInfo;
    const scope = new KernelScope(args.backend);
    try {
      const upright = (t: TensorInfo, transposed: boolean): TensorInfo => {
        if (!transposed) return t;
        const perm = t.shape.map((_, axis) => axis);
        const last = perm.length - 1;
        [perm[last - 1], perm[last]] = [perm[last], perm[last - 1]];
        return scope.run('Transpose', { x: t }, { perm });
      };
      const a = upright(input(args.inputs, 'a'), attrs.transposeA);
      const b = upright(input(args.inputs, 'b'), attrs.transposeB);
      return shipped({
        inputs: { a, b },
        backend: args.backend,
        attrs: { transposeA: false, transposeB: false },
      }) as TensorInfo;
    } finally {
      scope.dispose();
    }
  };
}

/** The kernels this module adds or replaces, by name. */
export const WASM_KERNEL_NAMES = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'BatchMatMul',
] as const;

/** The kernels the backend shipped, as first seen (before we replaced them). */
const shippedKernels = new Map<string, KernelConfig | undefined>();

/** The shipped wasm kernel `name`, remembered on first sight. */
function shippedKernel(name: string): KernelConfig | undefined {
  if (!shippedKernels.has(name))
    shippedKernels.set(name, getKernel(name, WASM));
  return shippedKernels.get(name);
}

/** Our kernel for `name`, wrapping the shipped one where there is one. */
function ourKernel(name: (typeof WASM_KERNEL_NAMES)[number]): KernelConfig {
  const shipped = shippedKernel(name);
  // A replaced kernel's wasm function must still be bound when the backend
  // starts, since ours calls it.
  const base = {
    kernelName: name,
    backendName: WASM,
    setupFunc: shipped?.setupFunc,
  };
  switch (name) {
    case 'Conv2DBackpropFilter':
      return { ...base, kernelFunc: conv2DBackpropFilter as KernelFunc };
    case 'Conv2DBackpropInput':
      return {
        ...base,
        kernelFunc: makeConv2DBackpropInput(shipped?.kernelFunc) as KernelFunc,
      };
    case 'BatchMatMul':
      if (shipped === undefined) {
        throw topkError(
          'ERR_INTERNAL',
          'the wasm backend has no BatchMatMul kernel to build on',
          { kernel: name },
        );
      }
      return {
        ...base,
        kernelFunc: makeBatchMatMul(shipped.kernelFunc) as KernelFunc,
      };
  }
}

/** Marks the kernels of this module, so registering twice is a no-op. */
const OURS = new WeakSet<KernelFunc>();

/**
 * Registers this module's kernels for the wasm backend: the missing
 * Conv2DBackpropFilter, and faster Conv2DBackpropInput and BatchMatMul
 * (which keep the shipped kernels as their fallback and inner step). Call
 * it before or after the backend starts; calling it again does nothing.
 * Returns the names it registered.
 */
export function registerWasmGradientKernels(): string[] {
  const added: string[] = [];
  for (const name of WASM_KERNEL_NAMES) {
    const existing = getKernel(name, WASM);
    if (existing !== undefined && OURS.has(existing.kernelFunc)) continue;
    const config = ourKernel(name);
    if (existing !== undefined) unregisterKernel(name, WASM);
    OURS.add(config.kernelFunc);
    registerKernel(config);
    added.push(name);
  }
  return added;
}
