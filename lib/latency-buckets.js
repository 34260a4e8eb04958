'use strict'
// Cumulative latency buckets for the Prometheus histogram, kept in JS per breaker. The native
// metrics give percentiles, not bucket counts, so `withCircuitBreaker` records here the latency
// it measures (until the response finishes). A breaker used only through `call()` has no buckets
// here; its histogram then carries only `+Inf`, `_sum` and `_count` (see lib/prometheus.js).

/** Upper bounds in seconds: prom-client's defaults, plus 30 s and 60 s for slow LLM calls. */
const LATENCY_BUCKETS_SECONDS = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])

class LatencyBuckets {
  constructor() {
    // counts[i] holds observations in (bound[i-1], bound[i]]; the last slot is above every bound.
    this.counts = new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1)
    this.count = 0
    this.sumSeconds = 0
  }

  record(ms) {
    const s = ms / 1000
    const bounds = LATENCY_BUCKETS_SECONDS
    let i = 0
    while (i < bounds.length && s > bounds[i]) i++
    this.counts[i]++
    this.count++
    this.sumSeconds += s
  }

  /** `[le, cumulative count]` pairs, ending with `+Inf`. */
  cumulative() {
    const out = []
    let acc = 0
    for (let i = 0; i < LATENCY_BUCKETS_SECONDS.length; i++) {
      acc += this.counts[i]
      out.push([LATENCY_BUCKETS_SECONDS[i], acc])
    }
    out.push([Infinity, this.count])
    return out
  }
}

// Keyed by the breaker object, so a breaker that is dropped takes its buckets with it.
const byBreaker = new WeakMap()

function bucketsFor(breaker) {
  let b = byBreaker.get(breaker)
  if (b === undefined) {
    b = new LatencyBuckets()
    byBreaker.set(breaker, b)
  }
  return b
}

const peekBuckets = (breaker) => byBreaker.get(breaker)

module.exports = { LATENCY_BUCKETS_SECONDS, LatencyBuckets, bucketsFor, peekBuckets }
