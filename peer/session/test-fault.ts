/**
 * Test-only fault injection for the ring's fault handling, chosen by the
 * environment variable TOPK_TEST_FAULT of a Node peer process:
 *
 *   TOPK_TEST_FAULT=silent@5    from step 5 on, this peer's data channels
 *                               carry nothing more (heartbeats included)
 *                               in that generation, while its signaling
 *                               connection stays up
 *   TOPK_TEST_FAULT=garbage@5   its first all-reduce message of step 5 is
 *                               replaced by bytes that do not decode
 *
 * Once per process: the generations after the fault are normal, so the
 * peer can be put back in the ring and finish. See InjectedFault in
 * peer/webrtc/ring-link.ts.
 */
import { topkError } from '../../shared/errors.ts';
import type { InjectedFault } from '../webrtc/ring-link.ts';

/** The environment variable that selects a fault. */
export const TEST_FAULT_VARIABLE = 'TOPK_TEST_FAULT';

/**
 * The fault `value` names, or undefined when it is unset or empty.
 * Throws `ERR_BAD_CONFIG` for anything else, naming the expected form.
 */
export function parseTestFault(
  value: string | undefined,
): InjectedFault | undefined {
  if (value === undefined || value === '') return undefined;
  const match = /^(silent|garbage)@(\d{1,9})$/.exec(value);
  if (match === null) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `${TEST_FAULT_VARIABLE}: expected silent@STEP or garbage@STEP, got ` +
        JSON.stringify(value.slice(0, 40)),
      { setting: TEST_FAULT_VARIABLE },
    );
  }
  return {
    kind: match[1] as InjectedFault['kind'],
    step: Number(match[2]),
    fired: false,
  };
}
