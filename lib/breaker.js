'use strict'
// The CircuitBreaker facade. Rust owns the state and statistics; this layer runs the user's
// function. In the closed state a call does not cross into native code: it reads the state
// from this thread's state page (memory Rust writes whenever any thread changes a breaker), and
// fast successes are batched into one per-thread buffer that Rust applies in bulk (and before
// any other native call, so the order is kept).

const { EventEmitter } = require('node:events')
const nativeBinding = require('./native')
const { systemClock, systemNow } = require('./clock')
const errors = require('./errors')

const {
  breakerCreate,
  breakerDrop,
  statePage,
  breakerOptions,
  breakerAcquire,
  breakerSettle,
  breakerLastCause,
  breakerOpenFor,
  breakerControl,
  breakerMetrics,
  flushBatch,
  metricsFields,
} = nativeBinding

const FORCE_OPEN_OP = 0
const DISABLE_OP = 1
const RESET_OP = 2
const PROBE_EARLY_OP = 3

// A collected breaker frees its native half. Pending batch entries name it by an id that is
// never reused (see src/napi/breaker.rs), so they are dropped, not misapplied.
const released = new FinalizationRegistry((id) => breakerDrop(id))

const CLOSED = 0
const OPEN = 1
const HALF_OPEN = 2
const FORCED_OPEN = 3
const DISABLED = 4
const STATE_NAMES = ['closed', 'open', 'half_open', 'forced_open', 'disabled']
const STATE_EVENTS = ['close', 'open', 'halfOpen', 'forcedOpen', 'disabled']

const SUCCESS = 0
const FAILURE = 1
const TIMEOUT = 2
const IGNORED = 3

const TWO_32 = 4294967296

// This thread's state page: `[word, openUntil]` per breaker slot, kept current by Rust.
const STATE = statePage()

// ---- the per-thread batch of outcomes: (breaker id, word, how, latencyMs, endMs) ----
const STRIDE = 5
const BATCH_CAP = 256
const batch = new Float64Array(BATCH_CAP * STRIDE)
let batchLen = 0
const REJECTED = 4 // `how` of a rejection decided here
// A quiet thread's last outcomes still reach Rust within FLUSH_AFTER_MS (other threads read
// the shared metrics): one unref'd timer, armed when a batch starts unless it already is, so it
// is armed at most once per FLUSH_AFTER_MS whatever the call rate.
const FLUSH_AFTER_MS = 20
let flushTimer = null
let flushArmed = false

function onFlushTimer() {
  flushArmed = false
  flush()
}

function flush() {
  if (batchLen !== 0) {
    const n = batchLen
    batchLen = 0
    flushBatch(batch, n)
  }
}

function armFlush() {
  flushArmed = true
  if (flushTimer === null) {
    flushTimer = setTimeout(onFlushTimer, FLUSH_AFTER_MS)
    flushTimer.unref()
  } else {
    flushTimer.refresh()
  }
}

/** Writes an entry after the last one; the caller counts it. */
function writeEntry(id, word, how, latencyMs, endMs) {
  const i = batchLen * STRIDE
  batch[i] = id
  batch[i + 1] = word
  batch[i + 2] = how
  batch[i + 3] = latencyMs
  batch[i + 4] = endMs
}

function pushOutcome(id, word, how, latencyMs, endMs) {
  writeEntry(id, word, how, latencyMs, endMs)
  if (++batchLen === BATCH_CAP) flush()
  else if (!flushArmed) armFlush()
}

/** Applies the batch with one more entry at its end, in one native call; returns the state
 * word that entry left its breaker in. */
function settleLast(id, word, how, latencyMs, endMs) {
  writeEntry(id, word, how, latencyMs, endMs)
  const n = batchLen + 1
  batchLen = 0
  return flushBatch(batch, n)
}

// ---- metrics: Rust writes numbers into one scratch array, JS builds the object ----
const FIELDS = metricsFields()
const EXPECTED_FIELDS = [
  'word',
  'totalRequests',
  'successfulRequests',
  'failedRequests',
  'rejectedRequests',
  'timedOutRequests',
  'slowRequests',
  'latencyP50Ms',
  'latencyP95Ms',
  'latencyP99Ms',
  'latencyMeanMs',
  'latencyMaxMs',
  'window.totalRequests',
  'window.successfulRequests',
  'window.failedRequests',
  'window.rejectedRequests',
  'window.timedOutRequests',
  'window.slowRequests',
  'window.latencyP50Ms',
  'window.latencyP95Ms',
  'window.latencyP99Ms',
  'window.latencyMeanMs',
  'window.latencyMaxMs',
  'window.windowMs',
  'consecutiveFailures',
  'openCount',
  'openedAt',
  'nextAttemptAt',
  'currentResetTimeoutMs',
  'halfOpenInFlight',
]
if (FIELDS.join() !== EXPECTED_FIELDS.join()) {
  throw new errors.BreakwaterError(
    errors.CODES.INTERNAL,
    'breakwater: the native metrics layout does not match this JS layer (mixed versions?)',
  )
}
const M = new Float64Array(FIELDS.length)
const nanToNull = (x) => (x !== x ? null : x)
const successRate = (ok, bad) => (ok + bad === 0 ? 100 : (ok / (ok + bad)) * 100)
const failureRate = (ok, bad) => (ok + bad === 0 ? 0 : bad / (ok + bad))

// Listener flags for the per-call events, kept up to date by the listener methods below, so the
// hot path tests a bit instead of counting listeners.
const HOT_EVENTS = { success: 1, failure: 2, reject: 4, fallback: 8, timeout: 16 }
function listeningBits(emitter) {
  let bits = 0
  for (const [event, bit] of Object.entries(HOT_EVENTS)) if (emitter.listenerCount(event) > 0) bits |= bit
  return bits
}

function checkName(name) {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw errors.invalidArgument('name', name, 'a non-empty string of at most 256 characters')
  }
}

/** A thenable that rejects whoever adopts it: a way to reject from a reaction without a throw. */
class Rejection {
  constructor(error) {
    this.error = error
  }

  then(_resolve, reject) {
    reject(this.error)
  }
}

function isThenable(x) {
  return x !== null && (typeof x === 'object' || typeof x === 'function') && typeof x.then === 'function'
}

let registryModule = null
const defaultRegistry = () => (registryModule ??= require('./registry')).globalRegistry

class CircuitBreaker extends EventEmitter {
  /**
   * @param {string} name
   * @param {object} [options] see index.d.ts for every option and its default
   */
  constructor(name, options) {
    super()
    checkName(name)
    if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
      throw errors.invalidConfig('circuit breaker options', 'options', options, 'an object')
    }
    const opts = options ?? {}
    const registry = opts.registry === undefined ? defaultRegistry() : opts.registry
    if (registry !== null) registry._checkFree(name)
    // Breakers of the global registry are process-wide: every thread that names one gets the
    // same native breaker (the first creator's options win).
    const shared = registry !== null && registry === defaultRegistry()
    const created = errors.native(() => breakerCreate(opts, process.env, shared ? name : null))
    const id = created.id
    const clock = opts.clock ?? systemClock
    if (typeof clock.now !== 'function' || typeof clock.setTimer !== 'function' || typeof clock.clearTimer !== 'function') {
      throw errors.invalidConfig(
        'circuit breaker options',
        'clock',
        clock,
        'a clock with now(), setTimer() and clearTimer() (a ManualClock)',
      )
    }
    const resolved = breakerOptions(id)
    this.name = name
    this._id = id
    this._s = created.slot * 2
    released.register(this, id)
    this._word = STATE[this._s]
    this._openUntil = NaN
    this._openReason = undefined
    this._clock = clock
    this._now = clock === systemClock ? systemNow : () => clock.now()
    this._timeoutMs = resolved.callTimeoutMs ?? 0
    this._slowMs = resolved.slowCallDurationMs ?? Infinity
    this._fallback = opts.fallback
    this._isFailure = opts.isFailure
    this._listening = 0
    this.registry = registry
    if (registry !== null) {
      registry._add(this)
      if (created.conflict != null) registry._conflict(this, created.conflict)
    }
  }

  get state() {
    return STATE_NAMES[STATE[this._s] & 7]
  }

  /**
   * Runs `fn(...args)` through the breaker. Resolves or rejects as `fn` does, or with the
   * fallback's result; rejects with ERR_CIRCUIT_OPEN when the circuit refuses the call.
   */
  call(fn) {
    // One function frame between the caller and `fn`: every extra frame costs about 300 ns
    // when `fn` creates an Error (V8 captures the stack). `arguments` instead of a rest
    // parameter keeps the no-argument call free of an array allocation.
    const args = arguments.length > 1 ? Array.prototype.slice.call(arguments, 1) : undefined
    if (typeof fn !== 'function') return Promise.reject(errors.invalidArgument('fn', fn, 'a function'))
    const w = STATE[this._s]
    if (w !== this._word) this._sync(w, this._now())
    const k = w & 7
    if ((k === CLOSED || k === DISABLED) && this._timeoutMs === 0) {
      // The hot path: no native call.
      const t0 = this._now()
      let pending
      try {
        pending = args === undefined ? fn() : fn(...args)
      } catch (err) {
        return this._settleSync(() => this._failed(err, w, 0, t0, FAILURE, args))
      }
      if (!(pending instanceof Promise)) {
        if (!isThenable(pending)) {
          const t1 = this._now()
          this._succeeded(w, 0, t1 - t0, t1)
          return Promise.resolve(pending)
        }
        pending = Promise.resolve(pending)
      }
      return pending.then(
        (result) => {
          const t1 = this._now()
          this._succeeded(w, 0, t1 - t0, t1)
          return result
        },
        (err) => this._failedQuietly(err, w, t0, args),
      )
    }
    if (k === OPEN) {
      // The rejection path of an outage: decided from the state page, no native call.
      const t = this._now()
      if (t < this._openUntil) {
        pushOutcome(this._id, w, REJECTED, 0, t)
        const err = this._announceReject(this._openUntil - t)
        if (this._fallback === undefined) return Promise.reject(err)
        return this._settleSync(() => this._useFallback('rejected', err, args))
      }
    }
    return this._slowCall(fn, args ?? [], undefined, false)
  }

  /** Runs `f` now and returns its outcome as a promise (a throw becomes a rejection). */
  _settleSync(f) {
    try {
      return Promise.resolve(f())
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Like `call`, but `fn` receives `{ signal }`, aborted when the call times out. */
  execute(fn) {
    return this._slowCall(fn, undefined, undefined, true)
  }

  /** A function that calls `fn` through the breaker, with the caller's `this` and arguments. */
  protect(fn) {
    if (typeof fn !== 'function') throw errors.invalidArgument('fn', fn, 'a function')
    const breaker = this
    return function protectedCall(...args) {
      return breaker._slowCall(fn, args, this, false)
    }
  }

  /**
   * Manual use: a permit, or null when the circuit refuses. Settle it with `success()` or
   * `failure(err)`; latency runs from this call.
   */
  tryAcquire() {
    const t0 = this._now()
    const p = this._acquire(t0)
    if (p < 0) {
      if ((this._listening & 4) !== 0)
        this.emit('reject', { name: this.name, state: this.state, retryAfterMs: p === -Infinity ? null : -p - 1 })
      return null
    }
    const w = p % TWO_32
    return new Permit(this, w, (p - w) / TWO_32, t0)
  }

  /**
   * @internal `tryAcquire()` for the Express middleware: a refusal returns the CircuitOpenError
   * (with its `retryAfterMs`, which a null would lose) instead of null.
   */
  _permitOrRejection() {
    const t0 = this._now()
    const p = this._acquire(t0)
    if (p < 0) return this._announceReject(p === -Infinity ? null : -p - 1)
    const w = p % TWO_32
    return new Permit(this, w, (p - w) / TWO_32, t0)
  }

  /** @returns a permit packed as `word + trial × 2^32`, or a negative rejection code. */
  _acquire(now) {
    const w = STATE[this._s]
    if (w !== this._word) this._sync(w, now)
    const k = w & 7
    if (k === CLOSED || k === DISABLED) return w
    if ((k === OPEN && now < this._openUntil) || k === FORCED_OPEN) {
      pushOutcome(this._id, w, REJECTED, 0, now)
      return k === FORCED_OPEN ? -Infinity : -1 - (this._openUntil - now)
    }
    flush()
    const p = breakerAcquire(this._id, now)
    this._sync(p < 0 ? STATE[this._s] : p % TWO_32, now)
    return p
  }

  async _slowCall(fn, args, thisArg, withSignal) {
    if (typeof fn !== 'function') throw errors.invalidArgument('fn', fn, 'a function')
    const t0 = this._now()
    const p = this._acquire(t0)
    if (p < 0) return this._rejected(p === -Infinity ? null : -p - 1, args)
    const w = p % TWO_32
    const trial = (p - w) / TWO_32
    let controller
    let pending
    try {
      if (withSignal) {
        controller = new AbortController()
        pending = fn({ signal: controller.signal })
      } else {
        pending = fn.apply(thisArg, args)
      }
    } catch (err) {
      return this._failed(err, w, trial, t0, FAILURE, args)
    }
    let result
    if (this._timeoutMs > 0) {
      const raced = await this._withTimeout(pending)
      if (raced.timedOut) {
        const err = errors.callTimeoutError(this.name, this._timeoutMs)
        if (controller !== undefined) controller.abort(err)
        return this._failed(err, w, trial, t0, TIMEOUT, args)
      }
      if (raced.failed) return this._failed(raced.error, w, trial, t0, FAILURE, args)
      result = raced.value
    } else {
      try {
        result = await pending
      } catch (err) {
        return this._failed(err, w, trial, t0, FAILURE, args)
      }
    }
    const t1 = this._now()
    this._succeeded(w, trial, t1 - t0, t1)
    return result
  }

  /** Settles `pending` or times out on the breaker's clock; a late result is dropped. */
  _withTimeout(pending) {
    return new Promise((resolve) => {
      const clock = this._clock
      const timer = clock.setTimer(() => resolve({ timedOut: true }), this._timeoutMs)
      Promise.resolve(pending).then(
        (value) => {
          clock.clearTimer(timer)
          resolve({ value })
        },
        (error) => {
          clock.clearTimer(timer)
          resolve({ failed: true, error })
        },
      )
    })
  }

  _succeeded(w, trial, latencyMs, t1) {
    if (trial === 0 && latencyMs < this._slowMs) {
      pushOutcome(this._id, w, SUCCESS, latencyMs, t1)
      if ((this._listening & 1) !== 0) this.emit('success', { name: this.name, latencyMs })
      return
    }
    // Trials and slow calls may change the state: settle now; the outcome event comes first.
    flush()
    const word = breakerSettle(this._id, w, trial, SUCCESS, latencyMs, t1)
    if ((this._listening & 1) !== 0) this.emit('success', { name: this.name, latencyMs })
    this._sync(word, t1)
  }

  /**
   * `_failed` for a promise reaction: instead of throwing (about 250 ns more in a reaction), it
   * returns a thenable that rejects the derived promise with the same error.
   */
  _failedQuietly(err, w, t0, args) {
    if (!this._recordFailure(err, w, 0, t0, FAILURE) || this._fallback === undefined) return new Rejection(err)
    return this._useFallback('failure', err, args)
  }

  /** A call that threw, rejected or timed out: recorded, then the fallback or the error. */
  _failed(err, w, trial, t0, how, args) {
    if (!this._recordFailure(err, w, trial, t0, how)) throw err
    if (this._fallback !== undefined) return this._useFallback(how === TIMEOUT ? 'timeout' : 'failure', err, args)
    throw err
  }

  /** Counts a failure unless `isFailure` says otherwise; @returns whether it counted. */
  _recordFailure(err, w, trial, t0, how) {
    const t1 = this._now()
    const latencyMs = t1 - t0
    let counts = true
    if (how === FAILURE && this._isFailure !== undefined) {
      try {
        counts = Boolean(this._isFailure(err))
      } catch {
        counts = true // a broken classifier must not hide failures
      }
    }
    if (!counts && trial === 0) return false // an ignored error outside half-open changes nothing
    let word
    if (trial === 0) {
      word = settleLast(this._id, w, counts ? how : IGNORED, latencyMs, t1)
    } else {
      flush()
      word = breakerSettle(this._id, w, trial, counts ? how : IGNORED, latencyMs, t1)
    }
    if (counts) {
      if (how === TIMEOUT) {
        if ((this._listening & 16) !== 0) this.emit('timeout', { name: this.name, timeoutMs: this._timeoutMs, error: err })
      } else if ((this._listening & 2) !== 0) {
        this.emit('failure', { name: this.name, error: err, latencyMs })
      }
    }
    this._sync(word, t1)
    return counts
  }

  _rejected(retryAfterMs, args) {
    const err = this._announceReject(retryAfterMs)
    if (this._fallback !== undefined) return this._useFallback('rejected', err, args)
    throw err
  }

  _announceReject(retryAfterMs) {
    const err = errors.circuitOpenError(this.name, this.state, retryAfterMs)
    if ((this._listening & 4) !== 0) this.emit('reject', { name: this.name, state: this.state, retryAfterMs })
    return err
  }

  _useFallback(reason, err, args) {
    if ((this._listening & 8) !== 0) this.emit('fallback', { name: this.name, reason, error: err })
    return args === undefined ? this._fallback(err) : this._fallback(err, ...args)
  }

  /** Adopts a state word returned by Rust; a changed state becomes events, after the lock. */
  _sync(word, now) {
    if (word === this._word) return
    const from = this._word & 7
    const to = word & 7
    this._word = word
    this._openUntil = to === OPEN ? STATE[this._s + 1] : NaN
    if (from === CLOSED && to === CLOSED) return // a reset from closed: a new epoch, no event
    const event = {
      name: this.name,
      from: STATE_NAMES[from],
      to: STATE_NAMES[to],
      cause: breakerLastCause(this._id),
      at: now,
    }
    if (to === OPEN) {
      event.nextAttemptAt = this._openUntil
      if (event.cause === 'open_for') event.reason = this._openReason
    }
    this.emit('stateChange', event)
    this.emit(STATE_EVENTS[to], event)
  }

  _control(op) {
    flush()
    const now = this._now()
    this._sync(
      errors.native(() => op(now)),
      now,
    )
    return this
  }

  /** Opens for exactly `ms` (a provider's Retry-After, say). */
  openFor(ms, reason) {
    if (typeof ms !== 'number') throw errors.invalidArgument('ms', ms, 'a number of milliseconds greater than 0')
    this._openReason = reason === undefined ? undefined : String(reason)
    return this._control((now) => breakerOpenFor(this._id, ms, now))
  }

  /** Rejects every call until `reset()`. */
  forceOpen() {
    return this._control((now) => breakerControl(this._id, FORCE_OPEN_OP, now))
  }

  /** Lets every call through (still measured) until `reset()`. */
  disable() {
    return this._control((now) => breakerControl(this._id, DISABLE_OP, now))
  }

  /** Back to closed, with the window, backoff and statistics cleared. */
  reset() {
    return this._control((now) => breakerControl(this._id, RESET_OP, now))
  }

  /** Moves an open circuit to half-open now (a passing health check). */
  probeEarly() {
    return this._control((now) => breakerControl(this._id, PROBE_EARLY_OP, now))
  }

  getMetrics() {
    flush()
    const now = this._now()
    breakerMetrics(this._id, now, M)
    if (M[0] !== this._word) this._sync(M[0], now)
    return {
      name: this.name,
      state: STATE_NAMES[M[0] & 7],
      totalRequests: M[1],
      successfulRequests: M[2],
      failedRequests: M[3],
      rejectedRequests: M[4],
      timedOutRequests: M[5],
      slowRequests: M[6],
      successRate: successRate(M[2], M[3]),
      failureRate: failureRate(M[2], M[3]),
      latencyP50Ms: M[7],
      latencyP95Ms: M[8],
      latencyP99Ms: M[9],
      latencyMeanMs: M[10],
      latencyMaxMs: M[11],
      window: {
        windowMs: M[23],
        totalRequests: M[12],
        successfulRequests: M[13],
        failedRequests: M[14],
        rejectedRequests: M[15],
        timedOutRequests: M[16],
        slowRequests: M[17],
        successRate: successRate(M[13], M[14]),
        failureRate: failureRate(M[13], M[14]),
        latencyP50Ms: M[18],
        latencyP95Ms: M[19],
        latencyP99Ms: M[20],
        latencyMeanMs: M[21],
        latencyMaxMs: M[22],
      },
      consecutiveFailures: M[24],
      openCount: M[25],
      openedAt: nanToNull(M[26]),
      nextAttemptAt: nanToNull(M[27]),
      currentResetTimeoutMs: M[28],
      halfOpenInFlight: M[29],
    }
  }
}

// Every way of adding or removing a listener refreshes the hot-path bits.
for (const method of [
  'on',
  'addListener',
  'prependListener',
  'once',
  'prependOnceListener',
  'off',
  'removeListener',
  'removeAllListeners',
]) {
  const base = EventEmitter.prototype[method]
  Object.defineProperty(CircuitBreaker.prototype, method, {
    value: function (...args) {
      const result = base.apply(this, args)
      this._listening = listeningBits(this)
      return result
    },
    writable: true,
    configurable: true,
  })
}

class Permit {
  constructor(breaker, word, trial, t0) {
    this._breaker = breaker
    this._word = word
    this._trial = trial
    this._t0 = t0
    this._settled = false
  }

  /** @returns false if the permit was already settled */
  success() {
    if (this._settled) return false
    this._settled = true
    const b = this._breaker
    const t1 = b._now()
    b._succeeded(this._word, this._trial, t1 - this._t0, t1)
    return true
  }

  /** Records a failure (subject to `isFailure`); never runs the fallback. @returns false if already settled */
  failure(err) {
    if (this._settled) return false
    this._settled = true
    this._breaker._recordFailure(err, this._word, this._trial, this._t0, FAILURE)
    return true
  }

  /**
   * Settles without counting either way (the caller went away before the outcome was known),
   * freeing a half-open trial slot at once. @returns false if already settled
   */
  ignore() {
    if (this._settled) return false
    this._settled = true
    // A permit of the closed or disabled state holds nothing in Rust: no native call needed.
    if (this._trial === 0) return true
    const b = this._breaker
    flush()
    const t1 = b._now()
    b._sync(breakerSettle(b._id, this._word, this._trial, IGNORED, t1 - this._t0, t1), t1)
    return true
  }
}

module.exports = { CircuitBreaker, Permit, STATE_NAMES, flushOutcomes: flush }
