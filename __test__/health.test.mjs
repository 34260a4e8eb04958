// Health monitor: option validation, the status rules at their boundaries, percentiles,
// uptime and the summary. Every check is scripted on a ManualClock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HealthMonitor, globalMonitor, ManualClock } from '../index.mjs'
import * as bw from 'breakwater'
import { makeMonitor, scripted, feed, repeat } from './health-helpers.mjs'

const OK = [true, 10]
const FAIL = [false, 10]

test('HealthMonitor and globalMonitor are exported from both entry points', async () => {
  assert.equal(bw.HealthMonitor, HealthMonitor)
  assert.equal(bw.globalMonitor, globalMonitor)
  assert.ok(globalMonitor instanceof HealthMonitor)
  assert.equal(globalMonitor.running, false)
  const { createRequire } = await import('node:module')
  const cjs = createRequire(import.meta.url)('breakwater')
  assert.equal(cjs.globalMonitor, globalMonitor)
})

test("the defaults are the seed's HealthCheckConfig in ms", async () => {
  const { monitor, clock } = makeMonitor()
  const check = scripted(clock)
  monitor.registerService('svc', check)
  // 100 checks kept: 5 failures (not in a row) of 100 is exactly errorRateWarning (0.05).
  const steps = repeat(100, OK)
  for (let i = 0; i < 5; i++) steps[i * 10] = FAIL
  let h = await feed(monitor, 'svc', check, steps)
  assert.deepEqual([h.totalChecks, h.errorRate, h.status], [100, 0.05, 'degraded'])
  h = await feed(monitor, 'svc', check, repeat(100, OK))
  assert.deepEqual([h.errorRate, h.status], [0, 'healthy'])
  // p95 over 100 checks: 6 at 1000 ms reach latencyWarningMs, 6 at 3000 ms latencyCriticalMs.
  h = await feed(monitor, 'svc', check, repeat(6, [true, 1_000]))
  assert.equal(h.status, 'degraded')
  h = await feed(monitor, 'svc', check, repeat(6, [true, 3_000]))
  assert.equal(h.status, 'unhealthy')

  // Scheduled checks are due every 30 s (the first service's phase is 0).
  const other = makeMonitor()
  other.monitor.registerService('svc', scripted(other.clock, [[true, 0]]))
  await other.monitor.runDueChecks()
  assert.equal(other.monitor.getServiceHealth('svc').nextCheckAt, other.clock.now() + 30_000)
})

test('unknown before the first check', () => {
  const { monitor, clock } = makeMonitor()
  monitor.registerService('svc', scripted(clock))
  const h = monitor.getServiceHealth('svc')
  assert.deepEqual(
    {
      status: h.status,
      totalChecks: h.totalChecks,
      lastCheck: h.lastCheck,
      lastError: h.lastError,
      uptime: h.uptime,
      errorRate: h.errorRate,
    },
    { status: 'unknown', totalChecks: 0, lastCheck: null, lastError: null, uptime: 100, errorRate: 0 },
  )
  assert.equal(monitor.getServiceHealth('nope'), undefined)
})

test('error-rate rules at their boundaries (historySize 20: one check is 5 %)', async () => {
  // Failures are spread out so that the consecutive-failure rule never applies.
  const cases = [
    [0, 'healthy'],
    [1, 'degraded'], // 5 % = errorRateWarning
    [3, 'degraded'], // 15 %
    [4, 'unhealthy'], // 20 % = errorRateCritical
  ]
  for (const [failures, want] of cases) {
    const { monitor, clock } = makeMonitor()
    const check = scripted(clock)
    monitor.registerService('svc', check, { historySize: 20 })
    const steps = repeat(20, OK)
    for (let i = 0; i < failures; i++) steps[i * 3] = FAIL
    const h = await feed(monitor, 'svc', check, steps)
    assert.equal(h.errorRate, failures / 20)
    assert.equal(h.status, want, `${failures} failures of 20`)
  }
})

test('p95-latency rules at their boundaries (historySize 20: the p95 is the 19th of 20)', async () => {
  const cases = [
    [1, 5_000, 'healthy'], // one slow check of 20 is above the p95
    [2, 999.999, 'healthy'],
    [2, 1_000, 'degraded'], // = latencyWarningMs
    [2, 2_999.999, 'degraded'],
    [2, 3_000, 'unhealthy'], // = latencyCriticalMs
  ]
  for (const [slow, latency, want] of cases) {
    const { monitor, clock } = makeMonitor()
    const check = scripted(clock)
    monitor.registerService('svc', check, { historySize: 20 })
    const h = await feed(monitor, 'svc', check, [...repeat(20 - slow, OK), ...repeat(slow, [true, latency])])
    assert.equal(h.status, want, `${slow} checks of ${latency} ms`)
  }
})

test('three failed checks in a row are unhealthy whatever the error rate', async () => {
  const { monitor, clock } = makeMonitor()
  const check = scripted(clock)
  monitor.registerService('svc', check) // historySize 100
  let h = await feed(monitor, 'svc', check, [...repeat(98, OK), FAIL, FAIL])
  assert.equal(h.errorRate, 0.02)
  assert.equal(h.status, 'healthy')
  h = await feed(monitor, 'svc', check, [FAIL])
  assert.equal(h.consecutiveFailures, 3)
  assert.equal(h.errorRate, 0.03)
  assert.equal(h.status, 'unhealthy')
  h = await feed(monitor, 'svc', check, [OK])
  assert.equal(h.consecutiveFailures, 0)
  assert.equal(h.status, 'healthy')
})

test('the thresholds are per service', async () => {
  const { monitor, clock } = makeMonitor()
  const strict = scripted(clock)
  const lax = scripted(clock)
  monitor.registerService('strict', strict, { historySize: 10, latencyWarningMs: 50, latencyCriticalMs: 100 })
  monitor.registerService('lax', lax, { historySize: 10, errorRateWarning: 0.5, errorRateCritical: 0.9 })
  assert.equal((await feed(monitor, 'strict', strict, repeat(10, [true, 60]))).status, 'degraded')
  assert.equal((await feed(monitor, 'lax', lax, [...repeat(6, OK), FAIL, OK, FAIL, OK])).status, 'healthy')
})

test('percentiles of known latency sets, within 1 %', async () => {
  const near = (got, want) => assert.ok(Math.abs(got - want) <= want * 0.01, `${got} vs ${want}`)
  {
    const { monitor, clock } = makeMonitor()
    const check = scripted(clock)
    monitor.registerService('uniform', check, { latencyWarningMs: 100_000, latencyCriticalMs: 100_000 })
    // 1..100 ms in a shuffled order.
    const h = await feed(
      monitor,
      'uniform',
      check,
      Array.from({ length: 100 }, (_, i) => [true, ((i * 37) % 100) + 1]),
    )
    near(h.latencyP50Ms, 50)
    near(h.latencyP95Ms, 95)
    near(h.latencyP99Ms, 99)
  }
  {
    const { monitor, clock } = makeMonitor()
    const check = scripted(clock)
    monitor.registerService('bimodal', check, { latencyWarningMs: 100_000, latencyCriticalMs: 100_000 })
    const h = await feed(monitor, 'bimodal', check, [...repeat(90, [true, 20]), ...repeat(10, [true, 2_500])])
    near(h.latencyP50Ms, 20)
    near(h.latencyP95Ms, 2_500)
    near(h.latencyP99Ms, 2_500)
  }
  {
    // Only the last historySize checks count: the early slow ones are forgotten.
    const { monitor, clock } = makeMonitor()
    const check = scripted(clock)
    monitor.registerService('window', check, { historySize: 10 })
    const h = await feed(monitor, 'window', check, [...repeat(10, [true, 900]), ...repeat(10, [true, 5])])
    near(h.latencyP99Ms, 5)
  }
  {
    // Failed checks count with their latency.
    const { monitor, clock } = makeMonitor()
    const check = scripted(clock)
    monitor.registerService('failing', check, { historySize: 4 })
    const h = await feed(monitor, 'failing', check, [
      [true, 10],
      [false, 40],
      [true, 10],
      [false, 40],
    ])
    near(h.latencyP50Ms, 10)
    near(h.latencyP99Ms, 40)
  }
})

test('uptime is the share of time since registration that was not unhealthy', async () => {
  const clock = new ManualClock(0)
  const { monitor } = makeMonitor({ clock })
  let ok = true
  monitor.registerService('svc', () => ok, { historySize: 1 })
  clock.advance(1_000)
  await monitor.checkServiceHealth('svc') // healthy at 1000 (unknown before counts as up)
  clock.advance(1_000)
  ok = false
  await monitor.checkServiceHealth('svc') // unhealthy from 2000
  clock.advance(1_000)
  assert.equal(monitor.getServiceHealth('svc').uptime, (100 * 2_000) / 3_000)
  clock.advance(1_000)
  ok = true
  await monitor.checkServiceHealth('svc') // healthy again at 4000: 2000 ms down
  assert.equal(monitor.getServiceHealth('svc').uptime, 50)
  clock.advance(4_000)
  assert.equal(monitor.getServiceHealth('svc').uptime, 75)
})

test('getHealthSummary: counts, services by name, and the overall status', async () => {
  const { monitor, clock } = makeMonitor()
  assert.deepEqual(monitor.getHealthSummary(), {
    status: 'healthy',
    totalServices: 0,
    healthyServices: 0,
    degradedServices: 0,
    unhealthyServices: 0,
    unknownServices: 0,
    services: {},
  })
  const checks = {}
  for (const name of ['a', 'b', 'c', 'd']) {
    checks[name] = scripted(clock)
    monitor.registerService(name, checks[name], { historySize: 20 })
  }
  await feed(monitor, 'a', checks.a, [OK])
  let s = monitor.getHealthSummary()
  assert.equal(s.status, 'healthy')
  assert.deepEqual([s.totalServices, s.healthyServices, s.unknownServices], [4, 1, 3])
  assert.deepEqual(Object.keys(s.services), ['a', 'b', 'c', 'd'])
  assert.equal(s.services.b.status, 'unknown')

  await feed(monitor, 'b', checks.b, [...repeat(19, OK), FAIL]) // 5 %: degraded
  s = monitor.getHealthSummary()
  assert.equal(s.status, 'degraded')
  assert.equal(s.degradedServices, 1)

  await feed(monitor, 'c', checks.c, [FAIL]) // 100 %: unhealthy
  s = monitor.getHealthSummary()
  assert.equal(s.status, 'unhealthy')
  assert.deepEqual([s.totalServices, s.healthyServices, s.degradedServices, s.unhealthyServices, s.unknownServices], [4, 1, 1, 1, 1])
  assert.deepEqual(s.services.c, monitor.getServiceHealth('c'))
  assert.equal(s.services.c.lastError, 'check returned false')
})

test('unregisterService removes a service from the summary and frees its name', async () => {
  const { monitor, clock } = makeMonitor()
  monitor.registerService('a', scripted(clock, [OK]))
  monitor.registerService('b', scripted(clock))
  assert.deepEqual(monitor.getServiceNames(), ['a', 'b'])
  await monitor.checkServiceHealth('a')
  assert.equal(monitor.unregisterService('a'), true)
  assert.equal(monitor.unregisterService('a'), false)
  assert.deepEqual(Object.keys(monitor.getHealthSummary().services), ['b'])
  monitor.registerService('a', scripted(clock))
  assert.equal(monitor.getServiceHealth('a').totalChecks, 0, 'a new registration starts afresh')
  await assert.rejects(monitor.checkServiceHealth('zzz'), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /name = "zzz" \(expected the name of a registered service\)/,
  })
})

const badOptions = [
  [{ checkIntervalMs: 50 }, /checkIntervalMs = 50 \(expected a number from 100 to 2147483647\)/],
  [{ checkTimeoutMs: 0 }, /checkTimeoutMs = 0 \(expected a number of milliseconds greater than 0/],
  [{ latencyWarningMs: '1s' }, /latencyWarningMs = "1s"/],
  [{ latencyWarningMs: 4_000 }, /latencyWarningMs = 4000 \(expected a number of milliseconds at most latencyCriticalMs \(3000\)\)/],
  [{ errorRateWarning: 0.3 }, /errorRateWarning = 0.3 \(expected a number at most errorRateCritical \(0.2\)\)/],
  [{ errorRateCritical: 1.2 }, /errorRateCritical = 1.2 \(expected a number greater than 0 and at most 1\)/],
  [{ historySize: 0 }, /historySize = 0 \(expected an integer from 1 to 10000\)/],
  [{ historySize: 2.5 }, /historySize = 2.5/],
  [{ alertCooldownMs: -1 }, /alertCooldownMs = -1 \(expected a number of milliseconds from 0/],
  [{ breaker: 42 }, /breaker = 42 \(expected a string\)/],
  [{ breaker: '' }, /breaker = "" \(expected the name of a circuit breaker\)/],
  [{ checkIntervalSeconds: 30 }, /unknown option "checkIntervalSeconds"/],
  [{ historysize: 10 }, /did you mean "historySize"/],
]

for (const [options, message] of badOptions) {
  test(`registerService rejects ${JSON.stringify(options)}`, () => {
    const { monitor, clock } = makeMonitor()
    assert.throws(() => monitor.registerService('svc', scripted(clock), options), { code: 'ERR_INVALID_CONFIG', message })
    assert.deepEqual(monitor.getServiceNames(), [], 'nothing was registered')
  })
}

test('every bad option is reported in one error; the options object is not kept or changed', async () => {
  const { monitor, clock } = makeMonitor()
  assert.throws(
    () => monitor.registerService('svc', scripted(clock), { checkIntervalMs: 1, historySize: -1, errorRateWarning: 2, checkTimout: 5 }),
    (err) => {
      assert.equal(err.code, 'ERR_INVALID_CONFIG')
      for (const part of ['checkIntervalMs = 1', 'historySize = -1', 'errorRateWarning = 2', 'checkTimout']) {
        assert.ok(err.message.includes(part), `${part} in ${err.message}`)
      }
      return true
    },
  )
  const options = Object.freeze({ historySize: 1 })
  const check = scripted(clock, [FAIL])
  monitor.registerService('svc', check, options)
  assert.equal((await monitor.checkServiceHealth('svc')).status, 'unhealthy')
  assert.deepEqual(Object.keys(options), ['historySize'])
})

test('bad arguments: name, check, options object, duplicate name', () => {
  const { monitor, clock } = makeMonitor()
  assert.throws(() => monitor.registerService('', scripted(clock)), { code: 'ERR_INVALID_ARGUMENT', message: /name = ""/ })
  assert.throws(() => monitor.registerService(7, scripted(clock)), { code: 'ERR_INVALID_ARGUMENT', message: /name = 7/ })
  assert.throws(() => monitor.registerService('svc', 'http://x'), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /check = "http:\/\/x" \(expected a function/,
  })
  assert.throws(() => monitor.registerService('svc', scripted(clock), null), { code: 'ERR_INVALID_CONFIG', message: /options = null/ })
  monitor.registerService('svc', scripted(clock))
  assert.throws(() => monitor.registerService('svc', scripted(clock)), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /name = "svc" \(expected the name of a service not registered yet/,
  })
  assert.throws(() => monitor.registerAlertHandler('nope'), { code: 'ERR_INVALID_ARGUMENT', message: /handler = "nope"/ })
})

test('monitor options are validated, with typo hints', () => {
  assert.throws(() => new HealthMonitor({ clock: 5 }), { code: 'ERR_INVALID_CONFIG', message: /clock = 5 \(expected an object\)/ })
  assert.throws(() => new HealthMonitor({ clock: {} }), { code: 'ERR_INVALID_CONFIG', message: /clock = an object \(expected a clock/ })
  assert.throws(() => new HealthMonitor({ regsitry: null }), {
    code: 'ERR_INVALID_CONFIG',
    message: /unknown option "regsitry".*did you mean "registry"/,
  })
  assert.throws(() => new HealthMonitor({ registry: {} }), {
    code: 'ERR_INVALID_CONFIG',
    message: /registry = an object \(expected a CircuitBreakerRegistry or null\)/,
  })
  assert.throws(() => new HealthMonitor([]), { code: 'ERR_INVALID_CONFIG', message: /options = an array/ })
})

test('HEALTH_CHECK_INTERVAL (seconds) sets the default interval; a bad value names the variable', async (t) => {
  const saved = process.env.HEALTH_CHECK_INTERVAL
  t.after(() => {
    if (saved === undefined) delete process.env.HEALTH_CHECK_INTERVAL
    else process.env.HEALTH_CHECK_INTERVAL = saved
  })
  const { monitor, clock } = makeMonitor()
  process.env.HEALTH_CHECK_INTERVAL = '5'
  monitor.registerService('env', scripted(clock, [[true, 0]]))
  monitor.registerService('explicit', scripted(clock, [[true, 0]]), { checkIntervalMs: 2_000 })
  clock.advance(2_000)
  assert.deepEqual(
    (await monitor.runDueChecks()).map((h) => h.name),
    ['env', 'explicit'],
  )
  assert.equal(monitor.getServiceHealth('env').nextCheckAt, clock.now() + 3_000, 'due every 5 s from registration')
  assert.equal(monitor.getServiceHealth('explicit').nextCheckAt, clock.now() + 1_236.0679774997898)
  process.env.HEALTH_CHECK_INTERVAL = 'soon'
  assert.throws(() => monitor.registerService('bad', scripted(clock)), {
    code: 'ERR_INVALID_CONFIG',
    message: /HEALTH_CHECK_INTERVAL = "soon" \(expected a number of seconds from 0.1 to 2147483.647\)/,
  })
  process.env.HEALTH_CHECK_INTERVAL = '0.05'
  assert.throws(
    () => monitor.registerService('bad', scripted(clock), { historySize: 0 }),
    (err) => {
      assert.match(err.message, /HEALTH_CHECK_INTERVAL = "0.05"/)
      assert.match(err.message, /historySize = 0/)
      return true
    },
  )
})
