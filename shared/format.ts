/**
 * How numbers are written for people (dashboard, CLI): bytes in binary units, ratios and
 * times with few digits, ids short.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` -> `1.5 KiB`; null -> an en dash. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) {
    return '–';
  }
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value >= 100 || unit === 0 ? 0 : value >= 10 ? 1 : 2;
  return `${Math.sign(bytes) < 0 ? '-' : ''}${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

const SI_UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** Decimal units for axes with powers of ten: `10000` -> `10 kB`. */
export function formatBytesDecimal(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) {
    return '';
  }
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1000 && unit < SI_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${Number(value.toPrecision(3))} ${SI_UNITS[unit]}`;
}

/** A number with `digits` significant digits; null -> an en dash. */
export function formatNumber(
  value: number | null | undefined,
  digits = 3,
): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '–';
  }
  if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-3)) {
    return value.toExponential(digits - 1);
  }
  return String(Number(value.toPrecision(digits)));
}

/** `0.1234` -> `12.3%`. */
export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '–';
  }
  return `${(value * 100).toFixed(1)}%`;
}

/** A ratio such as a compression ratio: `87.5×`. */
export function formatRatio(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '–';
  }
  return `${value >= 100 ? value.toFixed(0) : value.toPrecision(3)}×`;
}

/** Milliseconds with a unit: `12.3 ms`, `1.20 s`. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toPrecision(3)} ms`;
}

/** The first characters of a peer id or hash, enough to tell them apart. */
export function short(id: string | null | undefined, length = 6): string {
  return id === null || id === undefined ? '–' : id.slice(0, length);
}

/** "3 s ago", "2 min ago". */
export function formatAgo(atMs: number | null, nowMs: number): string {
  if (atMs === null) return 'never';
  const seconds = Math.max(0, Math.round((nowMs - atMs) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}
