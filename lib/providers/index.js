'use strict'
// `breakwater/providers`: circuit breakers for the LLM providers, with failover between them, and
// a Meta ad publisher that never loses or duplicates an ad.

const { OpenAICircuitBreaker, AnthropicCircuitBreaker, GeminiCircuitBreaker } = require('./llm')
const { setupOpenAIHealthCheck, setupAnthropicHealthCheck, setupGeminiHealthCheck } = require('./health')
const { MetaCircuitBreaker, MetaGraphError, setupMetaHealthCheck } = require('./meta')
const { DEFAULT_MODEL_MAP } = require('./models')
const { KINDS, classify } = require('./taxonomy')
const { isAllProvidersUnavailableError } = require('../errors')

module.exports = {
  OpenAICircuitBreaker,
  AnthropicCircuitBreaker,
  GeminiCircuitBreaker,
  setupOpenAIHealthCheck,
  setupAnthropicHealthCheck,
  setupGeminiHealthCheck,
  MetaCircuitBreaker,
  MetaGraphError,
  setupMetaHealthCheck,
  DEFAULT_MODEL_MAP,
  ERROR_KINDS: KINDS,
  classifyProviderError: classify,
  isAllProvidersUnavailableError,
}
