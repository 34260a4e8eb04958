'use strict'
// The Prometheus exposition (text format 0.0.4) of every breaker, the health monitor and the
// fallback metrics, and the same families published into a prom-client registry.

const errors = require('./errors')
const { resolveSources, readHealth } = require('./monitoring')
const { peekBuckets } = require('./latency-buckets')

const STATE_VALUES = { closed: 0, open: 1, half_open: 2, forced_open: 3, disabled: 4 }
const HEALTH_VALUES = { healthy: 0, degraded: 1, unhealthy: 2, unknown: 3 }
const FALLBACK_PREFIX = 'breakwater_fallback_'

/**
 * A family: `{ name, help, type, samples: [{ suffix, labels, value }] }`. The fixed families come
 * first, in this order, so prom-client can register them before any breaker exists.
 */
const FIXED = [
  ['circuit_breaker_state', 'gauge', 'Circuit breaker state (0=closed, 1=open, 2=half_open, 3=forced_open, 4=disabled)'],
  [
    'circuit_breaker_requests_total',
    'counter',
    'Requests through the circuit breaker by result (success, failure, rejected, timeout; failure excludes timeouts)',
  ],
  [
    'circuit_breaker_latency_seconds',
    'histogram',
    'Latency of completed requests through the circuit breaker (until the response finished)',
  ],
  ['circuit_breaker_failure_rate', 'gauge', 'Failed share of completed requests over the rolling window (0 to 1)'],
  ['health_check_status', 'gauge', 'Health of a monitored service (0=healthy, 1=degraded, 2=unhealthy, 3=unknown)'],
  [
    'health_check_latency_seconds',
    'summary',
    'Health check latency percentiles of a monitored service (quantiles only: the monitor gives no sum)',
  ],
  ['health_check_error_rate', 'gauge', 'Failed share of recent health checks of a monitored service (0 to 1)'],
  ['health_checks_total', 'counter', 'Health checks of a monitored service by result'],
]

function breakerSamples(registry, fam) {
  for (const b of registry.list()) {
    const m = b.getMetrics()
    const name = { name: m.name }
    fam.circuit_breaker_state.push({ labels: name, value: STATE_VALUES[m.state] })
    const req = fam.circuit_breaker_requests_total
    req.push({ labels: { name: m.name, result: 'success' }, value: m.successfulRequests })
    req.push({ labels: { name: m.name, result: 'failure' }, value: m.failedRequests - m.timedOutRequests })
    req.push({ labels: { name: m.name, result: 'rejected' }, value: m.rejectedRequests })
    req.push({ labels: { name: m.name, result: 'timeout' }, value: m.timedOutRequests })
    const h = fam.circuit_breaker_latency_seconds
    const buckets = peekBuckets(b)
    if (buckets !== undefined) {
      for (const [le, n] of buckets.cumulative()) h.push({ suffix: '_bucket', labels: { name: m.name, le: formatValue(le) }, value: n })
      h.push({ suffix: '_sum', labels: name, value: buckets.sumSeconds })
      h.push({ suffix: '_count', labels: name, value: buckets.count })
    } else {
      // Only the native percentiles exist for a breaker not used through the middleware: no
      // bucket can be told truthfully, so just +Inf, with the sum from the histogram's mean.
      const completed = m.successfulRequests + m.failedRequests
      h.push({ suffix: '_bucket', labels: { name: m.name, le: '+Inf' }, value: completed })
      h.push({ suffix: '_sum', labels: name, value: (m.latencyMeanMs * completed) / 1000 })
      h.push({ suffix: '_count', labels: name, value: completed })
    }
    fam.circuit_breaker_failure_rate.push({ labels: name, value: m.window.failureRate })
  }
}

function healthSamples(getMonitor, fam) {
  for (const s of readHealth(getMonitor).services) {
    const service = { service: s.name }
    fam.health_check_status.push({ labels: service, value: HEALTH_VALUES[s.status] })
    for (const [q, ms] of [
      ['0.5', s.latencyP50Ms],
      ['0.95', s.latencyP95Ms],
      ['0.99', s.latencyP99Ms],
    ]) {
      if (ms !== null) fam.health_check_latency_seconds.push({ labels: { service: s.name, quantile: q }, value: ms / 1000 })
    }
    if (s.errorRate !== null) fam.health_check_error_rate.push({ labels: service, value: s.errorRate })
    if (s.totalChecks !== null) {
      const failed = s.failedChecks ?? 0
      fam.health_checks_total.push({ labels: { service: s.name, result: 'success' }, value: Math.max(0, s.totalChecks - failed) })
      fam.health_checks_total.push({ labels: { service: s.name, result: 'failure' }, value: failed })
    }
  }
}

const snake = (k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()

/**
 * The fallback source's numeric fields, nested objects flattened with `_`, as
 * `breakwater_fallback_<field>`: a counter when the name ends in `_total`, a gauge otherwise.
 */
function fallbackFamilies(fallback) {
  if (fallback === null) return []
  const out = new Map()
  const walk = (obj, path, depth) => {
    for (const [k, v] of Object.entries(obj)) {
      const p = path === '' ? snake(k) : `${path}_${snake(k)}`
      if (typeof v === 'number' || typeof v === 'boolean') {
        const name = (FALLBACK_PREFIX + p).replace(/[^a-zA-Z0-9_]/g, '_')
        if (!out.has(name)) {
          const type = name.endsWith('_total') ? 'counter' : 'gauge'
          out.set(name, { name, type, help: `Fallback metric ${p}`, samples: [{ labels: {}, value: Number(v) }] })
        }
      } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 4) {
        walk(v, p, depth + 1)
      }
    }
  }
  const m = fallback.getMetrics()
  if (m !== null && typeof m === 'object') walk(m, '', 0)
  return [...out.values()]
}

/** Every family, read now. */
function collect(sources) {
  const fam = {}
  for (const [name] of FIXED) fam[name] = []
  breakerSamples(sources.registry, fam)
  healthSamples(sources.getMonitor, fam)
  const families = FIXED.map(([name, type, help]) => ({ name, type, help, samples: fam[name] }))
  return families.concat(fallbackFamilies(sources.fallback))
}

function formatValue(v) {
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  if (typeof v !== 'number' || Number.isNaN(v)) return 'NaN'
  return String(v)
}

// The format's escapes: a label value escapes backslash, double quote and newline; HELP text
// escapes backslash and newline.
// Most names need no escape: one test instead of three replaces keeps 1 000 breakers cheap.
const LABEL_SPECIAL = /[\\"\n]/
const LABEL_ESCAPES = { '\\': '\\\\', '"': '\\"', '\n': '\\n' }
const escapeLabel = (v) => {
  const s = String(v)
  return LABEL_SPECIAL.test(s) ? s.replace(/[\\"\n]/g, (c) => LABEL_ESCAPES[c]) : s
}
const escapeHelp = (s) => String(s).replace(/\\/g, '\\\\').replace(/\n/g, '\\n')

function render(families) {
  const lines = []
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      lines.push(`${f.name}${s.suffix ?? ''}${labels.length > 0 ? `{${labels.join(',')}}` : ''} ${formatValue(s.value)}`)
    }
  }
  return `${lines.join('\n')}\n`
}

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** The Prometheus text of every breaker (and the monitor's services, and the fallback metrics). */
function prometheusMetrics(options) {
  return render(collect(resolveSources(checkOptions(options, 'prometheusMetrics options'))))
}

function checkOptions(options, context) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object') throw errors.invalidConfig(context, 'options', options, 'an object')
  for (const k of Object.keys(options)) {
    if (!['registry', 'monitor', 'fallback'].includes(k))
      throw errors.invalidConfig(context, k, options[k], 'no such option (registry, monitor, fallback)')
  }
  return options
}

/**
 * Publishes the same families into a prom-client registry (the default `register` when none is
 * given) as metric objects whose `get()` reads the breakers at scrape time. The fallback families
 * are those its `getMetrics()` has when this is called. Returns a function that unregisters them.
 */
function registerPromClientCollector(register, options) {
  const sources = resolveSources(checkOptions(options, 'registerPromClientCollector options'))
  if (register === undefined || register === null) register = loadPromClient().register
  if (typeof register.registerMetric !== 'function') {
    throw errors.invalidArgument('register', register, 'a prom-client Registry')
  }
  // One scrape calls get() once per family, all in the same tick: collect once per tick.
  let snapshot = null
  const families = () => {
    if (snapshot === null) {
      snapshot = new Map(collect(sources).map((f) => [f.name, f]))
      queueMicrotask(() => {
        snapshot = null
      })
    }
    return snapshot
  }
  const names = FIXED.map(([name, type, help]) => ({ name, type, help })).concat(
    fallbackFamilies(sources.fallback).map(({ name, type, help }) => ({ name, type, help })),
  )
  const registered = []
  for (const { name, type, help } of names) {
    const metric = {
      name,
      help,
      type,
      aggregator: 'sum',
      get() {
        const f = families().get(name)
        const values = (f === undefined ? [] : f.samples).map((s) =>
          s.suffix === undefined ? { labels: s.labels, value: s.value } : { metricName: name + s.suffix, labels: s.labels, value: s.value },
        )
        return { name: this.name, help, type, aggregator: 'sum', values }
      },
      reset() {},
    }
    register.registerMetric(metric)
    registered.push(name)
  }
  return () => {
    for (const name of registered) register.removeSingleMetric(name)
  }
}

function loadPromClient() {
  try {
    return require('prom-client')
  } catch (cause) {
    const err = errors.invalidArgument(
      'register',
      undefined,
      'a prom-client Registry (prom-client is not installed: npm install prom-client)',
    )
    err.cause = cause
    throw err
  }
}

module.exports = {
  prometheusMetrics,
  registerPromClientCollector,
  collectFamilies: collect,
  renderPrometheus: render,
  escapeLabel,
  PROMETHEUS_CONTENT_TYPE,
}
