// Events and their order, the fallback paths, and per-call timeouts with AbortSignal.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isCallTimeoutError } from '../index.mjs'
import { makeBreaker, boom, failTimes, recordEvents, deferred } from './helpers.mjs'

test('events come in order: the outcome, then stateChange and the state event, then fallback', async () => {
  const fallback = (err, x) => `fallback(${err.code ?? err.message}, ${x})`
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 1_000, successThreshold: 1, fallback })
  const seen = recordEvents(breaker)
  assert.equal(await breaker.call(boom, 'a'), 'fallback(boom, a)')
  assert.deepEqual(
    seen.map(([e]) => e),
    ['failure', 'stateChange', 'open', 'fallback'],
  )
  const [, change] = seen[1]
  assert.deepEqual(
    { from: change.from, to: change.to, cause: change.cause, name: change.name, nextAttemptAt: change.nextAttemptAt },
    { from: 'closed', to: 'open', cause: 'consecutive_failures', name: 'test_api', nextAttemptAt: clock.now() + 1_000 },
  )
  assert.equal(seen[3][1].reason, 'failure')

  seen.length = 0
  assert.equal(await breaker.call(boom, 'b'), 'fallback(ERR_CIRCUIT_OPEN, b)')
  assert.deepEqual(
    seen.map(([e]) => e),
    ['reject', 'fallback'],
  )
  assert.equal(seen[1][1].reason, 'rejected')
  assert.equal(seen[0][1].retryAfterMs, 1_000)

  seen.length = 0
  clock.advance(1_000)
  assert.equal(await breaker.call(async () => 'ok'), 'ok')
  assert.deepEqual(
    seen.map(([e, p]) => (e === 'stateChange' ? `${e}:${p.from}->${p.to}:${p.cause}` : e)),
    ['stateChange:open->half_open:reset_timeout_elapsed', 'halfOpen', 'success', 'stateChange:half_open->closed:trials_succeeded', 'close'],
  )
})

test('openFor reports its reason; forceOpen, disable and reset emit their state events', async () => {
  const { breaker } = makeBreaker()
  const seen = recordEvents(breaker)
  breaker.openFor(1_000, 'retry-after 1s')
  breaker.forceOpen()
  breaker.disable()
  breaker.reset()
  breaker.reset() // from closed: no event
  assert.deepEqual(
    seen.filter(([e]) => e !== 'stateChange').map(([e]) => e),
    ['open', 'forcedOpen', 'disabled', 'close'],
  )
  const changes = seen.filter(([e]) => e === 'stateChange').map(([, p]) => p)
  assert.deepEqual(
    changes.map((c) => c.cause),
    ['open_for', 'force_open', 'disable', 'reset'],
  )
  assert.equal(changes[0].reason, 'retry-after 1s')
})

test('the fallback gets the error and the arguments; its own failure reaches the caller', async () => {
  const { breaker } = makeBreaker({ failureThreshold: 10, fallback: (err, a, b) => ({ err: err.message, a, b }) })
  assert.deepEqual(
    await breaker.call(
      async (a, b) => {
        throw new Error(`bad ${a}${b}`)
      },
      1,
      2,
    ),
    { err: 'bad 12', a: 1, b: 2 },
  )
  const { breaker: b2 } = makeBreaker({
    fallback: async () => {
      throw new Error('fallback down too')
    },
  })
  await assert.rejects(b2.call(boom), /fallback down too/)
})

test('without a fallback, a rejection throws ERR_CIRCUIT_OPEN and a failure throws the original error', async () => {
  const { breaker } = makeBreaker({ failureThreshold: 1 })
  const original = new Error('original')
  await assert.rejects(
    breaker.call(() => Promise.reject(original)),
    (e) => e === original,
  )
  await assert.rejects(
    breaker.call(async () => 1),
    { code: 'ERR_CIRCUIT_OPEN' },
  )
})

test('callTimeoutMs: a call that does not settle is rejected with ERR_CALL_TIMEOUT, counted, and its signal aborted', async () => {
  const { breaker, clock } = makeBreaker({ callTimeoutMs: 500, failureThreshold: 2 })
  const seen = recordEvents(breaker)
  let signal
  const hung = deferred()
  const p = breaker.execute((ctx) => {
    signal = ctx.signal
    return hung.promise
  })
  assert.equal(signal.aborted, false)
  clock.advance(499)
  assert.equal(signal.aborted, false)
  clock.advance(1)
  const err = await p.catch((e) => e)
  assert.equal(err.code, 'ERR_CALL_TIMEOUT')
  assert.ok(isCallTimeoutError(err))
  assert.equal(err.timeoutMs, 500)
  assert.equal(signal.aborted, true)
  assert.equal(signal.reason, err)
  hung.resolve('too late') // ignored
  await Promise.resolve()
  const m = breaker.getMetrics()
  assert.equal(m.timedOutRequests, 1)
  assert.equal(m.failedRequests, 1)
  assert.equal(m.successfulRequests, 0)
  assert.ok(seen.some(([e]) => e === 'timeout'))
  // A second timeout opens the circuit (timeouts are failures).
  const p2 = breaker.call(() => new Promise(() => {}))
  clock.advance(500)
  await assert.rejects(p2, { code: 'ERR_CALL_TIMEOUT' })
  assert.equal(breaker.state, 'open')
})

test('a call that settles before its timeout clears the timer and is not a timeout', async () => {
  const { breaker, clock } = makeBreaker({ callTimeoutMs: 500 })
  assert.equal(await breaker.call(async () => 'quick'), 'quick')
  await assert.rejects(breaker.call(boom), /boom/)
  assert.equal(clock.pendingTimers, 0, 'no timer left behind')
  assert.equal(breaker.getMetrics().timedOutRequests, 0)
})

test('a timeout goes to the fallback with reason timeout', async () => {
  const { breaker, clock } = makeBreaker({ callTimeoutMs: 100, fallback: (err) => `fb:${err.code}` })
  const reasons = []
  breaker.on('fallback', (e) => reasons.push(e.reason))
  const p = breaker.call(() => new Promise(() => {}))
  clock.advance(100)
  assert.equal(await p, 'fb:ERR_CALL_TIMEOUT')
  assert.deepEqual(reasons, ['timeout'])
})

test('a half-open trial that times out re-opens the circuit', async () => {
  const { breaker, clock } = makeBreaker({ callTimeoutMs: 100, failureThreshold: 1, resetTimeoutMs: 1_000 })
  await failTimes(breaker, 1)
  clock.advance(1_000)
  const p = breaker.call(() => new Promise(() => {}))
  assert.equal(breaker.state, 'half_open')
  clock.advance(100)
  await assert.rejects(p, { code: 'ERR_CALL_TIMEOUT' })
  assert.equal(breaker.state, 'open')
  assert.equal(breaker.getMetrics().currentResetTimeoutMs, 2_000)
})

test('listeners can be removed; a breaker with none still works', async () => {
  const { breaker } = makeBreaker()
  let n = 0
  const onSuccess = () => n++
  breaker.on('success', onSuccess)
  await breaker.call(async () => 1)
  breaker.off('success', onSuccess)
  await breaker.call(async () => 1)
  assert.equal(n, 1)
})
