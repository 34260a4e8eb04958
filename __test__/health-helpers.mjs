// Helpers for the health monitor tests: a monitor on a ManualClock, and scripted checks whose
// outcome and latency (in clock ms) each test chooses.
import { HealthMonitor, ManualClock } from '../index.mjs'

export function makeMonitor(options = {}) {
  const clock = options.clock ?? new ManualClock(1_000_000)
  const monitor = new HealthMonitor({ registry: null, ...options, clock })
  return { monitor, clock }
}

/**
 * A check that plays `steps` in order: each step is `[ok, latencyMs]` (a synchronous check that
 * advances the clock by its latency). `script.calls` counts the calls.
 */
export function scripted(clock, steps = []) {
  const queue = [...steps]
  const check = () => {
    check.calls++
    const step = queue.shift()
    if (step === undefined) throw new Error('script exhausted')
    const [ok, latencyMs] = step
    if (latencyMs > 0) clock.advance(latencyMs)
    return ok
  }
  check.calls = 0
  check.push = (...more) => queue.push(...more)
  return check
}

/** Runs `n` checks of `name`, each `[ok, latencyMs]`; resolves to the last health. */
export async function feed(monitor, name, check, steps) {
  check.push(...steps)
  let h
  for (let i = 0; i < steps.length; i++) h = await monitor.checkServiceHealth(name)
  return h
}

/** Lets promise callbacks already queued run (not a sleep: no time passes on any clock). */
export const drain = () => new Promise((resolve) => setImmediate(resolve))

/** Records the monitor's events in order, as `[event, payload]`. */
export function recordHealthEvents(monitor) {
  const seen = []
  for (const ev of ['check', 'statusChange', 'alert']) monitor.on(ev, (p) => seen.push([ev, p]))
  monitor.on('error', (err, ctx) => seen.push(['error', { err, ctx }]))
  return seen
}

export const repeat = (n, step) => Array.from({ length: n }, () => step)
