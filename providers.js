'use strict'
// The `breakwater/providers` entry point (CommonJS). `providers.mjs` re-exports it for ESM.
module.exports = require('./lib/providers')
