// A missing native binary gives one clear error naming the platform and the package to install.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

test('loading without the native binary throws ERR_NATIVE_BINDING_MISSING', () => {
  const script = `
    try { require('./index.js'); console.log('loaded') }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, platform: e.platform, package: e.package })) }`
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 20_000,
    // The napi loader tries this path first and only; a path that does not exist stands in
    // for a platform package that was never installed.
    env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: '/nonexistent/breakwater.node' },
  })
  assert.equal(r.status, 0, r.stderr)
  const err = JSON.parse(r.stdout.trim())
  assert.equal(err.code, 'ERR_NATIVE_BINDING_MISSING')
  assert.match(err.platform, /^linux-x64-(gnu|musl)$/)
  assert.equal(err.package, `breakwater-${err.platform}`)
  assert.match(err.message, new RegExp(`npm install breakwater-${err.platform}`))
})
