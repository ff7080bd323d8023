import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';

import { isTopkError } from '../../shared/errors.ts';
import {
  checkAdmission,
  constantTimeEqual,
  signRoomToken,
  type AdmissionPolicy,
} from '../../signaling/admission.ts';

// Admission: a shared secret or an HMAC-signed room token with an expiry.
// Every refusal is ERR_ADMISSION with a reason a person can act on.

const NOW_MS = Date.UTC(2030, 0, 1);
const HOUR_MS = 3_600_000;

function reasonOf(
  policy: AdmissionPolicy,
  room: string,
  token: string | undefined,
): string | undefined {
  try {
    checkAdmission(policy, room, token, NOW_MS);
    return undefined;
  } catch (error) {
    assert.ok(isTopkError(error, 'ERR_ADMISSION'), String(error));
    return error.context.reason as string;
  }
}

describe('admission', () => {
  it('an open server admits anyone', () => {
    assert.equal(reasonOf({}, 'main', undefined), undefined);
    assert.equal(reasonOf({}, 'main', 'whatever'), undefined);
  });

  it('a shared secret must be presented exactly', () => {
    const policy = { sharedToken: 's3cret' };
    assert.equal(reasonOf(policy, 'main', 's3cret'), undefined);
    assert.equal(reasonOf(policy, 'main', undefined), 'missing-token');
    assert.equal(reasonOf(policy, 'main', ''), 'missing-token');
    assert.equal(reasonOf(policy, 'main', 's3cre'), 'wrong-token');
    assert.equal(reasonOf(policy, 'main', 's3cret '), 'wrong-token');
  });

  it('a signed token admits to its room until it expires', () => {
    const policy = { tokenSecret: 'k' };
    const token = signRoomToken('k', {
      room: 'main',
      expiresAtMs: NOW_MS + HOUR_MS,
    });
    assert.equal(reasonOf(policy, 'main', token), undefined);
    assert.equal(reasonOf(policy, 'other', token), 'other-room');
    const expired = signRoomToken('k', {
      room: 'main',
      expiresAtMs: NOW_MS - 1000,
    });
    assert.equal(reasonOf(policy, 'main', expired), 'expired-token');
  });

  it('a token for * admits to any room', () => {
    const token = signRoomToken('k', {
      room: '*',
      expiresAtMs: NOW_MS + HOUR_MS,
    });
    assert.equal(reasonOf({ tokenSecret: 'k' }, 'a', token), undefined);
    assert.equal(reasonOf({ tokenSecret: 'k' }, 'b', token), undefined);
  });

  it('a token signed with another secret or altered is refused', () => {
    const policy = { tokenSecret: 'k' };
    const foreign = signRoomToken('other', {
      room: 'main',
      expiresAtMs: NOW_MS + HOUR_MS,
    });
    assert.equal(reasonOf(policy, 'main', foreign), 'wrong-token');

    // Re-point a valid token at another room, keeping its signature.
    const [version, , signature] = signRoomToken('k', {
      room: 'main',
      expiresAtMs: NOW_MS + HOUR_MS,
    }).split('.');
    const body = Buffer.from(
      JSON.stringify({ room: 'other', exp: NOW_MS / 1000 + 3600 }),
    ).toString('base64url');
    assert.equal(
      reasonOf(policy, 'other', `${version}.${body}.${signature}`),
      'wrong-token',
    );
    assert.equal(reasonOf(policy, 'main', 'v1.only-two'), 'malformed-token');
    assert.equal(reasonOf(policy, 'main', 'v1.a.b.c'), 'malformed-token');
  });

  it('a correctly signed body that is not claims is malformed', () => {
    // The format is documented: HMAC-SHA256 over "v1.<body>".
    const sign = (body: string) =>
      `v1.${body}.${createHmac('sha256', 'k').update(`v1.${body}`).digest('base64url')}`;
    const notJson = Buffer.from('not json').toString('base64url');
    const noRoom = Buffer.from('{"exp":1}').toString('base64url');
    const policy = { tokenSecret: 'k' };
    assert.equal(reasonOf(policy, 'main', sign(notJson)), 'malformed-token');
    assert.equal(reasonOf(policy, 'main', sign(noRoom)), 'malformed-token');
  });

  it('both kinds may be allowed at once', () => {
    const policy = { sharedToken: 'shared', tokenSecret: 'k' };
    const token = signRoomToken('k', {
      room: 'main',
      expiresAtMs: NOW_MS + HOUR_MS,
    });
    assert.equal(reasonOf(policy, 'main', 'shared'), undefined);
    assert.equal(reasonOf(policy, 'main', token), undefined);
    assert.equal(reasonOf(policy, 'main', 'nope'), 'wrong-token');
  });

  it('constantTimeEqual compares content of any length', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abd'), false);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
    assert.equal(constantTimeEqual('', ''), true);
  });
});
