// The provider health checks: a models-list request (never a completion) registered with the
// health monitor under the provider's breaker name, with the SDK's retries off.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setupOpenAIHealthCheck, setupAnthropicHealthCheck, setupGeminiHealthCheck } from 'breakwater/providers'
import { openaiError, anthropicError, geminiError } from './providers/fakes.mjs'
import { setup } from './providers/setup.mjs'
import { createMonitor } from './providers/monitor.mjs'

const SETUPS = [
  ['openai', setupOpenAIHealthCheck, 'openai_api', /^\/v1\/models$/, { status: 503, body: openaiError('server_error', 'down') }],
  [
    'anthropic',
    setupAnthropicHealthCheck,
    'anthropic_api',
    /^\/v1\/models$/,
    { status: 529, body: anthropicError('overloaded_error', 'Overloaded') },
  ],
  ['gemini', setupGeminiHealthCheck, 'gemini_api', /^\/v1(beta)?\/models$/, { status: 503, body: geminiError(503, 'UNAVAILABLE', 'down') }],
]

for (const [provider, setupCheck, service, path, failure] of SETUPS) {
  test(`${setupCheck.name} registers ${service}: a models list, linked to the breaker`, async (t) => {
    const { ai, fakes } = await setup(t)
    const m = createMonitor()
    const registered = setupCheck(ai, m.monitor, { intervalMs: 15_000, checkTimeoutMs: 2_000, latencyWarningMs: 800 })
    assert.equal(registered.service, service)
    assert.deepEqual(m.names(), [service])
    assert.deepEqual(m.registration(service), { checkIntervalMs: 15_000, checkTimeoutMs: 2_000, latencyWarningMs: 800, breaker: service })

    const ok = await m.runCheck(service)
    assert.equal(ok.ok, true)
    assert.equal(ok.details.models >= 1, true)
    const [req] = fakes[provider].requests
    assert.equal(req.method, 'GET', 'a models list, not a paid completion')
    assert.match(req.path, path)
    assert.equal(fakes[provider].completions.length, 0)

    fakes[provider].reply(failure)
    const failed = await m.runCheck(service)
    assert.equal(failed.ok, false)
    assert.match(failed.error, /5\d\d|overloaded|down/i)
    assert.equal(fakes[provider].requests.length, 2, 'no SDK retry: one request per check')
  })
}

test('the health-check helpers check their arguments', async (t) => {
  const { ai } = await setup(t, { providers: ['openai'] })
  const m = createMonitor()
  assert.throws(() => setupAnthropicHealthCheck(ai, m.monitor), { code: 'ERR_INVALID_ARGUMENT', message: /anthropic/ })
  assert.throws(() => setupOpenAIHealthCheck({}, m.monitor), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => setupOpenAIHealthCheck(ai, {}), { code: 'ERR_INVALID_ARGUMENT', message: /HealthMonitor/ })
  assert.throws(() => setupOpenAIHealthCheck(ai, m.monitor, 5), { code: 'ERR_INVALID_ARGUMENT' })
  assert.deepEqual(m.names(), [])
})

test('a fallback client of another provider breaker can be health-checked too', async (t) => {
  const { ai, fakes } = await setup(t, { primary: 'anthropic' })
  const m = createMonitor()
  setupOpenAIHealthCheck(ai, m.monitor)
  setupGeminiHealthCheck(ai, m.monitor)
  assert.deepEqual(m.names(), ['openai_api', 'gemini_api'])
  assert.deepEqual(m.registration('openai_api'), { breaker: 'openai_api' })
  assert.equal((await m.runCheck('gemini_api')).ok, true)
  assert.equal(fakes.gemini.requests[0].query.pageSize, '1')
})

test("with breakwater's HealthMonitor, an unhealthy provider opens its breaker, and a passing check probes it early", async (t) => {
  const { ai, fakes, registry, clock, breakers } = await setup(t)
  const m = createMonitor({ registry, clock })
  setupOpenAIHealthCheck(ai, m.monitor, { intervalMs: 10_000 })
  const down = { status: 503, body: openaiError('server_error', 'down') }
  fakes.openai.reply(down, down, down)
  for (let i = 0; i < 3; i++) assert.equal((await m.runCheck('openai_api')).ok, false)
  assert.equal(m.monitor.getServiceHealth('openai_api').status, 'unhealthy')
  assert.equal(breakers.openai.state, 'open', 'the monitor opened the linked breaker')
  // Calls go to Anthropic meanwhile, without touching OpenAI.
  const before = fakes.openai.completions.length
  assert.equal((await ai.chatCompletion({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).provider, 'anthropic')
  assert.equal(fakes.openai.completions.length, before)
  assert.equal((await m.runCheck('openai_api')).ok, true)
  assert.equal(breakers.openai.state, 'half_open', 'a passing check lets trial calls probe OpenAI')
})
