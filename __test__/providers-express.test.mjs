// breakwater/express and breakwater/providers together: a route whose providers are all down
// answers 503 with Retry-After, and a route breaker shared with a provider does not count twice.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import express from 'express'
import { withCircuitBreaker } from 'breakwater/express'
import { openaiError, anthropicError } from './providers/fakes.mjs'
import { setup, OPENAI_REQUEST } from './providers/setup.mjs'

async function serve(t, app) {
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  t.after(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${server.address().port}`
}

test('withCircuitBreaker answers ERR_ALL_PROVIDERS_UNAVAILABLE with 503 and Retry-After', async (t) => {
  const { ai, fakes, registry, breakers } = await setup(t, { providers: ['openai', 'anthropic'] })
  const app = express()
  // The route shares the openai_api breaker with the provider chain.
  app.get(
    '/generate',
    withCircuitBreaker('openai_api', async (req, res) => res.json(await ai.chatCompletion(OPENAI_REQUEST)), { registry }),
  )
  const base = await serve(t, app)

  const ok = await fetch(`${base}/generate`)
  assert.equal(ok.status, 200)
  assert.equal((await ok.json()).provider, 'openai')

  fakes.openai.reply({ status: 503, body: openaiError('server_error', 'down') })
  fakes.anthropic.reply({ status: 429, headers: { 'retry-after': '42' }, body: anthropicError('rate_limit_error', 'slow down') })
  const res = await fetch(`${base}/generate`)
  assert.equal(res.status, 503)
  assert.equal(res.headers.get('retry-after'), '1', 'OpenAI failed once and is still closed: it might answer now')
  assert.deepEqual(await res.json(), { error: 'all_providers_unavailable', retry_after_seconds: 1 })
  assert.equal(breakers.openai.getMetrics().failedRequests, 1, 'the 503 counted once, not again for the route')

  breakers.openai.forceOpen()
  fakes.anthropic.reply({ status: 429, headers: { 'retry-after': '42' }, body: anthropicError('rate_limit_error', 'slow down') })
  const rejected = await fetch(`${base}/generate`)
  assert.equal(rejected.status, 503)
  const body = await rejected.json()
  assert.equal(body.error, 'circuit_open', 'the route itself is behind the forced-open openai_api')
})
