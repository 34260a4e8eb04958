import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const CB = require('opossum')
import { circuitBreaker, handleAll, SamplingBreaker, ConsecutiveBreaker } from 'cockatiel'
let i = 0
const fn = async () => { if ((i++ & 1) === 1) throw new Error('boom'); return 42 }
const ok = async () => 42
for (const N of [1000, 2000, 5000, 10000]) {
  const o = new CB(fn, { errorThresholdPercentage: 100, volumeThreshold: Number.MAX_SAFE_INTEGER })
  const t = performance.now()
  for (let k = 0; k < N; k++) { try { await o.fire() } catch {} }
  console.log('opossum fail N', N, ((performance.now() - t) * 1e6 / N).toFixed(0), 'ns/op', o.opened)
  o.shutdown()
}
{
  const o = new CB(ok); const N = 100000
  const t = performance.now()
  for (let k = 0; k < N; k++) await o.fire()
  console.log('opossum closed', ((performance.now() - t) * 1e6 / N).toFixed(0))
  o.open(); let t2 = performance.now()
  for (let k = 0; k < N; k++) { try { await o.fire() } catch {} }
  console.log('opossum open', ((performance.now() - t2) * 1e6 / N).toFixed(0))
  o.shutdown()
}
{
  const ck = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new SamplingBreaker({ threshold: 0.99, duration: 10_000 }) })
  const N = 100000; let t = performance.now()
  for (let k = 0; k < N; k++) { try { await ck.execute(fn) } catch {} }
  console.log('cockatiel fail', ((performance.now() - t) * 1e6 / N).toFixed(0), ck.state)
  t = performance.now()
  for (let k = 0; k < N; k++) { try { await fn() } catch {} }
  console.log('bare fail', ((performance.now() - t) * 1e6 / N).toFixed(0))
  const h = ck.isolate(); t = performance.now()
  for (let k = 0; k < N; k++) { try { await ck.execute(fn) } catch {} }
  console.log('cockatiel isolated', ((performance.now() - t) * 1e6 / N).toFixed(0), ck.state); h.dispose()
}
