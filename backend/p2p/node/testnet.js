'use strict'
// A local DHT for tests and benchmarks: N bootstrap nodes bound to 127.0.0.1 only.
// Prints {"bootstrap": [{host, port}, ...]} on stdout, then runs until stdin closes.
const createTestnet = require('hyperdht/testnet')

async function main () {
  const size = Number(process.argv[2] || 3)
  const testnet = await createTestnet(size, { host: '127.0.0.1' })
  process.stdout.write(JSON.stringify({ bootstrap: testnet.bootstrap }) + '\n')
  const stop = async () => {
    await testnet.destroy()
    process.exit(0)
  }
  process.stdin.on('end', stop)
  process.stdin.resume()
  process.on('SIGTERM', stop)
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n')
  process.exit(1)
})
