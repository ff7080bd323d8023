/**
 * Models by name, and which data sets each can learn. Runs in a browser.
 */
import type * as tfl from '@tensorflow/tfjs-layers';

import { topkError } from '../../shared/errors.ts';
import type { Dataset, Task } from '../data/dataset.ts';
import {
  buildCnn,
  buildLinreg,
  buildLogreg,
  buildMlp,
  type ArchitectureConfig,
} from './architectures.ts';
import { lossKindForTask, type LossKind } from './loss.ts';

/** The names {@link createModel} knows. */
export const MODEL_NAMES = ['linreg', 'logreg', 'mlp', 'cnn'] as const;

/** A known model name. */
export type ModelName = (typeof MODEL_NAMES)[number];

/** What each model is built by and which tasks it fits. */
const MODELS: Record<
  ModelName,
  {
    build: (config: ArchitectureConfig) => tfl.LayersModel;
    tasks: readonly Task[];
    inputRank?: number;
  }
> = {
  linreg: { build: buildLinreg, tasks: ['regression'] },
  logreg: { build: buildLogreg, tasks: ['binary', 'classification'] },
  mlp: { build: buildMlp, tasks: ['classification', 'binary'] },
  cnn: { build: buildCnn, tasks: ['classification', 'binary'], inputRank: 3 },
};

/** True when `name` is a known model. */
export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

/** Throws ERR_UNKNOWN_NAME unless `name` is a known model. */
function checkName(name: string): asserts name is ModelName {
  if (!isModelName(name)) {
    throw topkError(
      'ERR_UNKNOWN_NAME',
      `unknown model ${JSON.stringify(name)}; known models: ` +
        MODEL_NAMES.join(', '),
      { name, known: MODEL_NAMES },
    );
  }
}

/**
 * Builds model `name` with initial weights fixed by `config.seed`: two
 * calls with the same arguments give bit-identical weights. Throws
 * ERR_UNKNOWN_NAME for an unknown name and ERR_BAD_CONFIG for an input
 * shape the model cannot take.
 */
export function createModel(
  name: string,
  config: ArchitectureConfig,
): tfl.LayersModel {
  checkName(name);
  const { inputRank } = MODELS[name];
  const shape = config.inputShape;
  const shapeOk =
    shape.length > 0 &&
    shape.every((d) => Number.isInteger(d) && d > 0) &&
    (inputRank === undefined || shape.length === inputRank);
  if (
    !shapeOk ||
    !(Number.isInteger(config.outputUnits) && config.outputUnits > 0)
  ) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `model ${name} cannot take input shape [${shape.join(', ')}] with ` +
        `${config.outputUnits} outputs` +
        (inputRank === undefined ? '' : ` (it needs ${inputRank} axes)`),
      { model: name, inputShape: shape, outputUnits: config.outputUnits },
    );
  }
  return MODELS[name].build(config);
}

/** A model built for a data set, with the loss it trains on. */
export interface ModelForDataset {
  readonly model: tfl.LayersModel;
  readonly lossKind: LossKind;
}

/**
 * Builds model `name` for `dataset`. Throws ERR_BAD_CONFIG when the model
 * does not fit the data set's task or sample shape (e.g. cnn on spam).
 */
export function createModelForDataset(
  name: string,
  dataset: Pick<Dataset, 'name' | 'task' | 'featureShape' | 'targetWidth'>,
  seed: number,
): ModelForDataset {
  checkName(name);
  if (!MODELS[name].tasks.includes(dataset.task)) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `model ${name} does not fit data set ${dataset.name}: it learns ` +
        `${MODELS[name].tasks.join(' or ')}, the data set is ${dataset.task}`,
      { model: name, dataset: dataset.name, task: dataset.task },
    );
  }
  const model = createModel(name, {
    inputShape: dataset.featureShape,
    outputUnits: dataset.targetWidth,
    seed,
  });
  return { model, lossKind: lossKindForTask(dataset.task) };
}
