'use strict';
// The canonical JSON that metadata objects and the integrations commit to: every object's keys
// sorted, no spaces, so that the same value always commits to the same bytes. What JSON cannot
// hold is written as text: bigints in decimal, bytes in base64, errors as their name and
// message; a value with `toJSON` (a Date, a URL) by what it returns; undefined fields left out.
// A value nested deeper than MAX_DEPTH is written as a marker text: a provider's answer (its
// content is data, not ours) must not overflow the stack before its call is recorded and its
// payments committed to.

const MAX_DEPTH = 128;
const TOO_DEEP = `[nested deeper than ${MAX_DEPTH} levels]`;

function plain(value, seen, depth = 0) {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? undefined : value;
  }
  if (value instanceof Uint8Array) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  }
  if (value instanceof ArrayBuffer) return Buffer.from(value).toString('base64');
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  seen.add(value);
  try {
    if (value instanceof Error) {
      return { message: value.message, name: value.name };
    }
    if (typeof value.toJSON === 'function') return plain(value.toJSON(), seen, depth + 1);
    if (Array.isArray(value)) return value.map((item) => plain(item, seen, depth + 1) ?? null);
    if (value instanceof Map) return plain(Object.fromEntries(value), seen, depth + 1);
    if (value instanceof Set) return plain([...value], seen, depth + 1);
    const sorted = {};
    for (const key of Object.keys(value).sort()) {
      const field = plain(value[key], seen, depth + 1);
      if (field !== undefined) sorted[key] = field;
    }
    return sorted;
  } finally {
    seen.delete(value);
  }
}

/** `value` as canonical JSON text. */
function canonicalJson(value) {
  return JSON.stringify(plain(value, new Set())) ?? 'null';
}

/** Content to commit to as it is (a string or bytes), anything else as canonical JSON. */
function content(value) {
  if (typeof value === 'string' || value instanceof Uint8Array) return value;
  return canonicalJson(value);
}

module.exports = { canonicalJson, content };
