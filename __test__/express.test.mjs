// withCircuitBreaker and registerCircuitBreakerRoutes on real Express 4 and Express 5 servers on
// 127.0.0.1:0, called over HTTP: the outcome rules (with the client abort), the 503 with
// Retry-After, the fallback, every route's JSON shape, the auth rules and hostile names.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { CircuitBreakerRegistry, ManualClock } from 'breakwater'
import { withCircuitBreaker, registerCircuitBreakerRoutes } from 'breakwater/express'
import { EXPRESS_VERSIONS, jsonErrors, listen, call, assertNoStack, HOSTILE } from './express-helpers.mjs'
import { createMonitor } from './fake-monitor.mjs'
import { deferred } from './helpers.mjs'

const PREFIX = '/api/circuit-breaker'

/** GETs `path` and resolves when the server has closed the response, with the client aborting first. */
function abortAfterStart(url, started) {
  const req = http.get(url, { agent: false })
  req.on('error', () => {}) // the abort itself
  return started.promise.then(() => req.destroy())
}

for (const [label, express] of EXPRESS_VERSIONS) {
  describe(`withCircuitBreaker on ${label}`, () => {
    let server
    let registry
    let clock
    const gates = {}
    const closed = {}
    const started = {}

    const breaker = (name) => registry.get(name)
    const wrap = (name, handler, options = {}) =>
      withCircuitBreaker(name, handler, {
        registry,
        ...options,
        breakerOptions: { clock, failureThreshold: 3, resetTimeoutMs: 10_000, ...options.breakerOptions },
      })

    before(async () => {
      registry = new CircuitBreakerRegistry()
      clock = new ManualClock(1_000_000)
      const app = express()
      app.get(
        '/ok',
        wrap('ok', (req, res) => res.json({ ok: true })),
      )
      app.get(
        '/async-ok',
        wrap('async_ok', async (req, res) => {
          await Promise.resolve()
          res.status(201).json({ ok: true })
        }),
      )
      app.get(
        '/client-error',
        wrap('client_error', (req, res) => res.status(404).json({ error: 'nope' })),
      )
      app.get(
        '/server-error',
        wrap('server_error', (req, res) => res.status(502).json({ error: 'upstream' })),
      )
      app.get(
        '/throws',
        wrap('throws', () => {
          throw new Error('sync boom')
        }),
      )
      app.get(
        '/rejects',
        wrap('rejects', async () => {
          await Promise.resolve()
          throw new Error('async boom')
        }),
      )
      app.get(
        '/next-err',
        wrap('next_err', (req, res, next) => next(new Error('passed to next'))),
      )
      app.get(
        '/classified',
        wrap(
          'classified',
          (req, res) => {
            if (req.query.throw === '404') throw Object.assign(new Error('not found'), { status: 404 })
            res.status(Number(req.query.status)).json({})
          },
          {
            // 429 is a failure too; a thrown 4xx error is not counted.
            isFailure: (err, req, res) => (err !== undefined ? !(err.status < 500) : res.statusCode >= 500 || res.statusCode === 429),
          },
        ),
      )
      app.get(
        '/slow',
        wrap('slow', async (req, res) => {
          res.write('first ')
          await gates.slow.promise
          res.end('last')
        }),
      )
      for (const name of ['aborted', 'aborted_trial']) {
        app.get(
          `/${name}`,
          wrap(
            name,
            async (req, res) => {
              res.on('close', () => closed[name].resolve())
              started[name].resolve()
              if (req.query.fast !== '1') await gates[name].promise
              res.json({ late: true })
            },
            { breakerOptions: { halfOpenMaxCalls: 1, successThreshold: 1, failureThreshold: 1 } },
          ),
        )
      }
      app.get(
        '/fallback',
        wrap(
          'fallback',
          async (req) => {
            if (req.query.fail === '1') throw new Error('upstream down')
            throw Object.assign(new Error('unreachable'), {})
          },
          {
            breakerOptions: { failureThreshold: 1 },
            fallback: (req, res, err) => res.status(200).json({ degraded: true, reason: err.code ?? err.message }),
          },
        ),
      )
      app.get(
        '/fallback-throws',
        wrap(
          'fallback_throws',
          async () => {
            throw new Error('first')
          },
          {
            fallback: async () => {
              throw new Error('fallback broke too')
            },
          },
        ),
      )
      app.get(
        '/gated',
        wrap('gated', (req, res) => res.json({ ok: true }), { breakerOptions: { failureThreshold: 1 } }),
      )
      jsonErrors(app)
      server = await listen(app)
    })
    after(() => server.close())

    const metrics = (name) => breaker(name).getMetrics()

    test('a finished response below 500 is a success (sync and async handlers, 2xx and 4xx)', async () => {
      assert.equal((await call(`${server.url}/ok`)).status, 200)
      const r = await call(`${server.url}/async-ok`)
      assert.equal(r.status, 201)
      assert.deepEqual(r.json, { ok: true })
      assert.equal((await call(`${server.url}/client-error`)).status, 404)
      for (const name of ['ok', 'async_ok', 'client_error']) {
        const m = metrics(name)
        assert.equal(m.successfulRequests, 1, name)
        assert.equal(m.failedRequests, 0, name)
      }
    })

    test('a finished response with status >= 500 is a failure', async () => {
      assert.equal((await call(`${server.url}/server-error`)).status, 502)
      const m = metrics('server_error')
      assert.equal(m.failedRequests, 1)
      assert.equal(m.successfulRequests, 0)
    })

    test('a thrown error, a rejected promise and next(err) are failures and reach the error handler', async () => {
      for (const [path, name, message] of [
        ['/throws', 'throws', 'sync boom'],
        ['/rejects', 'rejects', 'async boom'],
        ['/next-err', 'next_err', 'passed to next'],
      ]) {
        const r = await call(server.url + path)
        assert.equal(r.status, 500, path)
        assert.deepEqual(r.json, { error: 'handler_error', message }, path)
        assert.equal(metrics(name).failedRequests, 1, path)
        assert.equal(metrics(name).successfulRequests, 0, path)
      }
    })

    test('isFailure overrides the rules', async () => {
      assert.equal((await call(`${server.url}/classified?status=429`)).status, 429)
      assert.equal((await call(`${server.url}/classified?status=503`)).status, 503)
      assert.equal((await call(`${server.url}/classified?status=200`)).status, 200)
      assert.equal((await call(`${server.url}/classified?throw=404`)).status, 500)
      const m = metrics('classified')
      assert.equal(m.failedRequests, 2, '429 and 503')
      assert.equal(m.successfulRequests, 1, '200; the thrown 404 is not counted')
    })

    test('latency runs until the response finishes, not until the handler first yields', async () => {
      gates.slow = deferred()
      const res = await fetch(`${server.url}/slow`)
      const reader = res.body.getReader()
      const first = await reader.read()
      assert.equal(new TextDecoder().decode(first.value), 'first ')
      clock.advance(300)
      gates.slow.resolve()
      while (!(await reader.read()).done);
      const m = metrics('slow')
      assert.equal(m.successfulRequests, 1)
      assert.ok(m.latencyP50Ms >= 297 && m.latencyP50Ms <= 303, `latency ${m.latencyP50Ms}`)
    })

    test('a request the client aborts before the response finishes is not counted', async () => {
      gates.aborted = deferred()
      closed.aborted = deferred()
      started.aborted = deferred()
      await abortAfterStart(`${server.url}/aborted`, started.aborted)
      await closed.aborted.promise
      gates.aborted.resolve() // the handler answers into the closed connection
      const m = metrics('aborted')
      assert.equal(m.successfulRequests + m.failedRequests, 0)
      assert.equal(m.totalRequests, 0)
      assert.equal(breaker('aborted').state, 'closed')
    })

    test('an aborted half-open trial frees its slot at once and decides nothing', async () => {
      const b = breaker('aborted_trial')
      b.openFor(1_000)
      clock.advance(1_000)
      gates.aborted_trial = deferred()
      closed.aborted_trial = deferred()
      started.aborted_trial = deferred()
      await abortAfterStart(`${server.url}/aborted_trial`, started.aborted_trial)
      await closed.aborted_trial.promise
      assert.equal(b.state, 'half_open', 'the aborted trial neither closed nor re-opened the circuit')
      // halfOpenMaxCalls is 1: a second trial is admitted only because the aborted one was freed.
      started.aborted_trial = deferred()
      closed.aborted_trial = deferred()
      const r = await call(`${server.url}/aborted_trial?fast=1`)
      assert.equal(r.status, 200)
      assert.equal(b.state, 'closed')
      gates.aborted_trial.resolve()
    })

    test('an open circuit answers 503 with Retry-After (whole seconds, rounded up) and a JSON body', async () => {
      const b = breaker('gated')
      b.openFor(10_000)
      clock.advance(2_500)
      const r = await call(`${server.url}/gated`)
      assert.equal(r.status, 503)
      assert.equal(r.headers.get('retry-after'), '8') // 7.5 s left
      assert.match(r.headers.get('content-type'), /^application\/json/)
      assert.deepEqual(r.json, { error: 'circuit_open', breaker: 'gated', retry_after_seconds: 8 })
      clock.advance(7_499)
      const r2 = await call(`${server.url}/gated`)
      assert.equal(r2.headers.get('retry-after'), '1', '1 ms left rounds up to 1 s')
      clock.advance(1)
      assert.equal((await call(`${server.url}/gated`)).status, 200, 'the trial is admitted')
      // Forced open has no time of its own: Retry-After is the breaker's open time.
      b.forceOpen()
      const r3 = await call(`${server.url}/gated`)
      assert.equal(r3.status, 503)
      assert.equal(r3.headers.get('retry-after'), '10')
      assert.equal(r3.json.retry_after_seconds, 10)
      assert.equal(metrics('gated').rejectedRequests, 3, 'every 503 counts as a rejection')
      b.reset()
    })

    test('the fallback answers a rejection and a failure; a failing fallback goes to next(err)', async () => {
      const r = await call(`${server.url}/fallback?fail=1`)
      assert.equal(r.status, 200)
      assert.deepEqual(r.json, { degraded: true, reason: 'upstream down' })
      assert.equal(breaker('fallback').state, 'open', 'the failure still counted')
      const r2 = await call(`${server.url}/fallback`)
      assert.deepEqual(r2.json, { degraded: true, reason: 'ERR_CIRCUIT_OPEN' })
      assert.equal(metrics('fallback').rejectedRequests, 1)
      const r3 = await call(`${server.url}/fallback-throws`)
      assert.equal(r3.status, 500)
      assert.equal(r3.json.message, 'fallback broke too')
      assert.equal(metrics('fallback_throws').failedRequests, 1)
    })
  })

  describe(`registerCircuitBreakerRoutes on ${label}`, () => {
    let registry
    let monitor
    let clock
    const servers = []
    const start = async (options, setup) => {
      const app = express()
      if (setup) setup(app)
      registerCircuitBreakerRoutes(app, { registry, monitor, ...options })
      jsonErrors(app)
      const s = await listen(app)
      servers.push(s)
      return s.url + (options.prefix ?? PREFIX)
    }
    let base

    before(async () => {
      registry = new CircuitBreakerRegistry()
      clock = new ManualClock(5_000_000)
      monitor = createMonitor([
        { name: 'openai_api', status: 'healthy', uptime: 99.8, errorRate: 0.02, latencyP95Ms: 892.1 },
        { name: 'meta_api', status: 'degraded', errorRate: 0.1 },
      ])
      const ok = registry.getOrCreate('openai_api', { clock })
      ok.tryAcquire().success()
      const open = registry.getOrCreate('meta_api', { clock, failureThreshold: 1, resetTimeoutMs: 30_000 })
      open.tryAcquire().failure(new Error('down'))
      clock.advance(10_000)
      base = await start({})
    })
    after(async () => {
      for (const s of servers) await s.close()
    })

    test('GET /metrics: the seed shape with snake_case keys', async () => {
      const r = await call(`${base}/metrics`)
      assert.equal(r.status, 200)
      assert.match(r.headers.get('content-type'), /^application\/json/)
      assert.equal(r.headers.get('cache-control'), 'no-store')
      assert.ok(!Number.isNaN(Date.parse(r.json.timestamp)))
      assert.equal(r.json.circuit_breakers.length, 2)
      const [openai, meta] = r.json.circuit_breakers
      for (const key of [
        'name',
        'state',
        'total_requests',
        'successful_requests',
        'failed_requests',
        'rejected_requests',
        'success_rate',
        'latency_p50_ms',
        'latency_p95_ms',
        'latency_p99_ms',
      ]) {
        assert.ok(key in openai, key)
      }
      assert.equal(openai.name, 'openai_api')
      assert.equal(openai.state, 'closed')
      assert.equal(openai.total_requests, 1)
      assert.equal(openai.success_rate, 100)
      assert.equal(openai.next_attempt_in_ms, null)
      assert.equal(typeof openai.window.window_ms, 'number')
      assert.equal(meta.state, 'open')
      assert.equal(meta.failed_requests, 1)
      assert.equal(meta.success_rate, 0)
      assert.equal(meta.next_attempt_in_ms, 20_000)
      assert.equal(meta.open_count, 1)
    })

    test('GET /health: services keyed by name, the seed fields', async () => {
      const r = await call(`${base}/health`)
      assert.equal(r.status, 200)
      assert.ok(!Number.isNaN(Date.parse(r.json.timestamp)))
      assert.equal(r.json.status, 'degraded')
      assert.deepEqual(Object.keys(r.json.services), ['openai_api', 'meta_api'])
      const s = r.json.services.openai_api
      assert.deepEqual(
        { status: s.status, uptime: s.uptime, error_rate: s.error_rate, latency_p95_ms: s.latency_p95_ms, last_check: s.last_check },
        { status: 'healthy', uptime: 99.8, error_rate: 0.02, latency_p95_ms: 892.1, last_check: 1_705_318_200 },
      )
      for (const key of ['latency_p50_ms', 'latency_p99_ms', 'last_error', 'consecutive_failures', 'total_checks', 'failed_checks'])
        assert.ok(key in s, key)
    })

    test('GET /status: the overall status and the counts', async () => {
      const r = await call(`${base}/status`)
      assert.equal(r.status, 200)
      assert.equal(r.json.status, 'degraded')
      assert.deepEqual(r.json.summary, {
        total_services: 2,
        healthy_services: 1,
        degraded_services: 1,
        unhealthy_services: 0,
        unknown_services: 0,
        total_circuits: 2,
        open_circuits: 1,
        half_open_circuits: 0,
        forced_open_circuits: 0,
        disabled_circuits: 0,
      })
    })

    test('a monitor whose services are an array is read too; no monitor means no services', async () => {
      const arrayMonitor = {
        getHealthSummary: () => ({
          status: 'unhealthy',
          services: [{ name: 'gemini_api', status: 'unhealthy', lastError: new Error('503') }],
        }),
      }
      const b1 = await start({ prefix: '/arr', monitor: arrayMonitor })
      const h = (await call(`${b1}/health`)).json
      assert.equal(h.services.gemini_api.status, 'unhealthy')
      assert.equal(h.services.gemini_api.last_error, '503', 'the message only, no stack')
      assert.equal((await call(`${b1}/status`)).json.status, 'unhealthy')
      const b2 = await start({ prefix: '/none', monitor: null, registry: new CircuitBreakerRegistry() })
      assert.deepEqual((await call(`${b2}/health`)).json.services, {})
      const st = (await call(`${b2}/status`)).json
      assert.equal(st.status, 'healthy')
      assert.equal(st.summary.total_services, 0)
    })

    test('a failing monitor gives a bare 500: no message, no stack', async () => {
      const broken = {
        getHealthSummary() {
          throw new Error('secret internals')
        },
      }
      const b = await start({ prefix: '/broken', monitor: broken })
      const r = await call(`${b}/health`)
      assert.equal(r.status, 500)
      assert.deepEqual(r.json, { error: 'internal_error' })
      assertNoStack(r.text)
    })

    test('the control routes are closed (403 with a hint) unless a token or authorize is set', async () => {
      for (const path of ['/reset/openai_api', '/reset-all', '/force-open/openai_api', '/disable/openai_api']) {
        const r = await call(base + path, { method: 'POST', headers: { authorization: 'Bearer anything' } })
        assert.equal(r.status, 403, path)
        assert.equal(r.json.error, 'admin_disabled')
        assert.match(r.json.message, /adminToken/)
        assert.match(r.json.message, /CB_ADMIN_TOKEN/)
        assert.match(r.json.message, /authorize/)
      }
      assert.equal(registry.get('openai_api').state, 'closed')
    })

    test('with adminToken: missing or wrong token 401, right token 200, unknown breaker 404', async () => {
      const b = await start({ prefix: '/tok', adminToken: 's3cret-token' })
      const post = (path, auth) => call(b + path, { method: 'POST', headers: auth === undefined ? {} : { authorization: auth } })
      for (const auth of [
        undefined,
        'Bearer wrong',
        'Bearer s3cret-toke',
        'Bearer s3cret-token-longer',
        'Basic s3cret-token',
        's3cret-token',
        'Bearer ',
      ]) {
        const r = await post('/force-open/openai_api', auth)
        assert.equal(r.status, 401, String(auth))
        assert.equal(r.json.error, 'unauthorized')
        assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="breakwater"')
      }
      assert.equal(registry.get('openai_api').state, 'closed')
      const ok = await post('/force-open/openai_api', 'Bearer s3cret-token')
      assert.equal(ok.status, 200)
      assert.deepEqual(ok.json, { ok: true, action: 'force_open', breaker: 'openai_api', state: 'forced_open' })
      assert.equal((await post('/disable/openai_api', 'bearer s3cret-token')).json.state, 'disabled', 'the scheme is case-insensitive')
      assert.equal((await post('/reset/openai_api', 'Bearer s3cret-token')).json.state, 'closed')
      const missing = await post('/reset/no_such_breaker', 'Bearer s3cret-token')
      assert.equal(missing.status, 404)
      assert.deepEqual(missing.json, { error: 'unknown_breaker', breaker: 'no_such_breaker' })
      assert.equal((await post('/reset/no_such_breaker')).status, 401, 'auth comes before the lookup')
      const all = await post('/reset-all', 'Bearer s3cret-token')
      assert.deepEqual(all.json, { ok: true, action: 'reset_all', reset: 2 })
      assert.equal(registry.get('meta_api').state, 'closed')
      assert.equal(registry.get('meta_api').getMetrics().totalRequests, 0)
    })

    test('CB_ADMIN_TOKEN enables the control routes when adminToken is not given', async () => {
      process.env.CB_ADMIN_TOKEN = 'from-env'
      let b
      try {
        b = await start({ prefix: '/env' })
      } finally {
        delete process.env.CB_ADMIN_TOKEN
      }
      assert.equal((await call(`${b}/reset-all`, { method: 'POST' })).status, 401)
      assert.equal((await call(`${b}/reset-all`, { method: 'POST', headers: { authorization: 'Bearer from-env' } })).status, 200)
    })

    test('authorize: true allows, false is 403, a throw is a bare 500; with a token both must pass', async () => {
      const b = await start({ prefix: '/authz', authorize: async (req) => req.headers['x-role'] === 'operator' })
      assert.equal((await call(`${b}/reset/openai_api`, { method: 'POST', headers: { 'x-role': 'operator' } })).status, 200)
      const denied = await call(`${b}/reset/openai_api`, { method: 'POST', headers: { 'x-role': 'viewer' } })
      assert.equal(denied.status, 403)
      assert.equal(denied.json.error, 'forbidden')
      const thrower = await start({
        prefix: '/authz-throws',
        authorize: () => {
          throw new Error('ldap down')
        },
      })
      const t = await call(`${thrower}/reset-all`, { method: 'POST' })
      assert.equal(t.status, 500)
      assert.deepEqual(t.json, { error: 'internal_error' })
      assertNoStack(t.text)
      const both = await start({ prefix: '/both', adminToken: 'tok', authorize: (req) => req.headers['x-role'] === 'operator' })
      assert.equal((await call(`${both}/reset-all`, { method: 'POST', headers: { 'x-role': 'operator' } })).status, 401)
      assert.equal((await call(`${both}/reset-all`, { method: 'POST', headers: { authorization: 'Bearer tok' } })).status, 403)
      assert.equal(
        (await call(`${both}/reset-all`, { method: 'POST', headers: { authorization: 'Bearer tok', 'x-role': 'operator' } })).status,
        200,
      )
    })

    test('hostile names are escaped in JSON and can be controlled by their URL-encoded name', async () => {
      const reg = new CircuitBreakerRegistry()
      const evil = reg.getOrCreate(HOSTILE, { clock, failureThreshold: 1 })
      evil.tryAcquire().failure(new Error('x'))
      const hostileMonitor = createMonitor([{ name: HOSTILE, status: 'unhealthy', lastError: '</script><script>alert(1)</script>' }])
      const b = await start({ prefix: '/hostile', registry: reg, monitor: hostileMonitor, adminToken: 't' })
      for (const path of ['/metrics', '/health', '/status']) {
        const r = await call(b + path)
        assert.equal(r.status, 200, path)
        assert.doesNotMatch(r.text, /<|>/, `${path}: < and > are escaped`)
        assert.doesNotMatch(r.text, /\n/, `${path}: the newline is escaped`)
      }
      assert.equal((await call(`${b}/metrics`)).json.circuit_breakers[0].name, HOSTILE, 'and parse back to the same name')
      const h = (await call(`${b}/health`)).json
      assert.deepEqual(Object.keys(h.services), [HOSTILE])
      assert.equal(h.services[HOSTILE].last_error, '</script><script>alert(1)</script>')
      const r = await call(`${b}/reset/${encodeURIComponent(HOSTILE)}`, { method: 'POST', headers: { authorization: 'Bearer t' } })
      assert.equal(r.status, 200)
      assert.equal(r.json.breaker, HOSTILE)
      assert.equal(evil.state, 'closed')
      const missing = await call(`${b}/reset/${encodeURIComponent('<b>"x"</b>')}`, {
        method: 'POST',
        headers: { authorization: 'Bearer t' },
      })
      assert.equal(missing.status, 404)
      assert.doesNotMatch(missing.text, /<b>/)
    })

    test('the routes mount on a router and under a custom prefix; dashboard: false drops the page', async () => {
      const b = await start({ prefix: '/ops/cb/', dashboard: false })
      assert.equal((await call(`${b.replace(/\/$/, '')}/metrics`)).status, 200)
      assert.equal((await call(`${b.replace(/\/$/, '')}/dashboard`)).status, 404)
      const router = express.Router()
      registerCircuitBreakerRoutes(router, { registry, monitor: null })
      const app = express()
      app.use('/admin', router)
      const s = await listen(app)
      servers.push(s)
      const r = await call(`${s.url}/admin${PREFIX}/metrics`)
      assert.equal(r.status, 200)
      assert.equal(r.json.circuit_breakers.length, 2)
      const d = await call(`${s.url}/admin${PREFIX}/dashboard`)
      assert.equal(d.status, 200)
      assert.match(d.headers.get('content-type'), /^text\/html/)
      assert.match(d.headers.get('content-security-policy'), /default-src 'none'/)
      assert.doesNotMatch(d.text, /https?:\/\//, 'no external asset')
    })
  })
}

describe('options are validated', () => {
  test('withCircuitBreaker rejects a bad handler and unknown options', () => {
    const registry = new CircuitBreakerRegistry()
    assert.throws(() => withCircuitBreaker('x', null, { registry }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(
      () => withCircuitBreaker('x', () => {}, { registry, fallbak: () => {} }),
      (e) => e.code === 'ERR_INVALID_CONFIG' && /fallbak/.test(e.message),
    )
    assert.throws(() => withCircuitBreaker('x', () => {}, { registry, isFailure: true }), { code: 'ERR_INVALID_CONFIG' })
    assert.throws(() => withCircuitBreaker('', () => {}, { registry }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => withCircuitBreaker('x', () => {}, { registry, breakerOptions: { failureTreshold: 1 } }), {
      code: 'ERR_INVALID_CONFIG',
    })
  })

  test('registerCircuitBreakerRoutes rejects a non-app, unknown options and a bad monitor', async () => {
    const [, express] = EXPRESS_VERSIONS[1]
    assert.throws(() => registerCircuitBreakerRoutes({}), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => registerCircuitBreakerRoutes(express(), { adminTokn: 'x' }), { code: 'ERR_INVALID_CONFIG' })
    assert.throws(() => registerCircuitBreakerRoutes(express(), { monitor: {} }), { code: 'ERR_INVALID_CONFIG' })
    assert.throws(() => registerCircuitBreakerRoutes(express(), { prefix: 'no-slash' }), { code: 'ERR_INVALID_CONFIG' })
    assert.throws(() => registerCircuitBreakerRoutes(express(), { adminToken: 42 }), { code: 'ERR_INVALID_CONFIG' })
  })

  test('the default registry is globalRegistry, and the breaker exists as soon as the route is wrapped', async () => {
    const { globalRegistry } = await import('breakwater')
    withCircuitBreaker('express_default_registry', (req, res) => res.end())
    assert.ok(globalRegistry.has('express_default_registry'))
    globalRegistry.delete('express_default_registry')
  })
})
