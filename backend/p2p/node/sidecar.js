'use strict'
// Orch-Mind P2P sidecar: Hyperswarm discovery + Noise connections, room membership proofs, catalog
// exchange and adapter transfers as Hypercores (every block Merkle-verified against the author's
// core key, resumable, served by any peer that holds it).
//
// Protocol: one JSON object per line. Requests on stdin {id, cmd, args}; replies on stdout
// {id, ok, result | error}; events on stdout {event, ...}. Logs go to stderr. When stdin closes
// (the app exited or died) the sidecar shuts down.
//
// Trust: this process only moves bytes. Python signs and verifies catalog entries and verifies every
// received file against the signed manifest before anything enters the adapter store. Python is the
// only source of file paths; nothing a peer sends names a local path.

const fs = require('fs')
const readline = require('readline')
const Hyperswarm = require('hyperswarm')
const HyperDHT = require('hyperdht')
const Corestore = require('corestore')
const Hypercore = require('hypercore')
const sodium = require('sodium-universal')
const b4a = require('b4a')
const c = require('compact-encoding')

const CATALOG_PROTOCOL = 'orch-mind/catalog/v1'
const MAX_PEER_MESSAGE = 1024 * 1024
const MAX_CATALOG_ENTRIES = 256
const MAX_PROOFS = 64
const PROGRESS_INTERVAL_MS = 250
const CHANNEL_OPEN_TIMEOUT_MS = 4000

const state = {
  swarm: null,
  store: null,
  keyPair: null,
  rooms: new Map(), // roomId -> { secret, topic, discovery }
  catalog: [], // [{ rooms: [roomId], entry }]
  peers: new Map(), // hex key -> { conn, channel, sharedRooms: Set, proofsMsg, catalogMsg }
  blocked: new Set(),
  cores: new Map(), // hex key -> core session kept open so we serve it
  downloads: new Map() // id -> { range, core, paused }
}

function send (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function emit (event, fields) {
  send({ event, ...fields })
}

function log (...args) {
  process.stderr.write(args.join(' ') + '\n')
}

function hex (buf) {
  return b4a.toString(buf, 'hex')
}

function keyed (secret, label, ...parts) {
  const out = b4a.alloc(32)
  sodium.crypto_generichash(out, b4a.concat([b4a.from(label), ...parts]), secret)
  return out
}

function roomTopic (secret) {
  return keyed(secret, 'orch-mind/room-topic/v1')
}

// Binds a room secret to this connection's two Noise keys: proves membership without revealing
// the secret and cannot be replayed on another connection.
function roomProof (secret, fromKey, toKey) {
  return hex(keyed(secret, 'orch-mind/room-proof/v1', fromKey, toKey))
}

function requireHex (value, bytes, what) {
  if (typeof value !== 'string' || !new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(value)) {
    throw new Error(`${what} must be ${bytes} bytes of hex`)
  }
  return b4a.from(value, 'hex')
}

// ---------------------------------------------------------------- peers and catalog

function myProofs (remoteKey) {
  const proofs = []
  for (const room of state.rooms.values()) proofs.push(roomProof(room.secret, state.keyPair.publicKey, remoteKey))
  return proofs
}

function catalogFor (sharedRooms) {
  return state.catalog
    .filter((item) => item.rooms.some((room) => sharedRooms.has(room)))
    .map((item) => item.entry)
}

function sendProofs (peer) {
  peer.proofsMsg.send(b4a.from(JSON.stringify({ proofs: myProofs(peer.conn.remotePublicKey) })))
}

function sendCatalog (peer) {
  peer.catalogMsg.send(b4a.from(JSON.stringify({ entries: catalogFor(peer.sharedRooms) })))
}

function parsePeerMessage (buf) {
  if (!buf || buf.byteLength > MAX_PEER_MESSAGE) throw new Error('message too large')
  const value = JSON.parse(b4a.toString(buf))
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object')
  return value
}

function onProofs (peer, buf) {
  const { proofs } = parsePeerMessage(buf)
  if (!Array.isArray(proofs) || proofs.length > MAX_PROOFS) throw new Error('bad proofs')
  const received = new Set(proofs.filter((p) => typeof p === 'string'))
  const shared = new Set()
  for (const [roomId, room] of state.rooms) {
    if (received.has(roomProof(room.secret, peer.conn.remotePublicKey, state.keyPair.publicKey))) shared.add(roomId)
  }
  peer.sharedRooms = shared
  emit('peer-rooms', { peer: hex(peer.conn.remotePublicKey), rooms: [...shared] })
  sendCatalog(peer)
}

function onCatalog (peer, buf) {
  const { entries } = parsePeerMessage(buf)
  if (!Array.isArray(entries) || entries.length > MAX_CATALOG_ENTRIES) throw new Error('bad catalog')
  // A peer with whom we share no room has no business sending a catalog: ignore it.
  if (peer.sharedRooms.size === 0) return
  emit('catalog', { peer: hex(peer.conn.remotePublicKey), rooms: [...peer.sharedRooms], entries })
}

function guarded (peer, handler) {
  return (buf) => {
    try {
      handler(peer, buf)
    } catch (err) {
      log('dropping peer', hex(peer.conn.remotePublicKey).slice(0, 12), 'after a malformed message:', err.message)
      emit('peer-misbehaved', { peer: hex(peer.conn.remotePublicKey), reason: err.message })
      peer.conn.destroy()
    }
  }
}

function onConnection (conn) {
  const key = hex(conn.remotePublicKey)
  conn.on('error', (err) => log('connection', key.slice(0, 12), err.message))
  const stream = state.store.replicate(conn)
  const mux = Hypercore.getProtocolMuxer(stream)
  const peer = { conn, sharedRooms: new Set() }
  const channel = mux.createChannel({
    protocol: CATALOG_PROTOCOL,
    onopen () { sendProofs(peer) },
    onclose () {}
  })
  if (!channel) return
  peer.channel = channel
  peer.proofsMsg = channel.addMessage({ encoding: c.buffer, onmessage: guarded(peer, onProofs) })
  peer.catalogMsg = channel.addMessage({ encoding: c.buffer, onmessage: guarded(peer, onCatalog) })
  channel.open()
  // A connection whose far side never opens the catalog channel is half-open (seen on loopback
  // testnets when both peers dial at once): drop it so Hyperswarm dials again.
  const openTimer = setTimeout(() => {
    if (!channel.opened && !conn.destroyed) {
      log('connection', key.slice(0, 12), 'never opened the catalog channel; reconnecting')
      conn.destroy()
    }
  }, CHANNEL_OPEN_TIMEOUT_MS)
  conn.on('close', () => clearTimeout(openTimer))
  state.peers.set(key, peer)
  emit('peer-join', { peer: key })
  conn.on('close', () => {
    // Hyperswarm may replace a duplicate connection to the same peer: only the current one counts.
    if (state.peers.get(key) !== peer) return
    state.peers.delete(key)
    emit('peer-leave', { peer: key })
  })
}

function broadcastProofs () {
  for (const peer of state.peers.values()) if (peer.channel && peer.channel.opened) sendProofs(peer)
}

function broadcastCatalog () {
  for (const peer of state.peers.values()) if (peer.channel && peer.channel.opened) sendCatalog(peer)
}

// ---------------------------------------------------------------- transfers

async function openCore (keyHex) {
  let core = state.cores.get(keyHex)
  if (!core) {
    core = state.store.get({ key: b4a.from(keyHex, 'hex') })
    state.cores.set(keyHex, core)
  }
  await core.ready()
  return core
}

async function seed ({ name, files, blockSize }) {
  if (typeof name !== 'string' || !Array.isArray(files) || !(blockSize > 0)) throw new Error('bad seed request')
  const core = state.store.get({ name })
  await core.ready()
  const total = files.reduce((sum, file) => sum + fs.statSync(file).size, 0)
  const blocks = Math.ceil(total / blockSize)
  if (core.length === 0) {
    const pending = []
    let carry = b4a.alloc(0)
    for (const file of files) {
      const fd = fs.openSync(file, 'r')
      try {
        for (;;) {
          const buf = b4a.allocUnsafe(blockSize * 16)
          const n = fs.readSync(fd, buf, 0, buf.byteLength, null)
          if (n === 0) break
          carry = carry.byteLength ? b4a.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n)
          while (carry.byteLength >= blockSize) {
            pending.push(carry.subarray(0, blockSize))
            carry = carry.subarray(blockSize)
          }
          if (pending.length >= 64) await core.append(pending.splice(0))
        }
      } finally {
        fs.closeSync(fd)
      }
    }
    if (carry.byteLength) pending.push(carry)
    if (pending.length) await core.append(pending)
  }
  if (core.length !== blocks || core.byteLength !== total) {
    throw new Error(`core ${name} holds ${core.length} blocks, expected ${blocks}: share under a new name`)
  }
  state.cores.set(hex(core.key), core)
  return { key: hex(core.key), length: core.length, byteLength: core.byteLength }
}

async function unseed ({ key }) {
  const core = state.cores.get(key)
  if (!core) return { cleared: false }
  state.cores.delete(key)
  if (core.length) await core.clear(0, core.length)
  await core.close()
  return { cleared: true }
}

function contiguousBlocks (core, blocks) {
  return Math.min(core.contiguousLength, blocks)
}

async function writeFiles (core, files, blockSize) {
  let block = 0
  let offset = 0
  let current = null
  for (const file of files) {
    const fd = fs.openSync(file.path, 'w', 0o600)
    try {
      let remaining = file.size
      while (remaining > 0) {
        if (!current || offset >= current.byteLength) {
          current = await core.get(block++, { wait: false })
          offset = 0
          if (!current) throw new Error('a block is missing after the download finished')
        }
        const take = Math.min(remaining, current.byteLength - offset)
        fs.writeSync(fd, current, offset, take)
        offset += take
        remaining -= take
      }
    } finally {
      fs.closeSync(fd)
    }
  }
}

async function fetchAdapter ({ id, key, files, blockSize }) {
  if (typeof id !== 'string' || !Array.isArray(files) || !(blockSize > 0)) throw new Error('bad fetch request')
  requireHex(key, 32, 'key')
  const total = files.reduce((sum, file) => sum + file.size, 0)
  const blocks = Math.ceil(total / blockSize)
  const previous = state.downloads.get(id)
  if (previous && !previous.paused) return { started: false }
  const core = await openCore(key)
  const done = core.findingPeers()
  state.swarm.flush().then(done, done)
  const job = { core, paused: false, range: null }
  state.downloads.set(id, job)
  let last = 0
  const progress = () => {
    const now = Date.now()
    if (now - last < PROGRESS_INTERVAL_MS) return
    last = now
    emit('download-progress', { id, blocks: contiguousBlocks(core, blocks), total: blocks, peers: core.peers.length })
  }
  core.on('download', progress)
  job.detach = () => core.off('download', progress)
  const finish = (fields) => {
    job.detach()
    state.downloads.delete(id)
    emit(fields.error ? 'download-error' : 'download-done', { id, ...fields })
  }
  ;(async () => {
    try {
      await core.update({ wait: true })
      if (job.paused) return
      if (core.length > blocks) throw new Error(`the peer's copy has ${core.length} blocks, the manifest says ${blocks}`)
      job.range = core.download({ start: 0, end: blocks, linear: true })
      await job.range.done()
      if (job.paused) return
      if (core.length !== blocks || core.byteLength !== total) throw new Error('the transferred adapter has the wrong size')
      await writeFiles(core, files, blockSize)
      finish({ blocks })
    } catch (err) {
      if (job.paused) return
      finish({ error: err.message })
    }
  })()
  return { started: true, have: contiguousBlocks(core, blocks), total: blocks }
}

function pause ({ id }) {
  const job = state.downloads.get(id)
  if (!job) return { paused: false }
  job.paused = true
  job.detach()
  if (job.range) job.range.destroy()
  return { paused: true }
}

// ---------------------------------------------------------------- commands

async function start ({ seed: seedHex, storage, bootstrap, host, blocked }) {
  if (state.swarm) throw new Error('already started')
  state.keyPair = HyperDHT.keyPair(requireHex(seedHex, 32, 'seed'))
  for (const key of blocked || []) state.blocked.add(key)
  fs.mkdirSync(storage, { recursive: true })
  state.store = new Corestore(storage)
  try {
    await state.store.ready()
  } catch (err) {
    if (/lock/i.test(err.message)) {
      throw new Error('the network data is in use by another Orch-Mind (the app or `orch-mind p2p serve`); close it first')
    }
    throw err
  }
  const dhtOpts = {}
  if (bootstrap) dhtOpts.bootstrap = bootstrap
  if (host) dhtOpts.host = host
  // On loopback nothing is behind a NAT or firewall. Saying so skips hole-punching, which on a
  // loopback testnet sometimes left connections open on one side only.
  if (host === '127.0.0.1') dhtOpts.firewalled = false
  const dht = new HyperDHT({ ...dhtOpts, keyPair: state.keyPair })
  state.swarm = new Hyperswarm({
    dht,
    keyPair: state.keyPair,
    firewall: (remoteKey) => state.blocked.has(hex(remoteKey))
  })
  state.swarm.on('connection', onConnection)
  return { publicKey: hex(state.keyPair.publicKey) }
}

async function join ({ roomId, secret }) {
  if (typeof roomId !== 'string') throw new Error('bad room id')
  const key = requireHex(secret, 32, 'room secret')
  if (!state.rooms.has(roomId)) {
    const topic = roomTopic(key)
    const discovery = state.swarm.join(topic, { server: true, client: true })
    state.rooms.set(roomId, { secret: key, topic, discovery })
    await discovery.flushed()
  }
  broadcastProofs()
  return { topic: hex(state.rooms.get(roomId).topic) }
}

async function leave ({ roomId }) {
  const room = state.rooms.get(roomId)
  if (!room) return { left: false }
  state.rooms.delete(roomId)
  await state.swarm.leave(room.topic)
  broadcastProofs()
  return { left: true }
}

function setCatalog ({ items }) {
  if (!Array.isArray(items)) throw new Error('items must be a list')
  state.catalog = items.map((item) => ({ rooms: [...item.rooms], entry: item.entry }))
  broadcastCatalog()
  return { items: state.catalog.length }
}

function block ({ key }) {
  requireHex(key, 32, 'peer key')
  state.blocked.add(key)
  const peer = state.peers.get(key)
  if (peer) peer.conn.destroy()
  return { blocked: true }
}

function peers () {
  return [...state.peers.entries()].map(([key, peer]) => ({ peer: key, rooms: [...peer.sharedRooms] }))
}

async function stop () {
  for (const job of state.downloads.values()) {
    job.paused = true // shutting down is not a failure: the download resumes on the next start
    job.detach()
    if (job.range) job.range.destroy()
  }
  if (state.swarm) await state.swarm.destroy()
  if (state.store) await state.store.close()
  return { stopped: true }
}

const COMMANDS = {
  start,
  join,
  leave,
  set_catalog: setCatalog,
  seed,
  unseed,
  open: async ({ key }) => {
    requireHex(key, 32, 'key')
    return { length: (await openCore(key)).length }
  },
  fetch: fetchAdapter,
  pause,
  block,
  peers,
  ping: () => ({ pong: true })
}

async function handle (line) {
  let request
  try {
    request = JSON.parse(line)
  } catch (err) {
    log('ignoring a line that is not JSON')
    return
  }
  const { id, cmd, args } = request
  const fn = COMMANDS[cmd]
  try {
    if (!fn) throw new Error(`unknown command ${cmd}`)
    if (cmd !== 'start' && !state.swarm) throw new Error('not started')
    send({ id, ok: true, result: await fn(args || {}) })
  } catch (err) {
    send({ id, ok: false, error: err.message })
  }
}

let shuttingDown = false
async function shutdown (code) {
  if (shuttingDown) return
  shuttingDown = true
  try {
    await stop()
  } catch (err) {
    log('shutdown:', err.message)
  }
  process.exit(code)
}

const input = readline.createInterface({ input: process.stdin })
input.on('line', (line) => {
  if (line.trim() === '') return
  const parsed = (() => { try { return JSON.parse(line) } catch { return null } })()
  if (parsed && parsed.cmd === 'stop') {
    stop().then((result) => { send({ id: parsed.id, ok: true, result }); process.exit(0) })
    return
  }
  handle(line)
})
input.on('close', () => shutdown(0))
process.on('SIGTERM', () => shutdown(0))
process.on('unhandledRejection', (err) => log('unhandled:', err && err.stack ? err.stack : err))
emit('hello', { pid: process.pid, version: 1 })
