// docs/grafana-dashboard.json queries only metrics the library exports.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { CircuitBreakerRegistry, HealthMonitor, ManualClock } from '../index.mjs'
import { prometheusMetrics } from '../express.mjs'

test('every metric the Grafana dashboard queries is one the library exports', async (t) => {
  const dashboard = JSON.parse(readFileSync(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8'))
  const exprs = [
    ...dashboard.panels.flatMap((p) => p.targets.map((x) => x.expr)),
    ...dashboard.templating.list.filter((v) => v.query?.query).map((v) => v.query.query),
  ]
  const PROMQL = new Set(['sum', 'by', 'rate', 'histogram_quantile', 'label_values', 'name', 'le', 'result', 'service', 'quantile'])
  const used = new Set(
    exprs
      .flatMap(
        (e) =>
          e
            .replace(/"[^"]*"/g, '')
            .replace(/\$\w+/g, '')
            .match(/[a-z_][a-z0-9_]*/g) ?? [],
      )
      .filter((w) => !PROMQL.has(w) && w.includes('_')),
  )
  assert.ok(used.size >= 6, [...used].join())

  const clock = new ManualClock(0)
  const registry = new CircuitBreakerRegistry()
  registry.getOrCreate('openai_api', { clock }).tryAcquire().success()
  const monitor = new HealthMonitor({ clock, registry })
  t.after(() => monitor.stop())
  monitor.registerService('openai_api', () => true)
  await monitor.checkServiceHealth('openai_api')
  const text = prometheusMetrics({ registry, monitor })
  const exported = new Set([...text.matchAll(/^([a-z_][a-z0-9_]*)(?:\{| )/gm)].map((m) => m[1]))
  for (const metric of used)
    assert.ok(exported.has(metric), `${metric} is queried by the dashboard but not exported (exported: ${[...exported].join(', ')})`)
})
