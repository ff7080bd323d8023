import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseTestFault } from '../../peer/session/test-fault.ts';
import { isTopkError } from '../../shared/errors.ts';

// TOPK_TEST_FAULT (peer/session/test-fault.ts): the forms it takes, and a
// clear refusal of anything else before the peer connects.

describe('parseTestFault', () => {
  it('reads silent@STEP, garbage@STEP, drop@STEP and slow@STEP:MS; unset is none', () => {
    assert.equal(parseTestFault(undefined), undefined);
    assert.equal(parseTestFault(''), undefined);
    assert.deepEqual(parseTestFault('silent@8'), {
      kind: 'silent',
      step: 8,
      fired: false,
    });
    assert.deepEqual(parseTestFault('garbage@0'), {
      kind: 'garbage',
      step: 0,
      fired: false,
    });
    assert.deepEqual(parseTestFault('drop@8'), {
      kind: 'drop',
      step: 8,
      fired: false,
    });
    assert.deepEqual(parseTestFault('slow@3:400'), {
      kind: 'slow',
      step: 3,
      delayMs: 400,
      fired: false,
    });
  });

  for (const value of [
    'silent',
    'loud@3',
    'slow@3',
    'drop@3:400',
    'garbage@-1',
    'silent@3 ',
  ]) {
    it(`refuses ${JSON.stringify(value)} with ERR_BAD_CONFIG`, () => {
      assert.throws(
        () => parseTestFault(value),
        (error) =>
          isTopkError(error, 'ERR_BAD_CONFIG') &&
          /TOPK_TEST_FAULT: expected silent@STEP/.test(error.message),
      );
    });
  }
});
