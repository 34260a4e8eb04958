// Compiles every ```ts block of README.md with `tsc --strict` against the published types, then
// runs each compiled example with node: the README's examples must run as written.
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { execFileSync, spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const out = join(here, 'generated')
const require = createRequire(import.meta.url)

const readme = readFileSync(join(root, 'README.md'), 'utf8')
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
if (blocks.length === 0) throw new Error('README.md has no ```ts blocks')

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const files = blocks.map((code, i) => {
  const file = `example-${i + 1}.mts`
  writeFileSync(join(out, file), `// README example ${i + 1}\nexport {}\n${code}`)
  return file
})
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      strict: true,
      target: 'es2022',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      types: ['node'],
      typeRoots: [join(root, 'node_modules', '@types')],
      outDir: 'js',
      rootDir: '.',
      skipLibCheck: false,
      noUnusedLocals: false,
    },
    files,
  }),
)

const tsc = require.resolve('typescript/bin/tsc')
try {
  execFileSync(process.execPath, [tsc, '-p', join(out, 'tsconfig.json')], { stdio: 'pipe' })
} catch (err) {
  console.error(String(err.stdout), String(err.stderr))
  console.log('README examples: 0 passed, 1 failed')
  process.exit(1)
}

let failed = 0
for (const [i, file] of files.entries()) {
  const js = join(out, 'js', file.replace(/\.mts$/, '.mjs'))
  const r = spawnSync(process.execPath, [js], { encoding: 'utf8', timeout: 20_000, env: { ...process.env } })
  if (r.status !== 0) {
    failed++
    console.error(`README example ${i + 1} failed (exit ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`)
  }
}
console.log(`${files.length} README examples compiled with tsc --strict`)
console.log(`README examples: ${files.length - failed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
