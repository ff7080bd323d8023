/**
 * What identifies a model across peers: its fingerprint (variable names,
 * shapes, dtypes, in flat-vector order) says two peers built the same
 * architecture; its hash (FNV-1a 64 over the weight bytes in that order)
 * says they hold the same weights. Runs in a browser.
 */
import type * as tfl from '@tensorflow/tfjs-layers';

import { topkError } from '../../shared/errors.ts';
import type { ModelFingerprint } from '../../shared/fingerprint.ts';
import { bytesOf, Fnv1a64 } from './hash.ts';
import { trainableVariables } from './weights.ts';

/**
 * The model's trainable variables in flat-vector order, in the wire shape
 * of shared/fingerprint.ts. Names are the original ones ('hidden/kernel'),
 * not the process-unique ones tfjs makes when a process builds the same
 * model twice ('hidden/kernel_1').
 */
export function modelFingerprint(model: tfl.LayersModel): ModelFingerprint {
  return {
    variables: model.trainableWeights.map((weight) => ({
      name: weight.originalName,
      shape: weight.shape.map((d) => {
        if (d === null) {
          throw topkError(
            'ERR_INTERNAL',
            `variable ${weight.originalName} has an unknown dimension`,
            { variable: weight.originalName },
          );
        }
        return d;
      }),
      dtype: weight.dtype,
    })),
  };
}

/** The fingerprint as one string, for logs and quick comparisons. */
export function fingerprintKey(fingerprint: ModelFingerprint): string {
  return fingerprint.variables
    .map((v) => `${v.name}:${v.dtype}[${v.shape.join('x')}]`)
    .join(';');
}

/**
 * FNV-1a 64 of every trainable weight's float32 bytes, in flat-vector
 * order, as 16 hex digits. Equal hashes mean bit-identical replicas. The
 * bytes are in the platform's order, little-endian on every machine and
 * browser that runs this project.
 */
export function modelHash(model: tfl.LayersModel): string {
  const hash = new Fnv1a64();
  for (const variable of trainableVariables(model)) {
    hash.update(bytesOf(variable.dataSync()));
  }
  return hash.hex();
}
