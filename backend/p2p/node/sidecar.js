'use strict'
// Orch-Mind P2P sidecar: Hyperswarm discovery + Noise connections, room membership proofs, catalog
// exchange and adapter transfers: straight from a holder's files when it can (direct.js, checked
// against the signed file hashes), else as Hypercores (every block Merkle-verified against the
// author's core key, resumable, served by any peer that holds it).
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
const UDX = require('udx-native')
const Hypercore = require('hypercore')
const sodium = require('sodium-universal')
const b4a = require('b4a')
const c = require('compact-encoding')

const { RateLimit, parseCatalog, parseProofs, printable } = require('./peer_messages')
const direct = require('./direct')

const CATALOG_PROTOCOL = 'orch-mind/catalog/v1'
const PROGRESS_INTERVAL_MS = 250
const BROADCAST_DELAY_MS = 500
const CHANNEL_OPEN_TIMEOUT_MS = 4000
// What one connection may cost us. A peer over a rate is dropped and refused for PENALTY_MS.
const PEER_LIMITS = { // tests may lower the timeouts and caps through `start`
  connections: 64, // Hyperswarm caps the connections we dial, not the ones we accept
  openPeers: 32, // places for peers that proved only an open room (its secret is public: such identities are free)
  perAddress: 16, // places one remote address may hold, members of private rooms aside
  windowMs: 10000,
  messagesPerWindow: 50, // proofs + catalogs; an honest peer sends at most 2 + 2 a second (BROADCAST_DELAY_MS)
  wantsPerWindow: 400, // direct-transfer wants of 16 blocks: an honest peer at 100 MB/s sends 6 a second
  catalogBytesPerWindow: 4 * 1024 * 1024,
  queuedBytes: 2 * 1024 * 1024, // our unsent bytes to one peer: past this, catalogs wait for a drain
  // The largest frame a peer may announce: protomux batches messages up to 8 MiB and then adds one
  // more (a block of at most 1 MiB, see MAX_BLOCK_SIZE in catalog.py, plus its proof).
  frameBytes: 10 * 1024 * 1024,
  partialFrameMs: 20000, // a frame must arrive whole within this
  idleMs: 60000, // Hyperswarm's keep-alive is 5 s: a minute of silence is a dead or hostile peer
  sweepMs: 2000,
  penaltyMs: 10 * 60 * 1000
}

const state = {
  swarm: null,
  store: null,
  keyPair: null,
  rooms: new Map(), // roomId -> { secret, topic, discovery, open }
  catalog: [], // [{ rooms: [roomId], entry }]
  peers: new Map(), // hex key -> { conn, channel, sharedRooms: Set, proofsMsg, catalogMsg, limits }
  connections: new Set(), // every open connection, counted against PEER_LIMITS.connections
  sweep: null,
  blocked: new Set(),
  penalized: new Map(), // hex key -> time until which it is refused
  cores: new Map(), // hex key -> core session kept open so we serve it
  held: new Map(), // hex core key -> the files we send on the direct channel (direct.holding)
  downloads: new Map() // id -> { range, core, paused }
}

function send (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function emit (event, fields) {
  send({ event, ...fields })
}

function log (...args) {
  process.stderr.write(args.map((arg) => printable(arg, 500)).join(' ') + '\n')
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

// Sends our catalog for the rooms we share with this peer, only when it differs from what the peer
// already has, and never into a full send queue (a peer that does not read gets nothing more).
function sendCatalog (peer) {
  const message = JSON.stringify({ entries: catalogFor(peer.sharedRooms) })
  if (message === peer.sentCatalog) return
  if (direct.queuedBytes(peer.conn) > PEER_LIMITS.queuedBytes) {
    if (!peer.waitingForDrain) {
      peer.waitingForDrain = true
      peer.conn.once('drain', () => {
        peer.waitingForDrain = false
        if (!peer.conn.destroyed) sendCatalog(peer)
      })
    }
    return
  }
  peer.sentCatalog = message
  peer.catalogMsg.send(b4a.from(message))
}

function penalize (peer, reason) {
  if (peer.dropped) return // messages already buffered still arrive while the connection closes
  peer.dropped = true
  const key = hex(peer.conn.remotePublicKey)
  log('dropping peer', key.slice(0, 12) + ':', reason)
  state.penalized.set(key, Date.now() + PEER_LIMITS.penaltyMs)
  emit('peer-misbehaved', { peer: key, reason })
  peer.conn.destroy()
}

function withinRate (peer, bytes) {
  if (!peer.messages.take(1)) return 'too many messages'
  if (!peer.catalogBytes.take(bytes)) return 'too many bytes'
  return null
}

function onProofs (peer, buf) {
  const proofs = new Set(parseProofs(buf))
  const shared = new Set()
  for (const [roomId, room] of state.rooms) {
    if (proofs.has(roomProof(room.secret, peer.conn.remotePublicKey, state.keyPair.publicKey))) shared.add(roomId)
  }
  const changed = shared.size !== peer.sharedRooms.size || [...shared].some((room) => !peer.sharedRooms.has(room))
  peer.sharedRooms = shared
  if (changed) emit('peer-rooms', { peer: hex(peer.conn.remotePublicKey), rooms: [...shared] })
  if (changed) enforceOpenQuota()
  if (peer.dropped || peer.conn.destroyed) return
  sendCatalog(peer)
}

function onCatalog (peer, buf) {
  const { entries, rejected } = parseCatalog(buf)
  // A peer with whom we share no room has no business sending a catalog: ignore it.
  if (peer.sharedRooms.size === 0) return
  emit('catalog', { peer: hex(peer.conn.remotePublicKey), rooms: [...peer.sharedRooms], entries, rejected })
}

const directContext = {
  held: state.held,
  localKey: () => state.keyPair.publicKey,
  penalize,
  log,
  withinRate: (peer) => peer.wants.take(1) ? null : 'too many wants'
}

function guarded (peer, handler) {
  return (buf) => {
    if (peer.dropped || peer.conn.destroyed) return
    const over = withinRate(peer, buf ? buf.byteLength : 0)
    if (over) return penalize(peer, over)
    try {
      handler(peer, buf)
    } catch (err) {
      penalize(peer, err.message)
    }
  }
}

// Checks what Noise's framing has buffered for this connection: a frame announced larger than any
// message we use, or one that does not complete in time (slow loris), ends the connection.
// Reads @hyperswarm/secret-stream's frame state (pinned in package-lock.json).
function checkFraming (peer, now) {
  const conn = peer.conn
  const midFrame = conn._state === 1 && typeof conn._len === 'number'
  if (!midFrame) {
    peer.frameSince = 0
    return
  }
  if (conn._len > PEER_LIMITS.frameBytes) return penalize(peer, `announced a ${conn._len}-byte frame`)
  if (!peer.frameSince || peer.frameLen !== conn._len || conn._tmp < peer.frameSeen) {
    peer.frameSince = now
    peer.frameLen = conn._len
  }
  peer.frameSeen = conn._tmp
  if (now - peer.frameSince > PEER_LIMITS.partialFrameMs) penalize(peer, 'a frame did not arrive in time')
}

function sweepPeers () {
  const now = Date.now()
  for (const [key, until] of state.penalized) if (until <= now) state.penalized.delete(key)
  for (const peer of state.peers.values()) if (!peer.dropped && !peer.conn.destroyed) checkFraming(peer, now)
}

// Who keeps a place when there are too many. A member (it proved a private room we are in) is never
// made to leave for anyone. A peer that proved only an open room holds one of at most
// PEER_LIMITS.openPeers places (past it, the oldest goes). A stranger that had time to prove a room
// and did not goes first. One remote address holds at most PEER_LIMITS.perAddress places that are
// not members'. So free identities cannot fill the cap, and a member always finds a place within
// CHANNEL_OPEN_TIMEOUT_MS (a newcomer's standing is unknown until it proves something).
function standing (peer) {
  if ([...peer.sharedRooms].some((id) => state.rooms.has(id) && !state.rooms.get(id).open)) return 'member'
  return peer.sharedRooms.size ? 'open' : 'stranger'
}

function livePeers () {
  return [...state.peers.values()].filter((peer) => !peer.dropped && !peer.conn.destroyed)
}

function oldestOf (peers) {
  return peers.reduce((oldest, peer) => (!oldest || peer.since < oldest.since ? peer : oldest), null)
}

function evict (peer, why) {
  const key = hex(peer.conn.remotePublicKey)
  log('closing', key.slice(0, 12) + ':', why)
  peer.conn.destroy()
  state.connections.delete(peer.conn)
  // Said now, before the newcomer's peer-join: the app never counts more peers than the cap.
  if (state.peers.get(key) === peer) {
    state.peers.delete(key)
    emit('peer-leave', { peer: key })
  }
}

// The one to make way for a newcomer among `peers`: a stranger that had its chance, else (when
// `openFull`) the oldest peer of an open room; null when only members and newcomers are there.
function victimAmong (peers, openFull) {
  const now = Date.now()
  const stranger = oldestOf(peers.filter((p) => standing(p) === 'stranger' && now - p.since >= CHANNEL_OPEN_TIMEOUT_MS))
  return stranger || (openFull ? oldestOf(peers.filter((p) => standing(p) === 'open')) : null)
}

// Makes a place for a newcomer from `host`; false when none can be made (it is refused).
function makeRoom (host) {
  const live = livePeers()
  const fromHost = live.filter((p) => p.host === host && standing(p) !== 'member')
  if (fromHost.length >= PEER_LIMITS.perAddress) {
    const victim = victimAmong(fromHost, true)
    if (!victim) return false
    evict(victim, `its address holds ${fromHost.length} places`)
  }
  if (state.connections.size < PEER_LIMITS.connections) return true
  const open = live.filter((p) => standing(p) === 'open').length
  const victim = victimAmong(livePeers(), open >= PEER_LIMITS.openPeers)
  if (!victim) return false
  evict(victim, `at the connection cap, making way (it is ${standing(victim) === 'open' ? 'in the open room only' : 'in no room of ours'})`)
  return true
}

// After a peer proved its rooms: past the open-room quota, the oldest open-room peer goes.
function enforceOpenQuota () {
  const open = livePeers().filter((p) => standing(p) === 'open')
  if (open.length > PEER_LIMITS.openPeers) evict(oldestOf(open), 'more open-room peers than their places')
}

function refused (remoteKey) {
  const key = hex(remoteKey)
  return state.blocked.has(key) || (state.penalized.get(key) || 0) > Date.now()
}

function onConnection (conn) {
  const key = hex(conn.remotePublicKey)
  conn.on('error', (err) => log('connection', key.slice(0, 12), err.message))
  const host = (conn.rawStream && conn.rawStream.remoteHost) || 'unknown'
  if (refused(conn.remotePublicKey) || !makeRoom(host)) {
    conn.destroy()
    return
  }
  state.connections.add(conn)
  conn.on('close', () => state.connections.delete(conn))
  conn.setTimeout(PEER_LIMITS.idleMs)
  // The first bytes of a frame larger than we allow: end it before the rest is buffered.
  if (conn.rawStream) conn.rawStream.on('data', () => { const p = state.peers.get(key); if (p && p.conn === conn) checkFraming(p, Date.now()) })
  const stream = state.store.replicate(conn)
  const mux = Hypercore.getProtocolMuxer(stream)
  const peer = {
    conn,
    host,
    since: Date.now(),
    sharedRooms: new Set(),
    sentCatalog: null,
    messages: new RateLimit(PEER_LIMITS.messagesPerWindow, PEER_LIMITS.windowMs),
    wants: new RateLimit(PEER_LIMITS.wantsPerWindow, PEER_LIMITS.windowMs),
    catalogBytes: new RateLimit(PEER_LIMITS.catalogBytesPerWindow, PEER_LIMITS.windowMs)
  }
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
  direct.attach(directContext, peer, mux)
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

// Room and catalog changes reach peers at most once per BROADCAST_DELAY_MS, however many happen (a
// start replays every room and share): so an honest peer stays far below what peers allow it.
const broadcasts = { proofs: null, catalog: null }

function later (kind, send) {
  if (broadcasts[kind]) return
  broadcasts[kind] = setTimeout(() => {
    broadcasts[kind] = null
    for (const peer of state.peers.values()) if (peer.channel && peer.channel.opened && !peer.dropped) send(peer)
  }, BROADCAST_DELAY_MS)
}

function broadcastProofs () {
  later('proofs', sendProofs)
}

function broadcastCatalog () {
  later('catalog', sendCatalog)
}

// ---------------------------------------------------------------- transfers

const DEFAULT_STALL_MS = 60000 // a download that gains no block for this long is retried, then failed
const STALL_RETRIES = 2
const DEFAULT_MIN_BYTES_PER_S = 256 * 1024 // below this a holder makes way for another, when there is one

function encryptionFor (keyHex) {
  return keyHex ? { key: requireHex(keyHex, 32, 'encryption key') } : null
}

async function openCore (keyHex, encryptionKey) {
  let core = state.cores.get(keyHex)
  if (!core) {
    const encryption = encryptionFor(encryptionKey)
    core = state.store.get({ key: b4a.from(keyHex, 'hex'), ...(encryption ? { encryption } : {}) })
    state.cores.set(keyHex, core)
  }
  await core.ready()
  if (encryptionKey && !core.encryption) await core.setEncryptionKey(encryptionFor(encryptionKey).key)
  return core
}

// Appends the files as blocks of one core (once; a core is never rewritten) and says what the
// signed entry must fix: length, byte length and the Merkle tree hash. With an encryption key
// (private rooms) the blocks are stored and served encrypted; the key travels only to members.
async function seed ({ name, files, blockSize, encryptionKey }) {
  if (typeof name !== 'string' || !Array.isArray(files) || !(blockSize > 0)) throw new Error('bad seed request')
  const encryption = encryptionFor(encryptionKey)
  const core = state.store.get({ name, ...(encryption ? { encryption } : {}) })
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
  state.held.set(hex(core.key), direct.holding({
    files: files.map((file) => ({ path: file, size: fs.statSync(file).size })), blockSize, access: encryption && encryption.key
  }))
  return { key: hex(core.key), length: core.length, byteLength: core.byteLength, treeHash: hex(await core.treeHash()) }
}

// Files of an adapter we downloaded, sent on the direct channel to peers that ask for its core.
function hold ({ key, files, blockSize, encryptionKey }) {
  requireHex(key, 32, 'key')
  state.held.set(key, direct.holding({ files, blockSize, access: encryptionFor(encryptionKey)?.key || null }))
  return { held: true }
}

async function unseed ({ key }) {
  state.held.delete(key)
  const core = state.cores.get(key)
  if (!core) return { cleared: false }
  state.cores.delete(key)
  if (core.length) await core.clear(0, core.length)
  await core.close()
  return { cleared: true }
}

// How many of a core's blocks this peer stores, and whether it keeps the core open (serves it).
async function stored ({ key }) {
  requireHex(key, 32, 'key')
  const open = state.cores.has(key)
  const core = open ? state.cores.get(key) : state.store.get({ key: b4a.from(key, 'hex') })
  try {
    await core.ready()
    let blocks = 0
    for (let i = 0; i < core.length; i++) if (await core.has(i)) blocks++
    return { open, blocks, length: core.length }
  } finally {
    if (!open) await core.close()
  }
}

function contiguousBlocks (core, blocks) {
  return Math.min(core.contiguousLength, blocks)
}

// Writes the files from the core's blocks in order, each block as soon as it is here (so writing
// overlaps the download), and hashes each file in the same pass: Python compares the hashes with
// the signed manifest instead of reading the files again. Reads through its own session, which the
// caller closes to stop it.
async function writeFiles (reader, files) {
  const sink = new direct.FileSink(files)
  try {
    for (let index = 0; !sink.done; index++) {
      const data = await reader.get(index, { wait: true })
      if (!data) throw new Error('a block is missing')
      sink.write(data)
    }
    return sink.hashes
  } finally {
    sink.abort()
  }
}

// Resolves with `promise`, or rejects with a stall once `job` has gained nothing for `ms`.
function unlessStalled (job, promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (Date.now() - job.lastGain > ms) {
        clearInterval(timer)
        reject(Object.assign(new Error(`no peer that holds it sent anything for ${Math.round(ms / 1000)} s`),
          { stalled: true, code: 'stalled' }))
      }
    }, Math.min(1000, ms / 4))
    promise.then((value) => { clearInterval(timer); resolve(value) }, (err) => { clearInterval(timer); reject(err) })
  })
}

// Resolves with `promise` unless the holder is too slow to keep: it must gain something every `stall`
// ms; when another holder could be asked (`alternatives`), send at least `minBytesPerS` on average
// once `graceMs` have passed; and, alone or not, finish within `deadlineMs` (a holder trickling one
// block under the stall limit would otherwise hold the download for hours).
function unlessSlow (job, promise, { stall, graceMs, minBytesPerS, sent, alternatives, deadlineMs }) {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const now = Date.now()
      if (now - job.lastGain > stall) {
        clearInterval(timer)
        return reject(Object.assign(new Error(`no peer that holds it sent anything for ${Math.round(stall / 1000)} s`),
          { stalled: true, code: 'stalled' }))
      }
      const rate = sent() / Math.max((now - started) / 1000, 1e-3)
      if ((alternatives && now - started > graceMs && rate < minBytesPerS) || now - started > deadlineMs) {
        clearInterval(timer)
        reject(Object.assign(new Error(`sent ${Math.round(rate / 1024)} KiB/s`), { slow: true, rate }))
      }
    }, Math.min(500, stall / 4))
    promise.then((value) => { clearInterval(timer); resolve(value) }, (err) => { clearInterval(timer); reject(err) })
  })
}

// Fetches the whole adapter on the direct channel from the first peer that holds it (the one whose
// offer it is first), checked against the signed file hashes; null when no peer could, so the caller
// goes on with Hypercore.
async function fetchDirect (job, { id, key, files, blockSize, encryptionKey, prefer, rooms, stall, minBytesPerS, onBlock }) {
  const plan = direct.holding({ files, blockSize, access: null })
  const expected = files.map((file) => file.sha256)
  const access = encryptionFor(encryptionKey)
  const preferred = (peer) => hex(peer.conn.remotePublicKey) === prefer ? 0 : 1
  // A private adapter's want carries its core key and an access proof: only peers that proved one of
  // the rooms it was offered in are asked (the one that offered it, when those rooms are not known).
  const mayAsk = (peer) => !access || (rooms.length ? rooms.some((room) => peer.sharedRooms.has(room))
    : hex(peer.conn.remotePublicKey) === prefer)
  const candidates = [...state.peers.values()].filter((p) => direct.canAsk(p) && mayAsk(p)).sort((a, b) => preferred(a) - preferred(b))
  for (const [index, peer] of candidates.entries()) {
    if (job.paused) return null
    if (!direct.canAsk(peer)) continue
    const fetch = new direct.DirectFetch(peer, plan, {
      key: b4a.from(key, 'hex'), access: access && access.key, localKey: state.keyPair.publicKey, onBlock
    })
    job.direct = fetch
    job.lastGain = Date.now()
    try {
      const graceMs = Math.min(stall / 2, 15000)
      const hashes = await unlessSlow(job, fetch.start(), {
        stall, graceMs, minBytesPerS, sent: () => fetch.cursor * blockSize,
        alternatives: candidates.slice(index + 1).some(direct.canAsk),
        // the whole adapter at a quarter of the minimum rate: a bound for a holder that is the only one
        deadlineMs: graceMs + 1000 * plan.byteLength / (minBytesPerS / 4)
      })
      if (hashes.every((hash, i) => hash === expected[i])) return hashes
      log('download', id, 'from', hex(peer.conn.remotePublicKey).slice(0, 12) + ': not the signed bytes; asking elsewhere')
    } catch (err) {
      fetch.fail(err.message)
      if (job.paused) return null
      if (err.slow) {
        const holder = hex(peer.conn.remotePublicKey)
        log('download', id, 'from', holder.slice(0, 12), 'too slow (' + err.message + '); asking another holder')
        emit('download-slow', { id, peer: holder, bytesPerS: Math.round(err.rate) })
        continue
      }
      if (!(err instanceof direct.DirectError && /not-held/.test(err.message))) {
        log('download', id, 'direct from', hex(peer.conn.remotePublicKey).slice(0, 12), 'failed:', err.message)
      }
    } finally {
      job.direct = null
    }
  }
  return null
}

async function fetchAdapter ({ id, peer, key, files, blockSize, byteLength, treeHash, encryptionKey, rooms, stallMs, minBytesPerS }) {
  if (typeof id !== 'string' || !Array.isArray(files) || !(blockSize > 0)) throw new Error('bad fetch request')
  if (rooms !== undefined && rooms !== null && !(Array.isArray(rooms) && rooms.every((room) => typeof room === 'string'))) {
    throw new Error('rooms must be a list of room ids')
  }
  requireHex(key, 32, 'key')
  const expectedTree = requireHex(treeHash, 32, 'tree hash')
  for (const file of files) requireHex(file.sha256, 32, 'file hash')
  const total = files.reduce((sum, file) => sum + file.size, 0)
  if (total !== byteLength) throw new Error('the files do not add up to the signed byte length')
  const blocks = Math.ceil(total / blockSize)
  const stall = stallMs > 0 ? stallMs : DEFAULT_STALL_MS
  const previous = state.downloads.get(id)
  if (previous && !previous.paused) return { started: false }
  const ours = state.cores.has(key) // open before this download (a share, a kept core): never closed by it
  const core = await openCore(key, encryptionKey)
  const job = { core, paused: false, range: null, direct: null, lastGain: Date.now(), startedAt: Date.now() }
  state.downloads.set(id, job)
  let last = 0
  const report = (done, peers) => {
    job.lastGain = Date.now()
    const now = Date.now()
    if (now - last < PROGRESS_INTERVAL_MS) return
    last = now
    emit('download-progress', { id, blocks: done, total: blocks, peers })
  }
  const progress = () => report(contiguousBlocks(core, blocks), core.peers.length)
  const gainedPeer = () => { job.lastGain = Date.now() }
  job.detach = () => { core.off('download', progress); core.off('peer-add', gainedPeer) }
  const finish = async (fields) => {
    job.detach()
    state.downloads.delete(id)
    if (fields.error && !ours) {
      // Nothing of a failed transfer stays on disk, and it is not served onwards.
      if (core.length) await core.clear(0, core.length).catch((err) => log('clearing a failed download:', err.message))
      if (state.cores.get(key) === core) state.cores.delete(key)
      await core.close().catch((err) => log('closing a failed download:', err.message))
    }
    emit(fields.error ? 'download-error' : 'download-done', { id, ...fields })
  }
  ;(async () => {
    try {
      const hashes = await fetchDirect(job, {
        id, key, files, blockSize, encryptionKey, prefer: peer, rooms: rooms || [], stall,
        minBytesPerS: minBytesPerS > 0 ? minBytesPerS : DEFAULT_MIN_BYTES_PER_S, onBlock: (done) => report(done, 1)
      })
      if (job.paused) return
      if (hashes) {
        log('download', id, `fetched directly in ${Date.now() - job.startedAt} ms`)
        return await finish({ blocks, sha256: hashes })
      }
      core.on('download', progress)
      core.on('peer-add', gainedPeer)
      const done = core.findingPeers()
      state.swarm.flush().then(done, done)
      // Before any block is fetched: the core's signed tree must be the one the entry names.
      job.lastGain = Date.now()
      await unlessStalled(job, core.update({ wait: true }), stall)
      while (core.length === 0 && !job.paused) {
        await unlessStalled(job, new Promise((resolve) => core.once('append', resolve)), stall)
      }
      if (job.paused) return
      if (core.length !== blocks || core.byteLength !== total) {
        throw Object.assign(new Error(`the shared copy holds ${core.length} blocks / ${core.byteLength} bytes, ` +
          `its signed entry says ${blocks} / ${total}`), { code: 'mismatch' })
      }
      job.lastGain = Date.now()
      const roots = await unlessStalled(job, core.treeHash(blocks), stall) // may need the holder's tree nodes
      if (!b4a.equals(roots, expectedTree)) throw Object.assign(new Error('the shared copy is not the one its entry signed'), { code: 'mismatch' })
      job.reader = core.session()
      const writing = writeFiles(job.reader, files)
      writing.catch(() => {}) // awaited below; a stopped download rejects it
      for (let attempt = 0; ; attempt++) {
        job.range = core.download({ start: 0, end: blocks, linear: true })
        job.lastGain = Date.now()
        try {
          await unlessStalled(job, job.range.done(), stall)
          break
        } catch (err) {
          if (!err.stalled || job.paused) throw err
          job.range.destroy()
          if (attempt >= STALL_RETRIES) throw err
          log('download', id, 'stalled; asking other holders')
          const retry = core.findingPeers()
          state.swarm.flush().then(retry, retry)
        }
      }
      if (job.paused) return
      const fetchedAt = Date.now()
      const sha256 = await writing
      log('download', id, `fetched in ${fetchedAt - job.startedAt} ms, written ${Date.now() - fetchedAt} ms after`)
      await finish({ blocks, sha256 })
    } catch (err) {
      await stopWriting(job) // no write may land in staging after Python hears the outcome
      if (job.paused) return
      await finish({ error: err.message, code: err.code || 'transfer' })
    } finally {
      await stopWriting(job)
    }
  })()
  return { started: true, have: contiguousBlocks(core, blocks), total: blocks }
}

async function stopWriting (job) {
  if (job.direct) job.direct.fail('stopped') // closes its file at once
  const reader = job.reader
  job.reader = null
  if (reader) await reader.close().catch((err) => log('closing a download reader:', err.message))
}

async function pause ({ id }) {
  const job = state.downloads.get(id)
  if (!job) return { paused: false }
  job.paused = true
  job.detach()
  if (job.range) job.range.destroy()
  await stopWriting(job) // before the reply: Python may clear the staging folder next
  return { paused: true }
}

// ---------------------------------------------------------------- commands

async function start ({ seed: seedHex, storage, bootstrap, host, blocked, limits }) {
  if (state.swarm) throw new Error('already started')
  for (const [name, value] of Object.entries(limits || {})) {
    if (!(name in PEER_LIMITS) || !(Number.isInteger(value) && value > 0)) throw new Error(`bad limit ${name}`)
    PEER_LIMITS[name] = value
  }
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
  const dht = new HyperDHT({ ...dhtOpts, keyPair: state.keyPair, udx: roomyUdx() })
  state.swarm = new Hyperswarm({
    dht,
    keyPair: state.keyPair,
    firewall: refused
  })
  state.sweep = setInterval(sweepPeers, PEER_LIMITS.sweepMs)
  state.sweep.unref()
  state.swarm.on('connection', onConnection)
  return { publicKey: hex(state.keyPair.publicKey) }
}

// UDP sockets with room for a burst: at ~100 MB/s the kernel's default receive buffer (208 KiB on
// Linux) fills whenever this process is busy for a few ms, and every datagram dropped there is sent
// again. The kernel caps the size at its own maximum (net.core.rmem_max).
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024

function roomyUdx () {
  const udx = new UDX()
  const createSocket = udx.createSocket.bind(udx)
  udx.createSocket = (...args) => {
    const socket = createSocket(...args)
    socket.once('listening', () => {
      try {
        if (socket.getRecvBufferSize() < SOCKET_BUFFER_BYTES) socket.setRecvBufferSize(SOCKET_BUFFER_BYTES)
        if (socket.getSendBufferSize() < SOCKET_BUFFER_BYTES) socket.setSendBufferSize(SOCKET_BUFFER_BYTES)
      } catch (err) {
        log('socket buffers:', err.message)
      }
    })
    return socket
  }
  return udx
}

async function join ({ roomId, secret, open }) {
  if (typeof roomId !== 'string') throw new Error('bad room id')
  const key = requireHex(secret, 32, 'room secret')
  if (!state.rooms.has(roomId)) {
    const topic = roomTopic(key)
    const discovery = state.swarm.join(topic, { server: true, client: true })
    state.rooms.set(roomId, { secret: key, topic, discovery, open: open === true })
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

async function stop () {
  for (const job of state.downloads.values()) {
    job.paused = true // shutting down is not a failure: the download resumes on the next start
    job.detach()
    if (job.range) job.range.destroy()
    if (job.direct) job.direct.fail('stopped')
  }
  if (state.swarm) await state.swarm.destroy()
  if (state.store) await state.store.close()
}

const COMMANDS = {
  start,
  join,
  leave,
  set_catalog: setCatalog,
  seed,
  unseed,
  hold,
  release: ({ key }) => ({ released: state.held.delete(key) }),
  open: async ({ key }) => {
    requireHex(key, 32, 'key')
    return { length: (await openCore(key)).length }
  },
  fetch: fetchAdapter,
  pause,
  block,
  stored
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
  handle(line)
})
input.on('close', () => shutdown(0))
process.on('SIGTERM', () => shutdown(0))
process.on('unhandledRejection', (err) => log('unhandled:', err && err.stack ? err.stack : err))
emit('hello', { pid: process.pid, version: 1 })
