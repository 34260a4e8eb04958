'use strict'
// FallbackHandler: graceful degradation for one gateway. A call that fails is answered, in this
// order, by a fresh cached value, a stale one within `staleIfErrorMs`, the service's registered
// fallback, or else its original error; writes that must happen go to the retry queue.

const { EventEmitter } = require('node:events')
const errors = require('./errors')
const { FallbackCache } = require('./cache')
const { RequestQueue } = require('./queue')
const shared = require('./fallback-shared')

const QUEUE_EVENTS = ['enqueued', 'retry', 'completed', 'deadLetter']
const SOURCES = ['live', 'cache', 'stale', 'fallback', 'error']

class FallbackHandler extends EventEmitter {
  #cache
  #queue
  #logger
  #log
  #fallbacks = new Map()
  /** Answers by service and source. */
  #counts = new Map()

  /** @param {object} [options] see index.d.ts for every option and its default */
  constructor(options) {
    super()
    const opts = shared.optionsOf(options)
    this.#logger = shared.loggerOf(opts)
    this.#cache = new FallbackCache(opts)
    this.#queue = new RequestQueue(opts)
    this.#log = this.#cache._resolved.logFallbacks
    for (const ev of QUEUE_EVENTS) this.#queue.on(ev, (payload) => shared.emitSafe(this, this.#logger, ev, payload))
    this.#queue.on('error', (err) => shared.raise(this, this.#logger, err))
    this.#queue.on('deadLetter', (d) => {
      if (this.#log)
        this.#logger.warn(
          `breakwater: ${d.service} item ${d.id} dead-lettered (${d.reason}) after ${d.attempts} attempt(s): ${d.lastError ?? 'no error recorded'}`,
        )
    })
  }

  /** The response cache (also usable directly). */
  get cache() {
    return this.#cache
  }

  /** The retry queue: register handlers with `queue.registerHandler(operation, handler)`. */
  get queue() {
    return this.#queue
  }

  /** The fallback of a service: `(error, ...args) => value`. Replaces an earlier one. */
  registerFallback(service, fn) {
    shared.checkService(service)
    if (typeof fn !== 'function') throw errors.invalidArgument('fn', fn, 'a function')
    this.#fallbacks.set(service, fn)
    return this
  }

  unregisterFallback(service) {
    return this.#fallbacks.delete(service)
  }

  /**
   * Runs `fn(...args)` (through `breaker` if given). On success the result is cached under
   * `(service, cacheKey)` and returned with `source: 'live'`. On failure: a fresh cached value,
   * a stale one within `staleIfErrorMs`, the registered fallback's result, or the original
   * error, in that order; the result's `source` and the 'fallback' event say which.
   */
  async executeWithFallback(service, fn, options) {
    shared.checkService(service)
    if (typeof fn !== 'function') throw errors.invalidArgument('fn', fn, 'a function')
    const o = options ?? {}
    if (typeof o !== 'object') throw errors.invalidArgument('options', options, 'an object { cacheKey, args, breaker, ttlMs }')
    const { cacheKey, breaker, ttlMs } = o
    const args = o.args ?? []
    if (cacheKey !== undefined) shared.checkKey('cacheKey', cacheKey)
    if (!Array.isArray(args)) throw errors.invalidArgument('args', args, 'an array of arguments for fn')
    shared.checkTtl(ttlMs)
    if (breaker !== undefined && breaker !== null) {
      if (typeof breaker.call !== 'function') throw errors.invalidArgument('breaker', breaker, 'a CircuitBreaker')
      // A breaker's own fallback would answer first, and its answer would be cached as live.
      if (breaker._fallback !== undefined) {
        throw errors.invalidArgument(
          'breaker',
          `the breaker ${JSON.stringify(breaker.name)}`,
          'a CircuitBreaker without a fallback option (the handler provides the fallbacks)',
        )
      }
    }
    let value
    try {
      value = breaker !== undefined && breaker !== null ? await breaker.call(fn, ...args) : await fn(...args)
    } catch (error) {
      return this.#degrade(service, cacheKey, args, error)
    }
    this.#count(service, 'live')
    if (cacheKey !== undefined && this.#cache.enabled) {
      try {
        this.#cache.set(service, cacheKey, value, ttlMs)
      } catch (err) {
        // The caller still gets its answer; the cache cannot keep it.
        err.service = service
        err.cacheKey = cacheKey
        shared.raise(this, this.#logger, err)
      }
    }
    return { value, source: 'live' }
  }

  async #degrade(service, cacheKey, args, error) {
    if (cacheKey !== undefined) {
      const hit = this.#cache.getEntry(service, cacheKey)
      if (hit !== undefined) {
        const source = hit.stale ? 'stale' : 'cache'
        if (this.listenerCount('cacheHit') > 0) {
          shared.emitSafe(this, this.#logger, 'cacheHit', { service, key: cacheKey, stale: hit.stale, ageMs: hit.ageMs })
        }
        this.#report(service, source, error, cacheKey, hit.ageMs)
        return { value: hit.value, source, error, ageMs: hit.ageMs }
      }
    }
    const fallback = this.#fallbacks.get(service)
    if (fallback !== undefined) {
      let value
      try {
        value = await fallback(error, ...args)
      } catch (fallbackError) {
        this.#report(service, 'error', error, cacheKey, undefined, fallbackError)
        throw fallbackError
      }
      this.#report(service, 'fallback', error, cacheKey)
      return { value, source: 'fallback', error }
    }
    this.#report(service, 'error', error, cacheKey)
    throw error
  }

  #count(service, source) {
    let c = this.#counts.get(service)
    if (c === undefined) {
      c = { live: 0, cache: 0, stale: 0, fallback: 0, error: 0 }
      this.#counts.set(service, c)
    }
    c[source]++
  }

  #report(service, source, error, cacheKey, ageMs, fallbackError) {
    this.#count(service, source)
    const event = { service, source, error }
    if (cacheKey !== undefined) event.cacheKey = cacheKey
    if (ageMs !== undefined) event.ageMs = ageMs
    if (fallbackError !== undefined) event.fallbackError = fallbackError
    shared.emitSafe(this, this.#logger, 'fallback', event)
    if (this.#log) {
      const why = shared.errorText(error)
      if (source === 'error') {
        this.#logger.warn(
          fallbackError === undefined
            ? `breakwater: ${service} failed and nothing could answer for it: ${why}`
            : `breakwater: ${service} failed and its fallback failed too (${shared.errorText(fallbackError)}): ${why}`,
        )
      } else {
        const age = ageMs === undefined ? '' : ` (${Math.round(ageMs)} ms old)`
        this.#logger.warn(`breakwater: ${service} answered from ${source}${age} after: ${why}`)
      }
    }
  }

  /** A fresh cached value, or undefined. */
  getFromCache(service, key) {
    const value = this.#cache.get(service, key)
    if (value !== undefined && this.listenerCount('cacheHit') > 0) {
      shared.emitSafe(this, this.#logger, 'cacheHit', { service, key, stale: false })
    }
    return value
  }

  /** Stores a JSON-serialisable value; see `FallbackCache.set`. */
  setCache(service, key, value, ttlMs) {
    return this.#cache.set(service, key, value, ttlMs)
  }

  /** Drops one cached key of a service, or all of them; returns how many entries went. */
  invalidate(service, key) {
    return this.#cache.invalidate(service, key)
  }

  /** Queues work for retry; see `RequestQueue.enqueue`. */
  queueForRetry(service, item, options) {
    return this.#queue.enqueue(service, item, options)
  }

  getMetrics() {
    const services = {}
    const totals = Object.fromEntries(SOURCES.map((s) => [s, 0]))
    for (const [name, c] of this.#counts) {
      services[name] = { ...c }
      for (const s of SOURCES) totals[s] += c[s]
    }
    return { served: { ...totals, services }, cache: this.#cache.getMetrics(), queue: this.#queue.getMetrics() }
  }

  /** Closes the queue (see `RequestQueue.close`). */
  close() {
    return this.#queue.close()
  }
}

module.exports = { FallbackHandler }
