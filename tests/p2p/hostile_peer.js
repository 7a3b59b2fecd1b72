'use strict'
// A hostile peer for tests (a real Hyperswarm peer on the loopback testnet, not a mock): it joins
// the public room's topic but never proves membership, pushes an unsolicited catalog, then an
// oversized message. Usage: node hostile_peer.js BOOTSTRAP_PORT PUBLIC_SECRET_HEX STORAGE_DIR
const path = require('path')
const nodeModules = path.join(__dirname, '..', '..', 'backend', 'p2p', 'node', 'node_modules')
const load = (name) => require(path.join(nodeModules, name))
const Hyperswarm = load('hyperswarm')
const HyperDHT = load('hyperdht')
const Corestore = load('corestore')
const Hypercore = load('hypercore')
const sodium = load('sodium-universal')
const b4a = load('b4a')
const c = load('compact-encoding')

const [port, secretHex, storage] = process.argv.slice(2)
const secret = b4a.from(secretHex, 'hex')
const topic = b4a.alloc(32)
sodium.crypto_generichash(topic, b4a.from('orch-mind/room-topic/v1'), secret)

const dht = new HyperDHT({ bootstrap: [{ host: '127.0.0.1', port: Number(port) }], host: '127.0.0.1' })
const swarm = new Hyperswarm({ dht })
const store = new Corestore(storage)
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

swarm.on('connection', (conn) => {
  conn.on('error', () => {})
  const mux = Hypercore.getProtocolMuxer(store.replicate(conn))
  const channel = mux.createChannel({
    protocol: 'orch-mind/catalog/v1',
    onopen () {
      // No proofs: straight to a catalog nobody asked for.
      const entry = { v: 1, manifest: { name: 'unsolicited' }, transfer: {}, author: '00', signature: '00' }
      catalog.send(b4a.from(JSON.stringify({ entries: [entry] })))
      say({ sent: 'unsolicited-catalog', to: b4a.toString(conn.remotePublicKey, 'hex') })
      setTimeout(() => {
        catalog.send(b4a.alloc(2 * 1024 * 1024, 0x7b))
        say({ sent: 'oversized', to: b4a.toString(conn.remotePublicKey, 'hex') })
      }, 500)
    }
  })
  channel.addMessage({ encoding: c.buffer, onmessage () {} })
  const catalog = channel.addMessage({ encoding: c.buffer, onmessage () {} })
  channel.open()
  conn.on('close', () => say({ closed: b4a.toString(conn.remotePublicKey, 'hex') }))
})

swarm.join(topic, { server: true, client: true })
say({ ready: b4a.toString(swarm.keyPair.publicKey, 'hex') })
process.stdin.on('end', async () => { await swarm.destroy(); await store.close(); process.exit(0) })
process.stdin.resume()
