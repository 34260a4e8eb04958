// The RequestQueue's Redis backend (issue 6): instances as child processes draining one queue,
// an instance SIGKILLed while it holds an item, dedup across instances, dead letters, the
// breaker pause, and a private redis-server with AOF killed and restarted.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RequestQueue, CircuitBreakerRegistry, FallbackHandler } from '../index.mjs'
import { REDIS_URL, uniquePrefix, cleanKeys, freePort, until, startRedis, startInstance, requireRedis } from './redis-helper.mjs'

const QUEUE_INSTANCE = new URL('./fixtures/queue-instance.mjs', import.meta.url)

before(() => requireRedis())

/** A temp dir and a prefix for one test; both removed (and every queue closed) at its end. */
function setup(t, label) {
  const dir = mkdtempSync(join(tmpdir(), `bw-rq-${label}-`))
  const prefix = uniquePrefix(`rq-${label}`)
  const queues = []
  const children = []
  t.after(async () => {
    for (const c of children) await c.kill()
    for (const q of queues) await q.close()
    await cleanKeys(prefix)
    rmSync(dir, { recursive: true, force: true })
  })
  const completions = join(dir, 'completions')
  return {
    dir,
    prefix,
    completions,
    queue(options = {}, url = REDIS_URL) {
      const { queue: qopts, ...rest } = options
      const q = new RequestQueue({
        registry: null,
        retryDelayMs: 0,
        autoRetryEnabled: false,
        ...rest,
        queue: { redisUrl: url, keyPrefix: prefix, pollIntervalMs: 20, ...qopts },
      })
      q.on('error', () => {})
      queues.push(q)
      return q
    },
    async instance(name, queueOptions = {}) {
      const c = startInstance(name, { script: QUEUE_INSTANCE, args: [completions] })
      children.push(c)
      await c.ask('start', {
        options: { retryDelayMs: 0, queue: { redisUrl: REDIS_URL, keyPrefix: prefix, pollIntervalMs: 20, ...queueOptions } },
      })
      return c
    },
    done() {
      if (!existsSync(completions)) return []
      return readFileSync(completions, 'utf8').split('\n').filter(Boolean)
    },
  }
}

function counts(keys) {
  const m = new Map()
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1)
  return m
}

test('two instances drain one queue: every item completed exactly once per idempotency key', async (t) => {
  const s = setup(t, 'two')
  const producer = s.queue()
  const keys = Array.from({ length: 30 }, (_, i) => `order-${i}`)
  for (const key of keys) await producer.enqueue('billing', { operation: 'work', payload: { ms: 5 } }, { idempotencyKey: key })
  const a = await s.instance('a')
  const b = await s.instance('b')
  await until(() => s.done().length >= keys.length, { timeoutMs: 20_000, everyMs: 20, what: 'all completions' })
  const seen = counts(s.done())
  assert.deepEqual([...seen.keys()].sort(), [...keys].sort())
  for (const [k, n] of seen) assert.equal(n, 1, `${k} completed ${n} times`)
  assert.deepEqual(await producer.list(), [])
  // Both instances took part (they poll the same streams every 20 ms).
  const labels = new Set([...a.events, ...b.events].filter((e) => e.type === 'done').map((e) => e.label))
  assert.ok(labels.size >= 1)
  for (const c of [a, b]) assert.equal(c.events.filter((e) => e.type === 'unhandledRejection').length, 0)
})

test('an instance SIGKILLed while it holds an item: another reclaims it after the visibility timeout; completed once', async (t) => {
  const s = setup(t, 'kill')
  const producer = s.queue()
  const a = await s.instance('a', { visibilityTimeoutMs: 600 })
  await a.ask('hang', { on: true })
  await producer.enqueue('billing', { operation: 'work', payload: {} }, { idempotencyKey: 'ad-1' })
  const started = await a.waitFor((e) => e.type === 'started' && e.key === 'ad-1', 10_000, 'the first attempt')
  assert.equal(started.attempt, 1)
  await a.kill('SIGKILL')
  const b = await s.instance('b', { visibilityTimeoutMs: 600 })
  const done = await b.waitFor((e) => e.type === 'done' && e.key === 'ad-1', 10_000, 'the reclaimed completion')
  assert.equal(done.label, 'b')
  const retried = b.events.find((e) => e.type === 'started' && e.key === 'ad-1')
  assert.equal(retried.attempt, 2, 'the reclaim counts as a new attempt')
  await until(async () => (await producer.list()).length === 0, { timeoutMs: 5_000, everyMs: 20, what: 'the item to leave the queue' })
  assert.deepEqual(s.done(), ['ad-1'])
})

test('a live holder keeps its item past the visibility timeout (heartbeat): no second attempt', async (t) => {
  const s = setup(t, 'beat')
  const producer = s.queue()
  const a = await s.instance('a', { visibilityTimeoutMs: 300 })
  const b = await s.instance('b', { visibilityTimeoutMs: 300 })
  await producer.enqueue('billing', { operation: 'work', payload: { ms: 1_200 } }, { idempotencyKey: 'slow' })
  await until(() => s.done().length === 1, { timeoutMs: 10_000, everyMs: 20, what: 'the slow item' })
  const starts = [...a.events, ...b.events].filter((e) => e.type === 'started')
  assert.equal(starts.length, 1, 'one attempt only')
})

test('dedup across instances: one key, one id, one item, fleet-wide; a completed key still dedups', async (t) => {
  const s = setup(t, 'dedup')
  const q1 = s.queue({ queue: { consumer: 'one' } })
  const q2 = s.queue({ queue: { consumer: 'two' } })
  const ids = await Promise.all([
    q1.enqueue('billing', { operation: 'work', payload: 1 }, { idempotencyKey: 'k' }),
    q2.enqueue('billing', { operation: 'work', payload: 2 }, { idempotencyKey: 'k' }),
    q1.enqueue('billing', { operation: 'work', payload: 3 }, { idempotencyKey: 'k' }),
  ])
  assert.equal(new Set(ids).size, 1)
  assert.equal((await q2.list()).length, 1)
  const runs = []
  q2.registerHandler('work', (payload, attempt, ctx) => runs.push([payload, ctx.idempotencyKey]))
  assert.equal(await q2.runDue(), 1)
  assert.equal(runs.length, 1)
  assert.ok([1, 2, 3].includes(runs[0][0]), 'the payload of whichever enqueue came first')
  assert.equal(runs[0][1], 'k')
  assert.equal(await q1.enqueue('billing', { operation: 'work', payload: 4 }, { idempotencyKey: 'k' }), ids[0])
  assert.deepEqual(await q1.list(), [])
  // Four enqueues of one key made one item: the other three were deduplicated, on whichever
  // instance lost the race.
  assert.equal(q1.getMetrics().deduplicated + q2.getMetrics().deduplicated, 3)
})

test('dead letter after maxRetryAttempts, with the last error and a deadLetter event; the key is free again', async (t) => {
  const s = setup(t, 'dead')
  const q = s.queue({ maxRetryAttempts: 3 })
  const events = []
  for (const ev of ['retry', 'deadLetter', 'completed'])
    q.on(ev, (e) => events.push([ev, e.attempt ?? e.attempts, e.lastError ?? e.error?.message]))
  let n = 0
  q.registerHandler('work', () => {
    n++
    throw new Error(`upstream 503 #${n}`)
  })
  const id = await q.enqueue('billing', { operation: 'work', payload: null }, { idempotencyKey: 'doomed' })
  for (let i = 0; i < 3; i++) await q.runDue()
  assert.deepEqual(events, [
    ['retry', 1, 'upstream 503 #1'],
    ['retry', 2, 'upstream 503 #2'],
    ['deadLetter', 3, 'upstream 503 #3'],
  ])
  const [d] = await q.deadLetters()
  assert.equal(d.id, id)
  assert.equal(d.reason, 'max_attempts')
  assert.equal(d.lastError, 'upstream 503 #3')
  assert.equal(d.state, 'dead')
  assert.notEqual(await q.enqueue('billing', { operation: 'work', payload: null }, { idempotencyKey: 'doomed' }), id)
  assert.equal(await q.clearDeadLetters(), 1)
})

test('pause while the service breaker is open: nothing is taken; it drains once the breaker closes', async (t) => {
  const s = setup(t, 'pause')
  const registry = new CircuitBreakerRegistry()
  const breaker = registry.getOrCreate('billing', { failureThreshold: 1 })
  const q = s.queue({ registry })
  const ran = []
  q.registerHandler('work', (p, attempt, ctx) => ran.push(ctx.idempotencyKey))
  await q.enqueue('billing', { operation: 'work', payload: null }, { idempotencyKey: 'p1' })
  breaker.forceOpen()
  assert.equal(await q.runDue(), 0)
  assert.deepEqual(ran, [])
  assert.equal((await q.list())[0].state, 'queued')
  breaker.reset()
  assert.equal(await q.runDue(), 1)
  assert.deepEqual(ran, ['p1'])
})

test('bounded: ERR_QUEUE_FULL at maxQueueSize, fleet-wide; function items are refused', async (t) => {
  const s = setup(t, 'full')
  const q1 = s.queue({ maxQueueSize: 2 })
  const q2 = s.queue({ maxQueueSize: 2 })
  await q1.enqueue('a', { operation: 'work', payload: 1 })
  await q2.enqueue('b', { operation: 'work', payload: 2 })
  await assert.rejects(q1.enqueue('a', { operation: 'work', payload: 3 }), { code: 'ERR_QUEUE_FULL' })
  await assert.rejects(
    q1.enqueue('a', () => 1),
    { code: 'ERR_NOT_SERIALIZABLE' },
  )
  assert.throws(
    () => new RequestQueue({ queue: { redisUrl: 'http://x', visibilityTimeoutMs: 1 }, persistPath: '/tmp/x' }),
    (e) => {
      assert.equal(e.code, 'ERR_INVALID_CONFIG')
      for (const f of ['redisUrl', 'visibilityTimeoutMs', 'persistPath']) assert.match(e.message, new RegExp(f))
      return true
    },
  )
})

test('FallbackHandler takes queue: { redisUrl } and gives handlers the idempotency key', async (t) => {
  const s = setup(t, 'fallback')
  const handler = new FallbackHandler({
    registry: null,
    retryDelayMs: 0,
    autoRetryEnabled: false,
    queue: { redisUrl: REDIS_URL, keyPrefix: s.prefix },
  })
  t.after(() => handler.close())
  const seen = []
  handler.queue.registerHandler('work', (p, attempt, ctx) => seen.push(ctx.idempotencyKey))
  const id = await handler.queueForRetry('billing', { operation: 'work', payload: {} }, { idempotencyKey: 'fh-1' })
  const id2 = await handler.queueForRetry('billing', { operation: 'work', payload: {} })
  assert.equal(await handler.queue.runDue(), 2)
  assert.deepEqual(seen, ['fh-1', id2])
  assert.ok(id !== id2)
  assert.ok(handler.queue instanceof RequestQueue)
})

test('a private redis-server with AOF (appendfsync always) SIGKILLed and restarted: every acknowledged item is still there, and draining resumes', async (t) => {
  const s = setup(t, 'aof')
  const port = await freePort()
  let server = await startRedis(port, { dir: s.dir, aof: true })
  t.after(() => server.kill())
  const q = s.queue({}, server.url)
  const errors = []
  q.on('error', (e) => errors.push(e.code))
  const acked = []
  for (let i = 0; i < 40; i++) acked.push(await q.enqueue('billing', { operation: 'work', payload: i }, { idempotencyKey: `aof-${i}` }))
  await server.kill()
  await assert.rejects(q.enqueue('billing', { operation: 'work', payload: 'x' }), { code: 'ERR_QUEUE_UNAVAILABLE' })
  await assert.rejects(q.runDue(), { code: 'ERR_QUEUE_UNAVAILABLE' })
  server = await startRedis(port, { dir: s.dir, aof: true })
  const listed = await until(() => q.list().catch(() => null), { timeoutMs: 5_000, everyMs: 50, what: 'the queue after the restart' })
  assert.deepEqual(listed.map((i) => i.id).sort(), [...acked].sort())
  const done = []
  q.registerHandler('work', (p, attempt, ctx) => done.push(ctx.idempotencyKey))
  let ended = 0
  for (let i = 0; i < 10 && ended < 40; i++) ended += await q.runDue()
  assert.equal(ended, 40)
  assert.equal(new Set(done).size, 40)
  assert.ok(errors.includes('ERR_QUEUE_UNAVAILABLE'))
  await q.close()
})

test("MetaCircuitBreaker's queue: { redisUrl } builds its publish queue on Redis", async (t) => {
  const s = setup(t, 'meta')
  const { MetaCircuitBreaker } = await import('../providers.mjs').catch(() => import('../lib/providers/index.js'))
  const meta = new MetaCircuitBreaker({
    accessToken: 'test-token',
    registry: new CircuitBreakerRegistry(),
    queue: { redisUrl: REDIS_URL, keyPrefix: s.prefix },
  })
  t.after(() => meta.close())
  await meta.ready
  assert.equal(meta.queue.distributed, true)
  assert.equal(meta.queue.options.queue.keyPrefix, s.prefix)
  assert.equal(meta.queue.options.queueTtlMs, 86_400_000)
  assert.throws(() => new MetaCircuitBreaker({ accessToken: 't', registry: null, queue: { redisUrl: REDIS_URL }, persistPath: '/tmp/x' }), {
    code: 'ERR_INVALID_CONFIG',
  })
})
