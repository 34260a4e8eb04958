'use strict'
// `breakwater/express`: a route handler protected by a breaker (`withCircuitBreaker`), and the
// monitoring and control routes with the dashboard (`registerCircuitBreakerRoutes`). Only Node's
// own request/response API is used, so Express 4 and 5 behave the same.

const crypto = require('node:crypto')
const errors = require('./errors')
const { Permit } = require('./breaker')
const { bucketsFor } = require('./latency-buckets')
const { resolveSources, metricsView, healthView, statusView, safeJson } = require('./monitoring')
const {
  prometheusMetrics,
  registerPromClientCollector,
  collectFamilies,
  renderPrometheus,
  PROMETHEUS_CONTENT_TYPE,
} = require('./prometheus')
const { dashboardHtml, dashboardCsp } = require('./dashboard')

const perf = performance

function checkKeys(context, options, allowed, functions) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw errors.invalidConfig(context, 'options', options, 'an object')
  }
  const unknown = Object.keys(options).filter((k) => !allowed.includes(k))
  if (unknown.length > 0) {
    const err = errors.invalidConfig(context, unknown[0], options[unknown[0]], `no such option (${allowed.join(', ')})`)
    err.message = `Invalid ${context}: ${unknown.map((k) => `${k} is not an option`).join('; ')} (options: ${allowed.join(', ')})`
    throw err
  }
  for (const k of functions) {
    if (options[k] !== undefined && typeof options[k] !== 'function') {
      throw errors.invalidConfig(context, k, options[k], 'a function')
    }
  }
  return options
}

/** A JSON response with the usual headers, written with Node's API (no Express helpers). */
function sendJson(res, status, body, headers) {
  const text = safeJson(body)
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json; charset=utf-8')
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  if (headers !== undefined) for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
  res.end(text)
}

/** The failure a response with status >= 500 records: no stack trace (it would be ours, not the cause's). */
function httpStatusError(status) {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  const err = new Error(`Response status ${status}`)
  Error.stackTraceLimit = limit
  err.name = 'HttpStatusError'
  err.status = status
  err.statusCode = status
  return err
}

/** Whether `isFailure` counts this outcome; a classifier that throws counts it (as the core does). */
function classify(isFailure, err, req, res) {
  try {
    return Boolean(isFailure(err, req, res))
  } catch {
    return true
  }
}

/** Calls the fallback; a throw or a rejection goes to `next`. */
function runFallback(fallback, req, res, next, err) {
  let r
  try {
    r = fallback(req, res, err)
  } catch (e) {
    next(e)
    return
  }
  if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, next)
}

/**
 * Retry-After in whole seconds, rounded up, at least 1. A forced-open circuit has no time of its
 * own (only an operator closes it): it advertises the breaker's current open time instead.
 */
function retryAfterSeconds(breaker, err) {
  const ms = err.retryAfterMs ?? breaker.getMetrics().currentResetTimeoutMs
  return Math.max(1, Math.ceil(ms / 1000))
}

const WITH_OPTIONS = ['breakerOptions', 'registry', 'isFailure', 'fallback']

/**
 * Protects a route handler with the breaker `name` (found or created in the registry now).
 * See README "Express" for the outcome rules.
 */
function withCircuitBreaker(name, handler, options) {
  if (typeof handler !== 'function') throw errors.invalidArgument('handler', handler, 'a function (req, res, next)')
  const opts = checkKeys('withCircuitBreaker options', options, WITH_OPTIONS, ['isFailure', 'fallback'])
  const registry = opts.registry ?? require('./registry').globalRegistry
  if (registry === null || typeof registry !== 'object' || typeof registry.getOrCreate !== 'function') {
    throw errors.invalidConfig('withCircuitBreaker options', 'registry', registry, 'a CircuitBreakerRegistry')
  }
  const breaker = registry.getOrCreate(name, opts.breakerOptions)
  const isFailure = opts.isFailure
  const fallback = opts.fallback
  const buckets = bucketsFor(breaker)

  return function circuitBreakerMiddleware(req, res, next) {
    const permit = breaker._permitOrRejection()
    if (!(permit instanceof Permit)) {
      if (fallback !== undefined) {
        runFallback(fallback, req, res, next, permit)
        return
      }
      const seconds = retryAfterSeconds(breaker, permit)
      sendJson(res, 503, { error: 'circuit_open', breaker: breaker.name, retry_after_seconds: seconds }, { 'Retry-After': String(seconds) })
      return
    }

    const t0 = perf.now()
    let settled = false
    let threw = false
    let thrownCounts = false
    let thrownError

    const count = (failed, err) => {
      buckets.record(perf.now() - t0)
      if (failed) permit.failure(err)
      else permit.success()
    }
    // 'close' follows 'finish' for a finished response, and comes alone when the connection
    // went away first: one listener tells both, with the latency until the response ended.
    const onClose = () => {
      if (settled) return
      settled = true
      if (threw) {
        // The error was known before the connection ended: it counts (or not) as decided.
        if (thrownCounts) count(true, thrownError)
        else permit.ignore()
      } else if (res.writableFinished) {
        const status = res.statusCode
        const failed = isFailure !== undefined ? classify(isFailure, undefined, req, res) : status >= 500
        count(failed, failed ? httpStatusError(status) : undefined)
      } else {
        permit.ignore() // the client aborted before the response finished: not counted
      }
    }
    res.on('close', onClose)
    if (res.closed) onClose() // the connection was gone before this handler ran

    const onError = (err) => {
      if (!settled && !threw) {
        threw = true
        thrownError = err
        thrownCounts = isFailure !== undefined ? classify(isFailure, err, req, res) : true
      }
      if (fallback !== undefined && !res.headersSent) runFallback(fallback, req, res, next, err)
      else if (errors.isAllProvidersUnavailableError(err) && !res.headersSent) {
        // breakwater/providers: no LLM provider could answer; say when one might.
        const seconds = retryAfterSeconds(breaker, err)
        sendJson(res, 503, { error: 'all_providers_unavailable', retry_after_seconds: seconds }, { 'Retry-After': String(seconds) })
      } else next(err)
    }
    let r
    try {
      r = handler(req, res, next)
    } catch (err) {
      onError(err)
      return
    }
    // Express 4 ignores a returned promise and Express 5 would pass a rejection to next() on
    // its own: handling it here makes both behave the same.
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, onError)
  }
}

// ---- the routes -------------------------------------------------------------------------------

const ROUTE_OPTIONS = ['prefix', 'registry', 'monitor', 'fallback', 'adminToken', 'authorize', 'dashboard']
const sha256 = (s) => crypto.createHash('sha256').update(s, 'utf8').digest()

/** Compares hashes, so neither the content nor the length of the token leaks through timing. */
function tokenMatches(given, expectedHash) {
  return crypto.timingSafeEqual(sha256(given), expectedHash)
}

function bearerToken(req) {
  const h = req.headers.authorization
  if (typeof h !== 'string') return null
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h)
  return m === null ? null : m[1]
}

const ADMIN_DISABLED = {
  error: 'admin_disabled',
  message:
    'The circuit breaker control routes are disabled. Enable them with the adminToken option of ' +
    'registerCircuitBreakerRoutes (or the CB_ADMIN_TOKEN environment variable) and send ' +
    '"Authorization: Bearer <token>", or pass an authorize(req) callback.',
}

/** Runs a route handler; any error becomes a bare 500 (no message, no stack). */
function safely(fn) {
  return function breakwaterRoute(req, res) {
    const fail = () => {
      if (!res.headersSent) sendJson(res, 500, { error: 'internal_error' })
      else res.destroy()
    }
    try {
      const r = fn(req, res)
      if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, fail)
    } catch {
      fail()
    }
  }
}

/**
 * Registers GET {prefix}/metrics, /health, /status, /prometheus, /dashboard and the POST control
 * routes on an Express app or router. See README "Express" for shapes and auth rules.
 */
function registerCircuitBreakerRoutes(app, options) {
  if (
    app === null ||
    (typeof app !== 'object' && typeof app !== 'function') ||
    typeof app.get !== 'function' ||
    typeof app.post !== 'function'
  ) {
    throw errors.invalidArgument('app', app, 'an Express app or router')
  }
  const opts = checkKeys('registerCircuitBreakerRoutes options', options, ROUTE_OPTIONS, ['authorize'])
  const prefix = (opts.prefix ?? '/api/circuit-breaker').replace(/\/+$/, '')
  if (typeof opts.prefix !== 'undefined' && (typeof opts.prefix !== 'string' || (prefix !== '' && !prefix.startsWith('/')))) {
    throw errors.invalidConfig('registerCircuitBreakerRoutes options', 'prefix', opts.prefix, 'a path starting with "/"')
  }
  const sources = resolveSources({ registry: opts.registry, monitor: opts.monitor, fallback: opts.fallback })
  const { registry } = sources
  const token = opts.adminToken ?? process.env.CB_ADMIN_TOKEN
  if (token !== undefined && token !== null && typeof token !== 'string') {
    throw errors.invalidConfig('registerCircuitBreakerRoutes options', 'adminToken', token, 'a string')
  }
  const tokenHash = typeof token === 'string' && token !== '' ? sha256(token) : null
  const authorize = opts.authorize

  app.get(
    `${prefix}/metrics`,
    safely((req, res) => sendJson(res, 200, metricsView(registry))),
  )
  app.get(
    `${prefix}/health`,
    safely((req, res) => sendJson(res, 200, healthView(sources.getMonitor))),
  )
  app.get(
    `${prefix}/status`,
    safely((req, res) => sendJson(res, 200, statusView(registry, sources.getMonitor))),
  )
  app.get(
    `${prefix}/prometheus`,
    safely((req, res) => {
      res.statusCode = 200
      res.setHeader('Content-Type', PROMETHEUS_CONTENT_TYPE)
      res.setHeader('Cache-Control', 'no-store')
      res.end(renderPrometheus(collectFamilies(sources)))
    }),
  )
  if (opts.dashboard !== false) {
    app.get(
      `${prefix}/dashboard`,
      safely((req, res) => {
        res.statusCode = 200
        res.setHeader('Content-Type', 'text/html; charset=utf-8')
        res.setHeader('Cache-Control', 'no-store')
        res.setHeader('X-Content-Type-Options', 'nosniff')
        res.setHeader('Content-Security-Policy', dashboardCsp)
        res.setHeader('Referrer-Policy', 'no-referrer')
        res.end(dashboardHtml)
      }),
    )
  }

  /** null when allowed, else the refusal already sent. */
  async function admitted(req, res) {
    if (tokenHash === null && authorize === undefined) {
      sendJson(res, 403, ADMIN_DISABLED)
      return false
    }
    if (tokenHash !== null) {
      const given = bearerToken(req)
      if (given === null || !tokenMatches(given, tokenHash)) {
        sendJson(
          res,
          401,
          { error: 'unauthorized', message: 'Send the admin token as "Authorization: Bearer <token>".' },
          { 'WWW-Authenticate': 'Bearer realm="breakwater"' },
        )
        return false
      }
    }
    if (authorize !== undefined && !(await authorize(req))) {
      sendJson(res, 403, { error: 'forbidden', message: 'The authorize callback refused this request.' })
      return false
    }
    return true
  }

  const control = (action, apply) =>
    safely(async (req, res) => {
      if (!(await admitted(req, res))) return
      const name = req.params.name
      const breaker = registry.get(name)
      if (breaker === undefined) {
        sendJson(res, 404, { error: 'unknown_breaker', breaker: name })
        return
      }
      apply(breaker)
      sendJson(res, 200, { ok: true, action, breaker: name, state: breaker.state })
    })
  app.post(
    `${prefix}/reset/:name`,
    control('reset', (b) => b.reset()),
  )
  app.post(
    `${prefix}/force-open/:name`,
    control('force_open', (b) => b.forceOpen()),
  )
  app.post(
    `${prefix}/disable/:name`,
    control('disable', (b) => b.disable()),
  )
  app.post(
    `${prefix}/reset-all`,
    safely(async (req, res) => {
      if (!(await admitted(req, res))) return
      registry.resetAll()
      sendJson(res, 200, { ok: true, action: 'reset_all', reset: registry.list().length })
    }),
  )
  return app
}

module.exports = {
  withCircuitBreaker,
  registerCircuitBreakerRoutes,
  prometheusMetrics,
  registerPromClientCollector,
  PROMETHEUS_CONTENT_TYPE,
}
