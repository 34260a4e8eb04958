// The example gateway (`npm start`): built with tsc, started as a child process, driven with chaos
// on the primary provider until its breaker opens (the gateway answering from the fallback all the
// while), then with chaos off until it closes again, then stopped with SIGTERM.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

async function until(what, fn, { timeoutMs = 30_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value) return value
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs)) // polling another process: bounded
  }
}

test('npm start: the breaker opens under chaos and closes after it, then SIGTERM stops it', { timeout: 120_000 }, async (t) => {
  execFileSync(process.execPath, [tsc, '-p', 'examples/gateway'], { cwd: root, stdio: 'pipe' })
  const child = spawn(process.execPath, ['examples/gateway/dist/server.js'], {
    cwd: root,
    env: { ...process.env, PORT: '0', LATENCY_MS: '0', FAIL_RATE: '0', RESET_TIMEOUT_MS: '300' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.after(() => child.exitCode === null && child.kill('SIGKILL'))

  const base = await until('the listening line', () => /Gateway listening on (http:\/\/\S+)/.exec(out)?.[1])
  assert.match(out, /dashboard: .*\/api\/circuit-breaker\/dashboard/)
  assert.match(out, /prometheus: .*\/api\/circuit-breaker\/prometheus/)
  assert.match(out, /admin token/)
  const generate = () =>
    fetch(`${base}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"abc"}' })
  const breaker = async () =>
    (await (await fetch(`${base}/api/circuit-breaker/metrics`)).json()).circuit_breakers.find((b) => b.name === 'openai_api')

  const ok = await generate()
  assert.equal(ok.status, 200)
  assert.deepEqual(await ok.json(), { content: '[openai] cba', provider: 'openai', fallback: null })

  const chaos = await fetch(`${base}/chaos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"failRate":1}' })
  assert.equal((await chaos.json()).failRate, 1)
  await until('the breaker to open', async () => {
    const r = await generate()
    assert.equal(r.status, 200, 'the fallback provider answers while the primary fails')
    return (await breaker()).state === 'open'
  })
  const failedOver = await generate()
  assert.equal(failedOver.status, 200)
  assert.deepEqual(await failedOver.json(), { content: '[anthropic] cba', provider: 'anthropic', fallback: 'anthropic' })

  await fetch(`${base}/chaos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"failRate":0}' })
  await until('the breaker to close', async () => {
    await generate()
    return (await breaker()).state === 'closed'
  })
  assert.equal((await (await generate()).json()).provider, 'openai')
  assert.match(out, /failover openai -> anthropic/)

  child.kill('SIGTERM')
  const { code } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 10_000))])
  assert.equal(code, 0, out)
  assert.match(out, /SIGTERM: shutting down/)
})
