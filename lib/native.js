'use strict'
// Loads the native addon through the napi-generated loader, and turns a missing binary into
// one clear error that names the platform and the package to install.

function platformTriple() {
  const { platform, arch } = process
  if (platform === 'linux') {
    let glibc = false
    try {
      glibc = Boolean(process.report.getReport().header.glibcVersionRuntime)
    } catch {
      glibc = false
    }
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

const SUPPORTED = ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc']

let binding
try {
  binding = require('../binding.js')
} catch (cause) {
  const triple = platformTriple()
  const pkg = `breakwater-${triple}`
  const supported = SUPPORTED.includes(triple)
  const err = new Error(
    supported
      ? `breakwater: the native binary for ${triple} is not installed. Install the package ${pkg} ` +
          `(npm install ${pkg}), or reinstall breakwater without --omit=optional / --no-optional.`
      : `breakwater: no prebuilt native binary for ${triple}. Supported platforms: ${SUPPORTED.join(', ')}. ` +
          'On another platform, build from source with a Rust toolchain (npm run build).',
    { cause },
  )
  err.code = 'ERR_NATIVE_BINDING_MISSING'
  err.platform = triple
  err.package = pkg
  throw err
}

module.exports = binding
