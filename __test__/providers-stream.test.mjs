// Streaming through the provider breakers with the real SDKs against SSE fakes: failover only
// before the first chunk, never after output began, and the time to the first chunk as the
// latency the breaker sees.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { isAllProvidersUnavailableError } from 'breakwater/providers'
import { openaiError, anthropicError, geminiError, deferred } from './providers/fakes.mjs'
import { setup, counts, OPENAI_REQUEST, ANTHROPIC_REQUEST, GEMINI_REQUEST } from './providers/setup.mjs'

const never = new Promise(() => {})

function streamOf(ai, request, options) {
  if (typeof ai.chatCompletionStream === 'function') return ai.chatCompletionStream(request ?? OPENAI_REQUEST, options)
  if (typeof ai.createMessageStream === 'function') return ai.createMessageStream(request ?? ANTHROPIC_REQUEST, options)
  return ai.generateContentStream(request ?? GEMINI_REQUEST, options)
}

async function collect(iterable) {
  const chunks = []
  for await (const c of iterable) chunks.push(c)
  return chunks
}

const text = (chunks) => chunks.map((c) => c.content).join('')

for (const primary of ['openai', 'anthropic', 'gemini']) {
  test(`stream: ${primary} streams its answer in chunks of one shape`, async (t) => {
    const { ai, fakes, breakers } = await setup(t, { primary })
    const chunks = await collect(streamOf(ai))
    assert.equal(text(chunks), `${primary} says hi`)
    assert.ok(chunks.length >= 2)
    for (const c of chunks) {
      assert.equal(c.provider, primary)
      assert.ok(!('_fallback' in c))
      assert.ok(c.raw !== undefined)
    }
    const last = chunks.filter((c) => c.usage !== undefined).at(-1)
    assert.ok(last.usage.inputTokens > 0 && last.usage.outputTokens > 0, JSON.stringify(last.usage))
    assert.deepEqual(chunks.map((c) => c.finishReason).filter(Boolean), ['stop'])
    const [req] = fakes[primary].completions
    if (primary === 'gemini') {
      assert.match(req.path, /:streamGenerateContent$/)
      assert.equal(req.query.alt, 'sse')
    } else {
      assert.equal(req.body.stream, true)
      assert.equal(req.headers['x-stainless-retry-count'], '0')
    }
    if (primary === 'openai') assert.deepEqual(req.body.stream_options, { include_usage: true })
    assert.deepEqual(counts(breakers[primary]), { state: 'closed', failed: 0, succeeded: 1, rejected: 0 })
  })
}

// ---- failover before the first chunk ----

test('stream: an HTTP error before the stream starts fails over, and the fallback streams', async (t) => {
  const { ai, fakes, breakers, events } = await setup(t)
  fakes.openai.reply({ status: 503, body: openaiError('server_error', 'down') })
  const chunks = await collect(ai.chatCompletionStream(OPENAI_REQUEST))
  assert.equal(text(chunks), 'anthropic says hi')
  assert.ok(chunks.every((c) => c.provider === 'anthropic' && c._fallback === 'anthropic'))
  assert.equal(fakes.anthropic.completions[0].body.stream, true)
  assert.equal(fakes.anthropic.completions[0].body.model, 'claude-haiku-4-5')
  assert.deepEqual(events, [['failover', 'openai', 'anthropic', 'server_error']])
  assert.equal(counts(breakers.openai).failed, 1)
})

test('stream: an overloaded_error event before any text (after message_start) still fails over', async (t) => {
  const { ai, fakes, breakers, events } = await setup(t, { primary: 'anthropic' })
  fakes.anthropic.reply({ failAfter: 0, failWith: { type: 'overloaded_error', message: 'Overloaded' } })
  const chunks = await collect(ai.createMessageStream(ANTHROPIC_REQUEST))
  assert.equal(text(chunks), 'openai says hi')
  assert.deepEqual(events, [['failover', 'anthropic', 'openai', 'overloaded']])
  assert.equal(counts(breakers.anthropic).failed, 1)
})

test('stream: a connection dropped before the first chunk fails over', async (t) => {
  const { ai, fakes, events } = await setup(t)
  fakes.openai.reply({ failAfter: 0, failWith: 'drop' })
  const chunks = await collect(ai.chatCompletionStream(OPENAI_REQUEST))
  assert.equal(chunks[0].provider, 'anthropic')
  assert.deepEqual(events, [['failover', 'openai', 'anthropic', 'connection']])
})

test("stream: Gemini's 429 opens gemini_api for its retryDelay and fails over", async (t) => {
  const { ai, fakes, clock, breakers } = await setup(t, { primary: 'gemini' })
  fakes.gemini.reply({
    status: 429,
    body: geminiError(429, 'RESOURCE_EXHAUSTED', 'quota', [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '30s' }]),
  })
  const t0 = clock.now()
  const chunks = await collect(ai.generateContentStream(GEMINI_REQUEST))
  assert.equal(chunks[0].provider, 'openai')
  assert.equal(breakers.gemini.getMetrics().nextAttemptAt, t0 + 30_000)
})

test('stream: when nobody can stream, the first step of the iteration throws ERR_ALL_PROVIDERS_UNAVAILABLE', async (t) => {
  const { ai, fakes } = await setup(t, { providers: ['openai', 'anthropic'] })
  fakes.openai.reply({ status: 500, body: openaiError('server_error', 'x') })
  fakes.anthropic.reply({ status: 429, headers: { 'retry-after': '9' }, body: anthropicError('rate_limit_error', 'x') })
  const err = await collect(ai.chatCompletionStream(OPENAI_REQUEST)).then(assert.fail, (e) => e)
  assert.ok(isAllProvidersUnavailableError(err))
  assert.equal(err.retryAfterMs, 0, 'OpenAI failed once but is still closed')
})

// ---- never after output began ----

test('stream: a connection dropped after the first chunk reaches the caller, counts once, and is never restarted elsewhere', async (t) => {
  const { ai, fakes, breakers, events } = await setup(t)
  const shown = deferred()
  fakes.openai.reply({ chunks: ['Once ', 'upon ', 'a time'], failAfter: 1, failWith: 'drop', failGate: shown.promise })
  const seen = []
  const err = await (async () => {
    for await (const c of ai.chatCompletionStream(OPENAI_REQUEST)) {
      seen.push(c.content)
      shown.resolve()
    }
  })().then(assert.fail, (e) => e)
  assert.deepEqual(seen, ['Once '])
  assert.ok(err instanceof Error)
  assert.ok(!isAllProvidersUnavailableError(err))
  assert.equal(fakes.anthropic.requests.length + fakes.gemini.requests.length, 0, 'no silent restart on another provider')
  assert.deepEqual(events, [])
  assert.deepEqual(counts(breakers.openai), { state: 'closed', failed: 1, succeeded: 1, rejected: 0 })
})

test("stream: Anthropic's overloaded_error event after output began goes to the caller as the SDK's error", async (t) => {
  const { ai, fakes, breakers } = await setup(t, { primary: 'anthropic' })
  const shown = deferred()
  fakes.anthropic.reply({
    chunks: ['Hel', 'lo'],
    failAfter: 1,
    failWith: { type: 'overloaded_error', message: 'Overloaded' },
    failGate: shown.promise,
  })
  const seen = []
  const err = await (async () => {
    for await (const c of ai.createMessageStream(ANTHROPIC_REQUEST)) {
      seen.push(c.content)
      shown.resolve()
    }
  })().then(assert.fail, (e) => e)
  assert.deepEqual(seen, ['Hel'])
  assert.ok(err instanceof Anthropic.APIError)
  assert.equal(err.type, 'overloaded_error')
  assert.equal(fakes.openai.requests.length, 0)
  assert.equal(counts(breakers.anthropic).failed, 1)
})

// ---- the time to the first chunk is the latency ----

test('stream: the breaker measures the time to the first chunk, not the length of the stream', async (t) => {
  const { ai, fakes, clock, breakers } = await setup(t, {
    breakerOptions: { slowCallDurationMs: 3_000, slowCallRateThreshold: 1, minThroughput: 1000 },
  })
  const first = deferred()
  const rest = deferred()
  fakes.openai.reply({ chunks: ['a', 'b'], gates: { 0: first.promise, 1: rest.promise } })
  const it = ai.chatCompletionStream(OPENAI_REQUEST)[Symbol.asyncIterator]()
  const pending = it.next()
  await fakes.openai.received(1)
  clock.advance(4_000) // 4 s to the first chunk: slow
  first.resolve()
  assert.equal((await pending).value.content, 'a')
  clock.advance(60_000) // a minute of streaming after it changes nothing
  rest.resolve()
  for (let r = await it.next(); !r.done; r = await it.next());
  let m = breakers.openai.getMetrics()
  assert.equal(m.successfulRequests, 1)
  assert.equal(m.slowRequests, 1)
  assert.ok(Math.abs(m.latencyMaxMs - 4_000) <= 40, `latency ${m.latencyMaxMs}`)

  // A fast first chunk and a long stream: not slow.
  const late = deferred()
  fakes.openai.reply({ chunks: ['a', 'b'], gates: { 1: late.promise } })
  const it2 = ai.chatCompletionStream(OPENAI_REQUEST)[Symbol.asyncIterator]()
  assert.equal((await it2.next()).value.content, 'a')
  clock.advance(120_000)
  late.resolve()
  for (let r = await it2.next(); !r.done; r = await it2.next());
  m = breakers.openai.getMetrics()
  assert.equal(m.successfulRequests, 2)
  assert.equal(m.slowRequests, 1)
  assert.ok(m.latencyMaxMs < 4_100)
})

test('stream: callTimeoutMs bounds the wait for the first chunk, then fails over', async (t) => {
  const { ai, fakes, clock, events } = await setup(t, { breakerOptions: { callTimeoutMs: 10_000 } })
  fakes.openai.reply({ gates: { 0: never } })
  const it = ai.chatCompletionStream(OPENAI_REQUEST)[Symbol.asyncIterator]()
  const pending = it.next()
  await fakes.openai.received(1)
  clock.advance(10_000)
  const first = await pending
  assert.equal(first.value.provider, 'anthropic')
  assert.deepEqual(events, [['failover', 'openai', 'anthropic', 'timeout']])
  await fakes.openai.requests[0].closed // the timed-out stream's connection was released
  await it.return()
})

// ---- letting go ----

test('stream: a consumer that stops early releases the connection', async (t) => {
  const { ai, fakes, breakers } = await setup(t)
  fakes.openai.reply({ chunks: ['a', 'b', 'c'], gates: { 1: never } })
  for await (const c of ai.chatCompletionStream(OPENAI_REQUEST)) {
    assert.equal(c.content, 'a')
    break
  }
  await fakes.openai.requests[0].closed
  assert.deepEqual(counts(breakers.openai), { state: 'closed', failed: 0, succeeded: 1, rejected: 0 })
})

test("stream: the caller's abort ends the stream and counts nothing, before or after the first chunk", async (t) => {
  const { ai, fakes, breakers, events } = await setup(t)
  // Before the first chunk.
  fakes.openai.reply({ gates: { 0: never } })
  const before = new AbortController()
  const it = ai.chatCompletionStream(OPENAI_REQUEST, { signal: before.signal })[Symbol.asyncIterator]()
  const pending = it.next()
  await fakes.openai.received(1)
  before.abort()
  const err = await pending.then(assert.fail, (e) => e)
  assert.ok(err.name === 'AbortError' || err instanceof OpenAI.APIUserAbortError, err.name)
  assert.equal(fakes.anthropic.requests.length, 0)
  // After it.
  fakes.openai.reply({ chunks: ['a', 'b'], gates: { 1: never } })
  const after = new AbortController()
  const seen = []
  await (async () => {
    for await (const c of ai.chatCompletionStream(OPENAI_REQUEST, { signal: after.signal })) {
      seen.push(c.content)
      after.abort()
    }
  })().catch((e) => assert.ok(e.name === 'AbortError' || e instanceof OpenAI.APIUserAbortError, e.name))
  assert.deepEqual(seen, ['a'])
  assert.deepEqual(events, [])
  assert.deepEqual(counts(breakers.openai), { state: 'closed', failed: 0, succeeded: 1, rejected: 0 })
})
