// Compiled with tsc --strict against the installed types.
import { CircuitBreaker, isCircuitOpenError, type CircuitBreakerMetrics } from 'breakwater'
// The provider types compile without the provider SDKs installed.
import { isAllProvidersUnavailableError, type CompletionResult } from 'breakwater/providers'

export function describeResult(r: CompletionResult, e: unknown): string {
  return isAllProvidersUnavailableError(e) ? `retry in ${e.retryAfterMs}` : `${r.provider}: ${r.content}`
}

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
