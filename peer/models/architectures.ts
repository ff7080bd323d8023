/**
 * The model architectures, built with tf.layers so a checkpoint
 * (model.json + weights) loads in any TensorFlow.js program. Every layer
 * has a fixed name, so variable names do not depend on how many models a
 * process built before, and every random initializer has its own seed
 * derived from the model seed, so every peer starts from identical
 * weights. Outputs are logits (no softmax or sigmoid layer): the loss
 * applies the link function, which is more stable. Runs in a browser.
 */
import * as tfl from '@tensorflow/tfjs-layers';

import { deriveSeed } from '../data/rng.ts';

/** What every builder needs. */
export interface ArchitectureConfig {
  /** Shape of one input sample, e.g. [28, 28, 1] or [1024]. */
  readonly inputShape: readonly number[];
  /** Width of the output: class count, or 1. */
  readonly outputUnits: number;
  /** Seed of the initial weights. */
  readonly seed: number;
}

/** Hands out one initializer seed per layer, in building order. */
class SeedSource {
  private next = 0;

  constructor(private readonly seed: number) {}

  /** He-normal, for layers followed by ReLU. */
  he(): ReturnType<typeof tfl.initializers.heNormal> {
    return tfl.initializers.heNormal({ seed: this.take() });
  }

  /** Glorot-uniform, for the output layer. */
  glorot(): ReturnType<typeof tfl.initializers.glorotUniform> {
    return tfl.initializers.glorotUniform({ seed: this.take() });
  }

  private take(): number {
    return deriveSeed(this.seed, this.next++);
  }
}

/** The model's input, flattened when it has more than one axis. */
function flatInput(config: ArchitectureConfig): {
  input: tfl.SymbolicTensor;
  flat: tfl.SymbolicTensor;
} {
  const input = tfl.input({ shape: [...config.inputShape], name: 'input' });
  const flat =
    config.inputShape.length > 1
      ? (tfl.layers
          .flatten({ name: 'flatten' })
          .apply(input) as tfl.SymbolicTensor)
      : input;
  return { input, flat };
}

/**
 * One dense layer from the inputs to the outputs, starting at zero: the
 * convex problems need no symmetry breaking, and zero is the textbook
 * start for linear and logistic regression.
 */
function linearModel(
  name: string,
  config: ArchitectureConfig,
): tfl.LayersModel {
  const { input, flat } = flatInput(config);
  const output = tfl.layers
    .dense({
      units: config.outputUnits,
      kernelInitializer: 'zeros',
      biasInitializer: 'zeros',
      name: 'linear',
    })
    .apply(flat) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output, name });
}

/** Linear regression: y = x . w + b, trained with squared error. */
export function buildLinreg(config: ArchitectureConfig): tfl.LayersModel {
  return linearModel('linreg', config);
}

/**
 * Logistic regression: logits = x . w + b, trained with sigmoid (binary)
 * or softmax (classes) cross-entropy. Sparse inputs arrive as dense rows
 * of width = feature count.
 */
export function buildLogreg(config: ArchitectureConfig): tfl.LayersModel {
  return linearModel('logreg', config);
}

/**
 * Hidden units of the MLP. 784-256-10 reached 97% MNIST test accuracy in
 * ~1,000 plain SGD steps of 64 (lr 0.2), about one epoch; 784-128-10 took
 * ~1,750 such steps, so the wider net needs fewer ring rounds.
 */
export const MLP_HIDDEN_UNITS = 256;

/** A one-hidden-layer perceptron with ReLU. */
export function buildMlp(config: ArchitectureConfig): tfl.LayersModel {
  const seeds = new SeedSource(config.seed);
  const { input, flat } = flatInput(config);
  const hidden = tfl.layers
    .dense({
      units: MLP_HIDDEN_UNITS,
      activation: 'relu',
      kernelInitializer: seeds.he(),
      name: 'hidden',
    })
    .apply(flat) as tfl.SymbolicTensor;
  const output = tfl.layers
    .dense({
      units: config.outputUnits,
      kernelInitializer: seeds.glorot(),
      name: 'logits',
    })
    .apply(hidden) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output, name: 'mlp' });
}

/** A 3x3 'same' convolution. */
function conv(
  filters: number,
  name: string,
  activation: 'relu' | 'linear',
  kernelInitializer: ReturnType<SeedSource['he']> | 'zeros',
  strides = 1,
): tfl.layers.Layer {
  return tfl.layers.conv2d({
    filters,
    kernelSize: 3,
    strides,
    padding: 'same',
    activation,
    kernelInitializer,
    name,
  });
}

/**
 * A residual stage: a stride-2 conv to `filters` channels (halving height
 * and width, as ResNet's stages do), then one block of two convs added
 * back onto its input by the skip connection. The block's second conv
 * starts at zero, so the block starts as the identity: without batch
 * normalization, a He-initialized branch doubles the activations' scale
 * and the first SGD steps diverge.
 */
function residualStage(
  seeds: SeedSource,
  x: tfl.SymbolicTensor,
  filters: number,
  stage: number,
): tfl.SymbolicTensor {
  const prefix = `stage${stage}`;
  const entry = conv(filters, `${prefix}_conv`, 'relu', seeds.he(), 2).apply(
    x,
  ) as tfl.SymbolicTensor;
  const branchA = conv(filters, `${prefix}_block_a`, 'relu', seeds.he()).apply(
    entry,
  ) as tfl.SymbolicTensor;
  const branchB = conv(filters, `${prefix}_block_b`, 'linear', 'zeros').apply(
    branchA,
  ) as tfl.SymbolicTensor;
  const sum = tfl.layers
    .add({ name: `${prefix}_add` })
    .apply([entry, branchB]) as tfl.SymbolicTensor;
  return tfl.layers
    .activation({ activation: 'relu', name: `${prefix}_relu` })
    .apply(sum) as tfl.SymbolicTensor;
}

/**
 * A small residual conv net for 28x28 images: two residual stages (16
 * channels at 14x14, 32 at 7x7), then a dense layer to the logits. 43,626
 * parameters for MNIST, ~2M multiply-adds per image.
 */
export function buildCnn(config: ArchitectureConfig): tfl.LayersModel {
  const seeds = new SeedSource(config.seed);
  const input = tfl.input({ shape: [...config.inputShape], name: 'input' });
  const stage1 = residualStage(seeds, input, 16, 1);
  const stage2 = residualStage(seeds, stage1, 32, 2);
  const flat = tfl.layers
    .flatten({ name: 'flatten' })
    .apply(stage2) as tfl.SymbolicTensor;
  // The logits start at zero (loss ln(classes)): a random layer over 1,568
  // unnormalized features starts with logits of spread ~3 and a loss ~4.
  const output = tfl.layers
    .dense({
      units: config.outputUnits,
      kernelInitializer: 'zeros',
      name: 'logits',
    })
    .apply(flat) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output, name: 'cnn' });
}
