// The Meta ad publisher against a fake Graph API: the publish chain, throttling with usage
// headers, a token error, a validation error, a POST that times out after the object was created
// (adopted by the tag lookup, never duplicated), deduplication, and the health check.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { CircuitBreakerRegistry, ManualClock, RequestQueue } from 'breakwater'
import { MetaCircuitBreaker, MetaGraphError, setupMetaHealthCheck } from 'breakwater/providers'
import { startFakeGraph, graphError, adRequest, META_TOKEN } from './providers/fake-graph.mjs'
import { createMonitor } from './providers/monitor.mjs'
import { deferred } from './providers/fakes.mjs'

const never = new Promise(() => {})

/** A publisher on a ManualClock over a fresh fake Graph API, with a queue that runs only on runDue(). */
async function setup(t, { persistPath, breakerOptions, queueOptions, requestTimeoutMs } = {}) {
  const graph = await startFakeGraph()
  const clock = new ManualClock(1_000_000)
  const registry = new CircuitBreakerRegistry()
  const queue = new RequestQueue({
    clock,
    registry,
    autoRetryEnabled: false,
    retryDelayMs: 1_000,
    retryJitterRatio: 0,
    queueTtlMs: 86_400_000,
    logFallbacks: false,
    ...(persistPath && { persistPath }),
    ...queueOptions,
  })
  const meta = new MetaCircuitBreaker({
    accessToken: META_TOKEN,
    baseUrl: graph.url,
    queue,
    registry,
    breakerOptions: { clock, ...breakerOptions },
    ...(requestTimeoutMs && { requestTimeoutMs }),
  })
  const events = []
  for (const e of ['published', 'queued', 'deadLetter', 'authError']) meta.on(e, (p) => events.push([e, p]))
  t.after(async () => {
    await meta.close()
    await queue.close()
    await graph.close()
  })
  return { graph, clock, registry, queue, meta, events }
}

/** Every object of the fake, by edge: how many carry each tag. */
function tagCounts(graph) {
  const out = {}
  for (const [edge, list] of Object.entries(graph.objects)) {
    for (const o of list) {
      const tag = /\[bw:[0-9a-f]+\]/.exec(o.name)?.[0]
      out[tag] ??= { adcreatives: 0, adsets: 0, ads: 0 }
      out[tag][edge]++
    }
  }
  return out
}

test('meta: publishes creative, ad set and ad (PAUSED), each named with the tag, the token only in a header', async (t) => {
  const { graph, meta, events } = await setup(t)
  const r = await meta.publishAd(adRequest(1))
  const {
    adcreatives: [creative],
    adsets: [adset],
    ads: [ad],
  } = graph.objects
  assert.deepEqual(r, { queued: false, creativeId: creative.id, adSetId: adset.id, adId: ad.id })
  const tag = /\[bw:[0-9a-f]{16}\]/.exec(ad.name)[0]
  assert.equal(creative.name, `Creative 1 ${tag}`)
  assert.deepEqual(creative.object_story_spec, adRequest(1).adCreative.object_story_spec)
  assert.deepEqual(
    {
      name: adset.name,
      campaign_id: adset.campaign_id,
      targeting: adset.targeting,
      daily_budget: adset.daily_budget,
      billing_event: adset.billing_event,
      status: adset.status,
    },
    {
      name: `Spring sale 1 ${tag}`,
      campaign_id: '777',
      targeting: adRequest(1).targeting,
      daily_budget: 5000,
      billing_event: 'IMPRESSIONS',
      status: 'PAUSED',
    },
  )
  assert.deepEqual(
    { name: ad.name, adset_id: ad.adset_id, creative: ad.creative, status: ad.status },
    { name: `Spring sale 1 ${tag}`, adset_id: adset.id, creative: { creative_id: creative.id }, status: 'PAUSED' },
  )
  assert.equal(graph.requests.length, 3, 'no lookups on a first attempt')
  for (const req of graph.requests) {
    assert.equal(req.headers.authorization, `Bearer ${META_TOKEN}`)
    assert.ok(!req.path.includes(META_TOKEN) && !JSON.stringify(req.query).includes(META_TOKEN))
    assert.match(req.path, /^\/v21\.0\/act_123456\/(adcreatives|adsets|ads)$/)
  }
  assert.deepEqual(
    events.map((e) => e[0]),
    ['published'],
  )
  assert.equal(events[0][1].adId, ad.id)
  // `status` is the caller's to choose.
  await meta.publishAd(adRequest(2, { status: 'ACTIVE' }))
  assert.equal(graph.objects.ads[1].status, 'ACTIVE')
})

test('meta: the same request again is the same ad; concurrent duplicates share one publish', async (t) => {
  const { graph, meta } = await setup(t)
  const [a, b] = await Promise.all([meta.publishAd(adRequest(1)), meta.publishAd(adRequest(1))])
  assert.deepEqual(a, b)
  assert.deepEqual(await meta.publishAd(adRequest(1)), a)
  // Without an idempotency key, the request's hash is the key.
  const { idempotencyKey: _k, ...noKey } = adRequest(2)
  const c = await meta.publishAd(noKey)
  assert.deepEqual(await meta.publishAd(JSON.parse(JSON.stringify(noKey))), c)
  assert.notEqual((await meta.publishAd({ ...noKey, name: 'Another' })).adId, c.adId)
  assert.equal(graph.objects.ads.length, 3)
})

test('meta: throttling (code 17) with X-Business-Use-Case-Usage opens meta_api for the time to regain access, and queues', async (t) => {
  const { graph, clock, queue, meta, events } = await setup(t)
  const usage = JSON.stringify({
    123456: [{ type: 'ads_management', call_count: 100, total_cputime: 40, total_time: 60, estimated_time_to_regain_access: 5 }],
  })
  graph.reply({
    match: (r) => r.edge === 'adsets',
    status: 400,
    headers: { 'x-business-use-case-usage': usage },
    body: graphError(17, 'User request limit reached', { is_transient: true, error_subcode: 2446079 }),
  })
  const t0 = clock.now()
  const r = await meta.publishAd(adRequest(1))
  assert.equal(r.queued, true)
  assert.equal(typeof r.requestId, 'string')
  const m = meta.breaker.getMetrics()
  assert.equal(m.state, 'open')
  assert.equal(m.nextAttemptAt, t0 + 5 * 60_000)
  assert.equal(m.failedRequests, 0, 'a throttle is not a failure: the breaker opens for the time Meta gives')
  assert.deepEqual(
    events.map((e) => [e[0], e[1].reason]),
    [['queued', 'throttled']],
  )
  const [queued] = meta.getQueuedAds()
  assert.deepEqual(
    { requestId: queued.requestId, idempotencyKey: queued.idempotencyKey, adAccountId: queued.adAccountId, state: queued.state },
    { requestId: r.requestId, idempotencyKey: 'spring-sale/1', adAccountId: 'act_123456', state: 'queued' },
  )
  assert.equal(queued.created.creativeId, graph.objects.adcreatives[0].id, 'the creative is checkpointed')
  // Publishing it again while it waits is the same queued ad.
  assert.deepEqual(await meta.publishAd(adRequest(1)), r)
  // Until access is back, the queue waits; then it resumes at the ad set.
  clock.advance(5 * 60_000 - 1)
  await queue.runDue()
  assert.equal(graph.objects.ads.length, 0)
  clock.advance(1)
  await queue.runDue()
  assert.deepEqual(Object.values(tagCounts(graph)), [{ adcreatives: 1, adsets: 1, ads: 1 }])
  assert.deepEqual(
    events.map((e) => e[0]),
    ['queued', 'published'],
  )
  assert.equal(events[1][1].requestId, r.requestId)
  assert.equal(events[1][1].adId, graph.objects.ads[0].id)
  assert.equal(meta.getQueuedAds().length, 0)
  assert.equal(meta.breaker.state, 'half_open', 'the drained publish was the first of two trial successes')
})

test('meta: throttling (code 80004) with X-Ad-Account-Usage opens for reset_time_duration', async (t) => {
  const { graph, clock, meta } = await setup(t)
  graph.reply({
    match: (r) => r.edge === 'adcreatives',
    status: 400,
    headers: {
      'x-ad-account-usage': JSON.stringify({ acc_id_util_pct: 100, reset_time_duration: 120, ads_api_access_tier: 'standard_access' }),
    },
    body: graphError(80004, 'There have been too many calls to this ad-account.'),
  })
  const t0 = clock.now()
  assert.equal((await meta.publishAd(adRequest(1))).queued, true)
  assert.equal(meta.breaker.getMetrics().nextAttemptAt, t0 + 120_000)
  // While open, a new publish is queued without a request.
  const before = graph.requests.length
  assert.equal((await meta.publishAd(adRequest(2))).queued, true)
  assert.equal(graph.requests.length, before)
})

test('meta: an expired token (190) is not queued, emits authError, and the token appears nowhere', async (t) => {
  const { graph, meta, events, queue } = await setup(t)
  graph.reply({
    match: (r) => r.edge === 'adcreatives',
    status: 400,
    body: graphError(190, `Error validating access token: Session has expired (token ${META_TOKEN})`, { error_subcode: 463 }),
  })
  const err = await meta.publishAd(adRequest(1)).then(assert.fail, (e) => e)
  assert.ok(err instanceof MetaGraphError)
  assert.equal(err.graph.code, 190)
  assert.equal(queue.size, 0)
  assert.deepEqual(
    events.map((e) => e[0]),
    ['authError'],
  )
  assert.equal(events[0][1].code, 190)
  assert.equal(meta.breaker.getMetrics().failedRequests, 0)
  const everything = [
    err.message,
    err.stack,
    inspect(err, { depth: 5 }),
    JSON.stringify(err),
    inspect(events, { depth: 5 }),
    JSON.stringify(meta.breaker.getMetrics()),
    inspect(meta, { depth: 2 }),
    JSON.stringify(meta.getQueuedAds()),
  ].join('\n')
  assert.ok(!everything.includes(META_TOKEN), 'the token leaked')
  assert.match(err.message, /\[redacted\]/)
})

test('meta: a missing token is a config error that names no token', () => {
  const saved = process.env.META_ACCESS_TOKEN
  delete process.env.META_ACCESS_TOKEN
  try {
    assert.throws(() => new MetaCircuitBreaker({ registry: null }), { code: 'ERR_INVALID_CONFIG', message: /accessToken/ })
    assert.throws(
      () => new MetaCircuitBreaker({ accessToken: 42, registry: null }),
      (e) => e.code === 'ERR_INVALID_CONFIG' && !e.message.includes('42'),
    )
  } finally {
    if (saved !== undefined) process.env.META_ACCESS_TOKEN = saved
  }
})

test('meta: a validation error (code 100) goes to the caller, never queued, never counted', async (t) => {
  const { graph, meta, queue, events } = await setup(t, { breakerOptions: { failureThreshold: 1 } })
  graph.reply({
    match: (r) => r.edge === 'adsets',
    status: 400,
    body: graphError(100, 'Invalid parameter', { error_subcode: 1487079, error_user_msg: 'The daily budget is too low.' }),
  })
  const err = await meta.publishAd(adRequest(1)).then(assert.fail, (e) => e)
  assert.equal(err.graph.code, 100)
  assert.equal(err.status, 400)
  assert.equal(queue.size, 0)
  assert.deepEqual(events, [])
  assert.equal(meta.breaker.state, 'closed')
  assert.equal(meta.breaker.getMetrics().failedRequests, 0)
  // Fixed and sent again with the same key: the creative made before is reused.
  const r = await meta.publishAd(
    adRequest(1, { budget: { daily_budget: 10_000, billing_event: 'IMPRESSIONS', optimization_goal: 'REACH' } }),
  )
  assert.equal(r.creativeId, graph.objects.adcreatives[0].id)
  assert.equal(graph.objects.adcreatives.length, 1)
})

test('meta: a 5xx counts as a failure and queues; a bad request is refused before any call', async (t) => {
  const { graph, meta, clock, queue } = await setup(t, { breakerOptions: { failureThreshold: 1, resetTimeoutMs: 10_000 } })
  graph.reply({
    match: (r) => r.edge === 'ads',
    status: 500,
    body: graphError(2, 'An unexpected error has occurred. Please retry your request later.', { is_transient: true }),
  })
  assert.equal((await meta.publishAd(adRequest(1))).queued, true)
  assert.equal(meta.breaker.state, 'open')
  assert.equal(meta.breaker.getMetrics().failedRequests, 1)
  clock.advance(10_000)
  await queue.runDue()
  // The ad's POST got a 500: it may have been created, so it was looked up first.
  assert.ok(graph.requests.some((r) => r.method === 'GET' && r.edge === 'ads'))
  assert.deepEqual(Object.values(tagCounts(graph)), [{ adcreatives: 1, adsets: 1, ads: 1 }])
  await assert.rejects(meta.publishAd({ ...adRequest(2), adAccountId: '123' }), { code: 'ERR_INVALID_ARGUMENT', message: /adAccountId/ })
  await assert.rejects(meta.publishAd({ ...adRequest(2), budgt: {} }), { code: 'ERR_INVALID_ARGUMENT', message: /budgt/ })
})

test('meta: a POST that times out after Meta created the object is adopted by the tag lookup, never duplicated', async (t) => {
  const { graph, clock, queue, meta, events } = await setup(t, { requestTimeoutMs: 20_000 })
  const arrived = deferred()
  graph.reply({ match: (r) => r.edge === 'adsets', createThenHold: never, onArrive: () => arrived.resolve() })
  const pending = meta.publishAd(adRequest(1))
  await arrived.promise
  assert.equal(graph.objects.adsets.length, 1, 'Meta has created the ad set...')
  clock.advance(20_000) // ...but its answer never comes
  const r = await pending
  assert.equal(r.queued, true)
  assert.deepEqual(
    events.map((e) => [e[0], e[1].reason]),
    [['queued', 'timeout']],
  )
  clock.advance(1_000)
  await queue.runDue()
  assert.deepEqual(Object.values(tagCounts(graph)), [{ adcreatives: 1, adsets: 1, ads: 1 }])
  const lookups = graph.requests.filter((q) => q.method === 'GET')
  assert.deepEqual(
    lookups.map((q) => q.edge),
    ['adsets'],
    'only the step of unknown outcome is looked up',
  )
  assert.match(lookups[0].query.filtering, /CONTAIN/)
  const published = events.find((e) => e[0] === 'published')[1]
  assert.equal(published.adSetId, graph.objects.adsets[0].id, 'the ad set Meta made was adopted')
  assert.equal(graph.objects.ads[0].adset_id, graph.objects.adsets[0].id)
})

test('meta: a queued publish that keeps failing ends as a dead letter, with what it had created', async (t) => {
  const { graph, clock, queue, meta, events } = await setup(t, {
    queueOptions: { maxRetryAttempts: 2 },
    breakerOptions: { failureThreshold: 100 },
  })
  const fail = {
    match: (r) => r.edge === 'ads',
    status: 503,
    body: graphError(2, 'Service temporarily unavailable', { is_transient: true }),
  }
  graph.reply(fail, fail, fail)
  assert.equal((await meta.publishAd(adRequest(1))).queued, true)
  clock.advance(1_000)
  await queue.runDue()
  clock.advance(2_000)
  await queue.runDue()
  const dead = events.find((e) => e[0] === 'deadLetter')?.[1]
  assert.ok(dead, JSON.stringify(events.map((e) => e[0])))
  assert.equal(dead.idempotencyKey, 'spring-sale/1')
  assert.equal(dead.reason, 'max_attempts')
  assert.equal(dead.created.creativeId, graph.objects.adcreatives[0].id)
  assert.equal(dead.created.adId, undefined)
})

test('meta: with persistPath, checkpoints survive a restart and a queued publish resumes where it stopped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-meta-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const graph = await startFakeGraph()
  t.after(() => graph.close())
  const persistPath = join(dir, 'meta.journal')
  const clock = new ManualClock(0)
  const open = () => {
    const registry = new CircuitBreakerRegistry()
    const queue = new RequestQueue({
      clock,
      registry,
      persistPath,
      autoRetryEnabled: false,
      retryDelayMs: 1_000,
      retryJitterRatio: 0,
      queueTtlMs: 86_400_000,
      logFallbacks: false,
    })
    const meta = new MetaCircuitBreaker({ accessToken: META_TOKEN, baseUrl: graph.url, queue, registry, breakerOptions: { clock } })
    return { queue, meta }
  }
  const first = open()
  graph.reply({
    match: (r) => r.edge === 'ads',
    status: 400,
    body: graphError(4, 'Application request limit reached', { is_transient: true }),
  })
  assert.equal((await first.meta.publishAd(adRequest(1))).queued, true)
  await first.meta.close()
  await first.queue.close()
  assert.ok(readFileSync(`${persistPath}.meta-steps`, 'utf8').includes('"adset"'))
  for (const file of [persistPath, `${persistPath}.meta-steps`])
    assert.ok(!readFileSync(file).includes(META_TOKEN), `the token is in ${file}`)

  const second = open()
  t.after(async () => {
    await second.meta.close()
    await second.queue.close()
  })
  await second.meta.ready
  assert.equal(second.meta.getQueuedAds().length, 1)
  assert.equal(second.meta.getQueuedAds()[0].created.adSetId, graph.objects.adsets[0].id)
  clock.advance(60 * 60_000)
  await second.queue.runDue()
  assert.deepEqual(Object.values(tagCounts(graph)), [{ adcreatives: 1, adsets: 1, ads: 1 }])
  assert.equal(graph.requests.filter((r) => r.method === 'GET').length, 0, 'checkpoints made lookups unnecessary')
})

test('setupMetaHealthCheck registers meta_api: an authenticated GET /me, linked to the breaker', async (t) => {
  const { graph, meta } = await setup(t)
  const m = createMonitor()
  const registered = setupMetaHealthCheck(meta, m.monitor, { intervalMs: 60_000 })
  assert.equal(registered.service, 'meta_api')
  assert.deepEqual(m.registration('meta_api'), { checkIntervalMs: 60_000, breaker: 'meta_api' })
  assert.deepEqual(await m.runCheck('meta_api'), { ok: true, details: { id: '10001' } })
  assert.equal(graph.requests[0].path, '/v21.0/me')
  graph.reply({ status: 400, body: graphError(190, 'Invalid OAuth access token') })
  const failed = await m.runCheck('meta_api')
  assert.equal(failed.ok, false)
  assert.match(failed.error, /190/)
  assert.throws(() => setupMetaHealthCheck({}, m.monitor), { code: 'ERR_INVALID_ARGUMENT' })
})
