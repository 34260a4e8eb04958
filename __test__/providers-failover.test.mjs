// Failover between OpenAI, Anthropic and Gemini with the real SDK clients against fake upstreams:
// every taxonomy row end to end, the model map, the all-unavailable error, and the breakers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { GoogleGenAI } from '@google/genai'
import { CircuitBreakerRegistry, ManualClock, isCircuitOpenError } from 'breakwater'
import { OpenAICircuitBreaker, AnthropicCircuitBreaker, isAllProvidersUnavailableError } from 'breakwater/providers'
import { openaiError, anthropicError, geminiError, deferred, startFake } from './providers/fakes.mjs'
import { setup, complete, counts, OPENAI_REQUEST, ANTHROPIC_REQUEST } from './providers/setup.mjs'

const never = new Promise(() => {})

test('the primary answers: the request passes through untouched, with the SDK retries off', async (t) => {
  const { ai, fakes, breakers } = await setup(t)
  const r = await ai.chatCompletion({ ...OPENAI_REQUEST, temperature: 0.2, user: 'u-1', response_format: { type: 'text' } })
  assert.deepEqual(
    { ...r, raw: undefined },
    {
      content: 'openai says hi',
      model: 'gpt-4o-mini',
      provider: 'openai',
      usage: { inputTokens: 11, outputTokens: 7 },
      finishReason: 'stop',
      raw: undefined,
    },
  )
  assert.equal(r.raw.id, 'chatcmpl-1')
  assert.ok(!('_fallback' in r))
  const [req] = fakes.openai.completions
  assert.deepEqual(req.body, { ...OPENAI_REQUEST, temperature: 0.2, user: 'u-1', response_format: { type: 'text' }, stream: false })
  assert.equal(req.headers['x-stainless-retry-count'], '0')
  assert.equal(fakes.anthropic.requests.length + fakes.gemini.requests.length, 0)
  assert.deepEqual(counts(breakers.openai), { state: 'closed', failed: 0, succeeded: 1, rejected: 0 })
})

// ---- every taxonomy row, end to end: OpenAI fails, Anthropic answers ----

const FAILURES = [
  ['a dropped connection', { drop: true }],
  ['408', { status: 408, body: openaiError('timeout', 'Request timed out') }],
  ['500', { status: 500, body: openaiError('server_error', 'The server had an error') }],
  ['502', { status: 502, body: 'Bad gateway', headers: { 'content-type': 'text/html' } }],
  ['503', { status: 503, body: openaiError('server_error', 'The engine is currently overloaded') }],
  ['529', { status: 529, body: openaiError('server_error', 'Overloaded') }],
]

for (const [what, reply] of FAILURES) {
  test(`taxonomy end to end: ${what} from OpenAI counts as a failure and fails over to Anthropic, once`, async (t) => {
    const { ai, fakes, breakers, events } = await setup(t)
    fakes.openai.reply(reply)
    const r = await ai.chatCompletion(OPENAI_REQUEST)
    assert.equal(r.provider, 'anthropic')
    assert.equal(r._fallback, 'anthropic')
    assert.equal(r.model, 'claude-haiku-4-5', 'gpt-4o-mini maps to claude-haiku-4-5')
    assert.equal(fakes.openai.completions.length, 1, 'no SDK retry: the breaker sees every attempt')
    assert.deepEqual(counts(breakers.openai), { state: 'closed', failed: 1, succeeded: 0, rejected: 0 })
    assert.deepEqual(counts(breakers.anthropic), { state: 'closed', failed: 0, succeeded: 1, rejected: 0 })
    assert.equal(events.length, 1)
    assert.equal(events[0][1], 'openai')
    assert.equal(events[0][2], 'anthropic')
  })
}

test('taxonomy end to end: the SDK timing out counts as a failure and fails over', async (t) => {
  const { ai, fakes, breakers, events } = await setup(t, { timeoutMs: 300 })
  fakes.openai.reply({ hold: never })
  const r = await ai.chatCompletion(OPENAI_REQUEST)
  assert.equal(r.provider, 'anthropic')
  assert.deepEqual(events, [['failover', 'openai', 'anthropic', 'timeout']])
  assert.equal(counts(breakers.openai).failed, 1)
})

test("taxonomy end to end: the breaker's callTimeoutMs (on the ManualClock) aborts the call and fails over", async (t) => {
  const { ai, fakes, clock, breakers, events } = await setup(t, { breakerOptions: { callTimeoutMs: 5_000 } })
  fakes.openai.reply({ hold: never })
  const pending = ai.chatCompletion(OPENAI_REQUEST)
  await fakes.openai.received(1)
  clock.advance(5_000)
  const r = await pending
  assert.equal(r.provider, 'anthropic')
  assert.deepEqual(events, [['failover', 'openai', 'anthropic', 'timeout']])
  const m = breakers.openai.getMetrics()
  assert.equal(m.timedOutRequests, 1)
  assert.equal(m.failedRequests, 1)
})

test('taxonomy end to end: Anthropic 529 overloaded fails over to OpenAI with the mapped model', async (t) => {
  const { ai, fakes, breakers, events } = await setup(t, { primary: 'anthropic' })
  fakes.anthropic.reply({ status: 529, body: anthropicError('overloaded_error', 'Overloaded') })
  const r = await ai.createMessage(ANTHROPIC_REQUEST)
  assert.equal(r.provider, 'openai')
  assert.equal(r._fallback, 'openai')
  assert.equal(fakes.openai.completions[0].body.model, 'gpt-4o', 'claude-3-5-sonnet maps to gpt-4o')
  assert.equal(fakes.anthropic.completions.length, 1)
  assert.deepEqual(events, [['failover', 'anthropic', 'openai', 'overloaded']])
  assert.equal(counts(breakers.anthropic).failed, 1)
})

const RATE_LIMITS = [
  ['retry-after-ms', { 'retry-after-ms': '1500' }, 1500],
  ['retry-after in seconds', { 'retry-after': '7' }, 7000],
  ["no hint (the breaker's resetTimeoutMs)", {}, 60_000],
]

for (const [what, headers, openMs] of RATE_LIMITS) {
  test(`taxonomy end to end: OpenAI 429 with ${what} opens openai_api for ${openMs} ms, uncounted, and fails over`, async (t) => {
    const { ai, fakes, clock, breakers, events } = await setup(t)
    fakes.openai.reply({ status: 429, headers, body: openaiError('requests', 'Rate limit reached', 'rate_limit_exceeded') })
    const t0 = clock.now()
    const r = await ai.chatCompletion(OPENAI_REQUEST)
    assert.equal(r.provider, 'anthropic')
    const m = breakers.openai.getMetrics()
    assert.equal(m.state, 'open')
    assert.equal(m.nextAttemptAt, t0 + openMs)
    assert.equal(m.failedRequests, 0, 'a rate limit is not a failure: the breaker opens for the hint instead')
    assert.deepEqual(events, [['failover', 'openai', 'anthropic', 'rate_limited']])
    // Until the hint is up, OpenAI is not asked at all; then a trial goes to it.
    clock.advance(openMs - 1)
    assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).provider, 'anthropic')
    assert.equal(fakes.openai.completions.length, 1)
    clock.advance(1)
    assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).provider, 'openai')
    assert.equal(fakes.openai.completions.length, 2)
  })
}

test('taxonomy end to end: Anthropic 429 with an HTTP-date retry-after opens for the time until that date', async (t) => {
  const { ai, fakes, clock, breakers } = await setup(t, { primary: 'anthropic' })
  // An HTTP-date has whole seconds: 31 s ahead is between 30 and 31 s away.
  const at = new Date(Math.floor(Date.now() / 1000) * 1000 + 31_000).toUTCString()
  fakes.anthropic.reply({
    status: 429,
    headers: { 'retry-after': at },
    body: anthropicError('rate_limit_error', 'Number of requests has exceeded your rate limit'),
  })
  const t0 = clock.now()
  assert.equal((await ai.createMessage(ANTHROPIC_REQUEST)).provider, 'openai')
  const openMs = breakers.anthropic.getMetrics().nextAttemptAt - t0
  assert.ok(openMs > 29_000 && openMs <= 31_000, `open for ${openMs} ms`)
})

test("taxonomy end to end: Gemini 429 opens gemini_api for the body's retryDelay", async (t) => {
  const { ai, fakes, clock, breakers, events } = await setup(t, { primary: 'gemini' })
  fakes.gemini.reply({
    status: 429,
    body: geminiError(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded', [
      {
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests' }],
      },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '12s' },
    ]),
  })
  const t0 = clock.now()
  const r = await ai.generateContent({ model: 'gemini-2.5-flash', contents: 'Hello' })
  assert.equal(r.provider, 'openai')
  assert.equal(fakes.openai.completions[0].body.model, 'gpt-4o-mini', 'gemini-2.5-flash maps to gpt-4o-mini')
  assert.deepEqual(events, [['failover', 'gemini', 'openai', 'rate_limited']])
  assert.equal(breakers.gemini.getMetrics().nextAttemptAt, t0 + 12_000)
  assert.equal(fakes.gemini.completions.length, 1)
})

test('taxonomy end to end: OpenAI insufficient_quota opens for maxResetTimeoutMs and fails over', async (t) => {
  const { ai, fakes, clock, breakers } = await setup(t, { breakerOptions: { maxResetTimeoutMs: 120_000 } })
  fakes.openai.reply({
    status: 429,
    headers: { 'retry-after': '1' },
    body: openaiError('insufficient_quota', 'You exceeded your current quota', 'insufficient_quota'),
  })
  const t0 = clock.now()
  assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).provider, 'anthropic')
  const m = breakers.openai.getMetrics()
  assert.equal(m.nextAttemptAt, t0 + 120_000, 'the retry-after of 1 s is not what an exhausted quota needs')
  assert.equal(m.failedRequests, 0)
})

test("taxonomy end to end: Anthropic's spend limit opens anthropic_api for maxResetTimeoutMs (default 300 s)", async (t) => {
  const { ai, fakes, clock, breakers, events } = await setup(t, { primary: 'anthropic' })
  fakes.anthropic.reply({
    status: 429,
    body: anthropicError('rate_limit_error', 'You have reached your specified API usage limits.', {
      error_code: 'enforced_spend_limit_reached',
    }),
  })
  const t0 = clock.now()
  assert.equal((await ai.createMessage(ANTHROPIC_REQUEST)).provider, 'openai')
  assert.equal(breakers.anthropic.getMetrics().nextAttemptAt, t0 + 300_000)
  assert.deepEqual(events, [['failover', 'anthropic', 'openai', 'quota_exhausted']])
})

for (const status of [401, 403]) {
  test(`taxonomy end to end: ${status} opens the breaker, emits authError and fails over`, async (t) => {
    const { ai, fakes, clock, breakers, events } = await setup(t)
    fakes.openai.reply({ status, body: openaiError('invalid_request_error', 'Incorrect API key provided: sk-test', 'invalid_api_key') })
    const t0 = clock.now()
    assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).provider, 'anthropic')
    assert.deepEqual(events, [
      ['authError', 'openai', status],
      ['failover', 'openai', 'anthropic', 'auth'],
    ])
    const m = breakers.openai.getMetrics()
    assert.equal(m.state, 'open')
    assert.equal(m.nextAttemptAt, t0 + 300_000)
    assert.equal(m.failedRequests, 0)
  })
}

const CALLER_ERRORS = [
  [
    400,
    openaiError('invalid_request_error', "This model's maximum context length is 128000 tokens", 'context_length_exceeded'),
    OpenAI.BadRequestError,
  ],
  [404, openaiError('invalid_request_error', 'The model `gpt-4o-mini` does not exist', 'model_not_found'), OpenAI.NotFoundError],
  [422, openaiError('invalid_request_error', 'Unprocessable'), OpenAI.UnprocessableEntityError],
]

for (const [status, body, ErrorClass] of CALLER_ERRORS) {
  test(`taxonomy end to end: ${status} neither counts nor fails over; the caller gets OpenAI's error`, async (t) => {
    const { ai, fakes, breakers, events } = await setup(t, { breakerOptions: { failureThreshold: 1 } })
    fakes.openai.reply({ status, body })
    const err = await ai.chatCompletion(OPENAI_REQUEST).then(assert.fail, (e) => e)
    assert.ok(err instanceof ErrorClass, err.constructor.name)
    assert.equal(err.status, status)
    assert.equal(fakes.anthropic.requests.length + fakes.gemini.requests.length, 0)
    assert.deepEqual(events, [])
    const m = breakers.openai.getMetrics()
    assert.equal(m.state, 'closed')
    assert.equal(m.failedRequests, 0)
    assert.equal(m.consecutiveFailures, 0)
  })
}

test("a 404 after failing over (a wrong model name) does not trip the fallback's breaker, and goes to the caller", async (t) => {
  const { ai, fakes, breakers, events } = await setup(t, {
    breakerOptions: { failureThreshold: 1 },
    modelMap: { 'gpt-4o-mini': { anthropic: 'claude-nope' } },
  })
  fakes.openai.reply({ status: 503, body: openaiError('server_error', 'down') })
  fakes.anthropic.reply({ status: 404, body: anthropicError('not_found_error', 'model: claude-nope') })
  const err = await ai.chatCompletion(OPENAI_REQUEST).then(assert.fail, (e) => e)
  assert.ok(err instanceof Anthropic.NotFoundError)
  assert.equal(fakes.anthropic.completions[0].body.model, 'claude-nope')
  assert.equal(fakes.gemini.requests.length, 0, 'a caller error at a fallback ends the chain')
  assert.deepEqual(counts(breakers.anthropic), { state: 'closed', failed: 0, succeeded: 0, rejected: 0 })
  assert.equal(counts(breakers.openai).state, 'open')
  assert.deepEqual(events, [['failover', 'openai', 'anthropic', 'server_error']])
})

test('a 400 in half-open neither counts nor holds the trial permit', async (t) => {
  const { ai, fakes, clock, breakers } = await setup(t, {
    breakerOptions: { failureThreshold: 1, halfOpenMaxCalls: 1, successThreshold: 1 },
  })
  fakes.openai.reply({ status: 500, body: openaiError('server_error', 'down') })
  await ai.chatCompletion(OPENAI_REQUEST)
  assert.equal(breakers.openai.state, 'open')
  clock.advance(60_000)
  fakes.openai.reply({ status: 400, body: openaiError('invalid_request_error', 'bad', 'context_length_exceeded') })
  await ai.chatCompletion(OPENAI_REQUEST).then(assert.fail, (e) => assert.equal(e.status, 400))
  assert.equal(breakers.openai.state, 'half_open')
  assert.equal(breakers.openai.getMetrics().halfOpenInFlight, 0, 'the trial slot is free again')
  assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).provider, 'openai')
  assert.equal(breakers.openai.state, 'closed')
})

// ---- the SDKs' own retries are off ----

test("Gemini's own retries are off per request, even on a client configured to retry", async (t) => {
  const gemini = await startFake('gemini')
  const openai = await startFake('openai')
  t.after(() => Promise.all([gemini.close(), openai.close()]))
  const geminiClient = new GoogleGenAI({
    apiKey: 'k',
    httpOptions: { baseUrl: gemini.url, retryOptions: { attempts: 5, initialDelay: 0.01 } },
  })
  const openaiClient = new OpenAI({ apiKey: 'k', baseURL: `${openai.url}/v1`, maxRetries: 5 })
  const clock = new ManualClock(0)
  const { GeminiCircuitBreaker } = await import('breakwater/providers')
  const ai = new GeminiCircuitBreaker({ geminiClient, openaiClient, registry: null, breakerOptions: { clock } })
  gemini.reply({ status: 503, body: geminiError(503, 'UNAVAILABLE', 'overloaded') })
  openai.reply({ status: 500, body: openaiError('server_error', 'down') })
  const err = await ai.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' }).then(assert.fail, (e) => e)
  assert.ok(isAllProvidersUnavailableError(err))
  assert.equal(gemini.completions.length, 1)
  assert.equal(openai.completions.length, 1, 'maxRetries: 0 per request beats the client default of 5')
})

// ---- the model map ----

test('the model map: defaults by longest prefix, user overrides merged over them, null for no failover', async (t) => {
  const { ai, fakes } = await setup(t, {
    breakerOptions: { failureThreshold: 1000 },
    modelMap: {
      'gpt-4o': { anthropic: 'claude-opus-4-1' },
      'ft:gpt-4o-mini': { anthropic: null, gemini: 'gemini-2.5-flash-lite' },
      default: { anthropic: 'claude-sonnet-4-5' },
    },
  })
  const askedFor = async (model) => {
    fakes.openai.reply({ status: 500, body: openaiError('server_error', 'down') })
    const r = await ai.chatCompletion({ ...OPENAI_REQUEST, model })
    return `${r.provider}:${r.model}`
  }
  assert.equal(await askedFor('gpt-4o-mini-2024-07-18'), 'anthropic:claude-haiku-4-5', 'the default entry, by prefix')
  assert.equal(await askedFor('gpt-4o'), 'anthropic:claude-opus-4-1', "the user's entry")
  assert.equal(await askedFor('gpt-4o-2024-11-20'), 'anthropic:claude-opus-4-1', "the user's entry, by prefix")
  assert.equal(await askedFor('o3-pro'), 'anthropic:claude-sonnet-4-5', "the user's default")
  assert.equal(await askedFor('ft:gpt-4o-mini:acme::abc'), 'gemini:gemini-2.5-flash-lite', 'null skips Anthropic')
  assert.equal(fakes.anthropic.completions.length, 4)
})

test("the model map: the Gemini breaker of a Gemini-primary chain keeps the caller's model", async (t) => {
  const { ai, fakes } = await setup(t, { primary: 'gemini' })
  await ai.generateContent({ model: 'gemini-2.5-pro', contents: 'hi' })
  assert.match(fakes.gemini.completions[0].path, /models\/gemini-2\.5-pro:generateContent$/)
})

// ---- all providers unavailable ----

test('ERR_ALL_PROVIDERS_UNAVAILABLE carries the soonest time any provider might be back', async (t) => {
  const { ai, fakes, clock } = await setup(t, { breakerOptions: { failureThreshold: 1 } })
  fakes.openai.reply({ status: 503, body: openaiError('server_error', 'down') }) // opens for resetTimeoutMs: 60 s
  fakes.anthropic.reply({ status: 429, headers: { 'retry-after': '20' }, body: anthropicError('rate_limit_error', 'slow down') })
  fakes.gemini.reply({
    status: 429,
    body: geminiError(429, 'RESOURCE_EXHAUSTED', 'quota', [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '12s' }]),
  })
  const err = await ai.chatCompletion(OPENAI_REQUEST).then(assert.fail, (e) => e)
  assert.equal(err.code, 'ERR_ALL_PROVIDERS_UNAVAILABLE')
  assert.ok(isAllProvidersUnavailableError(err))
  assert.equal(err.retryAfterMs, 12_000)
  assert.deepEqual(
    err.attempts.map((a) => [a.provider, a.breaker, a.outcome, a.reason, a.status]),
    [
      ['openai', 'openai_api', 'failed', 'server_error', 503],
      ['anthropic', 'anthropic_api', 'failed', 'rate_limited', 429],
      ['gemini', 'gemini_api', 'failed', 'rate_limited', 429],
    ],
  )
  assert.ok(err.cause instanceof Error, 'the last provider error is the cause')
  assert.match(
    err.message,
    /openai failed \(server_error, 503\); anthropic failed \(rate_limited, 429\); gemini failed \(rate_limited, 429\); retry after 12000 ms/,
  )

  // Every circuit is open now: the next call asks nobody, and the time has moved on.
  clock.advance(5_000)
  const again = await ai.chatCompletion(OPENAI_REQUEST).then(assert.fail, (e) => e)
  assert.equal(again.retryAfterMs, 7_000)
  assert.deepEqual(
    again.attempts.map((a) => a.outcome),
    ['rejected', 'rejected', 'rejected'],
  )
  assert.ok(again.attempts.every((a) => isCircuitOpenError(a.error)))
  assert.equal(fakes.openai.completions.length + fakes.anthropic.completions.length + fakes.gemini.completions.length, 3)

  // When Gemini's hint is up, it is tried again and answers.
  clock.advance(7_000)
  assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).provider, 'gemini')
})

test('ERR_ALL_PROVIDERS_UNAVAILABLE: 0 when a provider that failed is still closed, null when every circuit is forced open', async (t) => {
  const { ai, fakes, breakers } = await setup(t, { providers: ['openai', 'anthropic'] })
  fakes.openai.reply({ status: 500, body: openaiError('server_error', 'down') })
  fakes.anthropic.reply({ status: 500, body: anthropicError('api_error', 'down') })
  const err = await ai.chatCompletion(OPENAI_REQUEST).then(assert.fail, (e) => e)
  assert.equal(err.retryAfterMs, 0, 'a closed circuit might serve the next call')
  breakers.openai.forceOpen()
  breakers.anthropic.forceOpen()
  const forced = await ai.chatCompletion(OPENAI_REQUEST).then(assert.fail, (e) => e)
  assert.equal(forced.code, 'ERR_ALL_PROVIDERS_UNAVAILABLE')
  assert.equal(forced.retryAfterMs, null)
  assert.equal(fakes.openai.completions.length, 1)
})

test('a request that cannot be translated (tools) fails over nowhere, and says so', async (t) => {
  const { ai, fakes } = await setup(t)
  fakes.openai.reply({ status: 503, body: openaiError('server_error', 'down') })
  const request = {
    model: 'gpt-4o-mini',
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'weather', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
    ],
  }
  const err = await ai.chatCompletion(request).then(assert.fail, (e) => e)
  assert.equal(err.code, 'ERR_ALL_PROVIDERS_UNAVAILABLE')
  assert.deepEqual(
    err.attempts.map((a) => [a.provider, a.outcome, a.reason]),
    [
      ['openai', 'failed', 'server_error'],
      ['anthropic', 'skipped', 'untranslatable'],
      ['gemini', 'skipped', 'untranslatable'],
    ],
  )
  assert.equal(fakes.anthropic.requests.length + fakes.gemini.requests.length, 0)
})

// ---- aborts, operators, concurrency ----

test("the caller's abort neither counts nor fails over", async (t) => {
  const { ai, fakes, breakers, events } = await setup(t)
  fakes.openai.reply({ hold: never })
  const controller = new AbortController()
  const pending = ai.chatCompletion(OPENAI_REQUEST, { signal: controller.signal })
  await fakes.openai.received(1)
  controller.abort()
  const err = await pending.then(assert.fail, (e) => e)
  assert.ok(err instanceof OpenAI.APIUserAbortError, err.constructor.name)
  assert.deepEqual(events, [])
  assert.equal(fakes.anthropic.requests.length, 0)
  assert.deepEqual(counts(breakers.openai), { state: 'closed', failed: 0, succeeded: 0, rejected: 0 })
  const before = await ai.chatCompletion(OPENAI_REQUEST, { signal: AbortSignal.abort() }).then(assert.fail, (e) => e)
  assert.equal(before.name, 'AbortError')
})

test("Gemini's config.abortSignal is the caller's signal: an abort there does not fail over", async (t) => {
  const { ai, fakes, breakers, events } = await setup(t, { primary: 'gemini' })
  fakes.gemini.reply({ hold: never })
  const controller = new AbortController()
  const pending = ai.generateContent({ model: 'gemini-2.5-flash', contents: 'hi', config: { abortSignal: controller.signal } })
  await fakes.gemini.received(1)
  controller.abort()
  const err = await pending.then(assert.fail, (e) => e)
  assert.equal(err.name, 'AbortError')
  assert.deepEqual(events, [])
  assert.equal(fakes.openai.requests.length, 0)
  assert.equal(counts(breakers.gemini).failed, 0)
})

test("an operator's forced-open circuit is skipped, and a 429 does not end a disabled breaker's pass-through", async (t) => {
  const { ai, fakes, breakers, events } = await setup(t)
  breakers.openai.forceOpen()
  assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).provider, 'anthropic')
  assert.deepEqual(events, [['failover', 'openai', 'anthropic', 'circuit_open']])
  assert.equal(fakes.openai.requests.length, 0)
  breakers.openai.disable()
  fakes.openai.reply({ status: 429, headers: { 'retry-after': '30' }, body: openaiError('requests', 'slow down') })
  assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).provider, 'anthropic')
  assert.equal(breakers.openai.state, 'disabled')
})

test('a shorter rate-limit hint does not shorten an open for exhausted quota', async (t) => {
  const { ai, fakes, clock, breakers } = await setup(t)
  const first = deferred()
  const second = deferred()
  fakes.openai.reply(
    { hold: first.promise, status: 429, body: openaiError('insufficient_quota', 'quota', 'insufficient_quota') },
    { hold: second.promise, status: 429, headers: { 'retry-after': '1' }, body: openaiError('requests', 'slow down') },
  )
  const t0 = clock.now()
  const a = ai.chatCompletion(OPENAI_REQUEST)
  const b = ai.chatCompletion(OPENAI_REQUEST)
  await fakes.openai.received(2)
  first.resolve()
  await a
  second.resolve()
  await b
  assert.equal(breakers.openai.getMetrics().nextAttemptAt, t0 + 300_000)
})

// ---- breakers, registries, configuration ----

test('the OpenAI and Anthropic breakers of one registry share the provider breakers', async (t) => {
  const { ai, clients, registry, fakes } = await setup(t, { breakerOptions: { failureThreshold: 1 } })
  const claude = new AnthropicCircuitBreaker({ anthropicClient: clients.anthropicClient, openaiClient: clients.openaiClient, registry })
  assert.equal(claude.breakers.openai, ai.breakers.openai)
  assert.equal(claude.breakers.anthropic, ai.breakers.anthropic)
  assert.equal(registry.get('anthropic_api'), ai.breakers.anthropic)
  assert.equal(claude.breakers.gemini, undefined)
  fakes.openai.reply({ status: 500, body: openaiError('server_error', 'down') })
  await ai.chatCompletion(OPENAI_REQUEST)
  assert.equal(ai.breakers.openai.state, 'open')
  fakes.anthropic.reply({ status: 500, body: anthropicError('api_error', 'down') })
  const err = await claude.createMessage(ANTHROPIC_REQUEST).then(assert.fail, (e) => e)
  assert.deepEqual(
    err.attempts.map((a) => a.outcome),
    ['failed', 'rejected'],
    'OpenAI is open for both',
  )
})

test('a breaker that already exists in the registry under a provider name learns the taxonomy', async (t) => {
  const registry = new CircuitBreakerRegistry()
  const clock = new ManualClock(0)
  // Say an Express route created it first, with a classifier of its own.
  const seen = []
  const existing = registry.getOrCreate('openai_api', { clock, failureThreshold: 1, isFailure: (e) => (seen.push(e.status), true) })
  const { ai, fakes } = await setup(t, { registry, clock })
  assert.equal(ai.breakers.openai, existing)
  fakes.openai.reply({ status: 400, body: openaiError('invalid_request_error', 'bad') })
  await ai.chatCompletion(OPENAI_REQUEST).catch(() => {})
  assert.equal(existing.state, 'closed', 'the 400 did not count')
  assert.deepEqual(seen, [], 'the taxonomy answered first')
  fakes.openai.reply({ status: 500, body: openaiError('server_error', 'down') })
  await ai.chatCompletion(OPENAI_REQUEST)
  assert.deepEqual(seen, [500], 'then its own isFailure')
  assert.equal(existing.state, 'open')
})

test('registry: null gives unregistered breakers; the default is the global registry', async (t) => {
  const { clients } = await setup(t)
  const { globalRegistry } = await import('breakwater')
  const ai = new OpenAICircuitBreaker({ openaiClient: clients.openaiClient, registry: null })
  assert.equal(ai.breakers.openai.registry, null)
  const global = new OpenAICircuitBreaker({ openaiClient: clients.openaiClient })
  t.after(() => globalRegistry.delete('openai_api'))
  assert.equal(globalRegistry.get('openai_api'), global.breakers.openai)
})

test('options are validated at construction, every problem in one ERR_INVALID_CONFIG', async (t) => {
  const { clients } = await setup(t)
  const err = (() => {
    try {
      new OpenAICircuitBreaker({
        openaiClient: {},
        claudeClient: clients.anthropicClient,
        anthropicClient: clients.anthropicClient,
        geminiClient: clients.openaiClient,
        modelMap: { 'gpt-4o': { mistral: 'x' }, 'gpt-5': { gemini: 42 } },
        breakerOptions: { fallback: () => 1 },
        registry: 'global',
        retries: 3,
      })
    } catch (e) {
      return e
    }
  })()
  assert.equal(err.code, 'ERR_INVALID_CONFIG')
  for (const field of [
    'retries',
    'claudeClient',
    'openaiClient',
    'geminiClient',
    'breakerOptions.fallback',
    'registry',
    'modelMap["gpt-4o"].mistral',
    'modelMap["gpt-5"].gemini',
  ]) {
    assert.ok(err.message.includes(field), `${field} in: ${err.message}`)
  }
  assert.throws(() => new AnthropicCircuitBreaker({ openaiClient: clients.openaiClient }), /anthropicClient|claudeClient/)
  assert.throws(() => new OpenAICircuitBreaker(null), { code: 'ERR_INVALID_CONFIG' })
  assert.throws(
    () => new OpenAICircuitBreaker({ openaiClient: clients.openaiClient, registry: null, breakerOptions: { failureTreshold: 3 } }),
    /failureTreshold/,
  )
})

test('bad requests are rejected before any provider is asked', async (t) => {
  const { ai, fakes } = await setup(t)
  await assert.rejects(ai.chatCompletion({ model: 'gpt-4o-mini' }), { code: 'ERR_INVALID_ARGUMENT', message: /request\.messages/ })
  await assert.rejects(ai.chatCompletion(null), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(ai.chatCompletion(OPENAI_REQUEST, { signal: 'x' }), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => ai.chatCompletionStream({ messages: [] }), { code: 'ERR_INVALID_ARGUMENT' })
  assert.equal(fakes.openai.requests.length, 0)
})

test('the answer of each provider in one shape, with finish reasons in one vocabulary', async (t) => {
  const { ai, fakes } = await setup(t, { breakerOptions: { failureThreshold: 1000 } })
  fakes.openai.reply({ finishReason: 'length' })
  assert.equal((await ai.chatCompletion(OPENAI_REQUEST)).finishReason, 'length')
  fakes.openai.reply({ status: 500, body: openaiError('server_error', 'x') })
  fakes.anthropic.reply({ finishReason: 'max_tokens', usage: { input_tokens: 3, output_tokens: 64 } })
  const a = await ai.chatCompletion(OPENAI_REQUEST)
  assert.deepEqual([a.provider, a.finishReason, a.usage], ['anthropic', 'length', { inputTokens: 3, outputTokens: 64 }])
  fakes.openai.reply({ status: 500, body: openaiError('server_error', 'x') })
  fakes.anthropic.reply({ status: 500, body: anthropicError('api_error', 'x') })
  fakes.gemini.reply({ finishReason: 'SAFETY', text: '' })
  const g = await ai.chatCompletion(OPENAI_REQUEST)
  assert.deepEqual(
    [g.provider, g._fallback, g.finishReason, g.content, g.usage],
    ['gemini', 'gemini', 'content_filter', '', { inputTokens: 13, outputTokens: 9 }],
  )
  assert.equal(g.model, 'gemini-2.5-flash')
})
