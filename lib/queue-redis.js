'use strict'
// The RequestQueue's Redis backend (`queue: { redisUrl }`): the items live in Redis Streams
// shared by every instance (see src/core/queue/redis.rs for why Streams and how). Rust runs the
// Redis scripts; this layer polls for due items, asks each service's breaker, runs the handlers
// (user code always runs in JS), keeps a visibility heartbeat for the items it holds, and
// reports outcomes. Outcomes that cannot reach Redis are kept and sent again after a reconnect.

const { EventEmitter } = require('node:events')
const { NativeRedisQueue } = require('./native')
const errors = require('./errors')
const shared = require('./fallback-shared')
const { defaultInstanceId } = require('./shared')

/** How long a service whose breaker refuses without saying until when waits before asking again. */
const PAUSE_POLL_MS = 1_000
/** The shortest wait before an item with no handler for its operation is looked at again. */
const NO_HANDLER_WAIT_MS = 1_000
/** Outcomes kept while Redis is unreachable, at most (beyond that, visibility reclaims them). */
const MAX_PENDING_OUTCOMES = 10_000

let registryModule = null
const defaultRegistry = () => (registryModule ??= require('./registry')).globalRegistry

const native = (promise) => promise.catch((err) => Promise.reject(errors.fromNative(err)))

class RedisRequestQueue extends EventEmitter {
  #native
  #opts
  #now
  #logger
  #registry
  #handlers = new Map()
  #services = new Set()
  /** Attempts running here, by service. */
  #running = new Map()
  #runningTotal = 0
  /** Items held here: id -> { service, entry }, for the heartbeat. */
  #held = new Map()
  /** Outcomes that did not reach Redis yet. */
  #pending = []
  #counts = { live: 0, dead: 0 }
  #stats = { enqueued: 0, deduplicated: 0, rejectedFull: 0, attempts: 0, completed: 0, failedAttempts: 0, deadLettered: 0 }
  #ended = 0
  #settleWaiters = []
  #timer = null
  #beat = null
  #polling = null
  #again = false
  #down = false
  #closing = false
  #closed = false
  #warnedOps = new Set()

  /** @param {object} opts the fallback options, with `queue: { redisUrl, ... }` */
  constructor(opts) {
    super()
    const { now } = shared.clockOf(opts)
    this.#logger = shared.loggerOf(opts)
    if (opts.registry !== undefined && opts.registry !== null && typeof opts.registry.get !== 'function') {
      throw errors.invalidConfig(shared.CONTEXT, 'registry', opts.registry, 'a CircuitBreakerRegistry or null')
    }
    if (opts.queue === null || typeof opts.queue !== 'object' || Array.isArray(opts.queue)) {
      throw errors.invalidConfig(shared.CONTEXT, 'queue', opts.queue, 'an object { redisUrl, keyPrefix?, visibilityTimeoutMs?, consumer? }')
    }
    this.#registry = opts.registry === undefined ? defaultRegistry() : opts.registry
    this.#now = now
    this.#native = errors.native(() => new NativeRedisQueue(opts, process.env, defaultInstanceId()))
    const o = this.#native.options()
    const r = o.rules
    this.#opts = { ...r, ...o }
    this.options = shared.queueOptionsView(r, {
      persistPath: null,
      queue: Object.freeze({
        keyPrefix: o.keyPrefix,
        visibilityTimeoutMs: o.visibilityTimeoutMs,
        consumer: o.consumer,
        pollIntervalMs: o.pollIntervalMs,
        commandTimeoutMs: o.commandTimeoutMs,
      }),
    })
    this.replay = Object.freeze({ records: 0, tornBytes: 0, items: 0, deadLetters: 0, interrupted: 0 })
    this.#arm(0)
  }

  /** The items are kept in Redis (durable as Redis' persistence settings make them). */
  get persistent() {
    return true
  }

  /** Shared by every instance on the same Redis and keyPrefix. */
  get distributed() {
    return true
  }

  /** Queued and running items fleet-wide, as of the last poll. */
  get size() {
    return this.#counts.live
  }

  /** See `RequestQueue.registerHandler`. */
  registerHandler(operation, handler) {
    shared.checkHandler(operation, handler)
    this.#handlers.set(operation, handler)
    this.#warnedOps.delete(operation)
    this.#arm(0)
    return this
  }

  /**
   * Queues `{ operation, payload }` for `service` in Redis; resolves with its id once Redis
   * has it. A known idempotency key (queued, running or completed within the retention, on any
   * instance) resolves with the existing id. Rejects with ERR_QUEUE_UNAVAILABLE while Redis is
   * unreachable and ERR_QUEUE_FULL at maxQueueSize (fleet-wide).
   */
  async enqueue(service, item, options) {
    const { operation, json, key } = shared.checkItem(service, item, options, 'a Redis queue')
    if (this.#closing) throw new errors.BreakwaterError(errors.CODES.QUEUE_CLOSED, 'The retry queue is closed')
    let r
    try {
      r = await native(errors.native(() => this.#native.enqueue(service, operation, json, key)))
    } catch (err) {
      if (err.code === errors.CODES.QUEUE_FULL) this.#stats.rejectedFull++
      throw err
    }
    if (r.existing) {
      this.#stats.deduplicated++
      return r.id
    }
    this.#stats.enqueued++
    this.#services.add(service)
    shared.emitSafe(this, this.#logger, 'enqueued', { id: r.id, service, operation, idempotencyKey: key ?? undefined })
    return r.id
  }

  // ---- the drain loop ----

  /** Polls after `ms` (sooner wins); the timer never keeps the process alive. */
  #arm(ms) {
    if (!this.#opts.autoRetryEnabled || this.#closing) return
    if (this.#timer !== null) {
      if (ms > 0) return
      clearTimeout(this.#timer)
    }
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#poll().catch(() => {})
    }, ms)
    this.#timer.unref()
  }

  /** Whether the service's breaker says to stay away now (nothing is taken for it). */
  #paused(service, now) {
    const breaker = this.#registry === null ? undefined : this.#registry.get(service)
    if (breaker === undefined) return false
    const state = breaker.state
    if (state === 'forced_open') return true
    if (state !== 'open') return false
    const next = breaker.getMetrics().nextAttemptAt
    return next === null || now < next
  }

  #markDown(err) {
    const e = errors.fromNative(err)
    if (this.#down) return
    this.#down = true
    shared.raise(this, this.#logger, e)
  }

  #markUp() {
    if (!this.#down) return
    this.#down = false
    shared.emitSafe(this, this.#logger, 'reconnected', { consumer: this.#opts.consumer })
  }

  /** One poll at a time; a poll asked for meanwhile runs right after. Resolves when done. */
  #poll() {
    if (this.#polling !== null) {
      this.#again = true
      return this.#polling
    }
    this.#polling = (async () => {
      try {
        do {
          this.#again = false
          if (this.#closing) break
          await this.#sendPending()
          await this.#takeOnce()
        } while (this.#again && !this.#closing)
      } catch (err) {
        this.#markDown(err)
      } finally {
        this.#polling = null
        this.#arm(this.#opts.pollIntervalMs)
      }
    })()
    return this.#polling
  }

  async #takeOnce() {
    const now = this.#now()
    const requests = []
    for (const service of this.#services) {
      const free = this.#opts.concurrency - (this.#running.get(service) ?? 0)
      if (free > 0 && !this.#paused(service, now)) requests.push({ service, count: free })
    }
    const r = await native(this.#native.take(requests))
    this.#markUp()
    this.#counts = { live: r.live, dead: r.dead }
    let fresh = false
    for (const s of r.services) {
      if (!this.#services.has(s)) {
        this.#services.add(s)
        fresh = true
      }
    }
    const taken = { redisNow: r.now, at: performance.now() }
    for (const item of r.items) {
      if (item.kind === 'expired') this.#deadLettered(item, 'expired', r.now, undefined)
      else this.#start(item, taken)
    }
    if (fresh) this.#again = true
  }

  #start(item, taken) {
    const handler = this.#handlers.get(item.operation)
    if (handler === undefined) {
      this.#release(
        item,
        Math.max(this.#opts.retryDelayMs, NO_HANDLER_WAIT_MS),
        `no handler is registered for operation ${JSON.stringify(item.operation)}`,
      )
      if (!this.#warnedOps.has(item.operation)) {
        this.#warnedOps.add(item.operation)
        shared.raise(
          this,
          this.#logger,
          new errors.BreakwaterError(
            errors.CODES.NO_HANDLER,
            `Queue item ${item.id} of ${item.service} is waiting: no handler is registered for operation ${JSON.stringify(item.operation)} on this instance; it goes back to the queue for another instance or a later handler`,
            {
              item: item.id,
              operation: item.operation,
            },
          ),
        )
      }
      return
    }
    const breaker = this.#registry === null ? undefined : this.#registry.get(item.service)
    let permit = null
    if (breaker !== undefined) {
      permit = breaker.tryAcquire()
      if (permit === null) {
        this.#release(item, PAUSE_POLL_MS, '')
        return
      }
    }
    this.#running.set(item.service, (this.#running.get(item.service) ?? 0) + 1)
    this.#runningTotal++
    this.#held.set(item.id, { service: item.service, entry: item.entry })
    this.#heartbeat()
    this.#stats.attempts++
    const context = {
      id: item.id,
      idempotencyKey: item.idempotencyKey ?? item.id,
      service: item.service,
      operation: item.operation,
      attempt: item.attempts,
      enqueuedAt: item.enqueuedAt,
    }
    let pending
    try {
      pending = handler(JSON.parse(item.payload), item.attempts, context)
    } catch (err) {
      pending = Promise.reject(err)
    }
    Promise.resolve(pending).then(
      (result) => this.#settle(item, context, permit, taken, true, result),
      (err) => this.#settle(item, context, permit, taken, false, err),
    )
  }

  #release(item, delayMs, reason) {
    this.#native.release(item.service, item.id, item.entry, delayMs, reason).catch((err) => this.#markDown(err))
  }

  async #settle(item, context, permit, taken, ok, value) {
    if (permit !== null) {
      if (ok) permit.success()
      else permit.failure(value)
    }
    // Redis' clock now, estimated from the take (the dead-letter decision needs it).
    const redisNow = taken.redisNow + (performance.now() - taken.at)
    const outcome = { item, context, ok, value, redisNow }
    try {
      await this.#record(outcome)
    } catch (err) {
      // Kept and sent again once Redis answers; until then the heartbeat keeps the item ours.
      if (this.#pending.length < MAX_PENDING_OUTCOMES) this.#pending.push(outcome)
      this.#markDown(err)
    }
    const n = this.#running.get(item.service) - 1
    if (n > 0) this.#running.set(item.service, n)
    else this.#running.delete(item.service)
    this.#runningTotal--
    this.#ended++
    if (!this.#pending.includes(outcome)) this.#held.delete(item.id)
    const waiters = this.#settleWaiters
    this.#settleWaiters = []
    for (const w of waiters) w()
    this.#arm(0)
  }

  /** Sends one attempt's outcome to Redis and emits its event. */
  async #record({ item, context, ok, value, redisNow }) {
    const n = this.#native
    if (ok) {
      await native(n.complete(item.service, item.id, item.entry))
      this.#stats.completed++
      shared.emitSafe(this, this.#logger, 'completed', { ...context, result: value })
      return
    }
    const out = await native(n.fail(item.service, item.id, item.entry, item.attempts, item.enqueuedAt, redisNow, shared.errorText(value)))
    this.#stats.failedAttempts++
    if (!out.held) return // another instance reclaimed it meanwhile; its attempt decides
    if (out.dead) this.#deadLettered({ ...item, lastError: shared.errorText(value) }, out.reason, out.nextAttemptAt, value)
    else shared.emitSafe(this, this.#logger, 'retry', { ...context, error: value, delayMs: out.delayMs, nextAttemptAt: out.nextAttemptAt })
  }

  async #sendPending() {
    while (this.#pending.length > 0) {
      const outcome = this.#pending[0]
      await this.#record(outcome)
      this.#pending.shift()
      this.#held.delete(outcome.item.id)
    }
  }

  #deadLettered(item, reason, at, error) {
    this.#stats.deadLettered++
    const d = shared.itemView({ ...item, nextAttemptAt: at, running: false, deadAt: at, reason })
    d.error = error === undefined ? d.lastError : error
    shared.emitSafe(this, this.#logger, 'deadLetter', d)
  }

  /** While items are held here, tells Redis every `heartbeatMs` that this instance is alive. */
  #heartbeat() {
    if (this.#beat !== null) return
    this.#beat = setInterval(() => {
      if (this.#held.size === 0) {
        clearInterval(this.#beat)
        this.#beat = null
        return
      }
      const flat = []
      for (const { service, entry } of this.#held.values()) flat.push(service, entry)
      this.#native.touch(flat).catch((err) => this.#markDown(err))
    }, this.#opts.heartbeatMs)
    this.#beat.unref()
  }

  /**
   * Takes what is due now and runs it, waits for those attempts, and repeats while items come;
   * resolves with the number of attempts that ended meanwhile. With `autoRetryEnabled: false`
   * this is how the queue is driven.
   */
  async runDue() {
    const before = this.#ended
    for (;;) {
      const started = this.#stats.attempts
      await this.#poll()
      if (this.#down) throw new errors.BreakwaterError(errors.CODES.QUEUE_UNAVAILABLE, 'The Redis retry queue is unavailable')
      if (this.#runningTotal === 0 && this.#stats.attempts === started) return this.#ended - before
      while (this.#runningTotal > 0) await new Promise((resolve) => this.#settleWaiters.push(resolve))
    }
  }

  // ---- inspection (fleet-wide, from Redis) ----

  /** Queued and running items (of one service, or all), oldest first. */
  async list(service) {
    if (service !== undefined) shared.checkService(service)
    const items = await native(this.#native.list('live'))
    return items.filter((i) => service === undefined || i.service === service).map(shared.itemView)
  }

  /** Dead letters, oldest first, with their last error and reason. */
  async deadLetters() {
    return (await native(this.#native.list('dead'))).map(shared.itemView)
  }

  async clearDeadLetters() {
    return native(this.#native.clearDeadLetters())
  }

  /** This instance's counters; `queued` and `deadLetters` are fleet-wide as of the last poll. */
  getMetrics() {
    return {
      queued: this.#counts.live,
      running: this.#runningTotal,
      deadLetters: this.#counts.dead,
      rememberedKeys: null,
      ...this.#stats,
      persistent: true,
      journal: null,
      redis: {
        consumer: this.#opts.consumer,
        keyPrefix: this.#opts.keyPrefix,
        connected: !this.#down,
        pendingOutcomes: this.#pending.length,
      },
    }
  }

  /** Nothing to compact: Redis keeps the items. */
  compact() {}

  /**
   * Stops taking items, waits for the running attempts and sends their outcomes (those that
   * cannot reach Redis are reclaimed by another instance after the visibility timeout), then
   * closes the connection. Queued items stay in Redis.
   */
  async close() {
    if (this.#closed) return
    this.#closing = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    if (this.#polling !== null) await this.#polling
    while (this.#runningTotal > 0) await new Promise((resolve) => this.#settleWaiters.push(resolve))
    await this.#sendPending().catch(() => {})
    if (this.#beat !== null) clearInterval(this.#beat)
    this.#beat = null
    this.#closed = true
    await this.#native.close()
  }
}

module.exports = { RedisRequestQueue }
