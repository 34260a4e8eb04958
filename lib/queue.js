'use strict'
// RequestQueue: work that must happen (publishing an ad) waits here while its provider is down
// and is retried with exponential backoff. Rust keeps the items, their order, the dead letters
// and the journal; this layer runs the handlers (user code always runs in JS), asks each
// service's breaker for permission, and schedules everything on one timer per queue.

const { EventEmitter } = require('node:events')
const { NativeQueue } = require('./native')
const errors = require('./errors')
const shared = require('./fallback-shared')

/** How long a service whose breaker refuses without saying until when waits before asking again. */
const PAUSE_POLL_MS = 1_000
/** The shortest wait before an item with no handler for its operation is looked at again. */
const NO_HANDLER_WAIT_MS = 1_000

const OUT = new Float64Array(2)
const noop = () => {}

let registryModule = null
const defaultRegistry = () => (registryModule ??= require('./registry')).globalRegistry

// ---- process exit: persistent queues flush what is still buffered; in-memory queues that
// still hold work say so, since it dies with the process ----
const open = new Set()
let exitHooked = false
function onExit() {
  for (const ref of open) ref.deref()?._atExit()
}
function track(queue) {
  for (const r of open) if (r.deref() === undefined) open.delete(r) // collected without close()
  const ref = new WeakRef(queue)
  open.add(ref)
  if (!exitHooked) {
    exitHooked = true
    process.on('exit', onExit)
  }
  return ref
}

const view = shared.itemView

let redisModule = null
const redisBackend = () => (redisModule ??= require('./queue-redis')).RedisRequestQueue

class RequestQueue extends EventEmitter {
  static [Symbol.hasInstance](value) {
    return (
      Function.prototype[Symbol.hasInstance].call(RequestQueue, value) ||
      (redisModule !== null && value instanceof redisModule.RedisRequestQueue)
    )
  }

  #native
  #opts
  #clock
  #now
  #logger
  #registry
  #prefix
  #persistent
  #handlers = new Map()
  /** Function items (in-memory queues only), by item number. */
  #functions = new Map()
  /** Enqueues waiting for their journal record to be durable, in sequence order. */
  #waiters = []
  #waitHead = 0
  #committed = 0
  #journalError = null
  #keepAlive = null
  #timer = null
  #timerAt = Infinity
  #running = 0
  /** Attempts ended so far. */
  #ended = 0
  #settleWaiters = []
  #passQueued = false
  #closing = false
  #closed = false
  #warnedOps = new Set()
  #ref

  /** @param {object} [options] the fallback options (see index.d.ts); cache options are accepted and ignored */
  constructor(options) {
    super()
    const opts = shared.optionsOf(options)
    // `queue: { redisUrl }` selects the Redis backend: the constructor returns that object
    // instead (same methods and events; `instanceof RequestQueue` holds through hasInstance).
    if (opts.queue !== undefined) return new (redisBackend())(opts)
    const { clock, now } = shared.clockOf(opts)
    this.#logger = shared.loggerOf(opts)
    if (opts.registry !== undefined && opts.registry !== null && typeof opts.registry.get !== 'function') {
      throw errors.invalidConfig(shared.CONTEXT, 'registry', opts.registry, 'a CircuitBreakerRegistry or null')
    }
    this.#registry = opts.registry === undefined ? defaultRegistry() : opts.registry
    this.#clock = clock
    this.#now = now
    // The writer thread reports through a weak reference, so an unclosed queue can still be
    // collected (its journal is then flushed and released).
    const self = new WeakRef(this)
    this.#native = errors.native(() => new NativeQueue(opts, process.env, now(), (seq, err) => self.deref()?._committed(seq, err ?? null)))
    const r = this.#native.options()
    this.#opts = r
    this.#persistent = r.persistPath !== undefined && r.persistPath !== null
    this.#prefix = this.#native.idPrefix
    /** The resolved queue options (after defaults and the environment). */
    this.options = shared.queueOptionsView(r, { persistPath: r.persistPath ?? null })
    /** What opening the journal found (all zeros in memory). */
    this.replay = Object.freeze({ ...this.#native.replayReport() })
    this.#ref = track(this)
    this.#arm(this.#wakeAt())
  }

  get persistent() {
    return this.#persistent
  }

  /** Queued and running items. */
  get size() {
    const m = this.#native.metrics()
    return m.queued + m.running
  }

  /**
   * Registers the handler of an operation: `handler(payload, attempt, context)`, where
   * `attempt` counts from 1 and `context` holds `{ id, idempotencyKey, service, operation,
   * attempt, enqueuedAt }`. A returned promise that rejects (or a throw) is a failed attempt.
   */
  registerHandler(operation, handler) {
    shared.checkHandler(operation, handler)
    this.#handlers.set(operation, handler)
    this.#warnedOps.delete(operation)
    this.#schedulePass()
    return this
  }

  /**
   * Queues `item` for `service`: `{ operation, payload }` (payload as JSON), or a function
   * (in-memory queues only). Resolves with the item's id once it is queued, and on a
   * persistent queue only once it is on disk. With an `idempotencyKey` that is queued,
   * running or recently completed, resolves with that item's id and adds nothing.
   */
  enqueue(service, item, options) {
    try {
      return this.#enqueue(service, item, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #enqueue(service, item, options) {
    const { operation, json, key } = shared.checkItem(service, item, options, this.#persistent ? 'a persistent queue (persistPath)' : null)
    if (this.#journalError !== null) throw this.#journalError
    const now = this.#now()
    const num = errors.native(() => this.#native.enqueue(service, operation, json, key, now, OUT))
    const existing = OUT[0] === 1
    const seq = OUT[1]
    const id = this.#prefix + num
    if (!existing) {
      if (operation === null) this.#functions.set(num, item)
      shared.emitSafe(this, this.#logger, 'enqueued', { id, service, operation: operation ?? undefined, idempotencyKey: key ?? undefined })
      // Due after the first retry delay at the earliest, or at its TTL.
      this.#arm(now + Math.min(this.#opts.retryDelayMs * (1 - this.#opts.retryJitterRatio), this.#opts.queueTtlMs))
    }
    if (seq === 0 || seq <= this.#committed) return Promise.resolve(id)
    return new Promise((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject, id })
      if (this.#keepAlive === null) this.#keepAlive = setInterval(noop, 1 << 30)
    })
  }

  /** @internal the journal's writer thread: everything up to `seq` is durable, or it failed. */
  _committed(seq, err) {
    if (err !== null) {
      this.#journalError = new errors.BreakwaterError(
        errors.CODES.JOURNAL_IO,
        `The queue journal ${JSON.stringify(this.#opts.persistPath)} stopped after a failed write (${err}); items queued since its last sync are in memory only`,
      )
      this.#rejectWaiters(this.#journalError)
      shared.raise(this, this.#logger, this.#journalError)
      return
    }
    if (seq > this.#committed) this.#committed = seq
    this.#resolveWaiters()
  }

  #resolveWaiters() {
    const w = this.#waiters
    let i = this.#waitHead
    while (i < w.length && w[i].seq <= this.#committed) {
      w[i].resolve(w[i].id)
      w[i] = undefined
      i++
    }
    this.#waitHead = i
    if (i === w.length) {
      this.#waiters = []
      this.#waitHead = 0
      this.#releaseKeepAlive()
    } else if (i > 1024 && i * 2 > w.length) {
      this.#waiters = w.slice(i)
      this.#waitHead = 0
    }
  }

  #rejectWaiters(err) {
    for (let i = this.#waitHead; i < this.#waiters.length; i++) this.#waiters[i].reject(err)
    this.#waiters = []
    this.#waitHead = 0
    this.#releaseKeepAlive()
  }

  #releaseKeepAlive() {
    if (this.#keepAlive !== null) {
      clearInterval(this.#keepAlive)
      this.#keepAlive = null
    }
  }

  // ---- scheduling ----

  /** The earliest time anything may need doing (NaN-free; Infinity for never). */
  #wakeAt() {
    let at = Infinity
    const exp = this.#native.nextExpiry()
    if (exp === exp) at = exp
    for (const s of this.#native.schedule()) if (s.nextDueAt < at) at = s.nextDueAt
    return at
  }

  /** One timer per queue, at the earliest wake time; never keeps the process alive. */
  #arm(at) {
    if (!this.#opts.autoRetryEnabled || this.#closing || !(at < this.#timerAt)) return
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer)
    this.#timerAt = at
    const ms = at === -Infinity ? 0 : Math.min(Math.max(0, at - this.#now()), 2_147_483_647)
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = null
      this.#timerAt = Infinity
      this.#safePass()
    }, ms)
    if (this.#timer !== null && typeof this.#timer === 'object' && typeof this.#timer.unref === 'function') this.#timer.unref()
  }

  #schedulePass() {
    if (this.#passQueued || !this.#opts.autoRetryEnabled || this.#closing) return
    this.#passQueued = true
    queueMicrotask(() => {
      this.#passQueued = false
      this.#safePass()
    })
  }

  #safePass() {
    try {
      return this.#pass()
    } catch (err) {
      shared.raise(this, this.#logger, errors.fromNative(err))
      return 0
    }
  }

  /** Asks the service's breaker: a permit, or when to ask again (null: when an attempt settles). */
  #gate(service, now) {
    const breaker = this.#registry === null ? undefined : this.#registry.get(service)
    if (breaker === undefined) return { permit: null, until: undefined }
    const state = breaker.state
    if (state === 'forced_open') return { permit: null, until: now + PAUSE_POLL_MS }
    if (state === 'open') {
      // Ask only once the open time is up: an early tryAcquire would count a rejection.
      const next = breaker.getMetrics().nextAttemptAt
      if (next !== null && now < next) return { permit: null, until: next }
    }
    const permit = breaker.tryAcquire()
    if (permit === null) return { permit: null, until: now + PAUSE_POLL_MS }
    return { permit, until: undefined }
  }

  /**
   * Dead-letters what expired, then starts every due item that its service's concurrency and
   * breaker allow. Synchronous: attempts settle later. Returns how many started.
   */
  #pass() {
    if (this.#closing) return 0
    const now = this.#now()
    const native = this.#native
    for (const d of native.expire(now)) this.#deadLettered(d, undefined)
    let wake = Infinity
    let started = 0
    const concurrency = this.#opts.concurrency
    for (const s of native.schedule()) {
      if (s.nextDueAt > now) {
        if (s.nextDueAt < wake) wake = s.nextDueAt
        continue
      }
      if (s.running >= concurrency) continue // a settling attempt starts the next pass
      for (;;) {
        const item = native.peek(s.service, now)
        if (item === null) break
        const handler =
          item.operation === undefined || item.operation === null ? this.#functions.get(item.num) : this.#handlers.get(item.operation)
        if (handler === undefined) {
          this.#noHandler(item, now)
          continue
        }
        const gate = this.#gate(s.service, now)
        if (gate.until !== undefined) {
          if (gate.until < wake) wake = gate.until
          break
        }
        const attempt = native.start(item.num, now)
        started++
        this.#run(item, attempt, handler, gate.permit)
      }
    }
    const exp = native.nextExpiry()
    if (exp === exp && exp < wake) wake = exp
    this.#arm(wake)
    return started
  }

  #noHandler(item, now) {
    const reason =
      item.operation === undefined || item.operation === null
        ? 'the function of this item is gone (the process restarted?)'
        : `no handler is registered for operation ${JSON.stringify(item.operation)}`
    this.#native.defer(item.num, now + Math.max(this.#opts.retryDelayMs, NO_HANDLER_WAIT_MS), reason)
    const op = item.operation ?? ''
    if (!this.#warnedOps.has(op)) {
      this.#warnedOps.add(op)
      shared.raise(
        this,
        this.#logger,
        new errors.BreakwaterError(
          errors.CODES.NO_HANDLER,
          `Queue item ${item.id} of ${item.service} is waiting: ${reason}; it keeps waiting, without using attempts, until queueTtlMs`,
          {
            item: item.id,
            operation: item.operation ?? undefined,
          },
        ),
      )
    }
  }

  #run(item, attempt, handler, permit) {
    this.#running++
    const context = {
      id: item.id,
      idempotencyKey: item.idempotencyKey ?? item.id,
      service: item.service,
      operation: item.operation ?? undefined,
      attempt,
      enqueuedAt: item.enqueuedAt,
    }
    let pending
    try {
      pending = context.operation === undefined ? handler(context) : handler(JSON.parse(item.payload), attempt, context)
    } catch (err) {
      pending = Promise.reject(err)
    }
    Promise.resolve(pending).then(
      (result) => this.#settle(item, context, permit, true, result),
      (err) => this.#settle(item, context, permit, false, err),
    )
  }

  #settle(item, context, permit, ok, value) {
    this.#running--
    this.#ended++
    const now = this.#now()
    try {
      if (ok) {
        if (permit !== null) permit.success()
        this.#native.complete(item.num, now)
        this.#functions.delete(item.num)
        shared.emitSafe(this, this.#logger, 'completed', { ...context, result: value })
      } else {
        if (permit !== null) permit.failure(value)
        const out = this.#native.fail(item.num, shared.errorText(value), now)
        if (out.dead) {
          this.#deadLettered(this.#native.deadLetter(item.num), value)
        } else {
          shared.emitSafe(this, this.#logger, 'retry', {
            ...context,
            error: value,
            delayMs: out.delayMs,
            nextAttemptAt: out.nextAttemptAt,
          })
        }
      }
    } catch (err) {
      shared.raise(this, this.#logger, errors.fromNative(err))
    }
    const waiters = this.#settleWaiters
    this.#settleWaiters = []
    for (const w of waiters) w()
    this.#schedulePass()
  }

  #deadLettered(native, error) {
    if (native === null || native === undefined) return
    this.#functions.delete(native.num)
    const d = view(native)
    d.error = error === undefined ? d.lastError : error
    shared.emitSafe(this, this.#logger, 'deadLetter', d)
  }

  /**
   * Runs everything due now (at the clock's current time): dead-letters expired items, starts
   * due items as breakers and `concurrency` allow, and waits for them; then again while more
   * are due. Resolves with the number of attempts that ended meanwhile (including any that a
   * timer had started). With a ManualClock, tests call this after `clock.advance()`; with
   * `autoRetryEnabled: false`, this is how the queue is driven.
   */
  async runDue() {
    const before = this.#ended
    for (;;) {
      this.#safePass()
      if (this.#running === 0) return this.#ended - before
      await new Promise((resolve) => this.#settleWaiters.push(resolve))
    }
  }

  // ---- inspection ----

  /** Queued and running items (of one service, or all), oldest first. */
  list(service) {
    if (service !== undefined) shared.checkService(service)
    return this.#native.list(service).map(view)
  }

  /** Items that failed `maxRetryAttempts` times or outlived `queueTtlMs`, with their last error. */
  deadLetters() {
    return this.#native.deadLetters().map(view)
  }

  /** Forgets every dead letter; returns how many. */
  clearDeadLetters() {
    return errors.native(() => this.#native.clearDeadLetters())
  }

  getMetrics() {
    const m = this.#native.metrics()
    return {
      queued: m.queued,
      running: m.running,
      deadLetters: m.deadLetters,
      rememberedKeys: m.rememberedKeys,
      enqueued: m.enqueued,
      deduplicated: m.deduplicated,
      rejectedFull: m.rejectedFull,
      attempts: m.attempts,
      completed: m.completed,
      failedAttempts: m.failedAttempts,
      deadLettered: m.deadLettered,
      persistent: this.#persistent,
      journal: this.#persistent
        ? { path: this.#opts.persistPath, bytes: m.journalBytes, compactions: m.compactions, failed: m.journalFailed }
        : null,
    }
  }

  /** Rewrites the journal as a snapshot of what it holds now (it also happens by itself). */
  compact() {
    errors.native(() => this.#native.compact())
  }

  /**
   * Stops starting attempts, waits for the running ones, writes and syncs the journal and
   * releases it. Later enqueues fail with ERR_QUEUE_CLOSED. Queued items stay in the journal
   * (persistent) or are dropped with the queue (in memory: `list()` them first).
   */
  async close() {
    if (this.#closed) return
    this.#closing = true
    if (this.#timer !== null) {
      this.#clock.clearTimer(this.#timer)
      this.#timer = null
      this.#timerAt = Infinity
    }
    while (this.#running > 0) await new Promise((resolve) => this.#settleWaiters.push(resolve))
    this.#closed = true
    open.delete(this.#ref)
    try {
      const seq = errors.native(() => this.#native.close())
      if (seq > this.#committed) this.#committed = seq
      this.#resolveWaiters()
    } catch (err) {
      this.#rejectWaiters(err)
      throw err
    }
    if (this.#waitHead < this.#waiters.length)
      this.#rejectWaiters(new errors.BreakwaterError(errors.CODES.QUEUE_CLOSED, 'The retry queue is closed'))
  }

  /** @internal at process exit: flush the journal, or say what an in-memory queue loses */
  _atExit() {
    if (this.#closed) return
    if (this.#persistent) {
      try {
        this.#native.flushSync()
      } catch {
        // the journal already reported its failure
      }
      return
    }
    const m = this.#native.metrics()
    const n = m.queued + m.running
    if (n > 0) {
      this.#logger.warn(
        `breakwater: the process exits with ${n} item(s) in an in-memory retry queue; they are lost (set persistPath to keep them)`,
      )
    }
  }
}

module.exports = { RequestQueue }
