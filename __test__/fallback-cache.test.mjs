// FallbackCache: TTL, LRU by count and by bytes, stale-if-error, JSON-only values, options.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FallbackCache, ManualClock, isNotSerializableError } from '../index.mjs'

function makeCache(options = {}) {
  const clock = options.clock ?? new ManualClock(0)
  return { cache: new FallbackCache({ ...options, clock }), clock }
}

test('a value lives for its TTL (the default, or its own)', () => {
  const { cache, clock } = makeCache({ cacheTtlMs: 1_000 })
  assert.equal(cache.set('openai_api', 'q1', { answer: 42 }), true)
  assert.equal(cache.set('openai_api', 'q2', 'short', 100), true)
  clock.advance(99)
  assert.deepEqual(cache.get('openai_api', 'q1'), { answer: 42 })
  assert.equal(cache.get('openai_api', 'q2'), 'short')
  clock.advance(1)
  assert.equal(cache.get('openai_api', 'q2'), undefined)
  clock.advance(899)
  assert.ok(cache.has('openai_api', 'q1'))
  clock.advance(1)
  assert.equal(cache.get('openai_api', 'q1'), undefined)
  assert.equal(cache.size, 0, 'expired entries are dropped when found')
  assert.equal(cache.getMetrics().expirations, 2)
})

test('LRU by count: the least recently used entry goes first', () => {
  const { cache } = makeCache({ cacheMaxEntries: 3 })
  for (const k of ['a', 'b', 'c']) cache.set('s', k, k)
  assert.equal(cache.get('s', 'a'), 'a') // a is now the most recent
  cache.set('s', 'd', 'd')
  assert.equal(cache.get('s', 'b'), undefined)
  assert.deepEqual(
    ['a', 'c', 'd'].map((k) => cache.get('s', k)),
    ['a', 'c', 'd'],
  )
  assert.equal(cache.size, 3)
  assert.equal(cache.getMetrics().evictions, 1)
})

test('LRU by bytes: entries go until the byte budget holds; a value over budget is refused', () => {
  const { cache } = makeCache({ cacheMaxBytes: 4_096 })
  const kb = 'x'.repeat(1_000)
  for (let i = 0; i < 3; i++) assert.equal(cache.set('s', `k${i}`, kb), true)
  const perEntry = cache.bytes / 3
  assert.ok(perEntry > 1_000 && perEntry < 1_200, `${perEntry} bytes per 1 KB entry`)
  cache.set('s', 'k3', kb) // the fourth does not fit with all three
  assert.equal(cache.get('s', 'k0'), undefined)
  assert.ok(cache.bytes <= 4_096)
  assert.equal(cache.set('s', 'k1', 'y'.repeat(5_000)), false, 'larger than the whole budget')
  assert.equal(cache.get('s', 'k1'), undefined, 'the outdated value under that key is dropped too')
  assert.equal(cache.getMetrics().rejected, 1)
})

test('stale-if-error: getEntry answers within staleIfErrorMs after the TTL; get does not', () => {
  const { cache, clock } = makeCache({ cacheTtlMs: 1_000, staleIfErrorMs: 500 })
  cache.set('s', 'k', { v: 1 })
  assert.deepEqual(cache.getEntry('s', 'k'), { value: { v: 1 }, stale: false, ageMs: 0, expiresAt: 1_000 })
  clock.advance(1_200)
  assert.equal(cache.get('s', 'k'), undefined)
  assert.deepEqual(cache.getEntry('s', 'k'), { value: { v: 1 }, stale: true, ageMs: 1_200, expiresAt: 1_000 })
  clock.advance(300)
  assert.equal(cache.getEntry('s', 'k'), undefined, 'past TTL + staleIfErrorMs')
})

test('values that JSON cannot hold are refused with ERR_NOT_SERIALIZABLE, naming where', () => {
  const { cache } = makeCache()
  const cyclic = { a: 1 }
  cyclic.self = cyclic
  const cases = [
    [() => {}, /a function has no JSON form/],
    [Symbol('s'), /a symbol has no JSON form/],
    [undefined, /undefined has no JSON form/],
    [10n, /BigInt/],
    [{ deep: { n: 10n } }, /BigInt/],
    [cyclic, /cycle/],
    [{ choices: [{ message: { onDone() {} } }] }, /a function at value\.choices\[0\]\.message\.onDone/],
    [{ tags: new Set(['a']) }, /a Set \(JSON would store it as \{\}\) at value\.tags/],
    [{ 'odd key': new Map() }, /a Map .* at value\["odd key"\]/],
    [[1, Promise.resolve(2)], /a Promise \(await it first\) at value\[1\]/],
    [{ s: Symbol('x') }, /a symbol at value\.s/],
  ]
  for (const [value, message] of cases) {
    assert.throws(
      () => cache.set('s', 'k', value),
      (err) => {
        assert.equal(err.code, 'ERR_NOT_SERIALIZABLE')
        assert.ok(isNotSerializableError(err))
        assert.match(err.message, /^the cached value cannot be stored as JSON: /)
        assert.match(err.message, message)
        return true
      },
    )
  }
  assert.equal(cache.size, 0)
})

test('JSON values round-trip, and every read is a fresh copy', () => {
  const { cache } = makeCache()
  const value = { n: 1.5, s: 'é ✓ 𝄞', a: [1, null, true], nested: { d: new Date(0) }, skip: undefined }
  cache.set('s', 'k', value)
  const got = cache.get('s', 'k')
  assert.deepEqual(got, { n: 1.5, s: 'é ✓ 𝄞', a: [1, null, true], nested: { d: '1970-01-01T00:00:00.000Z' } })
  got.n = 99
  assert.equal(cache.get('s', 'k').n, 1.5)
  for (const v of [null, 0, '', false, 'text', [1, 2]]) {
    cache.set('s', 'p', v)
    assert.deepEqual(cache.get('s', 'p'), v)
  }
})

test('services are separate namespaces; invalidate one key or a whole service', () => {
  const { cache } = makeCache()
  cache.set('openai_api', 'k', 1)
  cache.set('openai_api', 'j', 2)
  cache.set('anthropic_api', 'k', 3)
  assert.equal(cache.invalidate('openai_api', 'k'), 1)
  assert.equal(cache.invalidate('openai_api', 'k'), 0)
  assert.equal(cache.get('anthropic_api', 'k'), 3)
  cache.set('openai_api', 'k', 1)
  assert.equal(cache.invalidate('openai_api'), 2)
  assert.equal(cache.size, 1)
  assert.equal(cache.clear(), 1)
  assert.equal(cache.size, 0)
})

test('a disabled cache stores nothing (option, or FALLBACK_CACHE_ENABLED)', () => {
  const { cache } = makeCache({ cacheEnabled: false })
  assert.equal(cache.set('s', 'k', 1), false)
  assert.equal(cache.get('s', 'k'), undefined)
  assert.throws(() => cache.set('s', 'k', () => {}), { code: 'ERR_NOT_SERIALIZABLE' }, 'bad input is still refused')
  const saved = process.env.FALLBACK_CACHE_ENABLED
  try {
    process.env.FALLBACK_CACHE_ENABLED = 'false'
    assert.equal(new FallbackCache().enabled, false)
    assert.equal(new FallbackCache({ cacheEnabled: true }).enabled, true, 'an explicit option wins')
    process.env.FALLBACK_CACHE_ENABLED = 'nope'
    assert.throws(() => new FallbackCache(), { code: 'ERR_INVALID_CONFIG', message: /FALLBACK_CACHE_ENABLED = "nope"/ })
  } finally {
    if (saved === undefined) delete process.env.FALLBACK_CACHE_ENABLED
    else process.env.FALLBACK_CACHE_ENABLED = saved
  }
})

test('bad options and arguments get clear errors with stable codes', () => {
  assert.throws(
    () => new FallbackCache({ cacheMaxEntries: 0, cacheTtlMs: -1, cacheMaxBytes: 10, cacheTTLMs: 5 }),
    (err) => {
      assert.equal(err.code, 'ERR_INVALID_CONFIG')
      for (const part of [
        'cacheMaxEntries = 0 (expected an integer from 1 to 100000000)',
        'cacheTtlMs = -1 (expected a number of milliseconds greater than 0',
        'cacheMaxBytes = 10 (expected an integer from 1024 to 4294967295)',
        'unknown option "cacheTTLMs" = 5 (expected a known option (did you mean "cacheTtlMs"?))',
      ]) {
        assert.ok(err.message.includes(part), `${part} in ${err.message}`)
      }
      return true
    },
  )
  assert.throws(() => new FallbackCache(null), { code: 'ERR_INVALID_CONFIG', message: /options = null/ })
  assert.throws(() => new FallbackCache({ clock: {} }), { code: 'ERR_INVALID_CONFIG', message: /clock/ })
  const { cache } = makeCache()
  assert.throws(() => cache.get('', 'k'), { code: 'ERR_INVALID_ARGUMENT', message: /service = ""/ })
  assert.throws(() => cache.get('s', 42), { code: 'ERR_INVALID_ARGUMENT', message: /key = 42 \(expected a string\)/ })
  assert.throws(() => cache.set('s', 'k', 1, 0), { code: 'ERR_INVALID_ARGUMENT', message: /ttlMs = 0/ })
  assert.throws(() => cache.set('s', 'k', 1, Infinity), { code: 'ERR_INVALID_ARGUMENT', message: /ttlMs = Infinity/ })
})

test('the options object is neither changed nor kept; queue options are accepted', () => {
  const options = Object.freeze({ cacheTtlMs: 10, maxQueueSize: 5, clock: new ManualClock(0) })
  const cache = new FallbackCache(options)
  assert.equal(cache.options.cacheTtlMs, 10)
  assert.deepEqual(Object.keys(options), ['cacheTtlMs', 'maxQueueSize', 'clock'])
})

test('metrics count hits, stale hits, misses and sets', () => {
  const { cache, clock } = makeCache({ cacheTtlMs: 10, staleIfErrorMs: 10 })
  cache.set('s', 'k', 1)
  cache.get('s', 'k')
  cache.get('s', 'nope')
  clock.advance(15)
  cache.getEntry('s', 'k')
  const m = cache.getMetrics()
  assert.deepEqual(
    { hits: m.hits, staleHits: m.staleHits, misses: m.misses, sets: m.sets, entries: m.entries, hitRate: m.hitRate },
    { hits: 1, staleHits: 1, misses: 1, sets: 1, entries: 1, hitRate: 2 / 3 },
  )
})
