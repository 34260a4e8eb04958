'use strict'
// The HealthMonitor facade. Rust keeps each service's history, status and alert decisions and
// decides which checks are due; this layer runs the user's checks (user code always runs in
// JS), enforces their timeouts, calls the alert handlers, emits events, links services to
// breakers, and drives the schedule.
//
// Real-time scheduling: one shared unref'd timer per monitor, armed for the next due time that
// the core reports; wake-ups within 25 ms are merged (src/core/health/scheduler.rs), so a
// monitor wakes at most 40 times a second however many services it has. The alternative, a
// tokio task deciding in Rust, has to call into JS for every check (checks are JS functions),
// through a ThreadsafeFunction. Measured here (Node 20, a loaded 2-core VM), a TSFN delivery
// from a native thread costs 30 to 160 µs of process CPU, the same as a timer wake-up (25 to
// 105 µs): both are one event-loop wake-up. So the cost is the number of wake-ups: one TSFN
// call per check means 1 000 wake-ups a second for 1 000 services at 1 s (about 3 % of a core
// here), against at most 40 with the merged timer (bench/health.mjs: about 2 to 3 % in all,
// checks included). A tokio driver could batch too, but it would add a thread, a second time
// source that a ManualClock cannot drive, and TSFN lifetimes to keep the process free to exit.
// The timer gives the batching on the monitor's injected clock for free. So: one shared timer.

const { EventEmitter } = require('node:events')
const nativeBinding = require('./native')
const { systemClock, systemNow } = require('./clock')
const errors = require('./errors')
const { globalRegistry } = require('./registry')

const { NativeHealthMonitor, healthFields, healthCheckEnabled, healthStatusNames, healthAlertTypes } = nativeBinding

const FIELDS = healthFields()
const EXPECTED_FIELDS = [
  'id',
  'status',
  'errorRate',
  'uptime',
  'latencyP50Ms',
  'latencyP95Ms',
  'latencyP99Ms',
  'lastCheck',
  'consecutiveFailures',
  'totalChecks',
  'failedChecks',
  'nextCheckAt',
  'registeredAt',
  'inFlight',
]
if (FIELDS.join() !== EXPECTED_FIELDS.join()) {
  throw new errors.BreakwaterError(
    errors.CODES.INTERNAL,
    'breakwater: the native health layout does not match this JS layer (mixed versions?)',
  )
}
const STRIDE = FIELDS.length
/** The summary header that precedes the records: status and the five counts. */
const SUMMARY_HEAD = 6
const STATUS = healthStatusNames()
const ALERT_TYPES = healthAlertTypes()
const LEVELS = [null, 'warning', 'critical']
const NOT_COUNTED = 0xffffffff
const H = new Float64Array(STRIDE)
let summaryBuf = new Float64Array(SUMMARY_HEAD + 64 * STRIDE)

const nanToNull = (x) => (x !== x ? null : x)

function isThenable(x) {
  return x !== null && (typeof x === 'object' || typeof x === 'function') && typeof x.then === 'function'
}

/** Timers of the monitor never keep the process alive (a ManualClock's handles have no unref). */
function unref(handle) {
  if (handle !== null && typeof handle === 'object' && typeof handle.unref === 'function') handle.unref()
}

function messageOf(err) {
  if (err !== null && typeof err === 'object' && typeof err.message === 'string' && err.message !== '') return err.message
  try {
    return String(err)
  } catch {
    return 'the check threw a value that cannot be shown'
  }
}

/** A check's value as `[ok, error message or null, details]`. */
function interpret(value) {
  if (value === true) return [true, null, undefined]
  if (value === false) return [false, 'check returned false', undefined]
  if (value !== null && typeof value === 'object' && typeof value.ok === 'boolean') {
    const d = value.details
    if (value.ok) return [true, null, d]
    const why =
      d !== null && typeof d === 'object' && (typeof d.error === 'string' ? d.error : typeof d.message === 'string' ? d.message : null)
    return [false, why || 'check returned { ok: false }', d]
  }
  return [false, `check returned ${errors.describe(value)} (expected a boolean or { ok: boolean, details? })`, undefined]
}

function checkName(name) {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw errors.invalidArgument('name', name, 'a non-empty string of at most 256 characters')
  }
}

function checkOptionsObject(context, options) {
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw errors.invalidConfig(context, 'options', options, 'an object')
  }
  return options ?? {}
}

const pct = (x) => `${(x * 100).toFixed(1)}%`
const ms = (x) => `${Math.round(x)} ms`

function duration(msTotal) {
  const s = Math.round(msTotal / 1000)
  if (s < 120) return `${s} s`
  const m = Math.round(s / 60)
  return m < 120 ? `${m} min` : `${Math.round(m / 60)} h`
}

class HealthMonitor extends EventEmitter {
  #native
  #clock
  #now
  #registry
  /** name → service record; insertion order is registration order. */
  #services = new Map()
  #byId = new Map()
  #handlers = []
  #running = false
  #timer = null
  #timerAt = NaN

  /**
   * @param {object} [options] `{ clock, registry }`: see index.d.ts
   */
  constructor(options) {
    super()
    const opts = checkOptionsObject('health monitor options', options)
    this.#native = errors.native(() => new NativeHealthMonitor(opts))
    const clock = opts.clock ?? systemClock
    if (typeof clock.now !== 'function' || typeof clock.setTimer !== 'function' || typeof clock.clearTimer !== 'function') {
      throw errors.invalidConfig(
        'health monitor options',
        'clock',
        clock,
        'a clock with now(), setTimer() and clearTimer() (a ManualClock)',
      )
    }
    const registry = opts.registry === undefined ? globalRegistry : opts.registry
    if (registry !== null && typeof registry.get !== 'function') {
      throw errors.invalidConfig('health monitor options', 'registry', registry, 'a CircuitBreakerRegistry or null')
    }
    this.#clock = clock
    this.#now = clock === systemClock ? systemNow : () => clock.now()
    this.#registry = registry
  }

  /** Whether `start()` is driving the schedule. */
  get running() {
    return this.#running
  }

  /**
   * Adds a service and its check. The check returns (or resolves to) a boolean or
   * `{ ok, details? }`; a throw or rejection is a failed check. It receives `{ signal }`,
   * aborted when the check times out.
   */
  registerService(name, check, options) {
    checkName(name)
    if (this.#services.has(name)) {
      throw errors.invalidArgument('name', name, 'the name of a service not registered yet (unregisterService() it first)')
    }
    if (typeof check !== 'function') {
      throw errors.invalidArgument('check', check, 'a function returning a boolean or { ok, details? }, or a promise of one')
    }
    const opts = checkOptionsObject('health check options', options)
    if (opts.breaker === '') throw errors.invalidConfig('health check options', 'breaker', '', 'the name of a circuit breaker')
    const id = errors.native(() => this.#native.register(opts, process.env, this.#now()))
    const resolved = this.#native.options(id)
    const svc = {
      name,
      id,
      check,
      timeoutMs: resolved.checkTimeoutMs,
      options: resolved,
      breaker: opts.breaker,
      breakerMissing: false,
      /** The check in flight (counted), or null. */
      current: null,
      /** An invocation that timed out and has not settled yet, or null. */
      hung: null,
      lastError: null,
      /** When the service became unhealthy, until it is healthy again. */
      troubleSince: null,
      removed: false,
      final: undefined,
    }
    this.#services.set(name, svc)
    this.#byId.set(id, svc)
    this.#arm()
    return this
  }

  /** Removes a service; a check in flight is abandoned (its result is ignored). */
  unregisterService(name) {
    const svc = this.#services.get(name)
    if (svc === undefined) return false
    svc.final = this.#health(svc, this.#now())
    svc.removed = true
    this.#native.unregister(svc.id)
    this.#services.delete(name)
    this.#byId.delete(svc.id)
    const run = svc.current
    if (run !== null) {
      this.#clearRunTimer(run)
      run.done = true
      svc.current = null
      run.settle(svc.final)
    }
    return true
  }

  /** The names of the registered services, in registration order. */
  getServiceNames() {
    return [...this.#services.keys()]
  }

  /**
   * Runs one check of `name` now and resolves to its health afterwards. If a check of the
   * service is already running, resolves with that one instead of starting another.
   */
  checkServiceHealth(name) {
    const svc = this.#services.get(name)
    if (svc === undefined) return Promise.reject(errors.invalidArgument('name', name, 'the name of a registered service'))
    if (svc.current !== null) return svc.current.promise
    const token = this.#native.begin(svc.id)
    if (token === 0) return Promise.resolve(this.#health(svc, this.#now()))
    return this.#run(svc, token).promise
  }

  /**
   * Runs the checks that are due now on the monitor's clock, and resolves to their services'
   * health once they have all finished. With a ManualClock, tests advance the clock and call
   * this instead of waiting.
   */
  runDueChecks() {
    const runs = this.#runDue()
    this.#arm()
    return Promise.all(runs.map((r) => r.promise))
  }

  /** The health of `name`, or undefined if it is not registered. */
  getServiceHealth(name) {
    const svc = this.#services.get(name)
    return svc === undefined ? undefined : this.#health(svc, this.#now())
  }

  /** Every service's health, and the overall status. */
  getHealthSummary() {
    const need = SUMMARY_HEAD + this.#services.size * STRIDE
    if (summaryBuf.length < need) summaryBuf = new Float64Array(need * 2)
    const buf = summaryBuf
    const n = this.#native.summary(this.#now(), buf)
    const services = {}
    for (let i = 0; i < n; i++) {
      const o = SUMMARY_HEAD + i * STRIDE
      const svc = this.#byId.get(buf[o])
      if (svc === undefined) continue
      const h = healthFrom(svc, buf, o)
      if (svc.name === '__proto__')
        Object.defineProperty(services, svc.name, { value: h, enumerable: true, writable: true, configurable: true })
      else services[svc.name] = h
    }
    return {
      status: STATUS[buf[0]],
      totalServices: buf[1],
      healthyServices: buf[2],
      degradedServices: buf[3],
      unhealthyServices: buf[4],
      unknownServices: buf[5],
      services,
    }
  }

  /**
   * Adds an alert handler `(service, alertType, details) => void | Promise<void>`. A handler
   * that throws or rejects emits `error`; monitoring and the other handlers go on.
   * @returns a function that removes the handler
   */
  registerAlertHandler(handler) {
    if (typeof handler !== 'function') throw errors.invalidArgument('handler', handler, 'a function (service, alertType, details) => void')
    this.#handlers.push(handler)
    return () => {
      const i = this.#handlers.indexOf(handler)
      if (i !== -1) this.#handlers.splice(i, 1)
    }
  }

  /**
   * Drives the schedule in real time (on the monitor's clock) with one unref'd timer, so a
   * running monitor never keeps the process alive. With HEALTH_CHECK_ENABLED=false, a logged
   * no-op.
   */
  async start() {
    if (this.#running) return
    if (!errors.native(() => healthCheckEnabled(process.env))) {
      console.warn('breakwater: HEALTH_CHECK_ENABLED is false, so the health monitor was not started')
      return
    }
    this.#running = true
    this.#native.restartSchedule(this.#now())
    this.#arm()
  }

  /** Stops the schedule; resolves once the checks in flight have finished (or timed out). */
  async stop() {
    this.#running = false
    this.#disarm()
    const inFlight = []
    for (const svc of this.#services.values()) if (svc.current !== null) inFlight.push(svc.current.promise)
    await Promise.all(inFlight)
  }

  // ---- scheduling ----

  #arm() {
    if (!this.#running) return
    const wake = this.#native.nextWake()
    if (wake !== wake) return this.#disarm() // no services
    if (this.#timer !== null) {
      if (this.#timerAt <= wake) return // fires first; the tick re-arms
      this.#clock.clearTimer(this.#timer)
    }
    // Whole milliseconds up: a timer must not fire before the check is due.
    const delay = Math.max(0, Math.ceil(wake - this.#now()))
    this.#timerAt = wake
    this.#timer = this.#clock.setTimer(this.#onTimer, delay)
    unref(this.#timer)
  }

  #disarm() {
    if (this.#timer !== null) {
      this.#clock.clearTimer(this.#timer)
      this.#timer = null
      this.#timerAt = NaN
    }
  }

  #onTimer = () => {
    this.#timer = null
    this.#timerAt = NaN
    if (!this.#running) return
    this.#runDue()
    this.#arm()
  }

  #runDue() {
    const due = this.#native.takeDue(this.#now())
    const runs = []
    for (let i = 0; i < due.length; i += 2) {
      const svc = this.#byId.get(due[i])
      if (svc !== undefined) runs.push(this.#run(svc, due[i + 1]))
    }
    return runs
  }

  // ---- running one check ----

  /** Starts the check that the core admitted with `token`. */
  #run(svc, token) {
    const t0 = this.#now()
    const run = { token, t0, timer: null, done: false, settled: false, controller: null, promise: null, settle: null }
    run.promise = new Promise((resolve) => {
      run.settle = resolve
    })
    svc.current = run
    if (svc.hung !== null) {
      // The last invocation timed out and is still running: calling the check again would
      // pile up hung requests against the upstream. This slot fails without a call.
      const since = svc.hung.t0
      this.#complete(
        svc,
        run,
        false,
        t0 - since,
        `the previous check has not settled after ${ms(t0 - since)}; not started again`,
        undefined,
        true,
      )
      return run
    }
    run.controller = new AbortController()
    let value
    try {
      value = svc.check({ signal: run.controller.signal })
    } catch (err) {
      run.settled = true
      this.#complete(svc, run, false, this.#now() - t0, messageOf(err), undefined, false)
      return run
    }
    if (!isThenable(value)) {
      run.settled = true
      const [ok, error, details] = interpret(value)
      this.#complete(svc, run, ok, this.#now() - t0, error, details, false)
      return run
    }
    if (!run.done) {
      run.timer = this.#clock.setTimer(() => this.#timedOut(svc, run), svc.timeoutMs)
      unref(run.timer)
    }
    Promise.resolve(value).then(
      (v) => {
        this.#settled(svc, run)
        const [ok, error, details] = interpret(v)
        this.#complete(svc, run, ok, this.#now() - t0, error, details, false)
      },
      (err) => {
        this.#settled(svc, run)
        this.#complete(svc, run, false, this.#now() - t0, messageOf(err), undefined, false)
      },
    )
    return run
  }

  /** The user's promise settled (in time or late). */
  #settled(svc, run) {
    run.settled = true
    if (svc.hung === run) svc.hung = null
  }

  #timedOut(svc, run) {
    run.timer = null
    if (run.done) return
    if (!run.settled) svc.hung = run
    const err = `check timed out after ${ms(svc.timeoutMs)}`
    run.controller?.abort(
      new errors.BreakwaterError(errors.CODES.CALL_TIMEOUT, `Health check of "${svc.name}" timed out after ${svc.timeoutMs} ms`),
    )
    this.#complete(svc, run, false, this.#now() - run.t0, err, undefined, true)
  }

  #clearRunTimer(run) {
    if (run.timer !== null) {
      this.#clock.clearTimer(run.timer)
      run.timer = null
    }
  }

  /** Records a check's result (once: a late result after a timeout is ignored here). */
  #complete(svc, run, ok, latencyMs, error, details, timedOut) {
    if (run.done) return
    run.done = true
    this.#clearRunTimer(run)
    svc.current = null
    if (svc.removed) return run.settle(svc.final)
    const now = this.#now()
    const effect = this.#native.finish(svc.id, run.token, ok, latencyMs, now)
    if (!ok) svc.lastError = error
    let health
    const getHealth = () => (health ??= this.#health(svc, now))
    if (effect !== NOT_COUNTED) this.#announce(svc, effect, { ok, latencyMs, error, details, timedOut }, now, getHealth)
    run.settle(getHealth())
  }

  /** Events, the breaker link and alerts for one counted check, in that order. */
  #announce(svc, effect, result, now, getHealth) {
    const status = STATUS[effect & 3]
    const previous = STATUS[(effect >> 2) & 3]
    if (this.listenerCount('check') > 0) {
      this.#emitSafely('check', svc.name, {
        name: svc.name,
        ok: result.ok,
        latencyMs: result.latencyMs,
        error: result.ok ? null : result.error,
        details: result.details,
        timedOut: result.timedOut,
        health: getHealth(),
      })
    }
    if (status !== previous) {
      if (status === 'unhealthy' && svc.troubleSince === null) svc.troubleSince = now
      this.#emitSafely('statusChange', svc.name, { name: svc.name, from: previous, to: status, at: now, health: getHealth() })
    }
    if (svc.breaker !== undefined) this.#linkBreaker(svc, result.ok, status === 'unhealthy' && previous !== 'unhealthy')
    const alerts = (effect >> 4) & 31
    if (alerts !== 0) {
      const ctx = {
        status,
        previous,
        errorRateLevel: LEVELS[(effect >> 9) & 3],
        latencyLevel: LEVELS[(effect >> 11) & 3],
        result,
        now,
      }
      for (let bit = 0; bit < ALERT_TYPES.length; bit++) {
        if ((alerts & (1 << bit)) !== 0) this.#alert(svc, ALERT_TYPES[bit], ctx, getHealth())
      }
    }
    if (status === 'healthy') svc.troubleSince = null
  }

  /**
   * The link to a breaker: a service that turns unhealthy opens its closed or half-open
   * breaker for the breaker's current reset timeout (`openFor`, so the breaker recovers through
   * half-open as usual, and an operator's forced_open or disabled is left alone); a check that
   * passes while the breaker is open moves it to half-open at once (`probeEarly`), unless that
   * same check turned the service unhealthy.
   */
  #linkBreaker(svc, ok, turnedUnhealthy) {
    if (!ok && !turnedUnhealthy) return
    const registry = this.#registry
    const breaker = registry === null ? undefined : registry.get(svc.breaker)
    if (breaker === undefined) {
      if (!svc.breakerMissing) {
        svc.breakerMissing = true
        const where = registry === null ? 'the monitor has no registry' : 'no breaker by that name is in the registry'
        const err = new errors.BreakwaterError(
          errors.CODES.UNKNOWN_BREAKER,
          `Service "${svc.name}" is linked to circuit breaker "${svc.breaker}", but ${where}`,
          { breaker: svc.breaker },
        )
        this.#reportError(err, { source: 'breaker', name: svc.name })
      }
      return
    }
    svc.breakerMissing = false
    try {
      const state = breaker.state
      if (turnedUnhealthy) {
        if (state === 'closed' || state === 'half_open') {
          breaker.openFor(breaker.getMetrics().currentResetTimeoutMs, `health check: ${svc.name} is unhealthy`)
        }
      } else if (state === 'open') {
        breaker.probeEarly()
      }
    } catch (err) {
      // A throwing listener of the breaker's own events.
      this.#reportError(err, { source: 'breaker', name: svc.name })
    }
  }

  // ---- alerts and events ----

  #alert(svc, alertType, ctx, health) {
    const details = alertDetails(svc, alertType, ctx, health)
    this.#emitSafely('alert', svc.name, { name: svc.name, alertType, details })
    for (const handler of [...this.#handlers]) {
      let r
      try {
        r = handler(svc.name, alertType, details)
      } catch (err) {
        this.#reportError(err, { source: 'alertHandler', name: svc.name, alertType })
        continue
      }
      if (isThenable(r)) {
        Promise.resolve(r).then(undefined, (err) => this.#reportError(err, { source: 'alertHandler', name: svc.name, alertType }))
      }
    }
  }

  #emitSafely(event, name, payload) {
    try {
      this.emit(event, payload)
    } catch (err) {
      this.#reportError(err, { source: 'listener', name, event })
    }
  }

  /** `error` with a context, or a process warning when nobody listens (never a throw). */
  #reportError(err, context) {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err, context)
        return
      } catch (listenerErr) {
        err = listenerErr
      }
    }
    const who = context.name === undefined ? '' : ` (service ${JSON.stringify(context.name)})`
    process.emitWarning(`health monitor ${context.source} failed${who}: ${messageOf(err)}`, 'BreakwaterWarning')
  }

  #health(svc, now) {
    if (!this.#native.health(svc.id, now, H)) return svc.final
    return healthFrom(svc, H, 0)
  }
}

function healthFrom(svc, buf, o) {
  return {
    name: svc.name,
    status: STATUS[buf[o + 1]],
    errorRate: buf[o + 2],
    uptime: buf[o + 3],
    latencyP50Ms: buf[o + 4],
    latencyP95Ms: buf[o + 5],
    latencyP99Ms: buf[o + 6],
    lastCheck: nanToNull(buf[o + 7]),
    lastError: svc.lastError,
    consecutiveFailures: buf[o + 8],
    totalChecks: buf[o + 9],
    failedChecks: buf[o + 10],
    nextCheckAt: buf[o + 11],
  }
}

/** Why a status is what it is, for messages. */
function reasons(svc, ctx, h) {
  const o = svc.options
  const out = []
  if (ctx.errorRateLevel !== null) {
    out.push(`error rate ${pct(h.errorRate)} ≥ ${pct(ctx.errorRateLevel === 'critical' ? o.errorRateCritical : o.errorRateWarning)}`)
  }
  if (ctx.latencyLevel !== null) {
    out.push(`p95 latency ${ms(h.latencyP95Ms)} ≥ ${ms(ctx.latencyLevel === 'critical' ? o.latencyCriticalMs : o.latencyWarningMs)}`)
  }
  if (h.consecutiveFailures >= 3) out.push(`the last ${h.consecutiveFailures} checks failed`)
  return out.length === 0 ? '' : `: ${out.join(', ')}`
}

function alertDetails(svc, alertType, ctx, health) {
  const o = svc.options
  const base = { status: ctx.status, previousStatus: ctx.previous, at: ctx.now, health }
  switch (alertType) {
    case 'status_change':
      return { ...base, message: `${svc.name} is ${ctx.status} (was ${ctx.previous})${reasons(svc, ctx, health)}` }
    case 'recovered': {
      const downtimeMs = svc.troubleSince === null ? 0 : ctx.now - svc.troubleSince
      return { ...base, downtimeMs, message: `${svc.name} has recovered: healthy again after ${duration(downtimeMs)}` }
    }
    case 'check_failed':
      return {
        ...base,
        error: ctx.result.error,
        checkDetails: ctx.result.details,
        timedOut: ctx.result.timedOut,
        consecutiveFailures: health.consecutiveFailures,
        message: `Health check of ${svc.name} failed: ${ctx.result.error}`,
      }
    case 'high_error_rate': {
      const threshold = ctx.errorRateLevel === 'critical' ? o.errorRateCritical : o.errorRateWarning
      return {
        ...base,
        level: ctx.errorRateLevel,
        value: health.errorRate,
        threshold,
        message: `${svc.name} error rate is ${pct(health.errorRate)} (${ctx.errorRateLevel} threshold ${pct(threshold)})`,
      }
    }
    case 'high_latency': {
      const threshold = ctx.latencyLevel === 'critical' ? o.latencyCriticalMs : o.latencyWarningMs
      return {
        ...base,
        level: ctx.latencyLevel,
        value: health.latencyP95Ms,
        threshold,
        message: `${svc.name} p95 latency is ${ms(health.latencyP95Ms)} (${ctx.latencyLevel} threshold ${ms(threshold)})`,
      }
    }
    default:
      return { ...base, message: `${svc.name}: ${alertType}` }
  }
}

const globalMonitor = new HealthMonitor()

module.exports = { HealthMonitor, globalMonitor }
