// FallbackHandler: the order of sources (live, cache, stale, fallback, error), the `source`
// field and the events, breakers, logging, and option validation.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FallbackHandler, CircuitBreaker, CircuitBreakerRegistry, ManualClock, isCircuitOpenError } from '../index.mjs'

function makeHandler(options = {}) {
  const clock = options.clock ?? new ManualClock(0)
  const logged = []
  const logger = { warn: (m) => logged.push(['warn', m]), error: (m) => logged.push(['error', m]) }
  const handler = new FallbackHandler({ logger, registry: new CircuitBreakerRegistry(), ...options, clock })
  const events = []
  for (const ev of ['fallback', 'cacheHit']) handler.on(ev, (e) => events.push([ev, e]))
  return { handler, clock, logged, events }
}

const ok = (v) => async () => v
const down =
  (msg = 'HTTP 503') =>
  async () => {
    throw new Error(msg)
  }

test('sources in order: live, then a fresh cached value, a stale one, the fallback, the error', async () => {
  const { handler, clock, events } = makeHandler({ cacheTtlMs: 1_000, staleIfErrorMs: 5_000 })
  const opts = { cacheKey: 'prompt-1', args: ['hello'] }

  const live = await handler.executeWithFallback('openai_api', async (p) => ({ text: `echo ${p}` }), opts)
  assert.deepEqual(live, { value: { text: 'echo hello' }, source: 'live' })
  assert.deepEqual(events, [])

  const cached = await handler.executeWithFallback('openai_api', down(), opts)
  assert.equal(cached.source, 'cache')
  assert.deepEqual(cached.value, { text: 'echo hello' })
  assert.equal(cached.error.message, 'HTTP 503')
  assert.equal(cached.ageMs, 0)

  clock.advance(2_000) // past the TTL, within staleIfErrorMs
  const stale = await handler.executeWithFallback('openai_api', down(), opts)
  assert.equal(stale.source, 'stale')
  assert.equal(stale.ageMs, 2_000)

  handler.registerFallback('openai_api', (err, prompt) => ({ degraded: true, prompt, why: err.message }))
  clock.advance(5_000) // past the grace period too
  const fb = await handler.executeWithFallback('openai_api', down('timeout'), opts)
  assert.deepEqual(fb.value, { degraded: true, prompt: 'hello', why: 'timeout' })
  assert.equal(fb.source, 'fallback')

  handler.unregisterFallback('openai_api')
  await assert.rejects(handler.executeWithFallback('openai_api', down('gone'), opts), /gone/)

  assert.deepEqual(
    events.map(([ev, e]) => (ev === 'cacheHit' ? `cacheHit:${e.stale}` : `fallback:${e.source}:${e.error.message}`)),
    [
      'cacheHit:false',
      'fallback:cache:HTTP 503',
      'cacheHit:true',
      'fallback:stale:HTTP 503',
      'fallback:fallback:timeout',
      'fallback:error:gone',
    ],
  )
  const served = handler.getMetrics().served
  assert.deepEqual(
    { live: served.live, cache: served.cache, stale: served.stale, fallback: served.fallback, error: served.error },
    { live: 1, cache: 1, stale: 1, fallback: 1, error: 1 },
  )
  assert.deepEqual(served.services.openai_api.live, 1)
})

test('a fresh value wins over the fallback; without a cacheKey the cache is skipped', async () => {
  const { handler } = makeHandler()
  handler.registerFallback('s', () => 'fallback')
  await handler.executeWithFallback('s', ok('live'), { cacheKey: 'k' })
  assert.equal((await handler.executeWithFallback('s', down(), { cacheKey: 'k' })).source, 'cache')
  const r = await handler.executeWithFallback('s', down())
  assert.deepEqual({ value: r.value, source: r.source }, { value: 'fallback', source: 'fallback' })
  await handler.executeWithFallback('s', ok('no key'))
  assert.equal(handler.cache.size, 1)
})

test('the fallback may be async; its own failure reaches the caller and is reported', async () => {
  const { handler, events } = makeHandler()
  handler.registerFallback('s', async (err) => `async ${err.message}`)
  assert.equal((await handler.executeWithFallback('s', down('x'))).value, 'async x')
  handler.registerFallback('s', async () => {
    throw new Error('fallback down too')
  })
  await assert.rejects(handler.executeWithFallback('s', down('x')), /fallback down too/)
  const last = events.at(-1)[1]
  assert.equal(last.source, 'error')
  assert.equal(last.fallbackError.message, 'fallback down too')
  assert.equal(last.error.message, 'x')
})

test('a synchronous throw or a non-Error rejection of fn is handled like a rejection', async () => {
  const { handler } = makeHandler()
  handler.registerFallback('s', (err) => ({ got: err }))
  const r = await handler.executeWithFallback('s', () => {
    throw 'plain string' // eslint-disable-line no-throw-literal
  })
  assert.deepEqual(r.value, { got: 'plain string' })
})

test('through a breaker: an open circuit is answered from the cache without calling fn', async () => {
  const { handler, clock } = makeHandler({ staleIfErrorMs: 0 })
  const breaker = new CircuitBreaker('meta_api', { registry: null, clock, failureThreshold: 1 })
  await handler.executeWithFallback('meta_api', ok({ ads: 3 }), { cacheKey: 'ads', breaker })
  await handler.executeWithFallback('meta_api', down(), { cacheKey: 'ads', breaker })
  assert.equal(breaker.state, 'open')
  let called = false
  const r = await handler.executeWithFallback(
    'meta_api',
    async () => {
      called = true
    },
    { cacheKey: 'ads', breaker },
  )
  assert.equal(called, false)
  assert.equal(r.source, 'cache')
  assert.ok(isCircuitOpenError(r.error))
  assert.deepEqual(r.value, { ads: 3 })
})

test('a breaker with its own fallback is refused (its answer would be cached as live)', async () => {
  const { handler, clock } = makeHandler()
  const breaker = new CircuitBreaker('b', { registry: null, clock, fallback: () => 'own' })
  await assert.rejects(handler.executeWithFallback('b', ok(1), { breaker }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /breaker = "the breaker \\"b\\"" \(expected a CircuitBreaker without a fallback option/,
  })
})

test('a live result that JSON cannot hold is returned, not cached, and reported as an error', async () => {
  const { handler } = makeHandler()
  const errors = []
  handler.on('error', (e) => errors.push(e))
  const fn = () => {}
  const r = await handler.executeWithFallback('s', async () => ({ fn }), { cacheKey: 'k' })
  assert.equal(r.source, 'live')
  assert.equal(r.value.fn, fn)
  assert.equal(handler.cache.size, 0)
  assert.equal(errors.length, 1)
  assert.equal(errors[0].code, 'ERR_NOT_SERIALIZABLE')
  assert.equal(errors[0].cacheKey, 'k')
})

test('with no error listener, errors are logged rather than thrown', async () => {
  const { handler, logged } = makeHandler()
  await handler.executeWithFallback('s', async () => 10n, { cacheKey: 'k' })
  assert.equal(logged.length, 1)
  assert.equal(logged[0][0], 'error')
  assert.match(logged[0][1], /ERR_NOT_SERIALIZABLE/)
})

test('logFallbacks logs each degraded answer through the logger; false keeps quiet', async () => {
  const { handler, logged } = makeHandler()
  handler.setCache('s', 'k', 'v')
  await handler.executeWithFallback('s', down('503'), { cacheKey: 'k' })
  await handler.executeWithFallback('s', down('503')).catch(() => {})
  assert.deepEqual(logged, [
    ['warn', 'breakwater: s answered from cache (0 ms old) after: 503'],
    ['warn', 'breakwater: s failed and nothing could answer for it: 503'],
  ])
  const quiet = makeHandler({ logFallbacks: false })
  await quiet.handler.executeWithFallback('s', down()).catch(() => {})
  assert.deepEqual(quiet.logged, [])
})

test('getFromCache, setCache and invalidate work on the handler cache, with cacheHit events', () => {
  const { handler, events } = makeHandler()
  assert.equal(handler.setCache('s', 'k', { a: 1 }, 50), true)
  assert.deepEqual(handler.getFromCache('s', 'k'), { a: 1 })
  assert.deepEqual(events, [['cacheHit', { service: 's', key: 'k', stale: false }]])
  assert.equal(handler.getFromCache('s', 'other'), undefined)
  assert.equal(handler.invalidate('s'), 1)
  assert.equal(handler.getFromCache('s', 'k'), undefined)
})

test('with the cache disabled, a failure goes straight to the fallback', async () => {
  const { handler } = makeHandler({ cacheEnabled: false })
  handler.registerFallback('s', () => 'fb')
  await handler.executeWithFallback('s', ok(1), { cacheKey: 'k' })
  assert.equal((await handler.executeWithFallback('s', down(), { cacheKey: 'k' })).source, 'fallback')
})

test('bad arguments are refused with ERR_INVALID_ARGUMENT naming the field', async () => {
  const { handler } = makeHandler()
  await assert.rejects(handler.executeWithFallback('', ok(1)), { code: 'ERR_INVALID_ARGUMENT', message: /service = ""/ })
  await assert.rejects(handler.executeWithFallback('s', 'nope'), { code: 'ERR_INVALID_ARGUMENT', message: /fn = "nope"/ })
  await assert.rejects(handler.executeWithFallback('s', ok(1), { args: 'x' }), { code: 'ERR_INVALID_ARGUMENT', message: /args = "x"/ })
  await assert.rejects(handler.executeWithFallback('s', ok(1), { cacheKey: 5 }), { code: 'ERR_INVALID_ARGUMENT', message: /cacheKey = 5/ })
  await assert.rejects(handler.executeWithFallback('s', ok(1), { breaker: {} }), { code: 'ERR_INVALID_ARGUMENT', message: /breaker/ })
  assert.throws(() => handler.registerFallback('s', 'x'), { code: 'ERR_INVALID_ARGUMENT', message: /fn = "x"/ })
})

test('every bad option is reported in one ERR_INVALID_CONFIG', () => {
  assert.throws(
    () =>
      new FallbackHandler({
        maxRetryAttempts: 0,
        retryDelayMs: -5,
        staleIfErrorMs: 'soon',
        concurrency: 1.5,
        logFallbacks: 'yes',
        persistPath: 7,
        registry: 3,
      }),
    (err) => {
      assert.equal(err.code, 'ERR_INVALID_CONFIG')
      assert.match(err.message, /^Invalid fallback options: /)
      for (const part of [
        'maxRetryAttempts = 0 (expected an integer from 1 to 1000)',
        'retryDelayMs = -5 (expected a number of milliseconds from 0 to 2147483647)',
        'staleIfErrorMs = "soon"',
        'concurrency = 1.5 (expected an integer from 1 to 10000)',
        'logFallbacks = "yes" (expected true or false)',
        'persistPath = 7 (expected a string of 1 to 4096 characters)',
        'registry = 3 (expected an object or null)',
      ]) {
        assert.ok(err.message.includes(part), `${part} in ${err.message}`)
      }
      return true
    },
  )
  assert.throws(() => new FallbackHandler({ logger: {} }), { code: 'ERR_INVALID_CONFIG', message: /logger/ })
})

test('the defaults follow the seed FallbackConfig, in ms', () => {
  const { handler } = makeHandler()
  assert.deepEqual(handler.cache.options, {
    cacheEnabled: true,
    cacheTtlMs: 3_600_000,
    cacheMaxEntries: 10_000,
    cacheMaxBytes: 64 * 2 ** 20,
    staleIfErrorMs: 0,
  })
  assert.deepEqual(handler.queue.options, {
    queueEnabled: true,
    maxQueueSize: 1_000,
    queueTtlMs: 300_000,
    autoRetryEnabled: true,
    maxRetryAttempts: 3,
    retryDelayMs: 60_000,
    retryBackoffMultiplier: 2,
    retryJitterRatio: 0.1,
    concurrency: 1,
    idempotencyRetentionMs: 86_400_000,
    persistPath: null,
  })
})

test('FALLBACK_QUEUE_ENABLED=false disables the queue: queueForRetry fails with ERR_QUEUE_DISABLED', async () => {
  const saved = process.env.FALLBACK_QUEUE_ENABLED
  try {
    process.env.FALLBACK_QUEUE_ENABLED = '0'
    const { handler } = makeHandler()
    assert.equal(handler.queue.options.queueEnabled, false)
    await assert.rejects(handler.queueForRetry('s', { operation: 'op', payload: 1 }), { code: 'ERR_QUEUE_DISABLED' })
  } finally {
    if (saved === undefined) delete process.env.FALLBACK_QUEUE_ENABLED
    else process.env.FALLBACK_QUEUE_ENABLED = saved
  }
})

test('queue events are re-emitted by the handler, and dead letters are logged', async () => {
  const { handler, clock, logged } = makeHandler({ retryDelayMs: 10, retryJitterRatio: 0, maxRetryAttempts: 1 })
  const seen = []
  for (const ev of ['enqueued', 'retry', 'completed', 'deadLetter']) handler.on(ev, (e) => seen.push(ev))
  handler.queue.registerHandler('publish_ad', async () => {
    throw new Error('400 bad creative')
  })
  await handler.queueForRetry('meta_api', { operation: 'publish_ad', payload: { id: 1 } })
  clock.advance(10)
  await handler.queue.runDue()
  assert.deepEqual(seen, ['enqueued', 'deadLetter'])
  assert.match(logged.at(-1)[1], /meta_api item .* dead-lettered \(max_attempts\) after 1 attempt\(s\): 400 bad creative/)
  await handler.close()
})

test('the fallback classes are exported from both entry points, as the same objects', async () => {
  const { createRequire } = await import('node:module')
  const cjs = createRequire(import.meta.url)('breakwater')
  const esm = await import('breakwater')
  for (const k of ['FallbackHandler', 'FallbackCache', 'RequestQueue', 'isQueueFullError', 'isNotSerializableError']) {
    assert.equal(typeof esm[k], 'function', k)
    assert.equal(esm[k], cjs[k], k)
  }
  assert.equal(esm.ErrorCodes.QUEUE_FULL, 'ERR_QUEUE_FULL')
})
