// `require('breakwater/providers')` works, and shares its objects with the ESM entry point.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const providers = require('breakwater/providers')

const EXPORTS = [
  'OpenAICircuitBreaker',
  'AnthropicCircuitBreaker',
  'GeminiCircuitBreaker',
  'setupOpenAIHealthCheck',
  'setupAnthropicHealthCheck',
  'setupGeminiHealthCheck',
  'MetaCircuitBreaker',
  'MetaGraphError',
  'setupMetaHealthCheck',
  'DEFAULT_MODEL_MAP',
  'ERROR_KINDS',
  'classifyProviderError',
  'isAllProvidersUnavailableError',
]

test('require("breakwater/providers") exposes the providers API, the same objects as import', async () => {
  for (const k of EXPORTS) assert.ok(k in providers, k)
  const esm = await import('breakwater/providers')
  for (const k of EXPORTS) assert.equal(esm[k], providers[k], k)
  assert.equal(esm.default, providers)
})

test("ERR_ALL_PROVIDERS_UNAVAILABLE is one of breakwater's codes", () => {
  const { ErrorCodes, isBreakwaterError } = require('breakwater')
  assert.equal(ErrorCodes.ALL_PROVIDERS_UNAVAILABLE, 'ERR_ALL_PROVIDERS_UNAVAILABLE')
  assert.ok(isBreakwaterError({ code: 'ERR_ALL_PROVIDERS_UNAVAILABLE' }))
  assert.ok(providers.isAllProvidersUnavailableError({ code: 'ERR_ALL_PROVIDERS_UNAVAILABLE' }))
  assert.ok(!providers.isAllProvidersUnavailableError(new Error('x')))
})
