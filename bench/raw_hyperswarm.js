'use strict'
// Baseline for bench/p2p.py: the same bytes over one raw Hyperswarm stream between two peers on a
// loopback testnet (every DHT node on 127.0.0.1), in chunks under the 16 MiB write limit, honouring
// back-pressure. Prints {"bytes", "seconds"}. Usage: node raw_hyperswarm.js BOOTSTRAP_PORT BYTES
const path = require('path')
const nodeModules = path.join(__dirname, '..', 'backend', 'p2p', 'node', 'node_modules')
const load = (name) => require(path.join(nodeModules, name))
const Hyperswarm = load('hyperswarm')
const HyperDHT = load('hyperdht')
const b4a = load('b4a')

const [port, total] = [Number(process.argv[2]), Number(process.argv[3])]
const bootstrap = [{ host: '127.0.0.1', port }]
const swarm = () => new Hyperswarm({ dht: new HyperDHT({ bootstrap, host: '127.0.0.1', firewalled: false }) })
const topic = b4a.alloc(32, 7)
const CHUNK = 1024 * 1024

async function main () {
  const sender = swarm()
  const receiver = swarm()
  const chunk = b4a.alloc(CHUNK, 1)
  sender.on('connection', (conn) => {
    let sent = 0
    const pump = () => {
      while (sent < total) {
        const n = Math.min(CHUNK, total - sent)
        sent += n
        if (!conn.write(n === CHUNK ? chunk : chunk.subarray(0, n))) return conn.once('drain', pump)
      }
    }
    pump()
  })
  const done = new Promise((resolve) => {
    receiver.on('connection', (conn) => {
      let received = 0
      let started = 0
      conn.on('data', (data) => {
        if (!started) started = process.hrtime.bigint()
        received += data.byteLength
        if (received >= total) resolve(Number(process.hrtime.bigint() - started) / 1e9)
      })
    })
  })
  await sender.join(topic, { server: true, client: false }).flushed()
  const t0 = process.hrtime.bigint()
  receiver.join(topic, { server: false, client: true })
  const seconds = await done
  process.stdout.write(JSON.stringify({ bytes: total, seconds, connect_and_transfer_s: Number(process.hrtime.bigint() - t0) / 1e9 }) + '\n')
  await sender.destroy()
  await receiver.destroy()
}

main().catch((err) => { process.stderr.write(String(err.stack || err) + '\n'); process.exit(1) })
