// The breaker's rules through the public API, on a ManualClock (no sleeps).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isCircuitOpenError } from '../index.mjs'
import { makeBreaker, boom, failTimes, deferred } from './helpers.mjs'

test('opens after failureThreshold consecutive failures and rejects without calling fn', async () => {
  const { breaker } = makeBreaker({ failureThreshold: 3, resetTimeoutMs: 10_000 })
  await failTimes(breaker, 2)
  assert.equal(breaker.state, 'closed')
  await failTimes(breaker, 1)
  assert.equal(breaker.state, 'open')
  let called = false
  const err = await breaker
    .call(() => {
      called = true
    })
    .catch((e) => e)
  assert.equal(called, false)
  assert.equal(err.code, 'ERR_CIRCUIT_OPEN')
  assert.ok(isCircuitOpenError(err))
  assert.ok(err instanceof Error)
  assert.equal(err.breaker, 'test_api')
  assert.equal(err.state, 'open')
  assert.equal(err.retryAfterMs, 10_000)
  assert.match(err.message, /Circuit "test_api" is open/)
})

test('a success resets the consecutive failure count', async () => {
  const { breaker } = makeBreaker({ failureThreshold: 3 })
  await failTimes(breaker, 2)
  assert.equal(await breaker.call(async () => 'ok'), 'ok')
  await failTimes(breaker, 2)
  assert.equal(breaker.state, 'closed')
  assert.equal(breaker.getMetrics().consecutiveFailures, 2)
})

test('open moves to half-open lazily on the first call after resetTimeoutMs; successThreshold successes close it', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 5_000, successThreshold: 2 })
  await failTimes(breaker, 1)
  clock.advance(4_999)
  assert.equal((await breaker.call(async () => 1).catch((e) => e)).retryAfterMs, 1)
  clock.advance(1)
  assert.equal(breaker.state, 'open', 'no timer moves it: only a call does')
  assert.equal(await breaker.call(async () => 'trial 1'), 'trial 1')
  assert.equal(breaker.state, 'half_open')
  await breaker.call(async () => 'trial 2')
  assert.equal(breaker.state, 'closed')
  const m = breaker.getMetrics()
  assert.equal(m.window.totalRequests, 0, 'closing clears the window')
  assert.equal(m.currentResetTimeoutMs, 5_000)
})

test('a trial failure re-opens with exponential backoff, capped at maxResetTimeoutMs; a close resets it', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 1_000, maxResetTimeoutMs: 5_000, backoffMultiplier: 3 })
  await failTimes(breaker, 1)
  const seen = [breaker.getMetrics().currentResetTimeoutMs]
  for (let i = 0; i < 3; i++) {
    clock.advance(seen.at(-1))
    await failTimes(breaker, 1) // the trial fails
    assert.equal(breaker.state, 'open')
    seen.push(breaker.getMetrics().currentResetTimeoutMs)
  }
  assert.deepEqual(seen, [1_000, 3_000, 5_000, 5_000])
  clock.advance(5_000)
  await breaker.call(async () => 1)
  await breaker.call(async () => 1)
  assert.equal(breaker.state, 'closed')
  await failTimes(breaker, 1)
  assert.equal(breaker.getMetrics().currentResetTimeoutMs, 1_000)
})

test('exponentialBackoff: false keeps the open time constant; jitterRatio shortens it within the ratio', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 1_000, exponentialBackoff: false })
  await failTimes(breaker, 1)
  clock.advance(1_000)
  await failTimes(breaker, 1)
  assert.equal(breaker.getMetrics().currentResetTimeoutMs, 1_000)
  const times = new Set()
  for (let i = 0; i < 20; i++) {
    const { breaker: b } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 1_000, jitterRatio: 0.5 })
    await failTimes(b, 1)
    const t = b.getMetrics().currentResetTimeoutMs
    assert.ok(t >= 500 && t <= 1_000, `${t}`)
    times.add(t)
  }
  assert.ok(times.size > 5, 'jitter spreads the open times')
})

test('half-open admits at most halfOpenMaxCalls trials at once and rejects the rest immediately', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 1_000, halfOpenMaxCalls: 2, successThreshold: 2 })
  await failTimes(breaker, 1)
  clock.advance(1_000)
  const gates = [deferred(), deferred()]
  const trials = gates.map((g) => breaker.call(() => g.promise))
  assert.equal(breaker.state, 'half_open')
  const third = await breaker.call(async () => 'never').catch((e) => e)
  assert.equal(third.code, 'ERR_CIRCUIT_OPEN')
  assert.equal(third.state, 'half_open')
  assert.equal(breaker.getMetrics().halfOpenInFlight, 2)
  gates[0].resolve('a')
  gates[1].resolve('b')
  assert.deepEqual(await Promise.all(trials), ['a', 'b'])
  assert.equal(breaker.state, 'closed')
})

test('rule B: failure rate over the window, only with minThroughput calls', async () => {
  const { breaker } = makeBreaker({ failureThreshold: 100, minThroughput: 10, failureRateThreshold: 0.5 })
  for (let i = 0; i < 9; i++) {
    if (i % 2 === 1) await failTimes(breaker, 1)
    else await breaker.call(async () => 1)
  }
  assert.equal(breaker.state, 'closed', '9 calls: below minThroughput')
  await failTimes(breaker, 1) // 5 of 10 failed
  assert.equal(breaker.state, 'open')
})

test('rule B forgets failures that left the rolling window', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 100, minThroughput: 4, failureRateThreshold: 0.5, rollingWindowMs: 10_000 })
  await failTimes(breaker, 3)
  clock.advance(10_000) // the bucket holding them leaves the window
  await breaker.call(async () => 1)
  await breaker.call(async () => 1)
  await breaker.call(async () => 1)
  await failTimes(breaker, 1) // 1 of 4 in the window
  assert.equal(breaker.state, 'closed')
  assert.equal(breaker.getMetrics().window.failedRequests, 1)
  assert.equal(breaker.getMetrics().failedRequests, 4, 'the lifetime totals keep everything')
})

test('rule C: slow-call rate opens the circuit', async () => {
  const { breaker, clock } = makeBreaker({ slowCallDurationMs: 100, slowCallRateThreshold: 0.5, minThroughput: 4 })
  const slow = async () => {
    clock.advance(150)
    return 'slow'
  }
  await breaker.call(async () => 'fast')
  await breaker.call(slow)
  await breaker.call(async () => 'fast')
  assert.equal(breaker.state, 'closed')
  await breaker.call(slow) // 2 of 4 slow
  assert.equal(breaker.state, 'open')
  assert.equal(breaker.getMetrics().slowRequests, 2)
})

test('epochs: a call started while closed that ends after the open neither closes it nor counts as a trial', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 2, resetTimeoutMs: 1_000, successThreshold: 1 })
  const gate = deferred()
  const slowCall = breaker.call(() => gate.promise)
  await failTimes(breaker, 2)
  assert.equal(breaker.state, 'open')
  clock.advance(1_000)
  const trialGate = deferred()
  const trial = breaker.call(() => trialGate.promise) // moves to half-open, takes the only... trial
  assert.equal(breaker.state, 'half_open')
  gate.resolve('late')
  assert.equal(await slowCall, 'late')
  assert.equal(breaker.state, 'half_open', 'the stale success did not close the circuit')
  trialGate.resolve('ok')
  await trial
  assert.equal(breaker.state, 'closed')
})

test('a trial permit that is never settled is reclaimed after resetTimeoutMs (no call timeout)', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 1_000, halfOpenMaxCalls: 1, successThreshold: 1 })
  await failTimes(breaker, 1)
  clock.advance(1_000)
  const leaked = breaker.tryAcquire()
  assert.ok(leaked, 'a trial permit')
  assert.equal(breaker.tryAcquire(), null)
  clock.advance(999)
  assert.equal(breaker.tryAcquire(), null)
  clock.advance(1)
  const fresh = breaker.tryAcquire()
  assert.ok(fresh, 'the leaked permit was reclaimed')
  assert.equal(leaked.failure(new Error('too late')), true)
  assert.equal(breaker.state, 'half_open', 'the reclaimed permit no longer counts')
  fresh.success()
  assert.equal(breaker.state, 'closed')
})

test('tryAcquire / permit: manual use, latency from tryAcquire, settling twice is a no-op', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1 })
  const p = breaker.tryAcquire()
  clock.advance(250)
  assert.equal(p.success(), true)
  assert.equal(p.success(), false)
  assert.equal(p.failure(new Error('x')), false)
  const m = breaker.getMetrics()
  assert.equal(m.successfulRequests, 1)
  assert.ok(Math.abs(m.latencyP50Ms - 250) <= 2.5, `${m.latencyP50Ms}`)
  const q = breaker.tryAcquire()
  q.failure(new Error('down'))
  assert.equal(breaker.state, 'open')
  assert.equal(breaker.tryAcquire(), null)
  assert.equal(breaker.getMetrics().rejectedRequests, 1)
})

test('manual controls: openFor, forceOpen, disable and reset', async () => {
  const { breaker, clock } = makeBreaker({ resetTimeoutMs: 60_000 })
  breaker.openFor(2_500, 'retry-after from provider')
  assert.equal(breaker.state, 'open')
  assert.equal((await breaker.call(async () => 1).catch((e) => e)).retryAfterMs, 2_500)
  clock.advance(2_500)
  await breaker.call(async () => 1)
  assert.equal(breaker.state, 'half_open')

  breaker.forceOpen()
  clock.advance(10 * 60_000)
  const err = await breaker.call(async () => 1).catch((e) => e)
  assert.equal(err.state, 'forced_open')
  assert.equal(err.retryAfterMs, null)
  assert.equal(breaker.state, 'forced_open', 'forced open never half-opens by itself')

  breaker.disable()
  await failTimes(breaker, 50)
  assert.equal(breaker.state, 'disabled', 'disabled passes everything through')
  assert.equal(breaker.getMetrics().window.failedRequests, 50, 'and still measures')

  breaker.reset()
  const m = breaker.getMetrics()
  assert.equal(m.state, 'closed')
  assert.equal(m.totalRequests, 0)
  assert.equal(m.openCount, 0)
  assert.throws(() => breaker.openFor(-5), { code: 'ERR_INVALID_ARGUMENT', message: /ms = -5/ })
  assert.throws(() => breaker.openFor('10'), { code: 'ERR_INVALID_ARGUMENT' })
})

test('isFailure: an error it rejects is not counted but still reaches the caller; a throwing classifier counts', async () => {
  const notMine = Object.assign(new Error('bad request'), { status: 400 })
  const { breaker } = makeBreaker({ failureThreshold: 2, isFailure: (e) => e.status !== 400 })
  for (let i = 0; i < 5; i++) {
    await assert.rejects(
      breaker.call(() => Promise.reject(notMine)),
      notMine,
    )
  }
  assert.equal(breaker.state, 'closed')
  assert.equal(breaker.getMetrics().failedRequests, 0)
  const { breaker: b2 } = makeBreaker({
    failureThreshold: 1,
    isFailure: () => {
      throw new Error('classifier bug')
    },
  })
  await failTimes(b2, 1)
  assert.equal(b2.state, 'open')
})

test('fn may return a plain value, throw synchronously, or return a thenable', async () => {
  const { breaker } = makeBreaker({ failureThreshold: 2 })
  assert.equal(await breaker.call(() => 7), 7)
  assert.equal(await breaker.call((a, b) => a + b, 2, 3), 5)
  assert.equal(await breaker.call(() => ({ then: (res) => res('thenable') })), 'thenable')
  const p = breaker.call(boom)
  assert.ok(p instanceof Promise, 'a sync throw still returns a promise')
  await assert.rejects(p, /boom/)
  await assert.rejects(
    breaker.call(() => ({ then: (_, rej) => rej(new Error('thenable no')) })),
    /thenable no/,
  )
  assert.equal(breaker.state, 'open')
  const m = breaker.getMetrics()
  assert.equal(m.successfulRequests, 3)
  assert.equal(m.failedRequests, 2)
  await assert.rejects(breaker.call('not a function'), { code: 'ERR_INVALID_ARGUMENT' })
})

test('protect(fn) keeps this and the arguments', async () => {
  const { breaker } = makeBreaker()
  const api = {
    base: 10,
    add: breaker.protect(async function (x) {
      return this.base + x
    }),
  }
  assert.equal(await api.add(5), 15)
  assert.throws(() => breaker.protect(42), { code: 'ERR_INVALID_ARGUMENT' })
})

test('metrics: counts, rates and percentiles of a known latency set', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1000, minThroughput: 1000 })
  for (let ms = 1; ms <= 100; ms++) {
    const p = breaker.tryAcquire()
    clock.advance(ms)
    if (ms <= 20) p.failure(new Error('x'))
    else p.success()
  }
  const m = breaker.getMetrics()
  assert.equal(m.totalRequests, 100)
  assert.equal(m.successfulRequests, 80)
  assert.equal(m.failedRequests, 20)
  assert.equal(m.successRate, 80)
  assert.equal(m.failureRate, 0.2)
  assert.ok(Math.abs(m.latencyP50Ms - 50) <= 0.5, `p50 ${m.latencyP50Ms}`)
  assert.ok(Math.abs(m.latencyP95Ms - 95) <= 1, `p95 ${m.latencyP95Ms}`)
  assert.ok(Math.abs(m.latencyP99Ms - 99) <= 1, `p99 ${m.latencyP99Ms}`)
  assert.equal(m.latencyMeanMs, 50.5)
  assert.ok(Math.abs(m.latencyMaxMs - 100) <= 1)
  assert.equal(m.window.totalRequests, 100)
  assert.ok(Math.abs(m.window.latencyP99Ms - 99) <= 1)
  assert.equal(m.openedAt, null)
  assert.equal(m.nextAttemptAt, null)
  // Every documented field is present.
  for (const k of [
    'name',
    'state',
    'timedOutRequests',
    'slowRequests',
    'rejectedRequests',
    'openCount',
    'currentResetTimeoutMs',
    'halfOpenInFlight',
    'consecutiveFailures',
  ]) {
    assert.ok(k in m, k)
  }
})

test('fast successes batched in JS are visible to getMetrics at once', async () => {
  const { breaker } = makeBreaker()
  for (let i = 0; i < 1000; i++) await breaker.call(async () => i)
  assert.equal(breaker.getMetrics().successfulRequests, 1000)
})

test('openedAt and nextAttemptAt report the open period', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 30_000 })
  const t = clock.now()
  await failTimes(breaker, 1)
  const m = breaker.getMetrics()
  assert.equal(m.openedAt, t)
  assert.equal(m.nextAttemptAt, t + 30_000)
  assert.equal(m.openCount, 1)
})
