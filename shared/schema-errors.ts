/**
 * Turns schema validation failures into one readable sentence per problem:
 * the path of the setting or field, what was expected and what arrived
 * ("density: expected a number in [0, 1], got 1.5"). Shared by the room
 * config and the signaling events so both speak the same way.
 */
import { z } from 'zod';

import {
  describeValue,
  topkError,
  type ErrorCode,
  type TopkRingError,
} from './errors.ts';

/** Most problems named in one message; the rest are counted. */
const MAX_ISSUES_NAMED = 4;

/** A problem found by a schema, as the error context carries it. */
export interface SchemaProblem {
  /** Dotted path of the offending field ("limits.peerTimeoutMs"). */
  readonly path: string;
  /** What the field should have been. */
  readonly expected: string;
  /** A short description of what arrived. */
  readonly received: string;
}

/**
 * The per-parse error map: says what was expected, in words, for every
 * issue whose schema did not name it itself. Schema-level messages (set
 * with `{ error: 'a number in [0, 1]' }`) take precedence over this one.
 */
export const expectedPhrase: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return article(issue.expected);
    case 'too_big':
      return boundPhrase(issue.origin, 'most', issue.maximum, issue.inclusive);
    case 'too_small':
      return boundPhrase(issue.origin, 'least', issue.minimum, issue.inclusive);
    case 'invalid_value':
      return issue.values.length === 1
        ? JSON.stringify(issue.values[0])
        : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return `a string in ${issue.format} format`;
    case 'not_multiple_of':
      return `a multiple of ${String(issue.divisor)}`;
    case 'unrecognized_keys':
      return 'no such field';
    case 'invalid_union':
      return 'options' in issue && Array.isArray(issue.options)
        ? `one of ${issue.options.map((v) => JSON.stringify(v)).join(', ')}`
        : 'one of the allowed forms';
    default:
      return 'a valid value';
  }
};

function article(kind: string): string {
  if (kind === 'int') return 'an integer';
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`;
}

function boundPhrase(
  origin: string,
  side: 'most' | 'least',
  bound: number | bigint,
  inclusive: boolean | undefined,
): string {
  const limit = String(bound);
  if (origin === 'string') return `a string of at ${side} ${limit} characters`;
  if (origin === 'array' || origin === 'set') {
    return `at ${side} ${limit} items`;
  }
  if (inclusive === false) {
    return `a number ${side === 'most' ? 'below' : 'above'} ${limit}`;
  }
  return `a number at ${side} ${limit}`;
}

/**
 * Lists the problems of a failed parse, one per issue. `root` is the value
 * that was parsed; what arrived is looked up in it by the issue's path,
 * since refinements and unions report a parent object as their input.
 */
export function schemaProblems(
  issues: readonly z.core.$ZodIssue[],
  root: unknown,
): SchemaProblem[] {
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: pathString([...issue.path, key]),
        expected: 'no such field',
        received: 'one',
      }));
    }
    return [
      {
        path: pathString(issue.path),
        expected: issue.message,
        received: describeReceived(valueAt(root, issue.path)),
      },
    ];
  });
}

function describeReceived(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    if (!ArrayBuffer.isView(value)) return 'an object';
  }
  return describeValue(value);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

/** "limits.peerTimeoutMs", "iceServers[0].urls"; "(root)" for the root. */
function pathString(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

/** One sentence naming every problem (up to a few), each with its path. */
export function describeProblems(
  problems: readonly SchemaProblem[],
  subject: string,
): string {
  const named = problems.slice(0, MAX_ISSUES_NAMED).map((p) => {
    const path = p.path === '(root)' ? subject : p.path;
    return p.expected === 'no such field'
      ? `${path}: unknown field`
      : `${path}: expected ${p.expected}, got ${p.received}`;
  });
  const rest = problems.length - named.length;
  if (rest > 0) named.push(`and ${rest} more`);
  return named.join('; ');
}

/**
 * Parses `input` with `schema`; on failure throws a {@link TopkRingError}
 * of `code` whose message names each problem and whose context lists them.
 * `subject` names the whole value in messages ("config", "join").
 */
export function parseWithSchema<S extends z.ZodType>(
  schema: S,
  input: unknown,
  code: ErrorCode,
  subject: string,
): z.output<S> {
  const result = schema.safeParse(input, {
    error: expectedPhrase,
    reportInput: true,
  });
  if (result.success) return result.data;
  throw schemaError(result.error.issues, input, code, subject);
}

/** The error {@link parseWithSchema} throws, for callers that parse alone. */
export function schemaError(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  code: ErrorCode,
  subject: string,
): TopkRingError {
  const problems = schemaProblems(issues, input);
  return topkError(code, describeProblems(problems, subject), {
    subject,
    problems,
  });
}
