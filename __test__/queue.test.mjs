// RequestQueue rules on a ManualClock: backoff, dead letters by attempts and by TTL, a full
// queue, breaker pause and drain with concurrency, deduplication, function items.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RequestQueue, CircuitBreaker, CircuitBreakerRegistry, ManualClock, isQueueFullError } from '../index.mjs'
import { deferred } from './helpers.mjs'

function makeQueue(options = {}) {
  const clock = options.clock ?? new ManualClock(0)
  const registry = options.registry ?? new CircuitBreakerRegistry()
  const logged = []
  const logger = { warn: (m) => logged.push(m), error: (m) => logged.push(m) }
  const queue = new RequestQueue({ retryJitterRatio: 0, retryDelayMs: 1_000, logger, ...options, clock, registry })
  const events = []
  for (const ev of ['enqueued', 'retry', 'completed', 'deadLetter']) queue.on(ev, (e) => events.push([ev, e]))
  return { queue, clock, registry, events, logged }
}

const publish = (payload) => ({ operation: 'publish_ad', payload })
/** Lets settled handler promises reach the queue (no timers involved). */
const settled = () => new Promise((resolve) => setImmediate(resolve))

test('the first attempt comes after retryDelayMs; each retry waits retryDelayMs × multiplier^attempts', async () => {
  const { queue, clock, events } = makeQueue({ autoRetryEnabled: false, maxRetryAttempts: 5 })
  const attempts = []
  queue.registerHandler('publish_ad', async (payload, attempt) => {
    attempts.push([clock.now(), attempt, payload.ad])
    throw new Error(`HTTP 503 #${attempt}`)
  })
  const id = await queue.enqueue('meta_api', publish({ ad: 7 }))
  assert.equal(queue.list()[0].nextAttemptAt, 1_000)
  clock.set(999)
  assert.equal(await queue.runDue(), 0)
  for (const t of [1_000, 3_000, 7_000, 15_000]) {
    clock.set(t - 1)
    assert.equal(await queue.runDue(), 0, `nothing before ${t}`)
    clock.set(t)
    assert.equal(await queue.runDue(), 1, `one attempt at ${t}`)
  }
  assert.deepEqual(attempts, [
    [1_000, 1, 7],
    [3_000, 2, 7],
    [7_000, 3, 7],
    [15_000, 4, 7],
  ])
  const retries = events.filter(([e]) => e === 'retry').map(([, e]) => [e.id, e.attempt, e.delayMs, e.nextAttemptAt, e.error.message])
  assert.deepEqual(retries, [
    [id, 1, 2_000, 3_000, 'HTTP 503 #1'],
    [id, 2, 4_000, 7_000, 'HTTP 503 #2'],
    [id, 3, 8_000, 15_000, 'HTTP 503 #3'],
    [id, 4, 16_000, 31_000, 'HTTP 503 #4'],
  ])
  const [item] = queue.list()
  assert.equal(item.attempts, 4)
  assert.equal(item.lastError, 'HTTP 503 #4')
})

test('jitter shortens each wait by a random share up to retryJitterRatio', async () => {
  const { queue } = makeQueue({ retryJitterRatio: 0.5, maxQueueSize: 500 })
  for (let i = 0; i < 200; i++) await queue.enqueue('s', publish(i))
  const dues = queue.list().map((i) => i.nextAttemptAt)
  assert.ok(
    dues.every((d) => d >= 500 && d <= 1_000),
    'within [delay × (1 - ratio), delay]',
  )
  assert.ok(new Set(dues).size > 50, 'spread out')
})

test('after maxRetryAttempts failures an item is dead-lettered with its last error', async () => {
  const { queue, clock, events } = makeQueue({ autoRetryEnabled: false, maxRetryAttempts: 2 })
  queue.registerHandler('publish_ad', async (_p, attempt) => {
    throw new Error(`rejected #${attempt}`)
  })
  const id = await queue.enqueue('meta_api', publish({ ad: 1 }), { idempotencyKey: 'ad-1' })
  clock.set(1_000)
  await queue.runDue()
  clock.set(3_000)
  await queue.runDue()
  assert.deepEqual(queue.list(), [])
  const [dead] = queue.deadLetters()
  assert.deepEqual(
    {
      id: dead.id,
      state: dead.state,
      reason: dead.reason,
      attempts: dead.attempts,
      lastError: dead.lastError,
      deadAt: dead.deadAt,
      payload: dead.payload,
      key: dead.idempotencyKey,
    },
    { id, state: 'dead', reason: 'max_attempts', attempts: 2, lastError: 'rejected #2', deadAt: 3_000, payload: { ad: 1 }, key: 'ad-1' },
  )
  const ev = events.find(([e]) => e === 'deadLetter')[1]
  assert.equal(ev.id, id)
  assert.equal(ev.error.message, 'rejected #2', 'the event carries the error itself')
  assert.equal(queue.getMetrics().deadLettered, 1)
  // The key of a dead item may be used again.
  const again = await queue.enqueue('meta_api', publish({ ad: 1 }), { idempotencyKey: 'ad-1' })
  assert.notEqual(again, id)
  assert.equal(queue.clearDeadLetters(), 1)
  assert.deepEqual(queue.deadLetters(), [])
})

test('an item older than queueTtlMs is dead-lettered at its TTL, by the timer', async () => {
  const { queue, clock, events } = makeQueue({ queueTtlMs: 5_000, retryDelayMs: 10_000 })
  const id = await queue.enqueue('meta_api', publish({ ad: 2 }))
  assert.equal(clock.pendingTimers, 1, 'one timer for the whole queue')
  clock.advance(4_999)
  assert.equal(queue.deadLetters().length, 0)
  clock.advance(1)
  const [dead] = queue.deadLetters()
  assert.deepEqual([dead.id, dead.reason, dead.lastError, dead.attempts], [id, 'expired', null, 0])
  assert.deepEqual(
    events.map(([e]) => e),
    ['enqueued', 'deadLetter'],
  )
  assert.equal(clock.pendingTimers, 0, 'nothing left to wake for')
})

test('a failure past queueTtlMs dead-letters instead of scheduling another attempt', async () => {
  const { queue, clock } = makeQueue({ autoRetryEnabled: false, queueTtlMs: 1_500, maxRetryAttempts: 10 })
  queue.registerHandler('publish_ad', async () => {
    clock.advance(600) // a slow call
    throw new Error('slow 503')
  })
  await queue.enqueue('s', publish(1))
  clock.set(1_000)
  await queue.runDue()
  const [dead] = queue.deadLetters()
  assert.deepEqual([dead.reason, dead.lastError], ['expired', 'slow 503'])
})

test('a full queue refuses with ERR_QUEUE_FULL and drops nothing already queued', async () => {
  const { queue } = makeQueue({ maxQueueSize: 3 })
  const ids = []
  for (let i = 0; i < 3; i++) ids.push(await queue.enqueue('s', publish(i)))
  const err = await queue.enqueue('s', publish(3)).catch((e) => e)
  assert.equal(err.code, 'ERR_QUEUE_FULL')
  assert.ok(isQueueFullError(err))
  assert.match(err.message, /maxQueueSize \(3\)/)
  assert.deepEqual(
    queue.list().map((i) => i.id),
    ids,
  )
  assert.deepEqual(
    queue.list().map((i) => i.payload),
    [0, 1, 2],
  )
  assert.equal(queue.getMetrics().rejectedFull, 1)
})

test('while the breaker is open its items wait; they drain as it lets calls through, at `concurrency`', async () => {
  const clock = new ManualClock(0)
  const registry = new CircuitBreakerRegistry()
  const breaker = new CircuitBreaker('meta_api', {
    registry,
    clock,
    failureThreshold: 1,
    resetTimeoutMs: 30_000,
    halfOpenMaxCalls: 2,
    successThreshold: 2,
  })
  const { queue } = makeQueue({ clock, registry, concurrency: 2, retryDelayMs: 100 })
  const running = []
  queue.registerHandler('publish_ad', (payload) => {
    const d = deferred()
    running.push({ payload, d })
    return d.promise
  })
  await breaker.call(() => Promise.reject(new Error('500'))).catch(() => {})
  assert.equal(breaker.state, 'open')
  for (let i = 0; i < 5; i++) await queue.enqueue('meta_api', publish(i))
  clock.advance(29_000)
  assert.equal(running.length, 0, 'paused while open')
  assert.equal(breaker.getMetrics().rejectedRequests, 0, 'waiting costs the breaker no rejections')
  clock.advance(1_000) // the open time is up: the timer wakes the queue at nextAttemptAt
  assert.equal(breaker.state, 'half_open')
  assert.deepEqual(
    running.map((r) => r.payload),
    [0, 1],
    'two trial permits, concurrency 2',
  )
  running[0].d.resolve('ok')
  running[1].d.resolve('ok')
  await settled()
  assert.equal(breaker.state, 'closed')
  assert.deepEqual(
    running.map((r) => r.payload),
    [0, 1, 2, 3],
    'closed: drains two at a time',
  )
  for (const r of running.slice(2)) r.d.resolve('ok')
  await settled()
  assert.deepEqual(
    running.map((r) => r.payload),
    [0, 1, 2, 3, 4],
  )
  running[4].d.resolve('ok')
  await queue.runDue()
  assert.equal(queue.list().length, 0)
  assert.equal(breaker.getMetrics().successfulRequests, 5, 'queue attempts count in the breaker')
})

test('a failing attempt counts as a breaker failure, and the queue pauses when it opens', async () => {
  const clock = new ManualClock(0)
  const registry = new CircuitBreakerRegistry()
  const breaker = new CircuitBreaker('s', { registry, clock, failureThreshold: 2, resetTimeoutMs: 60_000 })
  const { queue } = makeQueue({ clock, registry, autoRetryEnabled: false, concurrency: 5, maxRetryAttempts: 10 })
  let calls = 0
  queue.registerHandler('publish_ad', async () => {
    calls++
    throw new Error('502')
  })
  for (let i = 0; i < 4; i++) await queue.enqueue('s', publish(i))
  clock.set(1_000)
  await queue.runDue()
  assert.equal(breaker.state, 'open')
  assert.equal(calls, 4, 'four permits were given in the closed state')
  clock.set(10_000)
  assert.equal(await queue.runDue(), 0, 'open: nothing runs')
  assert.equal(calls, 4)
})

test('a forced-open breaker pauses its service; other services keep draining', async () => {
  const clock = new ManualClock(0)
  const registry = new CircuitBreakerRegistry()
  new CircuitBreaker('meta_api', { registry, clock }).forceOpen()
  const { queue } = makeQueue({ clock, registry, autoRetryEnabled: false })
  const done = []
  queue.registerHandler('publish_ad', async (p) => done.push(p))
  await queue.enqueue('meta_api', publish('meta'))
  await queue.enqueue('google_ads', publish('google'))
  clock.set(1_000)
  await queue.runDue()
  assert.deepEqual(done, ['google'])
  registry.get('meta_api').reset()
  await queue.runDue()
  assert.deepEqual(done, ['google', 'meta'])
})

test('an idempotencyKey that is queued, running or completed returns the existing id', async () => {
  const { queue, clock, events } = makeQueue({ autoRetryEnabled: false, idempotencyRetentionMs: 60_000 })
  const gate = deferred()
  queue.registerHandler('publish_ad', () => gate.promise)
  const id = await queue.enqueue('meta_api', publish({ v: 1 }), { idempotencyKey: 'campaign-9' })
  assert.equal(await queue.enqueue('meta_api', publish({ v: 2 }), { idempotencyKey: 'campaign-9' }), id, 'queued')
  clock.set(1_000)
  const run = queue.runDue()
  assert.equal(queue.list()[0].state, 'running')
  assert.equal(await queue.enqueue('meta_api', publish({ v: 3 }), { idempotencyKey: 'campaign-9' }), id, 'running')
  gate.resolve('published')
  await run
  assert.equal(await queue.enqueue('meta_api', publish({ v: 4 }), { idempotencyKey: 'campaign-9' }), id, 'completed')
  assert.equal(queue.list().length, 0, 'no second item')
  assert.equal(events.filter(([e]) => e === 'enqueued').length, 1)
  assert.equal(queue.getMetrics().deduplicated, 3)
  clock.set(61_000)
  assert.notEqual(
    await queue.enqueue('meta_api', publish({ v: 5 }), { idempotencyKey: 'campaign-9' }),
    id,
    'forgotten after idempotencyRetentionMs',
  )
})

test('handlers get the payload, the attempt and a context with the idempotency key', async () => {
  const { queue, clock, events } = makeQueue({ autoRetryEnabled: false })
  const seen = []
  queue.registerHandler('publish_ad', async (payload, attempt, ctx) => {
    seen.push({ payload, attempt, ctx })
    payload.mutated = true // a fresh copy per attempt
    if (attempt === 1) throw new Error('once')
    return { adId: 'A1' }
  })
  const id = await queue.enqueue('meta_api', publish({ creative: 'x' }), { idempotencyKey: 'k1' })
  const plain = await queue.enqueue('meta_api', publish(null))
  clock.set(1_000)
  await queue.runDue()
  clock.set(3_000)
  await queue.runDue()
  assert.deepEqual(seen[0], {
    payload: { creative: 'x', mutated: true },
    attempt: 1,
    ctx: { id, idempotencyKey: 'k1', service: 'meta_api', operation: 'publish_ad', attempt: 1, enqueuedAt: 0 },
  })
  assert.deepEqual(seen[2].payload, { creative: 'x', mutated: true })
  assert.equal(seen[2].attempt, 2)
  assert.equal(seen[1].ctx.idempotencyKey, plain, 'without a key, the id (stable across restarts) serves')
  const completed = events.find(([e, p]) => e === 'completed' && p.id === id)[1]
  assert.deepEqual(completed.result, { adId: 'A1' })
})

test('function items run in memory; they get the same context', async () => {
  const { queue, clock } = makeQueue({ autoRetryEnabled: false })
  const calls = []
  const id = await queue.enqueue('openai_api', async (ctx) => {
    calls.push(ctx)
    return 'done'
  })
  assert.equal(queue.list()[0].kind, 'function')
  clock.set(1_000)
  assert.equal(await queue.runDue(), 1)
  assert.equal(calls[0].id, id)
  assert.equal(calls[0].attempt, 1)
  assert.equal(queue.list().length, 0)
})

test('an item whose operation has no handler waits without using attempts, and says so once', async () => {
  const { queue, clock, logged } = makeQueue({ autoRetryEnabled: false, retryDelayMs: 1_000, queueTtlMs: 100_000 })
  await queue.enqueue('s', { operation: 'unknown_op', payload: 1 })
  await queue.enqueue('s', { operation: 'unknown_op', payload: 2 })
  clock.set(1_000)
  await queue.runDue()
  const items = queue.list()
  assert.deepEqual(
    items.map((i) => [i.attempts, i.nextAttemptAt]),
    [
      [0, 2_000],
      [0, 2_000],
    ],
  )
  assert.match(items[0].lastError, /no handler is registered for operation "unknown_op"/)
  assert.equal(logged.length, 1)
  assert.match(logged[0], /^breakwater: ERR_NO_HANDLER: Queue item .* is waiting/)
  queue.registerHandler('unknown_op', async () => 'ok')
  clock.set(2_000)
  assert.equal(await queue.runDue(), 2)
})

test('with autoRetryEnabled the clock drives the queue; runDue waits for what the timer started', async () => {
  const { queue, clock } = makeQueue({ retryDelayMs: 100 })
  const done = []
  queue.registerHandler('publish_ad', async (p) => done.push(p))
  await queue.enqueue('s', publish('a'))
  clock.advance(100)
  assert.equal(await queue.runDue(), 1)
  assert.deepEqual(done, ['a'])
})

test('a throwing event listener is reported, and the queue keeps its books', async () => {
  const { queue, clock, logged } = makeQueue({ autoRetryEnabled: false })
  queue.on('completed', () => {
    throw new Error('listener bug')
  })
  queue.registerHandler('publish_ad', async () => 'ok')
  await queue.enqueue('s', publish(1))
  clock.set(1_000)
  await queue.runDue()
  assert.equal(queue.list().length, 0)
  assert.equal(queue.getMetrics().completed, 1)
  assert.ok(logged.some((m) => /listener bug/.test(m)))
})

test('bad items and arguments get clear errors', async () => {
  const { queue } = makeQueue()
  await assert.rejects(queue.enqueue('s', { payload: 1 }), { code: 'ERR_INVALID_ARGUMENT', message: /item.operation = undefined/ })
  await assert.rejects(queue.enqueue('s', 'x'), { code: 'ERR_INVALID_ARGUMENT', message: /item = "x"/ })
  await assert.rejects(
    queue.enqueue(
      's',
      publish(() => {}),
    ),
    { code: 'ERR_NOT_SERIALIZABLE', message: /^payload cannot be stored as JSON/ },
  )
  await assert.rejects(queue.enqueue('s', publish({ n: 1n })), { code: 'ERR_NOT_SERIALIZABLE' })
  await assert.rejects(queue.enqueue('s', publish(1), { idempotencyKey: '' }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /idempotencyKey = ""/,
  })
  await assert.rejects(queue.enqueue('', publish(1)), { code: 'ERR_INVALID_ARGUMENT', message: /service = ""/ })
  assert.throws(() => queue.registerHandler('op', null), { code: 'ERR_INVALID_ARGUMENT', message: /handler = null/ })
  assert.equal(queue.list().length, 0)
})

test('close waits for running attempts, then refuses new work with ERR_QUEUE_CLOSED', async () => {
  const { queue, clock } = makeQueue({ autoRetryEnabled: false })
  const gate = deferred()
  let finished = false
  queue.registerHandler('publish_ad', async () => {
    await gate.promise
    finished = true
  })
  await queue.enqueue('s', publish(1))
  clock.set(1_000)
  const run = queue.runDue()
  const closing = queue.close()
  gate.resolve()
  await closing
  await run
  assert.equal(finished, true)
  await assert.rejects(queue.enqueue('s', publish(2)), { code: 'ERR_QUEUE_CLOSED' })
})
