// The ESM `breakwater/express` entry point: the same objects as the CommonJS one.
import cjs from './express.js'

export const { withCircuitBreaker, registerCircuitBreakerRoutes, prometheusMetrics, registerPromClientCollector, PROMETHEUS_CONTENT_TYPE } =
  cjs
export default cjs
