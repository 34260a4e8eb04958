// `npm test`: the Rust core's tests (without linking Node), a check that the core stays free of
// napi, the node:test suite (under every Node binary in BREAKWATER_TEST_NODES too), and the
// README type check.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const failures = []
const total = { passed: 0, failed: 0 }

/** Runs one step, echoing its output, and adds up the counts its runner prints. */
function step(name, cmd, args) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
  process.stdout.write(r.stdout ?? '')
  process.stderr.write(r.stderr ?? '')
  const text = `${r.stdout}\n${r.stderr}`
  for (const m of text.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) count(m[1], m[2])
  for (const m of text.matchAll(/^# pass (\d+)\n# fail (\d+)/gm)) count(m[1], m[2])
  for (const m of text.matchAll(/^README examples: (\d+) passed, (\d+) failed/gm)) count(m[1], m[2])
  if (r.status !== 0) failures.push(`${name} (exit ${r.status}${r.signal ? `, ${r.signal}` : ''})`)
}

function count(passed, failed) {
  total.passed += Number(passed)
  total.failed += Number(failed)
}

function filesUnder(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? filesUnder(p) : [p]
  })
}

step('rust core', 'cargo', ['test', '--no-default-features'])

console.log('\n=== core purity: src/core must not import napi')
const impure = filesUnder(join(root, 'src', 'core')).filter((f) => /^\s*use napi|napi::|napi_derive/m.test(readFileSync(f, 'utf8')))
if (impure.length > 0) failures.push(`src/core imports napi: ${impure.join(', ')}`)
else console.log('ok')

const tests = readdirSync(join(root, '__test__'))
  .filter((f) => /\.test\.(mjs|cjs|js)$/.test(f))
  .map((f) => join('__test__', f))
const nodes = [process.execPath, ...(process.env.BREAKWATER_TEST_NODES ?? '').split(/[:,]/).filter(Boolean)]
for (const node of nodes) {
  const v = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
  step(`js tests on node ${v}`, node, ['--test', '--test-reporter=tap', '--test-timeout=60000', ...tests])
}

step('README examples (tsc --strict, then run)', process.execPath, ['__test__/types/compile-readme.mjs'])

if (failures.length > 0) console.error(`\nFAILED: ${failures.join('; ')}`)
console.log(`\n${total.passed} passed, ${total.failed} failed`)
process.exit(failures.length > 0 ? 1 : 0)
