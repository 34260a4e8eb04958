// Sharing globalRegistry breakers through Redis, seen from one process: options, connection
// events, what a local transition writes to Redis, adoption of the fleet's messages (without
// echo), the quorum, resync, the trial lease, and an unreachable Redis. Needs Redis on
// 127.0.0.1:6379 (BREAKWATER_TEST_REDIS_URL to change it); every test uses its own key prefix.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import { globalRegistry, CircuitBreakerRegistry, CircuitBreaker, isCircuitOpenError } from '../index.mjs'
import { REDIS_URL, requireRedis, uniquePrefix, cleanKeys, redisClient, subscriber, until, freePort, startRedis } from './redis-helper.mjs'

const fail = () => Promise.reject(new Error('upstream 503'))
let seq = 0
const uniqueName = (label) => `shared_${label}_${process.pid}_${++seq}`

/** Connects globalRegistry for one test, and always disconnects and cleans up after it. */
async function withShared(label, options, body) {
  const keyPrefix = uniquePrefix(label)
  const errors = []
  const onError = (e) => errors.push(e)
  globalRegistry.on('sharedStateError', onError)
  const redis = await redisClient()
  const sub = await subscriber(`${keyPrefix}events`)
  try {
    const result = await globalRegistry.connectShared({ redisUrl: REDIS_URL, keyPrefix, instanceId: `me-${label}`, ...options })
    await body({ keyPrefix, redis, sub, errors, result })
  } finally {
    await globalRegistry.disconnectShared()
    globalRegistry.off('sharedStateError', onError)
    sub.close()
    redis.close()
    await cleanKeys(keyPrefix)
  }
}

before(() => requireRedis())

test('connectShared validates its options: one ERR_INVALID_CONFIG naming every field', async () => {
  await assert.rejects(globalRegistry.connectShared({}), { code: 'ERR_INVALID_CONFIG', message: /redisUrl = undefined/ })
  await assert.rejects(globalRegistry.connectShared('redis://x'), { code: 'ERR_INVALID_CONFIG', message: /options = "redis:\/\/x"/ })
  const err = await globalRegistry
    .connectShared({ redisUrl: 'http://localhost', keyPrefix: '', instanceId: 7, quorum: 0, commandTimeoutMs: -1, qourum: 2 })
    .catch((e) => e)
  assert.equal(err.code, 'ERR_INVALID_CONFIG')
  for (const field of [
    'redisUrl = "http://localhost"',
    'keyPrefix = ""',
    'instanceId = 7',
    'quorum = 0',
    'commandTimeoutMs = -1',
    'did you mean "quorum"',
  ]) {
    assert.ok(err.message.includes(field), `${field} in ${err.message}`)
  }
  const tls = await globalRegistry.connectShared({ redisUrl: 'rediss://:hunter2@example.com' }).catch((e) => e)
  assert.equal(tls.code, 'ERR_INVALID_CONFIG')
  assert.match(tls.message, /TLS/)
  assert.doesNotMatch(tls.message, /hunter2/, 'a password never appears in a message')
  await assert.rejects(globalRegistry.connectShared({ redisUrl: 'redis://127.0.0.1:notaport' }), {
    code: 'ERR_INVALID_CONFIG',
    message: /redisUrl/,
  })
  await assert.rejects(new CircuitBreakerRegistry().connectShared({ redisUrl: REDIS_URL }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /Only globalRegistry/,
  })
})

test('connect, a second connect, disconnect and connect again', async () => {
  const connected = []
  const onConnected = (e) => connected.push(e)
  globalRegistry.on('sharedStateConnected', onConnected)
  try {
    await withShared('connect', {}, async ({ result }) => {
      assert.deepEqual(result, { connected: true, instanceId: 'me-connect' })
      assert.deepEqual(connected, [{ instanceId: 'me-connect', reconnect: false }])
      await assert.rejects(globalRegistry.connectShared({ redisUrl: REDIS_URL }), {
        code: 'ERR_SHARED_STATE',
        message: /already connected/,
      })
    })
    await withShared('connect2', {}, async ({ result }) => {
      assert.equal(result.connected, true)
      assert.match(result.instanceId, /^me-connect2$/)
    })
    // The default instance id: hostname-pid-random.
    const keyPrefix = uniquePrefix('defaultid')
    const r = await globalRegistry.connectShared({ redisUrl: REDIS_URL, keyPrefix })
    await globalRegistry.disconnectShared()
    assert.match(r.instanceId, new RegExp(`-${process.pid}-[0-9a-f]{8}$`))
  } finally {
    globalRegistry.off('sharedStateConnected', onConnected)
  }
})

test('a local open votes and opens the fleet: open key with Redis TTL, failing set, one message', async () => {
  await withShared('open', {}, async ({ keyPrefix, redis, sub, errors }) => {
    const name = uniqueName('open')
    const b = globalRegistry.getOrCreate(name, { failureThreshold: 2, resetTimeoutMs: 30_000 })
    for (let i = 0; i < 2; i++) await b.call(fail).catch(() => {})
    assert.equal(b.state, 'open')
    const msg = await until(() => sub.messages.find((m) => m.name === name), { what: 'the open message' })
    assert.equal(msg.type, 'open')
    assert.equal(msg.instance, 'me-open')
    assert.equal(msg.votes, 1)
    assert.equal(msg.cause, 'consecutive_failures')
    assert.ok(msg.remainingMs > 29_000 && msg.remainingMs <= 30_000, String(msg.remainingMs))
    const pttl = await redis.cmd('PTTL', `${keyPrefix}${name}:open`)
    assert.ok(pttl > 28_000 && pttl <= 30_000, String(pttl))
    assert.deepEqual(JSON.parse(await redis.cmd('GET', `${keyPrefix}${name}:open`)), {
      instance: 'me-open',
      cause: 'consecutive_failures',
      ms: 30_000,
      votes: 1,
    })
    assert.deepEqual(await redis.cmd('ZRANGE', `${keyPrefix}${name}:failing`, 0, -1), ['me-open'])
    assert.deepEqual(errors, [])
  })
})

test('a remote open is adopted with cause shared_state and not published back; its own messages are ignored', async () => {
  await withShared('adopt', {}, async ({ keyPrefix, redis, sub }) => {
    const name = uniqueName('adopt')
    const b = globalRegistry.getOrCreate(name, { resetTimeoutMs: 60_000 })
    const seen = []
    b.on('stateChange', (e) => seen.push(e))
    await redis.cmd(
      'PUBLISH',
      `${keyPrefix}events`,
      JSON.stringify({ type: 'open', name, instance: 'me-adopt', remainingMs: 5_000, votes: 1 }),
    )
    await redis.cmd(
      'PUBLISH',
      `${keyPrefix}events`,
      JSON.stringify({ type: 'open', name, instance: 'other', remainingMs: 5_000, votes: 1, cause: 'failure_rate' }),
    )
    await until(() => b.state === 'open', { what: 'adoption' })
    assert.equal(seen.length, 1, 'its own message changed nothing')
    assert.equal(seen[0].cause, 'shared_state')
    assert.equal(seen[0].from, 'closed')
    const left = seen[0].nextAttemptAt - seen[0].at
    assert.ok(left > 4_900 && left <= 5_000, String(left))
    const err = await b.call(async () => 1).catch((e) => e)
    assert.ok(isCircuitOpenError(err))
    // Not echoed: nothing published by this instance, no open key written.
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(sub.messages.length, 2, 'only the two messages this test published')
    assert.equal(await redis.cmd('EXISTS', `${keyPrefix}${name}:open`), 0)
    // A remote close (a trial succeeded elsewhere) closes it.
    await redis.cmd('PUBLISH', `${keyPrefix}events`, JSON.stringify({ type: 'close', name, instance: 'other' }))
    await until(() => b.state === 'closed', { what: 'the close' })
    assert.equal(seen.at(-1).cause, 'shared_state')
  })
})

test('quorum 2: a remote open with one vote is ignored, with two it is adopted', async () => {
  await withShared('quorum', { quorum: 2 }, async ({ keyPrefix, redis }) => {
    const name = uniqueName('quorum')
    const b = globalRegistry.getOrCreate(name, { failureThreshold: 1 })
    await redis.cmd('PUBLISH', `${keyPrefix}events`, JSON.stringify({ type: 'open', name, instance: 'x', remainingMs: 5_000, votes: 1 }))
    await new Promise((r) => setTimeout(r, 150))
    assert.equal(b.state, 'closed')
    // A local open with quorum 2 opens this instance only: it votes, the fleet stays closed.
    const other = uniqueName('quorum_local')
    const c = globalRegistry.getOrCreate(other, { failureThreshold: 1, resetTimeoutMs: 10_000 })
    await c.call(fail).catch(() => {})
    assert.equal(c.state, 'open')
    await until(async () => (await redis.cmd('ZCARD', `${keyPrefix}${other}:failing`)) === 1, { what: 'the vote' })
    assert.equal(await redis.cmd('EXISTS', `${keyPrefix}${other}:open`), 0, 'one vote of two: no fleet open')
    await redis.cmd('PUBLISH', `${keyPrefix}events`, JSON.stringify({ type: 'open', name, instance: 'x', remainingMs: 5_000, votes: 2 }))
    await until(() => b.state === 'open', { what: 'adoption with two votes' })
  })
})

test("forceOpen, disable and reset are published; the fleet's are adopted; reset leaves a tombstone", async () => {
  await withShared('forced', {}, async ({ keyPrefix, redis, sub }) => {
    const name = uniqueName('forced')
    const b = globalRegistry.getOrCreate(name)
    const forced = `${keyPrefix}${name}:forced`
    b.forceOpen()
    await until(async () => (await redis.cmd('GET', forced)) === 'forced_open', { what: 'the forced key' })
    b.disable()
    await until(async () => (await redis.cmd('GET', forced)) === 'disabled', { what: 'disabled' })
    b.reset()
    await until(async () => (await redis.cmd('GET', forced)) === 'none', { what: 'the reset tombstone' })
    await until(() => sub.messages.length === 3, { what: 'three messages' })
    assert.deepEqual(
      sub.messages.map((m) => [m.type, m.state]),
      [
        ['forced', 'forced_open'],
        ['forced', 'disabled'],
        ['reset', undefined],
      ],
    )
    // The fleet's operator changes are adopted.
    const publish = (m) => redis.cmd('PUBLISH', `${keyPrefix}events`, JSON.stringify({ name, instance: 'ops', ...m }))
    await publish({ type: 'forced', state: 'forced_open' })
    await until(() => b.state === 'forced_open', { what: 'forced_open adopted' })
    await publish({ type: 'open', remainingMs: 9_000, votes: 1 })
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(b.state, 'forced_open', "an operator state ignores the fleet's automatic opens")
    await publish({ type: 'reset' })
    await until(() => b.state === 'closed', { what: 'reset adopted' })
    await publish({ type: 'forced', state: 'disabled' })
    await until(() => b.state === 'disabled', { what: 'disabled adopted' })
    await publish({ type: 'reset' })
    await until(() => b.state === 'closed', { what: 'reset adopted again' })
  })
})

test('connectShared resyncs every shared breaker before it resolves; a breaker created later is resynced too', async () => {
  const keyPrefix = uniquePrefix('resync')
  const redis = await redisClient()
  try {
    const a = globalRegistry.getOrCreate(uniqueName('resync_a'))
    const f = globalRegistry.getOrCreate(uniqueName('resync_f'))
    const q = globalRegistry.getOrCreate(uniqueName('resync_q'))
    const local = new CircuitBreaker(a.name, { registry: null })
    const lateName = uniqueName('resync_late')
    await redis.cmd('SET', `${keyPrefix}${a.name}:open`, JSON.stringify({ instance: 'x', votes: 1 }), 'PX', 20_000)
    await redis.cmd('SET', `${keyPrefix}${f.name}:forced`, 'forced_open')
    await redis.cmd('SET', `${keyPrefix}${q.name}:open`, JSON.stringify({ instance: 'x', votes: 1 }), 'PX', 20_000)
    await redis.cmd('SET', `${keyPrefix}${lateName}:open`, JSON.stringify({ instance: 'x', votes: 3 }), 'PX', 20_000)
    await globalRegistry.connectShared({ redisUrl: REDIS_URL, keyPrefix, quorum: 1 })
    assert.equal(a.state, 'open', 'adopted before connectShared resolved')
    assert.ok(a.getMetrics().nextAttemptAt - a._now() > 19_000)
    assert.equal(f.state, 'forced_open')
    assert.equal(q.state, 'open')
    assert.equal(local.state, 'closed', 'breakers outside globalRegistry stay local')
    const late = globalRegistry.getOrCreate(lateName)
    await until(() => late.state === 'open', { what: "the late breaker's resync" })
  } finally {
    await globalRegistry.disconnectShared()
    redis.close()
    await cleanKeys(keyPrefix)
  }
})

test('one trial fleet-wide: while another instance holds the lease, an elapsed open stays open', async () => {
  await withShared('lease', {}, async ({ keyPrefix, redis }) => {
    const name = uniqueName('lease')
    const b = globalRegistry.getOrCreate(name, { failureThreshold: 1, resetTimeoutMs: 100, exponentialBackoff: false, successThreshold: 1 })
    const lease = `${keyPrefix}${name}:lease`
    await b.call(fail).catch(() => {})
    assert.equal(b.state, 'open')
    // Another instance holds the trial lease for 800 ms.
    await redis.cmd('SET', lease, 'other-instance', 'PX', 800)
    await new Promise((r) => setTimeout(r, 150))
    // The open time is up, but the lease is held elsewhere: rejected, still open, no trial.
    let ran = 0
    for (let i = 0; i < 5; i++) {
      const err = await b.call(async () => ran++).catch((e) => e)
      assert.ok(isCircuitOpenError(err), String(err))
      assert.equal(err.state, 'open')
      assert.ok(err.retryAfterMs <= 800, String(err.retryAfterMs))
      assert.equal(b.state, 'open')
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.equal(ran, 0)
    assert.equal(await redis.cmd('GET', lease), 'other-instance', 'the holder keeps its lease')
    // The holder's lease expires (it died, say): this instance takes it and trials.
    await until(
      async () => {
        await b.call(async () => ran++).catch(() => {})
        return b.state === 'closed'
      },
      { timeoutMs: 5_000, everyMs: 20, what: 'the trial after the lease expired' },
    )
    assert.equal(ran, 1, 'one trial closed it (successThreshold 1)')
    await until(async () => (await redis.cmd('EXISTS', lease)) === 0, { what: 'the lease given back on close' })
  })
})

test('probeEarly (a passing health check) on a shared breaker waits for the trial lease too', async () => {
  await withShared('probe', {}, async ({ keyPrefix, redis }) => {
    const name = uniqueName('probe')
    const b = globalRegistry.getOrCreate(name, { resetTimeoutMs: 60_000 })
    const lease = `${keyPrefix}${name}:lease`
    await redis.cmd('SET', lease, 'other-instance', 'PX', 400)
    await redis.cmd('PUBLISH', `${keyPrefix}events`, JSON.stringify({ type: 'open', name, instance: 'x', remainingMs: 60_000, votes: 1 }))
    await until(() => b.state === 'open', { what: 'adoption' })
    b.probeEarly()
    assert.equal(b.state, 'open', 'another instance holds the lease: no probe here')
    // Once the other lease has expired, a probe asks for the lease, and the next one proceeds.
    await until(
      async () => {
        b.probeEarly()
        return b.state === 'half_open'
      },
      { timeoutMs: 5_000, everyMs: 20, what: 'the probe with the lease' },
    )
    assert.equal(await redis.cmd('GET', lease), `me-probe`)
  })
})

test('a refused command and a malformed message are reported as sharedStateError; the session goes on', async () => {
  await withShared('refused', {}, async ({ keyPrefix, redis, errors }) => {
    const name = uniqueName('refused')
    const b = globalRegistry.getOrCreate(name, { failureThreshold: 1, resetTimeoutMs: 30_000 })
    // A key of the wrong type makes the vote script fail (WRONGTYPE): reported, not retried.
    await redis.cmd('SET', `${keyPrefix}${name}:failing`, 'not a sorted set')
    await b.call(fail).catch(() => {})
    assert.equal(b.state, 'open', 'the local open stands')
    await until(() => errors.some((e) => e.operation === 'vote'), { what: 'the vote error' })
    assert.equal(errors[0].code, 'ERR_SHARED_STATE')
    assert.match(errors[0].message, /WRONGTYPE/)
    await redis.cmd('PUBLISH', `${keyPrefix}events`, 'not json')
    await until(() => errors.some((e) => e.operation === 'message'), { what: 'the message error' })
    // Still connected: the fleet's messages are still adopted.
    const other = globalRegistry.getOrCreate(uniqueName('refused_other'))
    await redis.cmd(
      'PUBLISH',
      `${keyPrefix}events`,
      JSON.stringify({ type: 'forced', name: other.name, instance: 'ops', state: 'forced_open' }),
    )
    await until(() => other.state === 'forced_open', { what: 'adoption after the errors' })
    assert.ok(!errors.some((e) => e.operation === 'connection'), 'the session was not dropped')
  })
})

test('an unreachable Redis: connectShared resolves { connected: false }, sharedStateError is emitted, breakers run locally', async () => {
  const port = await freePort()
  const errors = []
  const onError = (e) => errors.push(e)
  globalRegistry.on('sharedStateError', onError)
  try {
    const r = await globalRegistry.connectShared({
      redisUrl: `redis://127.0.0.1:${port}`,
      keyPrefix: uniquePrefix('down'),
      commandTimeoutMs: 100,
    })
    assert.equal(r.connected, false)
    assert.ok(errors.length >= 1)
    assert.equal(errors[0].code, 'ERR_SHARED_STATE')
    assert.equal(errors[0].operation, 'connect')
    const b = globalRegistry.getOrCreate(uniqueName('down'), { failureThreshold: 1, resetTimeoutMs: 50, successThreshold: 1 })
    assert.equal(await b.call(async () => 7), 7)
    await b.call(fail).catch(() => {})
    assert.equal(b.state, 'open')
    await new Promise((r) => setTimeout(r, 60))
    assert.equal(await b.call(async () => 8), 8, 'no lease gate without Redis: the local trial runs')
    assert.equal(b.state, 'closed')
    await until(() => errors.length >= 2, { what: 'a reconnect attempt', timeoutMs: 5_000 })
  } finally {
    await globalRegistry.disconnectShared()
    globalRegistry.off('sharedStateError', onError)
  }
})

test('a slow Redis: commands time out (sharedStateError), calls stay local and fast, the open is replayed after the reconnect', async () => {
  const server = await startRedis(await freePort())
  const errors = []
  const connected = []
  const onError = (e) => errors.push(e)
  const onConnected = (e) => connected.push(e)
  globalRegistry.on('sharedStateError', onError)
  globalRegistry.on('sharedStateConnected', onConnected)
  const keyPrefix = uniquePrefix('slow')
  const probe = await redisClient(server.url)
  try {
    await globalRegistry.connectShared({ redisUrl: server.url, keyPrefix, commandTimeoutMs: 100 })
    const name = uniqueName('slow')
    const b = globalRegistry.getOrCreate(name, { failureThreshold: 1, resetTimeoutMs: 30_000 })
    const other = globalRegistry.getOrCreate(uniqueName('slow_other'))
    // Redis stops answering every client for 700 ms.
    await probe.cmd('CLIENT', 'PAUSE', 700, 'ALL')
    await b.call(fail).catch(() => {})
    assert.equal(b.state, 'open')
    const t0 = performance.now()
    for (let i = 0; i < 1_000; i++) await other.call(async () => i)
    const perCallMs = (performance.now() - t0) / 1_000
    assert.ok(perCallMs < 1, `calls do not wait for Redis (${perCallMs} ms per call)`)
    await until(() => errors.some((e) => e.operation === 'connection' && /commandTimeoutMs/.test(e.message)), {
      what: 'the timeout',
      timeoutMs: 5_000,
    })
    await until(() => connected.some((e) => e.reconnect), { what: 'the reconnect', timeoutMs: 10_000 })
    await until(async () => (await probe.cmd('EXISTS', `${keyPrefix}${name}:open`)) === 1, { what: 'the replayed open' })
    const pttl = await probe.cmd('PTTL', `${keyPrefix}${name}:open`)
    assert.ok(pttl > 20_000 && pttl < 30_000, `replayed with the time left (${pttl} ms)`)
  } finally {
    await globalRegistry.disconnectShared()
    globalRegistry.off('sharedStateError', onError)
    globalRegistry.off('sharedStateConnected', onConnected)
    probe.close()
    await server.kill()
  }
})

test("opens in a worker thread are published too (Rust notices every thread's transitions)", async () => {
  await withShared('worker', {}, async ({ keyPrefix, redis }) => {
    const name = uniqueName('worker')
    const options = { failureThreshold: 3, resetTimeoutMs: 30_000 }
    globalRegistry.getOrCreate(name, options)
    const worker = new Worker(new URL('./fixtures/worker.mjs', import.meta.url), { workerData: { options } })
    try {
      const reply = new Promise((resolve) => worker.once('message', (m) => resolve(m.result)))
      worker.postMessage({ id: 1, op: 'fail', name, n: 3 })
      assert.equal(await reply, 'open')
      await until(async () => (await redis.cmd('EXISTS', `${keyPrefix}${name}:open`)) === 1, { what: 'the open key' })
    } finally {
      await worker.terminate()
    }
  })
})

test('a connected process still exits when its work is done (the event channel is weak)', async () => {
  const keyPrefix = uniquePrefix('exit')
  const script = `
    import { globalRegistry } from ${JSON.stringify(new URL('../index.mjs', import.meta.url).href)}
    const r = await globalRegistry.connectShared({ redisUrl: ${JSON.stringify(REDIS_URL)}, keyPrefix: ${JSON.stringify(keyPrefix)} })
    globalRegistry.getOrCreate('exit_api').reset()
    console.log(JSON.stringify(r))
  `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 })
  await cleanKeys(keyPrefix) // the reset wrote its tombstone
  assert.equal(r.signal, null, 'it exited by itself, not by the timeout')
  assert.equal(r.status, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout).connected, true)
})
