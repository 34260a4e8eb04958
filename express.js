'use strict'
// The `breakwater/express` entry point (CommonJS). `express.mjs` re-exports it for ESM.
module.exports = require('./lib/express')
