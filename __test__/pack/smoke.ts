// Compiled with tsc --strict against the installed types.
import { CircuitBreaker, isCircuitOpenError, type CircuitBreakerMetrics } from 'breakwater'

const breaker = new CircuitBreaker('smoke_ts', { registry: null, fallback: () => 'degraded' as const })
export async function run(): Promise<string> {
  const r: string = await breaker.call(async (s: string) => s.toUpperCase(), 'ok')
  const m: CircuitBreakerMetrics = breaker.getMetrics()
  try {
    await breaker.call(async () => 1)
  } catch (e) {
    if (isCircuitOpenError(e)) return `${e.breaker} ${e.retryAfterMs}`
  }
  return `${r} ${m.state}`
}
