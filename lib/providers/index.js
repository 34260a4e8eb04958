'use strict'
// `breakwater/providers`: circuit breakers for the LLM providers, with failover between them.

const { OpenAICircuitBreaker, AnthropicCircuitBreaker, GeminiCircuitBreaker } = require('./llm')
const { setupOpenAIHealthCheck, setupAnthropicHealthCheck, setupGeminiHealthCheck } = require('./health')
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
  DEFAULT_MODEL_MAP,
  ERROR_KINDS: KINDS,
  classifyProviderError: classify,
  isAllProvidersUnavailableError,
}
