// Runs inside a fresh project where breakwater was installed from its packed tarballs.
const assert = require('node:assert/strict')
const bw = require('breakwater')

async function main() {
  const b = new bw.CircuitBreaker('smoke_cjs', { registry: null, failureThreshold: 1 })
  assert.equal(await b.call(async () => 42), 42)
  await b
    .call(async () => {
      throw new Error('down')
    })
    .catch(() => {})
  assert.equal(b.state, 'open')
  const err = await b.call(async () => 1).catch((e) => e)
  assert.ok(bw.isCircuitOpenError(err))
  // The binary came from the platform package, not from a source tree.
  const binary = require.resolve(`breakwater-${process.argv[2]}`)
  assert.match(binary, /node_modules[\\/]breakwater-/)
  // breakwater/providers loads without any provider SDK installed (they are optional peers).
  const providers = require('breakwater/providers')
  const stub = {
    chat: { completions: { create: async () => ({ model: 'm', choices: [{ message: { content: 'hi' } }] }) } },
    models: { list: async () => ({ data: [] }) },
  }
  const ai = new providers.OpenAICircuitBreaker({ openaiClient: stub, registry: null })
  assert.equal((await ai.chatCompletion({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).content, 'hi')
  console.log('cjs ok', binary)
}
main().catch((e) => {
  console.error(e)
  process.exit(1)
})
