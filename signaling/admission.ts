/**
 * Who may join a room. A server can require either a shared secret (the
 * same token for everybody) or a signed token: an HMAC-SHA256 over the
 * room name and an expiry, made with a secret only the server and the
 * organiser know, so tokens can be handed out per room and expire without
 * the secret ever leaving. Secrets are compared in constant time.
 *
 * Token format: `v1.<base64url(JSON {room, exp})>.<base64url(hmac)>`, where
 * `room` is a room name or `*` for any room and `exp` is in Unix seconds.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

import { topkError } from '../shared/errors.ts';

/** How a server admits peers; with neither field set, anyone may join. */
export interface AdmissionPolicy {
  /** A shared secret every peer presents as its token. */
  readonly sharedToken?: string;
  /** The secret signed room tokens are made with. */
  readonly tokenSecret?: string;
}

const TOKEN_VERSION = 'v1';

/** What a signed token grants. */
export interface RoomTokenClaims {
  /** The room, or `*` for any room. */
  readonly room: string;
  /** Expiry, in milliseconds since the Unix epoch. */
  readonly expiresAtMs: number;
}

/** Makes a signed token granting `claims.room` until `claims.expiresAtMs`. */
export function signRoomToken(secret: string, claims: RoomTokenClaims): string {
  const body = Buffer.from(
    JSON.stringify({
      room: claims.room,
      exp: Math.floor(claims.expiresAtMs / 1000),
    }),
  ).toString('base64url');
  return `${TOKEN_VERSION}.${body}.${mac(secret, body)}`;
}

function mac(secret: string, body: string): string {
  return createHmac('sha256', secret)
    .update(`${TOKEN_VERSION}.${body}`)
    .digest('base64url');
}

/**
 * Compares two strings in time that depends on neither content: both are
 * hashed first, so even their lengths leak nothing.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * Admits or refuses a peer joining `room` with `token`. Throws
 * `ERR_ADMISSION` with the reason: no token, wrong token, malformed,
 * expired, or made for another room.
 */
export function checkAdmission(
  policy: AdmissionPolicy,
  room: string,
  token: string | undefined,
  nowMs: number = Date.now(),
): void {
  const { sharedToken, tokenSecret } = policy;
  if (sharedToken === undefined && tokenSecret === undefined) return;
  if (token === undefined || token === '') {
    throw topkError(
      'ERR_ADMISSION',
      `room ${JSON.stringify(room)} requires a token; none was given`,
      { room, reason: 'missing-token' },
    );
  }
  if (sharedToken !== undefined && constantTimeEqual(token, sharedToken)) {
    return;
  }
  if (tokenSecret !== undefined && token.startsWith(`${TOKEN_VERSION}.`)) {
    checkSignedToken(tokenSecret, room, token, nowMs);
    return;
  }
  throw topkError(
    'ERR_ADMISSION',
    `the token for room ${JSON.stringify(room)} is wrong`,
    {
      room,
      reason: 'wrong-token',
    },
  );
}

function checkSignedToken(
  secret: string,
  room: string,
  token: string,
  nowMs: number,
): void {
  const [, body, signature, ...extra] = token.split('.');
  if (body === undefined || signature === undefined || extra.length > 0) {
    throw refusal(room, 'malformed-token', 'the token is malformed');
  }
  if (!constantTimeEqual(signature, mac(secret, body))) {
    throw refusal(room, 'wrong-token', 'the token has a wrong signature');
  }

  const claims = readClaims(body);
  if (claims === null) {
    throw refusal(room, 'malformed-token', 'the token is malformed');
  }
  if (claims.room !== '*' && claims.room !== room) {
    throw refusal(
      room,
      'other-room',
      `the token is for room ${JSON.stringify(claims.room)}`,
    );
  }
  if (claims.exp * 1000 <= nowMs) {
    throw refusal(
      room,
      'expired-token',
      `the token expired at ${new Date(claims.exp * 1000).toISOString()}`,
    );
  }
}

function readClaims(body: string): { room: string; exp: number } | null {
  try {
    const parsed: unknown = JSON.parse(
      Buffer.from(body, 'base64url').toString('utf8'),
    );
    if (typeof parsed !== 'object' || parsed === null) return null;
    const { room, exp } = parsed as Record<string, unknown>;
    if (typeof room !== 'string' || typeof exp !== 'number') return null;
    return { room, exp };
  } catch {
    return null;
  }
}

function refusal(room: string, reason: string, why: string) {
  return topkError(
    'ERR_ADMISSION',
    `cannot join room ${JSON.stringify(room)}: ${why}`,
    { room, reason },
  );
}

/**
 * The resume key of peer `peerId` in `room` when the server has a secret:
 * a MAC, so a server restarted with the same secret can check a key it
 * never handed out, and no peer can make one for another peer's id.
 */
export function signedResumeKey(
  secret: string,
  room: string,
  peerId: string,
): string {
  return createHmac('sha256', secret)
    .update(`resume\0${room}\0${peerId}`)
    .digest('base64url')
    .slice(0, 24);
}
