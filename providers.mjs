// The ESM `breakwater/providers` entry point: the same objects as the CommonJS one.
import cjs from './providers.js'

export const {
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
  ERROR_KINDS,
  classifyProviderError,
  isAllProvidersUnavailableError,
} = cjs
export default cjs
