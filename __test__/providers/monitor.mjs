// The health monitor that the provider health-check tests register with: breakwater's own
// HealthMonitor on a ManualClock, with its registrations recorded so that the tests can see the
// options each helper passed. `runCheck` runs one check through the monitor and reports its
// `check` event.
import { HealthMonitor, ManualClock } from 'breakwater'

export function createMonitor({ registry = null, clock = new ManualClock(0) } = {}) {
  const monitor = new HealthMonitor({ clock, registry })
  const registered = new Map()
  const register = monitor.registerService.bind(monitor)
  monitor.registerService = (name, check, options) => {
    register(name, check, options)
    registered.set(name, options)
    return monitor
  }
  return {
    monitor,
    /** The names registered, in order. */
    names: () => [...registered.keys()],
    /** The options a service was registered with. */
    registration: (name) => registered.get(name),
    /** Runs the service's check once: `{ ok, details?, error? }`, as the monitor saw it. */
    async runCheck(name) {
      let event
      const onCheck = (e) => {
        if (e.name === name) event = e
      }
      monitor.on('check', onCheck)
      try {
        await monitor.checkServiceHealth(name)
      } finally {
        monitor.off('check', onCheck)
      }
      return event.ok ? { ok: true, details: event.details } : { ok: false, error: event.error }
    },
  }
}
