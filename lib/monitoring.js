'use strict'
// The JSON views behind the monitoring routes (snake_case, the seed's shapes) and the reading of
// a health monitor's summary, shared by the Express routes and the Prometheus exposition.

const errors = require('./errors')

const SERVICE_STATUSES = ['healthy', 'degraded', 'unhealthy', 'unknown']

/**
 * The registry, health monitor and fallback metrics source the routes read. Without a `monitor`
 * option the package's `globalMonitor` is used once it exists (the health monitor may be absent).
 */
function resolveSources(options) {
  const registry = options.registry ?? require('./registry').globalRegistry
  if (registry === null || typeof registry !== 'object' || typeof registry.list !== 'function') {
    throw errors.invalidConfig('monitoring options', 'registry', registry, 'a CircuitBreakerRegistry')
  }
  const monitor = options.monitor
  if (monitor !== undefined && monitor !== null && typeof monitor.getHealthSummary !== 'function') {
    throw errors.invalidConfig('monitoring options', 'monitor', monitor, 'an object with getHealthSummary(), or null for none')
  }
  const fallback = options.fallback
  if (fallback !== undefined && fallback !== null && typeof fallback.getMetrics !== 'function') {
    throw errors.invalidConfig('monitoring options', 'fallback', fallback, 'an object with getMetrics(), or null for none')
  }
  return {
    registry,
    // `null` means "no monitor"; `undefined` means "the global one, if the package has it".
    getMonitor: monitor === undefined ? globalMonitor : () => monitor,
    fallback: fallback ?? null,
  }
}

function globalMonitor() {
  const m = require('../index.js').globalMonitor
  return m !== undefined && m !== null && typeof m.getHealthSummary === 'function' ? m : null
}

const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null)
const count = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : 0)

/** A clock time (ms), a Date or an ISO string as Unix seconds (the seed's `last_check`). */
function unixSeconds(t) {
  if (t instanceof Date) t = t.getTime()
  else if (typeof t === 'string') t = Date.parse(t)
  return typeof t === 'number' && Number.isFinite(t) ? t / 1000 : null
}

/** An error as a message only: no stack trace ever leaves the process. */
function errorText(e) {
  if (e === undefined || e === null) return null
  if (typeof e === 'string') return e
  if (typeof e === 'object' && typeof e.message === 'string') return e.message
  return String(e)
}

/** One service of a health summary, whatever its exact field names' presence. */
function serviceOf(name, s) {
  const status = SERVICE_STATUSES.includes(s.status) ? s.status : 'unknown'
  return {
    name: String(s.name ?? name),
    status,
    errorRate: num(s.errorRate),
    uptime: num(s.uptime),
    latencyP50Ms: num(s.latencyP50Ms),
    latencyP95Ms: num(s.latencyP95Ms),
    latencyP99Ms: num(s.latencyP99Ms),
    lastCheck: s.lastCheck ?? null,
    lastError: errorText(s.lastError),
    consecutiveFailures: num(s.consecutiveFailures),
    totalChecks: num(s.totalChecks),
    failedChecks: num(s.failedChecks),
  }
}

/**
 * The monitor's summary, normalised: `services` as an array (the monitor may give an object keyed
 * by name or an array), the counts recomputed when absent. No monitor: no services.
 */
function readHealth(getMonitor) {
  const monitor = getMonitor()
  if (monitor === null) return { status: 'unknown', services: [] }
  const summary = monitor.getHealthSummary() ?? {}
  const raw = summary.services ?? []
  const entries = Array.isArray(raw) ? raw.map((s) => [s && s.name, s]) : Object.entries(raw)
  const services = entries.filter(([, s]) => s !== null && typeof s === 'object').map(([name, s]) => serviceOf(name, s))
  const status = SERVICE_STATUSES.includes(summary.status) ? summary.status : 'unknown'
  return { status, services }
}

function countServices(services) {
  const c = { healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 }
  for (const s of services) c[s.status]++
  return c
}

function periodView(p) {
  return {
    total_requests: p.totalRequests,
    successful_requests: p.successfulRequests,
    failed_requests: p.failedRequests,
    rejected_requests: p.rejectedRequests,
    timed_out_requests: p.timedOutRequests,
    slow_requests: p.slowRequests,
    success_rate: p.successRate,
    failure_rate: p.failureRate,
    latency_p50_ms: p.latencyP50Ms,
    latency_p95_ms: p.latencyP95Ms,
    latency_p99_ms: p.latencyP99Ms,
    latency_mean_ms: p.latencyMeanMs,
    latency_max_ms: p.latencyMaxMs,
  }
}

/** One breaker for `GET /metrics`. */
function breakerView(breaker) {
  const m = breaker.getMetrics()
  const now = typeof breaker._now === 'function' ? breaker._now() : Date.now()
  return {
    name: m.name,
    state: m.state,
    ...periodView(m),
    consecutive_failures: m.consecutiveFailures,
    open_count: m.openCount,
    opened_at: m.openedAt,
    next_attempt_at: m.nextAttemptAt,
    next_attempt_in_ms: m.nextAttemptAt === null ? null : Math.max(0, m.nextAttemptAt - now),
    current_reset_timeout_ms: m.currentResetTimeoutMs,
    half_open_in_flight: m.halfOpenInFlight,
    window: { window_ms: m.window.windowMs, ...periodView(m.window) },
  }
}

function metricsView(registry) {
  return { timestamp: new Date().toISOString(), circuit_breakers: registry.list().map(breakerView) }
}

function serviceView(s) {
  return {
    status: s.status,
    uptime: s.uptime,
    error_rate: s.errorRate,
    latency_p50_ms: s.latencyP50Ms,
    latency_p95_ms: s.latencyP95Ms,
    latency_p99_ms: s.latencyP99Ms,
    last_check: unixSeconds(s.lastCheck),
    last_error: s.lastError,
    consecutive_failures: s.consecutiveFailures,
    total_checks: s.totalChecks,
    failed_checks: s.failedChecks,
  }
}

function healthView(getMonitor) {
  const h = readHealth(getMonitor)
  // A null-prototype object: a service named "__proto__" is a key like any other.
  const services = Object.create(null)
  for (const s of h.services) services[s.name] = serviceView(s)
  return { timestamp: new Date().toISOString(), status: h.status, services }
}

const RANK = { healthy: 0, unknown: 1, degraded: 2, unhealthy: 3 }

/**
 * The overall status: the monitor's, made at least `degraded` by any circuit that is open,
 * half-open or forced open. With no monitored services, circuits alone decide.
 */
function statusView(registry, getMonitor) {
  const h = readHealth(getMonitor)
  const c = countServices(h.services)
  const states = { closed: 0, open: 0, half_open: 0, forced_open: 0, disabled: 0 }
  const breakers = registry.list()
  for (const b of breakers) states[b.state]++
  let status = h.services.length === 0 ? 'healthy' : h.status
  if (states.open + states.half_open + states.forced_open > 0 && RANK[status] < RANK.degraded) status = 'degraded'
  return {
    status,
    timestamp: new Date().toISOString(),
    summary: {
      total_services: h.services.length,
      healthy_services: c.healthy,
      degraded_services: c.degraded,
      unhealthy_services: c.unhealthy,
      unknown_services: c.unknown,
      total_circuits: breakers.length,
      open_circuits: states.open,
      half_open_circuits: states.half_open,
      forced_open_circuits: states.forced_open,
      disabled_circuits: states.disabled,
    },
  }
}

/**
 * JSON for an HTTP body. `<`, `>`, `&` and the JS line separators are escaped too, so a hostile
 * name (`</script>`) stays inert even if a page ever embeds the JSON.
 */
function safeJson(value) {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

module.exports = {
  resolveSources,
  readHealth,
  breakerView,
  metricsView,
  healthView,
  statusView,
  safeJson,
  errorText,
  SERVICE_STATUSES,
}
