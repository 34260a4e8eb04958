// A fixed stand-in for the HealthMonitor, so the Express tests can pin the exact JSON mapping of
// given values (express-health.test.mjs runs the routes against the real HealthMonitor). It has
// the HealthMonitor's shape (`getHealthSummary()`, `getServiceHealth(name)`).

/**
 * A monitor reporting `services`: `[{ name, status, ...fields }]` with the HealthMonitor's field
 * names (errorRate, uptime, latencyP50Ms, latencyP95Ms, latencyP99Ms, lastCheck, lastError,
 * consecutiveFailures, totalChecks, failedChecks). `set(name, fields)` changes one service.
 */
export function createMonitor(services = []) {
  const byName = new Map()
  const set = (name, fields) => {
    byName.set(name, {
      name,
      status: 'unknown',
      errorRate: 0,
      uptime: 100,
      latencyP50Ms: 10,
      latencyP95Ms: 20,
      latencyP99Ms: 30,
      lastCheck: 1_705_318_200_000,
      lastError: null,
      consecutiveFailures: 0,
      totalChecks: 10,
      failedChecks: 0,
      ...byName.get(name),
      ...fields,
    })
  }
  for (const s of services) set(s.name, s)
  const RANK = { healthy: 0, unknown: 1, degraded: 2, unhealthy: 3 }
  return {
    set,
    getServiceHealth: (name) => byName.get(name),
    getHealthSummary() {
      const list = [...byName.values()]
      const n = (status) => list.filter((s) => s.status === status).length
      const worst = list.reduce((w, s) => (RANK[s.status] > RANK[w] ? s.status : w), 'healthy')
      return {
        status: list.length === 0 ? 'unknown' : worst,
        totalServices: list.length,
        healthyServices: n('healthy'),
        degradedServices: n('degraded'),
        unhealthyServices: n('unhealthy'),
        unknownServices: n('unknown'),
        services: Object.fromEntries(list.map((s) => [s.name, { ...s }])),
      }
    },
  }
}
