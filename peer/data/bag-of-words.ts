/**
 * Text to sparse features, the way RCV1 was prepared: word tokens, a
 * vocabulary of the terms found in enough training documents, weights
 * log(1 + term count) * idf, and every row scaled to unit length. Runs in
 * a browser.
 */
import type { SparseRows } from './splits.ts';

/** Tokens are runs of letters and digits, 2 to 30 long, lower-cased. */
const TOKEN = /[a-z0-9]{2,30}/g;

/** The lower-cased word tokens of `text`. */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(TOKEN) ?? [];
}

/**
 * The part of a raw email worth reading: the Subject header and the body
 * (everything after the first blank line), with HTML tags removed. Other
 * headers are mostly routing noise (hosts, ids, dates).
 */
export function emailText(raw: string): string {
  const text = raw.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  const headers = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 2);
  const subject = /^subject:(.*)$/im.exec(headers)?.[1] ?? '';
  return `${subject}\n${body.replace(/<[^>]*>/g, ' ')}`;
}

/** A vocabulary: terms in feature order, with their idf weights. */
export interface Vocabulary {
  /** Feature j is `terms[j]`. */
  readonly terms: readonly string[];
  /** Term to feature index. */
  readonly index: ReadonlyMap<string, number>;
  /** log((1 + documents) / (1 + documents with the term)) + 1. */
  readonly idf: Float32Array;
}

/** Options of {@link buildVocabulary}. */
export interface VocabularyOptions {
  /** A term must occur in at least this many documents. Default 2. */
  readonly minDocuments?: number;
  /** Keep at most this many terms, the most widespread. Default 40,000. */
  readonly maxFeatures?: number;
}

/**
 * The vocabulary of `documents` (each a token list). Terms are ranked by
 * document frequency, ties broken alphabetically, so the result depends
 * on the documents only, not on their order.
 */
export function buildVocabulary(
  documents: readonly (readonly string[])[],
  options: VocabularyOptions = {},
): Vocabulary {
  const minDocuments = options.minDocuments ?? 2;
  const maxFeatures = options.maxFeatures ?? 40_000;
  const documentCounts = new Map<string, number>();
  for (const tokens of documents) {
    for (const term of new Set(tokens)) {
      documentCounts.set(term, (documentCounts.get(term) ?? 0) + 1);
    }
  }
  const ranked = [...documentCounts]
    .filter(([, count]) => count >= minDocuments)
    .sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, maxFeatures);
  // Feature order is alphabetical: stable when maxFeatures changes.
  ranked.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const terms = ranked.map(([term]) => term);
  const idf = new Float32Array(terms.length);
  ranked.forEach(([, count], j) => {
    idf[j] = Math.log((1 + documents.length) / (1 + count)) + 1;
  });
  return { terms, index: new Map(terms.map((t, j) => [t, j])), idf };
}

/** The sparse rows of `documents` over `vocabulary`; unknown terms drop. */
export function vectorize(
  documents: readonly (readonly string[])[],
  vocabulary: Vocabulary,
): SparseRows {
  const rowStart = new Uint32Array(documents.length + 1);
  const columns: number[] = [];
  const values: number[] = [];
  documents.forEach((tokens, row) => {
    const counts = new Map<number, number>();
    for (const token of tokens) {
      const j = vocabulary.index.get(token);
      if (j !== undefined) counts.set(j, (counts.get(j) ?? 0) + 1);
    }
    const entries = [...counts].sort(([a], [b]) => a - b);
    const weights = entries.map(
      ([j, count]) => Math.log1p(count) * vocabulary.idf[j],
    );
    let squares = 0;
    for (const w of weights) squares += w * w;
    const norm = Math.sqrt(squares) || 1;
    entries.forEach(([j], k) => {
      columns.push(j);
      values.push(weights[k] / norm);
    });
    rowStart[row + 1] = columns.length;
  });
  return {
    rowStart,
    columns: Uint32Array.from(columns),
    values: Float32Array.from(values),
    width: vocabulary.terms.length,
  };
}
