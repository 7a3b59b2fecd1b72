'use strict'
// A hostile peer for tests: a real Hyperswarm peer on the loopback testnet, written against plain
// hyperswarm/hypercore (not our sidecar). It joins a room's topic and then misbehaves as MODE says.
// Usage: node hostile_peer.js MODE BOOTSTRAP_PORT ROOM_SECRET_HEX STORAGE_DIR [SECONDS] [ENTRY_FILE]
//   unsolicited  no proofs; an unsolicited catalog, then a 2 MiB message
//   deep         proves membership, then a small catalog nested 3,000 levels deep
//   proof-flood  proves membership, then proofs as fast as the channel takes them, never reading
//   catalog-flood proves membership, then 900 KB catalogs as fast as the channel takes them
//   many         opens SECONDS connections from as many identities; none proves a room
//   many-open    the same, and each proves ROOM_SECRET's room (free for the public room) and stays
//   huge-frame   announces a 15 MiB frame on the raw stream and sends a few bytes of it
//   slow-frame   announces a 64 KiB frame and sends one byte per second (slow loris)
//   want-flood   proves membership, then direct-transfer wants as fast as the channel takes them
//   stray-blocks proves membership, then 1 MiB direct-transfer blocks that nobody asked for
//   stray-zero   proves membership, then small blocks for want id 0 (never a want's id)
//   bad-want     proves membership, then a want that does not decode (cut short after its id)
//   listen-wants proves membership and prints every direct-transfer want it is sent: {wanted: core key}
//   bad-signatures  12 identities prove membership and each sends, every 400 ms, a catalog of 40 copies
//                of the entry in ENTRY_FILE with forged signatures (shape-valid, within every per-peer limit)
//   trickle      proves membership, offers the signed entry in ENTRY_FILE (someone else's: a re-share) and
//                answers its wants with right-sized blocks of zeros, one every 5 s (under any stall limit)
// It prints one JSON line per thing it did: {ready}, {sent}, {closed}.
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

const [mode, port, secretHex, storage, secondsArg, entryFile] = process.argv.slice(2)
const seconds = Number(secondsArg || 10)
const secret = b4a.from(secretHex, 'hex')
const keyed = (label, ...parts) => {
  const out = b4a.alloc(32)
  sodium.crypto_generichash(out, b4a.concat([b4a.from(label), ...parts]), secret)
  return out
}
const topic = keyed('orch-mind/room-topic/v1')

const bootstrap = [{ host: '127.0.0.1', port: Number(port) }]
const swarm = new Hyperswarm({ dht: new HyperDHT({ bootstrap, host: '127.0.0.1' }) })
const store = new Corestore(storage)
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const extra = []
if (mode === 'many' || mode === 'many-open' || mode === 'bad-signatures') {
  const forged = mode === 'bad-signatures' ? JSON.parse(require('fs').readFileSync(entryFile, 'utf8')) : null
  for (let i = 1; i < (mode === 'bad-signatures' ? 13 : seconds); i++) {
    const other = new Hyperswarm({ dht: new HyperDHT({ bootstrap, host: '127.0.0.1' }) })
    other.on('connection', (conn) => {
      conn.on('error', () => {})
      const mux = Hypercore.getProtocolMuxer(store.replicate(conn))
      const channel = mux.createChannel({
        protocol: 'orch-mind/catalog/v1',
        onopen () {
          if (mode === 'many') return // an open channel and never a proof: a stranger that stays
          const proof = keyed('orch-mind/room-proof/v1', other.keyPair.publicKey, conn.remotePublicKey)
          proofs.send(b4a.from(JSON.stringify({ proofs: [b4a.toString(proof, 'hex')] })))
          say({ sent: 'open-member', to: b4a.toString(conn.remotePublicKey, 'hex') })
          if (mode !== 'bad-signatures') return
          let round = 0
          const timer = setInterval(() => {
            if (conn.destroyed) return clearInterval(timer)
            const entries = Array.from({ length: 40 }, (_, j) => ({ ...forged, signature: (i * 1e6 + round * 40 + j).toString(16).padStart(128, '0') }))
            round++
            catalogs.send(b4a.from(JSON.stringify({ entries })))
          }, 400)
          conn.on('close', () => clearInterval(timer))
        }
      })
      const proofs = channel.addMessage({ encoding: c.buffer, onmessage () {} })
      const catalogs = channel.addMessage({ encoding: c.buffer, onmessage () {} })
      channel.open()
    })
    other.join(topic, { server: true, client: true })
    extra.push(other)
  }
}

function rawFrame (conn, length, bytes) {
  // secret-stream frames are a 3-byte little-endian length, then the (encrypted) body
  conn.rawStream.write(b4a.from([length & 0xff, (length >> 8) & 0xff, (length >> 16) & 0xff]))
  if (bytes) conn.rawStream.write(b4a.alloc(bytes, 1))
}

swarm.on('connection', (conn) => {
  const to = b4a.toString(conn.remotePublicKey, 'hex')
  conn.on('error', () => {})
  conn.on('close', () => say({ closed: to }))
  if (mode === 'huge-frame') {
    rawFrame(conn, 15 * 1024 * 1024, 4096)
    return say({ sent: 'huge-frame', to })
  }
  if (mode === 'slow-frame') {
    rawFrame(conn, 64 * 1024, 1)
    const timer = setInterval(() => { if (!conn.destroyed) conn.rawStream.write(b4a.alloc(1, 1)) }, 1000)
    conn.on('close', () => clearInterval(timer))
    return say({ sent: 'slow-frame', to })
  }
  const mux = Hypercore.getProtocolMuxer(store.replicate(conn))
  const channel = mux.createChannel({
    protocol: 'orch-mind/catalog/v1',
    onopen () {
      if (mode === 'many') return say({ sent: 'stranger', to })
      if (mode === 'many-open') return
      if (mode === 'unsolicited') {
        const entry = { v: 1, manifest: { name: 'unsolicited' }, transfer: {}, author: '00', signature: '00' }
        catalog.send(b4a.from(JSON.stringify({ entries: [entry] })))
        say({ sent: 'unsolicited-catalog', to })
        setTimeout(() => {
          catalog.send(b4a.alloc(2 * 1024 * 1024, 0x7b))
          say({ sent: 'oversized', to })
        }, 500)
        return
      }
      const proof = b4a.toString(keyed('orch-mind/room-proof/v1', swarm.keyPair.publicKey, conn.remotePublicKey), 'hex')
      proofs.send(b4a.from(JSON.stringify({ proofs: [proof] })))
      if (mode === 'trickle') {
        const entry = JSON.parse(require('fs').readFileSync(entryFile, 'utf8'))
        setTimeout(() => catalog.send(b4a.from(JSON.stringify({ entries: [entry] }))), 300)
        return say({ sent: 'trickle-offer', to })
      }
      if (mode === 'silent') {
        conn.setKeepAlive(0) // a proven member that then never sends a byte (its transport still acks)
        return say({ sent: 'silent', to })
      }
      if (mode === 'deep') {
        setTimeout(() => {
          catalog.send(b4a.from('{"entries":' + '['.repeat(3000) + ']'.repeat(3000) + '}'))
          say({ sent: 'deep', to })
        }, 300)
      } else if (mode === 'catalog-flood') {
        const big = b4a.from(JSON.stringify({ entries: ['x'.repeat(900 * 1024)] }))
        const until = Date.now() + seconds * 1000
        const burst = () => {
          if (conn.destroyed || Date.now() > until) return
          catalog.send(big)
          setTimeout(burst, 10)
        }
        burst()
        say({ sent: 'catalog-flood', to })
      } else if (mode === 'proof-flood') {
        conn.pause() // never read again: whatever the app sends back piles up on its side
        const until = Date.now() + seconds * 1000
        let sent = 0
        const burst = () => {
          if (conn.destroyed || Date.now() > until) return say({ sent: 'proof-flood', to, count: sent })
          for (let i = 0; i < 200; i++, sent++) proofs.send(b4a.from(JSON.stringify({ proofs: [proof] })))
          setImmediate(burst)
        }
        burst()
      }
    }
  })
  const proofs = channel.addMessage({ encoding: c.buffer, onmessage () {} })
  const catalog = channel.addMessage({ encoding: c.buffer, onmessage () {} })
  channel.open()
  if (['want-flood', 'stray-blocks', 'stray-zero', 'bad-want', 'listen-wants', 'trickle'].includes(mode)) directAttack(conn, mux, to)
})

// The direct-transfer channel, spelled out from its wire format: want = {id, key, start, end,
// blockSize, byteLength, proof?}, block = {id, index, data}, nope = {id, reason}.
function directAttack (conn, mux, to) {
  const want = {
    preencode (state, m) {
      for (const v of [m.id, m.start, m.end, m.blockSize, m.byteLength]) c.uint.preencode(state, v)
      c.fixed32.preencode(state, m.key)
      state.end++
    },
    encode (state, m) {
      c.uint.encode(state, m.id)
      c.fixed32.encode(state, m.key)
      for (const v of [m.start, m.end, m.blockSize, m.byteLength]) c.uint.encode(state, v)
      state.buffer[state.start++] = 0 // no proof
    },
    decode (state) {
      const id = c.uint.decode(state)
      const key = c.fixed32.decode(state)
      const [start, end, blockSize, byteLength] = [0, 0, 0, 0].map(() => c.uint.decode(state))
      state.start = state.end
      return { id, key, start, end, blockSize, byteLength }
    }
  }
  const block = {
    preencode (state, m) { c.uint.preencode(state, m.id); c.uint.preencode(state, m.index); c.buffer.preencode(state, m.data) },
    encode (state, m) { c.uint.encode(state, m.id); c.uint.encode(state, m.index); c.buffer.encode(state, m.data) },
    decode () { return null }
  }
  const channel = mux.createChannel({
    protocol: 'orch-mind/direct/v1',
    onopen () {
      if (mode === 'listen-wants' || mode === 'trickle') return
      const until = Date.now() + seconds * 1000
      let sent = 0
      const data = b4a.alloc(mode === 'stray-zero' ? 1024 : 1024 * 1024, 1)
      const burst = () => {
        if (conn.destroyed || Date.now() > until) return say({ sent: mode, to, count: sent })
        for (let i = 0; i < (mode === 'want-flood' ? 100 : 1); i++, sent++) {
          if (mode === 'bad-want') {
            cut.send({})
          } else if (mode === 'stray-zero') {
            blocks.send({ id: 0, index: 0, data })
          } else if (mode === 'want-flood') {
            wants.send({ id: sent + 1, key: b4a.alloc(32, 9), start: 0, end: 1, blockSize: 1024 * 1024, byteLength: 1024 * 1024 })
          } else blocks.send({ id: 1000 + sent, index: 0, data })
        }
        setTimeout(burst, mode === 'want-flood' ? 0 : 50)
      }
      setTimeout(burst, 300) // after the proof has landed
    }
  })
  // Same message type as a want (the first), but only its id: the key's 32 bytes are missing.
  const shortWant = { preencode (state) { state.end += 1 }, encode (state) { state.buffer[state.start++] = 5 }, decode () { return null } }
  const wants = channel.addMessage({
    encoding: mode === 'bad-want' ? shortWant : want,
    onmessage (m) {
      if (!m) return
      say({ wanted: b4a.toString(m.key, 'hex'), to })
      if (mode !== 'trickle') return
      queue.push(...Array.from({ length: m.end - m.start }, (_, i) => ({ id: m.id, index: m.start + i, m })))
      if (queue.length === m.end - m.start) trickle() // wants are answered in order, one block at a time
    }
  })
  const cut = wants
  const blocks = channel.addMessage({ encoding: block, onmessage () {} })
  const queue = []
  const trickle = () => {
    if (conn.destroyed || !queue.length) return
    const { id, index, m } = queue.shift()
    blocks.send({ id, index, data: b4a.alloc(Math.min(m.blockSize, m.byteLength - index * m.blockSize)) })
    say({ trickled: index, to })
    if (queue.length) setTimeout(trickle, 5000)
  }
  channel.addMessage({ encoding: c.buffer, onmessage () {} })
  channel.open()
}

swarm.join(topic, { server: true, client: true })
say({ ready: b4a.toString(swarm.keyPair.publicKey, 'hex') })
process.stdin.on('end', async () => {
  for (const other of extra) await other.destroy()
  await swarm.destroy()
  await store.close()
  process.exit(0)
})
process.stdin.resume()
