// `npm run bench`: the breaker benchmark (bench/index.mjs) and then each component's own
// (health, Express, and the others present), one after another in fresh processes, so their
// timings do not disturb each other. BENCH_SUITES=core,health picks some.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join, dirname } from 'node:path'

const here = dirname(fileURLToPath(import.meta.url))
const SUITES = [
  ['core', 'index.mjs'],
  ['health', 'health.mjs'],
  ['fallback', 'fallback.mjs'],
  ['express', 'express.mjs'],
  ['shared', 'shared.mjs'],
]
const only = (process.env.BENCH_SUITES ?? '').split(',').filter(Boolean)
let failed = 0
for (const [name, file] of SUITES) {
  if (only.length > 0 && !only.includes(name)) continue
  if (!existsSync(join(here, file))) continue
  console.log(`\n# ${name} (bench/${file})\n`)
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, file)], { stdio: 'inherit', env: process.env })
  if (r.status !== 0) {
    failed++
    console.error(`bench/${file} exited with ${r.status}`)
  }
}
process.exit(failed === 0 ? 0 : 1)
