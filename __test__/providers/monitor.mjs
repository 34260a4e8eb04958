// The health monitor that the provider health-check tests register with. breakwater's
// HealthMonitor (issue 3) is not on this branch yet, so this is a minimal stand-in that records
// what is registered and runs a check the way the monitor does (a throw is a failed check, and
// the check gets `{ signal }`). It is the only place the tests touch the monitor: to use the real
// one, make `createMonitor` return `new HealthMonitor({ clock })`, `registration` read from it,
// and `runCheck` map `await monitor.checkServiceHealth(name)` to `{ ok: h.consecutiveFailures === 0, error: h.lastError }`.

export function createMonitor() {
  const services = new Map()
  const monitor = {
    registerService(name, check, options) {
      if (services.has(name)) throw Object.assign(new Error(`service ${name} is already registered`), { code: 'ERR_INVALID_ARGUMENT' })
      services.set(name, { check, options })
      return monitor
    },
  }
  return {
    monitor,
    /** The names registered, in order. */
    names: () => [...services.keys()],
    /** The options a service was registered with. */
    registration: (name) => services.get(name)?.options,
    /** Runs the service's check once: `{ ok, details?, error? }`. */
    async runCheck(name) {
      const controller = new AbortController()
      try {
        const r = await services.get(name).check({ signal: controller.signal })
        return r === true || r?.ok === true ? { ok: true, details: r?.details } : { ok: false, error: 'check returned not ok' }
      } catch (err) {
        return { ok: false, error: err.message }
      }
    },
  }
}
