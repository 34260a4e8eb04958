// Shared pieces of the benchmark harness: the contenders' constructors (the same in the main
// process and in the child processes), a seeded RNG, statistics and markdown formatting.

import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { circuitBreaker, handleAll, SamplingBreaker } from 'cockatiel'
import { CircuitBreaker } from '../index.mjs'

const require = createRequire(import.meta.url)
/** opossum is CommonJS only. */
export const Opossum = require('opossum')

export const CONTENDERS = ['bare', 'breakwater', 'cockatiel', 'opossum']

export const hasGc = typeof globalThis.gc === 'function'
/** A full collection; a no-op when node was started without --expose-gc (a warning is printed). */
export const gc = hasGc ? () => globalThis.gc() : () => {}

/** A few collections with a turn of the event loop in between, so finalizers run too. */
export async function settleHeap() {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  gc()
}

// ---- the contenders, configured as the issue asks ----

/** Breakwater stays out of the global registry, so mass creation does not collide on names. */
export function newBreakwater(name, options) {
  return new CircuitBreaker(name, { registry: null, ...options })
}

/** cockatiel as in the issue; `threshold` 0.99 for the failure run, which can then never trip. */
export function newCockatiel(threshold = 0.5) {
  return circuitBreaker(handleAll, {
    halfOpenAfter: 10_000,
    breaker: new SamplingBreaker({ threshold, duration: 10_000 }),
  })
}

/** opossum with its defaults (10 s timeout, 10 s / 10-bucket window, percentiles on). */
export function newOpossum(fn, options) {
  return options === undefined ? new Opossum(fn) : new Opossum(fn, options)
}

// ---- numbers ----

/** mulberry32: a small seeded PRNG, so every run sees the same synthetic latencies. */
export function rngFrom(seed) {
  let a = seed >>> 0
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Log-uniform in [lo, hi): as many calls between 1 and 10 ms as between 100 and 1000 ms. */
export const logUniform = (rng, lo, hi) => lo * Math.exp(rng() * Math.log(hi / lo))

export function median(xs) {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

export const min = (xs) => (xs.length === 0 ? null : Math.min(...xs))
export const max = (xs) => (xs.length === 0 ? null : Math.max(...xs))

export const MiB = 1024 * 1024

// ---- formatting ----

/** A number with 3 to 4 significant digits; null/undefined as an em dash, strings as they are. */
export function fmt(x) {
  if (x === null || x === undefined) return '—'
  if (typeof x === 'string') return x
  if (!Number.isFinite(x)) return String(x)
  const a = Math.abs(x)
  if (a >= 1000) return Math.round(x).toLocaleString('en-US')
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  if (a >= 1) return x.toFixed(2)
  return x.toFixed(3)
}

export function ratio(a, b) {
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null
  return a / b
}

export const fmtRatio = (r) => (r === null ? '—' : `${r.toFixed(2)}×`)

/** A markdown table with padded columns; `align` is a string of 'l'/'r', one per column. */
export function table(headers, rows, align) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c)))
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((r) => r[i].length)))
  const pad = (s, i) => (align[i] === 'r' ? s.padStart(widths[i]) : s.padEnd(widths[i]))
  const line = (r) => `| ${r.map(pad).join(' | ')} |`
  const sep = `|${widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`
  return [line(cells[0]), sep, ...cells.slice(1).map(line)].join('\n')
}

export function packageVersion(name) {
  try {
    const url = new URL(name === '.' ? '../package.json' : `../node_modules/${name}/package.json`, import.meta.url)
    return JSON.parse(readFileSync(url, 'utf8')).version
  } catch {
    return 'unknown'
  }
}
