// The published layout works: pack the root package and the linux-x64-gnu binary package,
// install both into a fresh project outside the source tree with no cargo on the PATH, and run
// a smoke test there (require, import, a breaker, withCircuitBreaker on a real Express server,
// and tsc --strict against the installed types).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, cpSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, delimiter } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const platform = 'linux-x64-gnu'
const binary = join(root, `breakwater.${platform}.node`)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

test(
  'npm pack + install into a fresh project, then require, import and tsc --strict',
  { timeout: 300_000, skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'linux-x64 only' : false },
  (t) => {
    assert.ok(existsSync(binary), `build the addon first (${binary})`)
    const work = mkdtempSync(join(tmpdir(), 'breakwater-pack-'))
    t.after(() => rmSync(work, { recursive: true, force: true }))
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version

    // 1. The two tarballs, as `napi prepublish` would publish them.
    const pkgDir = join(work, 'platform-package')
    cpSync(join(root, 'npm', platform), pkgDir, { recursive: true })
    cpSync(binary, join(pkgDir, `breakwater.${platform}.node`))
    const run = (cmd, args, cwd, env = process.env) =>
      execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    run(npm, ['pack', '--pack-destination', work, '--silent'], root)
    run(npm, ['pack', '--pack-destination', work, '--silent'], pkgDir)
    const rootTgz = join(work, `breakwater-${version}.tgz`)
    const binTgz = join(work, `breakwater-${platform}-${version}.tgz`)
    assert.ok(existsSync(rootTgz) && existsSync(binTgz))
    const listing = run('tar', ['-tzf', rootTgz], work)
    assert.ok(!/\.node$/m.test(listing), 'the root package ships no binary')
    assert.ok(!/package\/src\//.test(listing), 'the root package ships no Rust sources')

    // 2. A fresh project outside the source tree.
    const app = join(work, 'app')
    cpSync(join(root, '__test__', 'pack'), app, { recursive: true })
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'smoke-app', private: true, type: 'commonjs' }))
    const tsVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'typescript', 'package.json'), 'utf8')).version
    const versionOf = (pkg) => JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version
    run(
      npm,
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--no-package-lock',
        rootTgz,
        binTgz,
        `typescript@${tsVersion}`,
        `@types/node@${versionOf('@types/node')}`,
        `express@${versionOf('express')}`,
      ],
      app,
    )

    // 3. The smoke, with no cargo on the PATH.
    const path = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((p) => !existsSync(join(p, 'cargo')))
      .join(delimiter)
    const env = { ...process.env, PATH: path }
    assert.throws(() => execFileSync('cargo', ['--version'], { env, stdio: 'ignore' }), 'cargo is off the PATH')
    assert.match(run(process.execPath, ['smoke.cjs', platform], app, env), /cjs ok .*node_modules[\\/]breakwater-linux-x64-gnu/)
    assert.match(run(process.execPath, ['smoke.mjs'], app, env), /esm ok/)
    assert.match(run(process.execPath, ['smoke-express.cjs'], app, env), /express ok/)
    const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc')
    run(
      process.execPath,
      [
        tsc,
        '--strict',
        '--noEmit',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        'smoke.ts',
      ],
      app,
      env,
    )
  },
)
