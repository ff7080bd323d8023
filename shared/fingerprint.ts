/**
 * A model fingerprint: the names, shapes and dtypes of a model's variables
 * in order. Peers of one room must train the same model; a joining peer
 * presents its fingerprint and a different one is refused at join with a
 * message that names the first difference (issue 6).
 *
 * Browser-safe: no node: imports.
 */
import { z } from 'zod';

/** Most variables a fingerprint may list (far above any model here). */
export const MAX_FINGERPRINT_VARIABLES = 4096;

/** One model variable as the fingerprint lists it. */
export const VariableFingerprintSchema = z.strictObject({
  name: z.string().min(1).max(256),
  shape: z
    .array(
      z
        .number()
        .int()
        .min(0)
        .max(2 ** 31),
    )
    .max(8),
  dtype: z.string().min(1).max(16),
});

/** The wire shape of a fingerprint. */
export const ModelFingerprintSchema = z.strictObject({
  variables: z.array(VariableFingerprintSchema).max(MAX_FINGERPRINT_VARIABLES),
});

/** A model fingerprint: its variables, in the order they are flattened. */
export type ModelFingerprint = z.output<typeof ModelFingerprintSchema>;

/**
 * The first difference between the room's fingerprint and a joiner's, in
 * words ("variable 2 (dense_1/kernel): room has shape [784,128], peer has
 * [784,64]"), or null when they are the same.
 */
export function describeFingerprintDifference(
  room: ModelFingerprint,
  peer: ModelFingerprint,
): string | null {
  const count = Math.max(room.variables.length, peer.variables.length);
  for (let i = 0; i < count; i++) {
    const a = room.variables[i];
    const b = peer.variables[i];
    if (a === undefined || b === undefined) {
      return (
        `the room's model has ${room.variables.length} variables, ` +
        `the peer's has ${peer.variables.length}`
      );
    }
    if (a.name !== b.name) {
      return `variable ${i}: room has ${a.name}, peer has ${b.name}`;
    }
    if (a.dtype !== b.dtype) {
      return `variable ${i} (${a.name}): room has dtype ${a.dtype}, peer has ${b.dtype}`;
    }
    if (a.shape.join(',') !== b.shape.join(',')) {
      return (
        `variable ${i} (${a.name}): room has shape [${a.shape.join(',')}], ` +
        `peer has [${b.shape.join(',')}]`
      );
    }
  }
  return null;
}
