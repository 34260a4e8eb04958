// Health monitor: running checks (results, timeouts, late results, no overlap), alerts with
// their cooldowns and handlers, events, and the link to a breaker. ManualClock throughout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { CircuitBreakerRegistry } from '../index.mjs'
import { deferred } from './helpers.mjs'
import { makeMonitor, scripted, feed, drain, recordHealthEvents } from './health-helpers.mjs'

const OK = [true, 10]
const FAIL = [false, 10]

test('what a check may return, and how each counts', async () => {
  const cases = [
    [() => true, true, null],
    [async () => true, true, null],
    [() => ({ ok: true, details: { model: 'gpt-4o' } }), true, null],
    [() => false, false, 'check returned false'],
    [async () => ({ ok: false, details: { error: 'HTTP 503' } }), false, 'HTTP 503'],
    [() => ({ ok: false }), false, 'check returned { ok: false }'],
    [
      () => {
        throw new Error('ECONNREFUSED')
      },
      false,
      'ECONNREFUSED',
    ],
    [() => Promise.reject(new TypeError('fetch failed')), false, 'fetch failed'],
    [
      () => {
        throw 'a string'
      },
      false,
      'a string',
    ],
    [() => undefined, false, 'check returned undefined (expected a boolean or { ok: boolean, details? })'],
    [() => 'ok', false, 'check returned "ok" (expected a boolean or { ok: boolean, details? })'],
    [() => ({ then: (resolve) => resolve(true) }), true, null],
  ]
  for (const [check, ok, error] of cases) {
    const { monitor } = makeMonitor()
    const seen = recordHealthEvents(monitor)
    monitor.registerService('svc', check)
    const h = await monitor.checkServiceHealth('svc')
    assert.equal(h.failedChecks, ok ? 0 : 1, String(check))
    assert.equal(h.lastError, error, String(check))
    const [, ev] = seen.find(([e]) => e === 'check')
    assert.equal(ev.ok, ok)
    assert.equal(ev.error, error)
    assert.equal(ev.timedOut, false)
  }
})

test('the check gets { signal }, and check details reach the check event', async () => {
  const { monitor } = makeMonitor()
  let got
  monitor.registerService('svc', (ctx) => {
    got = ctx
    return { ok: true, details: { region: 'us-east-1' } }
  })
  const events = recordHealthEvents(monitor)
  await monitor.checkServiceHealth('svc')
  assert.ok(got.signal instanceof AbortSignal)
  assert.equal(got.signal.aborted, false)
  assert.deepEqual(events[0][1].details, { region: 'us-east-1' })
})

test("latency is measured on the monitor's clock", async () => {
  const { monitor, clock } = makeMonitor()
  const d = deferred()
  monitor.registerService('svc', () => d.promise, { latencyWarningMs: 100_000, latencyCriticalMs: 100_000 })
  const events = recordHealthEvents(monitor)
  const p = monitor.checkServiceHealth('svc')
  clock.advance(1_234)
  d.resolve(true)
  const h = await p
  assert.equal(events[0][1].latencyMs, 1_234)
  assert.ok(Math.abs(h.latencyP50Ms - 1_234) <= 12.34, String(h.latencyP50Ms))
  assert.equal(h.lastCheck, clock.now())
})

test('a hung check times out after checkTimeoutMs; its late result is ignored', async () => {
  const { monitor, clock } = makeMonitor()
  const d = deferred()
  let signal
  monitor.registerService(
    'svc',
    (ctx) => {
      signal = ctx.signal
      return d.promise
    },
    { checkTimeoutMs: 5_000, historySize: 10 },
  )
  const events = recordHealthEvents(monitor)
  const p = monitor.checkServiceHealth('svc')
  clock.advance(4_999)
  assert.equal(monitor.getServiceHealth('svc').totalChecks, 0, 'not timed out yet')
  clock.advance(1)
  const h = await p
  assert.deepEqual([h.totalChecks, h.failedChecks, h.status, h.lastError], [1, 1, 'unhealthy', 'check timed out after 5000 ms'])
  assert.equal(events[0][1].timedOut, true)
  assert.equal(events[0][1].latencyMs, 5_000)
  assert.ok(signal.aborted)
  assert.equal(signal.reason.code, 'ERR_CALL_TIMEOUT')
  assert.equal(clock.pendingTimers, 0, 'the timeout timer is gone')

  const before = events.length
  d.resolve(true) // the late result
  await drain()
  const after = monitor.getServiceHealth('svc')
  assert.deepEqual([after.totalChecks, after.failedChecks, after.status], [1, 1, 'unhealthy'])
  assert.equal(events.length, before, 'no event for a late result')
})

test('a late rejection is ignored too, and the default timeout is 10 s', async () => {
  const { monitor, clock } = makeMonitor()
  const d = deferred()
  monitor.registerService('svc', () => d.promise)
  const p = monitor.checkServiceHealth('svc')
  clock.advance(10_000)
  assert.equal((await p).lastError, 'check timed out after 10000 ms')
  d.reject(new Error('late'))
  await drain()
  assert.equal(monitor.getServiceHealth('svc').lastError, 'check timed out after 10000 ms')
  assert.equal(monitor.getServiceHealth('svc').totalChecks, 1)
})

test('a check that is still hung is not called again; it fails until it settles', async () => {
  const { monitor, clock } = makeMonitor()
  const d = deferred()
  let calls = 0
  monitor.registerService(
    'svc',
    () => {
      calls++
      return calls === 1 ? d.promise : true
    },
    { checkTimeoutMs: 1_000, historySize: 10 },
  )
  const p = monitor.checkServiceHealth('svc')
  clock.advance(1_000)
  await p
  clock.advance(500)
  let h = await monitor.checkServiceHealth('svc')
  assert.equal(calls, 1, 'not called while the first call is still running')
  assert.equal(h.failedChecks, 2)
  assert.match(h.lastError, /the previous check has not settled after 1500 ms; not started again/)
  d.resolve(true)
  await drain()
  h = await monitor.checkServiceHealth('svc')
  assert.equal(calls, 2)
  assert.equal(h.totalChecks - h.failedChecks, 1)
})

test('one check at a time per service: a second request joins the check in flight', async () => {
  const { monitor, clock } = makeMonitor()
  const d = deferred()
  let calls = 0
  monitor.registerService(
    'svc',
    () => {
      calls++
      return d.promise
    },
    { checkIntervalMs: 1_000 },
  )
  const a = monitor.checkServiceHealth('svc')
  const b = monitor.checkServiceHealth('svc')
  assert.equal(a, b)
  // The scheduled check that falls due meanwhile is skipped, not run alongside.
  clock.advance(1_000)
  assert.deepEqual(await monitor.runDueChecks(), [])
  assert.equal(calls, 1)
  d.resolve(true)
  const h = await a
  assert.equal(h.totalChecks, 1)
  assert.equal(h.nextCheckAt, clock.now() + 1_000)
})

test('an explicit request during a scheduled check joins it', async () => {
  const { monitor } = makeMonitor()
  const d = deferred()
  let calls = 0
  monitor.registerService('svc', () => {
    calls++
    return d.promise
  })
  const due = monitor.runDueChecks()
  const joined = monitor.checkServiceHealth('svc')
  d.resolve(true)
  const [h] = await due
  assert.deepEqual(await joined, h)
  assert.equal(calls, 1)
})

test('unregistering a service abandons its check in flight', async () => {
  const { monitor, clock } = makeMonitor()
  const d = deferred()
  monitor.registerService('svc', () => d.promise)
  const events = recordHealthEvents(monitor)
  const p = monitor.checkServiceHealth('svc')
  assert.equal(clock.pendingTimers, 1)
  monitor.unregisterService('svc')
  assert.equal(clock.pendingTimers, 0)
  const h = await p
  assert.equal(h.totalChecks, 0)
  d.resolve(false)
  await drain()
  assert.deepEqual(events, [])
})

test('alerts: which fire, in what order, with what details', async () => {
  const { monitor, clock } = makeMonitor()
  const check = scripted(clock)
  monitor.registerService('openai_api', check, { historySize: 10, alertCooldownMs: 60_000 })
  const alerts = []
  monitor.registerAlertHandler((service, alertType, details) => alerts.push({ service, alertType, details }))

  await feed(monitor, 'openai_api', check, [OK])
  assert.deepEqual(alerts, [], 'a first healthy check is not news')

  await feed(monitor, 'openai_api', check, [[false, 10]])
  assert.deepEqual(
    alerts.map((a) => a.alertType),
    ['status_change', 'check_failed', 'high_error_rate'],
  )
  const [change, failed, rate] = alerts.map((a) => a.details)
  assert.equal(alerts[0].service, 'openai_api')
  assert.equal(change.status, 'unhealthy')
  assert.equal(change.previousStatus, 'healthy')
  assert.equal(change.message, 'openai_api is unhealthy (was healthy): error rate 50.0% ≥ 20.0%')
  assert.equal(failed.error, 'check returned false')
  assert.equal(failed.message, 'Health check of openai_api failed: check returned false')
  assert.equal(failed.consecutiveFailures, 1)
  assert.deepEqual([rate.level, rate.value, rate.threshold], ['critical', 0.5, 0.2])
  assert.equal(rate.message, 'openai_api error rate is 50.0% (critical threshold 20.0%)')
  assert.equal(rate.health.name, 'openai_api')
  assert.equal(rate.at, clock.now())
})

test('alert cooldown is per alert type and per service; recovered always fires', async () => {
  const { monitor, clock } = makeMonitor()
  const a = scripted(clock)
  const b = scripted(clock)
  monitor.registerService('a', a, { historySize: 1, alertCooldownMs: 60_000 })
  monitor.registerService('b', b, { historySize: 1, alertCooldownMs: 60_000 })
  const alerts = []
  monitor.registerAlertHandler((service, type) => alerts.push(`${service}:${type}`))
  const take = () => alerts.splice(0)

  await feed(monitor, 'a', a, [[false, 0]])
  assert.deepEqual(take(), ['a:status_change', 'a:check_failed', 'a:high_error_rate'])
  // Another service is not held back by a's cooldown.
  await feed(monitor, 'b', b, [[false, 0]])
  assert.deepEqual(take(), ['b:status_change', 'b:check_failed', 'b:high_error_rate'])
  // Within the cooldown: a's failures raise nothing.
  clock.advance(59_999)
  await feed(monitor, 'a', a, [[false, 0]])
  assert.deepEqual(take(), [])
  // Recovery within the cooldown: status_change is held back, recovered is not.
  await feed(monitor, 'a', a, [[true, 0]])
  assert.deepEqual(take(), ['a:recovered'])
  // Once the cooldown has passed, each type fires again, once.
  clock.advance(1)
  await feed(monitor, 'a', a, [
    [false, 0],
    [false, 0],
  ])
  assert.deepEqual(take(), ['a:status_change', 'a:check_failed', 'a:high_error_rate'])
  await feed(monitor, 'a', a, [[true, 0]])
  assert.deepEqual(take(), ['a:recovered'])
})

test('high_latency carries its level and threshold; recovered carries the downtime', async () => {
  const { monitor, clock } = makeMonitor()
  const check = scripted(clock)
  monitor.registerService('gemini_api', check, { historySize: 1, alertCooldownMs: 0, latencyWarningMs: 100, latencyCriticalMs: 300 })
  const alerts = []
  monitor.registerAlertHandler((service, type, details) => alerts.push([type, details]))
  await feed(monitor, 'gemini_api', check, [[true, 150]])
  const [type, d] = alerts.find(([t]) => t === 'high_latency')
  assert.equal(type, 'high_latency')
  assert.deepEqual([d.level, d.threshold, d.status], ['warning', 100, 'degraded'])
  assert.match(d.message, /^gemini_api p95 latency is 15\d ms \(warning threshold 100 ms\)$/)
  alerts.length = 0
  await feed(monitor, 'gemini_api', check, [[true, 400]])
  assert.deepEqual(
    alerts.map(([t]) => t),
    ['status_change', 'high_latency'],
  )
  assert.equal(alerts[1][1].level, 'critical')
  alerts.length = 0
  clock.advance(90_000)
  await feed(monitor, 'gemini_api', check, [[true, 5]])
  const recovered = alerts.find(([t]) => t === 'recovered')[1]
  assert.equal(recovered.downtimeMs, 90_005)
  assert.equal(recovered.message, 'gemini_api has recovered: healthy again after 90 s')
})

test('a throwing or rejecting handler emits error; other handlers and monitoring go on', async () => {
  const { monitor, clock } = makeMonitor()
  const check = scripted(clock)
  monitor.registerService('svc', check, { historySize: 1, alertCooldownMs: 0 })
  const syncBoom = new Error('handler broke')
  const asyncBoom = new Error('webhook 500')
  const received = []
  monitor.registerAlertHandler(() => {
    throw syncBoom
  })
  monitor.registerAlertHandler(async () => {
    throw asyncBoom
  })
  monitor.registerAlertHandler((service, type) => received.push(type))
  const errors = []
  monitor.on('error', (err, ctx) => errors.push([err, ctx]))
  const h = await feed(monitor, 'svc', check, [FAIL])
  assert.equal(h.status, 'unhealthy')
  assert.deepEqual(received, ['status_change', 'check_failed', 'high_error_rate'])
  await drain()
  assert.equal(errors.length, 6, 'two failing handlers, three alerts each')
  assert.deepEqual(errors[0], [syncBoom, { source: 'alertHandler', name: 'svc', alertType: 'status_change' }])
  assert.ok(errors.some(([err, ctx]) => err === asyncBoom && ctx.alertType === 'high_error_rate'))
  // Monitoring goes on.
  assert.equal((await feed(monitor, 'svc', check, [OK])).status, 'healthy')
  assert.ok(received.includes('recovered'))
})

test('with no error listener, a failing handler becomes a process warning, not a crash', async () => {
  const { monitor, clock } = makeMonitor()
  const check = scripted(clock)
  monitor.registerService('svc', check)
  const remove = monitor.registerAlertHandler(() => {
    throw new Error('nobody listens')
  })
  const warned = once(process, 'warning')
  await feed(monitor, 'svc', check, [FAIL])
  const [w] = await warned
  assert.equal(w.name, 'BreakwaterWarning')
  assert.match(w.message, /health monitor alertHandler failed \(service "svc"\): nobody listens/)
  remove()
  const calls = []
  monitor.registerAlertHandler((s, t) => calls.push(t))
  clock.advance(300_000)
  await feed(monitor, 'svc', check, [FAIL])
  assert.deepEqual(calls, ['check_failed', 'high_error_rate'], 'the removed handler is gone')
})

test('a throwing event listener does not break the check', async () => {
  const { monitor, clock } = makeMonitor()
  const check = scripted(clock)
  monitor.registerService('svc', check)
  monitor.on('check', () => {
    throw new Error('listener bug')
  })
  const errors = []
  monitor.on('error', (err, ctx) => errors.push(ctx))
  const h = await feed(monitor, 'svc', check, [OK])
  assert.equal(h.totalChecks, 1)
  assert.deepEqual(errors, [{ source: 'listener', name: 'svc', event: 'check' }])
})

test("events come in order: check, statusChange, the breaker's own events, alert", async () => {
  const { clock } = makeMonitor()
  const registry = new CircuitBreakerRegistry()
  const linked = makeMonitor({ clock, registry }).monitor
  const breaker = registry.getOrCreate('api', { clock })
  const order = []
  breaker.on('stateChange', (e) => order.push(`breaker:${e.to}`))
  for (const ev of ['check', 'statusChange', 'alert']) linked.on(ev, (p) => order.push(ev === 'alert' ? `alert:${p.alertType}` : ev))
  const check = scripted(clock, [FAIL])
  linked.registerService('api', check, { breaker: 'api' })
  await linked.checkServiceHealth('api')
  assert.deepEqual(order, ['check', 'statusChange', 'breaker:open', 'alert:status_change', 'alert:check_failed', 'alert:high_error_rate'])
})

test('breaker link: unhealthy opens the breaker; a passing check while open probes it early', async () => {
  const { clock } = makeMonitor()
  const registry = new CircuitBreakerRegistry()
  const breaker = registry.getOrCreate('openai_api', { clock, resetTimeoutMs: 30_000 })
  const { monitor } = makeMonitor({ clock, registry })
  const check = scripted(clock)
  monitor.registerService('openai_api', check, { breaker: 'openai_api', historySize: 10 })
  const changes = []
  breaker.on('stateChange', (e) => changes.push(e))

  await feed(monitor, 'openai_api', check, [OK])
  assert.equal(breaker.state, 'closed')
  await feed(monitor, 'openai_api', check, [[false, 0]])
  assert.equal(monitor.getServiceHealth('openai_api').status, 'unhealthy')
  assert.equal(breaker.state, 'open')
  assert.equal(changes[0].cause, 'open_for')
  assert.equal(changes[0].reason, 'health check: openai_api is unhealthy')
  assert.equal(changes[0].nextAttemptAt, clock.now() + 30_000, "open for the breaker's reset timeout")

  // Still unhealthy and failing: nothing more happens to the breaker.
  await feed(monitor, 'openai_api', check, [[false, 0]])
  assert.equal(changes.length, 1)

  // A passing check while the breaker is open: half-open at once, long before 30 s.
  clock.advance(5_000)
  await feed(monitor, 'openai_api', check, [[true, 0]])
  assert.equal(monitor.getServiceHealth('openai_api').status, 'unhealthy', 'the history still says unhealthy')
  assert.equal(breaker.state, 'half_open')
  assert.equal(changes[1].cause, 'health_check_passed')
  // Trial calls close it as usual.
  await breaker.call(async () => 'ok')
  await breaker.call(async () => 'ok')
  assert.equal(breaker.state, 'closed')
})

test('breaker link: half-open breakers open too; forced_open and disabled are left alone', async () => {
  for (const [prepare, want] of [
    [(b) => b.openFor(1_000).probeEarly(), 'open'],
    [(b) => b.forceOpen(), 'forced_open'],
    [(b) => b.disable(), 'disabled'],
  ]) {
    const { clock } = makeMonitor()
    const registry = new CircuitBreakerRegistry()
    const breaker = registry.getOrCreate('svc', { clock })
    prepare(breaker)
    const { monitor } = makeMonitor({ clock, registry })
    const check = scripted(clock, [FAIL, OK])
    monitor.registerService('svc', check, { breaker: 'svc' })
    await monitor.checkServiceHealth('svc')
    assert.equal(breaker.state, want)
    await monitor.checkServiceHealth('svc')
    assert.equal(breaker.state, want === 'open' ? 'half_open' : want)
  }
})

test('breaker link: the same check that turns the service unhealthy does not probe', async () => {
  const { clock } = makeMonitor()
  const registry = new CircuitBreakerRegistry()
  const breaker = registry.getOrCreate('slow', { clock })
  const { monitor } = makeMonitor({ clock, registry })
  const check = scripted(clock)
  monitor.registerService('slow', check, { breaker: 'slow', historySize: 1 })
  // A passing but slow check makes the service unhealthy (p95 ≥ 3000 ms): open, not probed.
  await feed(monitor, 'slow', check, [[true, 3_000]])
  assert.equal(monitor.getServiceHealth('slow').status, 'unhealthy')
  assert.equal(breaker.state, 'open')
})

test('breaker link: a missing breaker emits one ERR_UNKNOWN_BREAKER error until it appears', async () => {
  const { clock } = makeMonitor()
  const registry = new CircuitBreakerRegistry()
  const { monitor } = makeMonitor({ clock, registry })
  const check = scripted(clock)
  monitor.registerService('meta_api', check, { breaker: 'meta_api', historySize: 1 })
  const errors = []
  monitor.on('error', (err, ctx) => errors.push([err, ctx]))
  await feed(monitor, 'meta_api', check, [OK, OK, FAIL])
  assert.equal(errors.length, 1)
  assert.equal(errors[0][0].code, 'ERR_UNKNOWN_BREAKER')
  assert.match(
    errors[0][0].message,
    /Service "meta_api" is linked to circuit breaker "meta_api", but no breaker by that name is in the registry/,
  )
  assert.deepEqual(errors[0][1], { source: 'breaker', name: 'meta_api' })
  // Created later: the link works from then on.
  const breaker = registry.getOrCreate('meta_api', { clock })
  await feed(monitor, 'meta_api', check, [OK, FAIL])
  assert.equal(breaker.state, 'open')
  assert.equal(errors.length, 1)
})

test('breaker link uses globalRegistry by default', async (t) => {
  const { CircuitBreaker, HealthMonitor, ManualClock, globalRegistry } = await import('../index.mjs')
  const clock = new ManualClock(0)
  const breaker = new CircuitBreaker('health_default_registry', { clock })
  t.after(() => globalRegistry.delete('health_default_registry'))
  const monitor = new HealthMonitor({ clock })
  monitor.registerService('x', () => false, { breaker: 'health_default_registry' })
  await monitor.checkServiceHealth('x')
  assert.equal(breaker.state, 'open')
})
