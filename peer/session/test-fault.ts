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
 *   TOPK_TEST_FAULT=slow@5:400  from step 5 on, the first message of each
 *                               step leaves 400 ms late (a straggler) in
 *                               that generation
 *   TOPK_TEST_FAULT=drop@5      one all-reduce message of step 5 after the
 *                               first hop is never sent, heartbeats go on:
 *                               the ring stalls with nobody to blame
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
  const match =
    /^(silent|garbage|drop)@(\d{1,9})$|^slow@(\d{1,9}):(\d{1,6})$/.exec(value);
  if (match === null) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `${TEST_FAULT_VARIABLE}: expected silent@STEP, garbage@STEP, ` +
        `drop@STEP or slow@STEP:MS, got ${JSON.stringify(value.slice(0, 40))}`,
      { setting: TEST_FAULT_VARIABLE },
    );
  }
  if (match[3] !== undefined) {
    return {
      kind: 'slow',
      step: Number(match[3]),
      delayMs: Number(match[4]),
      fired: false,
    };
  }
  return {
    kind: match[1] as 'silent' | 'garbage' | 'drop',
    step: Number(match[2]),
    fired: false,
  };
}
