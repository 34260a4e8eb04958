import { CircuitBreaker } from '../index.mjs'
import { circuitBreaker, handleAll, SamplingBreaker } from 'cockatiel'
const b = new CircuitBreaker('q', { registry: null })
const ck = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }) })
const fn = async () => 42
const N = 1_000_000
async function bare() { for (let i = 0; i < N; i++) await fn() }
async function bw() { for (let i = 0; i < N; i++) await b.call(fn) }
async function co() { for (let i = 0; i < N; i++) await ck.execute(fn) }
for (let r = 0; r < 5; r++) for (const [n, f] of [['bare', bare], ['breakwater', bw], ['cockatiel', co]]) {
  const t = performance.now(); await f(); console.log(r, n, ((performance.now() - t) * 1e6 / N).toFixed(1), 'ns')
}
console.log(b.getMetrics().totalRequests)
