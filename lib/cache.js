'use strict'
// FallbackCache: recent answers by (service, key), kept in Rust as JSON text, bounded by
// `cacheMaxEntries` and `cacheMaxBytes` (least recently used out first), each with a TTL and a
// stale-if-error grace period. Every read returns a fresh copy, so callers may mutate it.

const { NativeCache, cacheStatsFields } = require('./native')
const errors = require('./errors')
const { toJson } = require('./serialize')
const { optionsOf, clockOf, checkService, checkKey, checkTtl } = require('./fallback-shared')

const FIELDS = cacheStatsFields()
const EXPECTED = ['entries', 'bytes', 'hits', 'staleHits', 'misses', 'sets', 'evictions', 'expirations', 'rejected']
if (FIELDS.join() !== EXPECTED.join()) {
  throw new errors.BreakwaterError(
    errors.CODES.INTERNAL,
    'breakwater: the native cache stats layout does not match this JS layer (mixed versions?)',
  )
}
const S = new Float64Array(FIELDS.length)
const L = new Float64Array(3)

// A value is stored as its JSON text, or, for a string, as 's' and the string itself: a string
// needs no JSON pass (JSON.stringify of 1 KB of text costs more than storing it), and JSON text
// never starts with 's', so the two cannot be confused.
const JSON_TAG = 0 // no tag
const STRING_TAG = 115 // 's'
const decode = (text) => (text.charCodeAt(0) === STRING_TAG ? text.slice(1) : JSON.parse(text))

class FallbackCache {
  #native
  #now
  #enabled
  #ttlMs

  /** @param {object} [options] the fallback options (see index.d.ts); queue options are accepted and ignored */
  constructor(options) {
    const opts = optionsOf(options)
    this.#native = errors.native(() => new NativeCache(opts, process.env))
    this.#now = clockOf(opts).now
    const resolved = this.#native.options()
    /** @internal every resolved fallback option (FallbackHandler reads logFallbacks here) */
    this._resolved = resolved
    this.#enabled = resolved.cacheEnabled
    this.#ttlMs = resolved.cacheTtlMs
    /** The resolved options (after defaults and the environment). */
    this.options = Object.freeze({
      cacheEnabled: resolved.cacheEnabled,
      cacheTtlMs: resolved.cacheTtlMs,
      cacheMaxEntries: resolved.cacheMaxEntries,
      cacheMaxBytes: resolved.cacheMaxBytes,
      staleIfErrorMs: resolved.staleIfErrorMs,
    })
  }

  get enabled() {
    return this.#enabled
  }

  /** The fresh value, or undefined. */
  get(service, key) {
    if (typeof service !== 'string' || typeof key !== 'string' || service.length === 0 || service.length > 256) {
      checkService(service)
      checkKey('key', key)
    }
    if (!this.#enabled) return undefined
    const text = this.#native.get(service, key, this.#now())
    return text === null ? undefined : decode(text)
  }

  /**
   * The value with where it stands: fresh, or stale (past its TTL, within `staleIfErrorMs`).
   * @returns {{ value: unknown, stale: boolean, ageMs: number, expiresAt: number } | undefined}
   */
  getEntry(service, key) {
    checkService(service)
    checkKey('key', key)
    if (!this.#enabled) return undefined
    const text = this.#native.lookup(service, key, this.#now(), L)
    if (text === null) return undefined
    return { value: decode(text), stale: L[0] === 1, ageMs: L[1], expiresAt: L[2] }
  }

  has(service, key) {
    return this.get(service, key) !== undefined
  }

  /**
   * Stores a JSON-serialisable value for `ttlMs` (default `cacheTtlMs`). Returns false when
   * the cache is disabled or the value is larger than `cacheMaxBytes`; throws
   * ERR_NOT_SERIALIZABLE for a function, a cycle, a BigInt, a Map, ...
   */
  set(service, key, value, ttlMs) {
    if (typeof service !== 'string' || typeof key !== 'string' || service.length === 0 || service.length > 256 || ttlMs !== undefined) {
      checkService(service)
      checkKey('key', key)
      checkTtl(ttlMs)
    }
    const string = typeof value === 'string'
    const text = string ? value : toJson(value, 'the cached value')
    if (!this.#enabled) return false
    return this.#native.set(service, key, text, string ? STRING_TAG : JSON_TAG, ttlMs ?? this.#ttlMs, this.#now())
  }

  /** Drops one key of a service, or every key of it; returns how many entries went. */
  invalidate(service, key) {
    checkService(service)
    if (key === undefined) return this.#native.removeService(service)
    checkKey('key', key)
    return this.#native.remove(service, key) ? 1 : 0
  }

  /** Drops everything; returns how many entries went. */
  clear() {
    return this.#native.clear()
  }

  get size() {
    this.#native.stats(S)
    return S[0]
  }

  /** Bytes counted against `cacheMaxBytes`: keys, values and a fixed overhead per entry. */
  get bytes() {
    this.#native.stats(S)
    return S[1]
  }

  getMetrics() {
    this.#native.stats(S)
    const lookups = S[2] + S[3] + S[4]
    return {
      enabled: this.#enabled,
      entries: S[0],
      bytes: S[1],
      maxEntries: this.options.cacheMaxEntries,
      maxBytes: this.options.cacheMaxBytes,
      hits: S[2],
      staleHits: S[3],
      misses: S[4],
      hitRate: lookups === 0 ? 0 : (S[2] + S[3]) / lookups,
      sets: S[5],
      evictions: S[6],
      expirations: S[7],
      rejected: S[8],
    }
  }
}

module.exports = { FallbackCache }
