/**
 * One error type for the whole project. Every failure carries a stable
 * `code` that callers and tests branch on, and a `context` object with the
 * values that explain it (what was expected, what arrived). Messages are for
 * people and may change; codes may not.
 */

/** Every error code the project raises. Add new codes here, nowhere else. */
export const ERROR_CODES = [
  /** A configuration value is missing, of the wrong type or out of range. */
  'ERR_BAD_CONFIG',
  /** A message from the wire failed validation. */
  'ERR_BAD_MESSAGE',
  /** A message or reassembled payload is larger than the allowed cap. */
  'ERR_MESSAGE_TOO_LARGE',
  /** A ring step did not complete within its deadline. */
  'ERR_RING_TIMEOUT',
  /** A ring step was aborted (membership changed, peer left, caller). */
  'ERR_RING_ABORTED',
  /** The peer at the other end of a link departed. */
  'ERR_PEER_GONE',
  /** A send or receive on a data channel that is closed or closing. */
  'ERR_CHANNEL_CLOSED',
  /** A gradient, weight or value is NaN or infinite where it must not be. */
  'ERR_NON_FINITE',
  /** Replicas disagree (model hash, fingerprint, config). */
  'ERR_MISMATCH',
  /** The signaling server refused admission (token, room, limits). */
  'ERR_ADMISSION',
  /** Too many events or bytes from one client in a window. */
  'ERR_RATE_LIMIT',
  /** An unknown model, data set or backend was requested. */
  'ERR_UNKNOWN_NAME',
  /** An optional dependency (data package, backend) is not installed. */
  'ERR_MISSING_DEPENDENCY',
  /** A checkpoint is unreadable or does not match the model. */
  'ERR_BAD_CHECKPOINT',
  /** A server did not answer: unreachable, or no reply within a timeout. */
  'ERR_UNREACHABLE',
  /**
   * The room's run ended while this peer was out of the ring: its weights
   * are stale and nobody who holds the final ones is left to hand them on.
   */
  'ERR_RUN_FINISHED',
  /** An internal invariant was broken: a bug in this project. */
  'ERR_INTERNAL',
] as const;

/** A stable error code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Values that explain an error; kept small and serialisable. */
export type ErrorContext = Readonly<Record<string, unknown>>;

/** The base error of the project: a stable `code` plus a `context`. */
export class TopkRingError extends Error {
  /** The stable code to branch on. */
  readonly code: ErrorCode;
  /** The values that explain the failure. */
  readonly context: ErrorContext;

  constructor(
    code: ErrorCode,
    message: string,
    context: ErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TopkRingError';
    this.code = code;
    this.context = context;
  }

  /** A plain object for logs, JSON replies and socket.io acks. */
  toJSON(): { code: ErrorCode; message: string; context: ErrorContext } {
    return { code: this.code, message: this.message, context: this.context };
  }
}

/** Creates a {@link TopkRingError}; the one way errors are made. */
export function topkError(
  code: ErrorCode,
  message: string,
  context: ErrorContext = {},
  cause?: unknown,
): TopkRingError {
  return new TopkRingError(
    code,
    message,
    context,
    cause === undefined ? undefined : { cause },
  );
}

/** True when `error` is a {@link TopkRingError}, optionally of `code`. */
export function isTopkError(
  error: unknown,
  code?: ErrorCode,
): error is TopkRingError {
  return (
    error instanceof TopkRingError &&
    (code === undefined || error.code === code)
  );
}

/**
 * Describes a value for an error message without dumping it whole: numbers
 * and short strings as they are, everything else by its kind and size.
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  if (typeof value === 'string') {
    return value.length <= 40
      ? JSON.stringify(value)
      : `a string of ${value.length} characters`;
  }
  if (ArrayBuffer.isView(value)) {
    return `${value.constructor.name}(${value.byteLength} bytes)`;
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `a ${typeof value}`;
}
