'use strict'
// Everything a peer sends on the catalog channel passes through here before the sidecar acts on it
// or forwards it to the app: size, nesting depth and counts are checked before JSON.parse, and the
// result must have the exact shape of a proofs or catalog message (an entry that does not is left
// out and counted, the rest of the catalog still counts). Signatures are checked later, in Python;
// this layer only guarantees that what reaches Python is small, shallow and of known shape.

const LIMITS = Object.freeze({
  messageBytes: 1024 * 1024, // one proofs or catalog message
  depth: 12, // nesting of any peer JSON
  proofs: 64,
  entries: 256,
  entryBytes: 64 * 1024,
  stringBytes: 8 * 1024, // any one string inside an entry
  keys: 64 // keys of any one object inside an entry
})

const HEX32 = /^[0-9a-f]{64}$/
const HEX64 = /^[0-9a-f]{128}$/
const ENTRY_KEYS = new Set(['v', 'manifest', 'transfer', 'author', 'signature', 'origin', 'access'])
const SIGNED_KEYS = new Set(['v', 'manifest', 'transfer', 'author', 'signature'])
const TRANSFER_KEYS = ['core', 'block_size', 'order', 'byte_length', 'tree_hash']

class PeerMessageError extends Error {}

// Deepest nesting of arrays/objects in a JSON text, without parsing it (strings skipped).
function jsonDepth (buf) {
  let depth = 0
  let deepest = 0
  let inString = false
  let escaped = false
  for (let i = 0; i < buf.length; i++) {
    const ch = buf[i]
    if (inString) {
      if (escaped) escaped = false
      else if (ch === 0x5c) escaped = true
      else if (ch === 0x22) inString = false
    } else if (ch === 0x22) inString = true
    else if (ch === 0x5b || ch === 0x7b) {
      depth++
      if (depth > deepest) deepest = depth
    } else if (ch === 0x5d || ch === 0x7d) depth--
  }
  return deepest
}

function parseObject (buf) {
  if (!buf || buf.byteLength > LIMITS.messageBytes) throw new PeerMessageError('message too large')
  if (jsonDepth(buf) > LIMITS.depth) throw new PeerMessageError('message nested too deeply')
  let value
  try {
    value = JSON.parse(buf.toString('utf8'))
  } catch {
    throw new PeerMessageError('message is not JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new PeerMessageError('message is not an object')
  return value
}

function parseProofs (buf) {
  const message = parseObject(buf)
  const keys = Object.keys(message)
  if (keys.length !== 1 || !Array.isArray(message.proofs) || message.proofs.length > LIMITS.proofs) {
    throw new PeerMessageError('bad proofs')
  }
  if (!message.proofs.every((proof) => typeof proof === 'string' && HEX32.test(proof))) throw new PeerMessageError('bad proofs')
  return message.proofs
}

// Bounded structural check of one value inside an entry: strings, numbers, booleans, null, and
// arrays/objects of those, with caps on string length and key counts.
function plainValue (value, depth) {
  if (depth > LIMITS.depth) return false
  if (value === null || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (typeof value === 'string') return value.length <= LIMITS.stringBytes
  if (Array.isArray(value)) return value.length <= LIMITS.keys && value.every((item) => plainValue(item, depth + 1))
  if (typeof value === 'object') {
    const keys = Object.keys(value)
    return keys.length <= LIMITS.keys && keys.every((key) => key.length <= 128 && plainValue(value[key], depth + 1))
  }
  return false
}

function signedEntryShape (entry, allowed) {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return false
  const keys = Object.keys(entry)
  if (!keys.every((key) => allowed.has(key)) || ![...SIGNED_KEYS].every((key) => key in entry)) return false
  const { v, manifest, transfer, author, signature } = entry
  if (!Number.isInteger(v) || typeof author !== 'string' || !HEX32.test(author)) return false
  if (typeof signature !== 'string' || !HEX64.test(signature)) return false
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest) || !plainValue(manifest, 1)) return false
  if (transfer === null || typeof transfer !== 'object' || Array.isArray(transfer)) return false
  if (!Object.keys(transfer).every((key) => TRANSFER_KEYS.includes(key))) return false
  if (typeof transfer.core !== 'string' || !HEX32.test(transfer.core) || !Number.isInteger(transfer.block_size)) return false
  if (!Array.isArray(transfer.order) || transfer.order.length > 8 || !transfer.order.every((n) => typeof n === 'string' && n.length <= 64)) return false
  if ('byte_length' in transfer && !Number.isSafeInteger(transfer.byte_length)) return false
  if ('tree_hash' in transfer && (typeof transfer.tree_hash !== 'string' || !HEX32.test(transfer.tree_hash))) return false
  return true
}

function entryShape (entry) {
  if (!signedEntryShape(entry, ENTRY_KEYS)) return false
  if ('origin' in entry && !signedEntryShape(entry.origin, SIGNED_KEYS)) return false
  if ('access' in entry) {
    const access = entry.access
    if (access === null || typeof access !== 'object' || Object.keys(access).join() !== 'key' || !HEX32.test(String(access.key))) return false
  }
  return Buffer.byteLength(JSON.stringify(entry)) <= LIMITS.entryBytes
}

// A catalog message: the entries of known shape, and how many were left out.
function parseCatalog (buf) {
  const message = parseObject(buf)
  if (Object.keys(message).length !== 1 || !Array.isArray(message.entries) || message.entries.length > LIMITS.entries) {
    throw new PeerMessageError('bad catalog')
  }
  const entries = message.entries.filter(entryShape)
  return { entries, rejected: message.entries.length - entries.length }
}

// Counts events in a sliding window; `take` says whether one more is allowed.
class RateLimit {
  constructor (count, windowMs) {
    this.count = count
    this.windowMs = windowMs
    this.times = []
  }

  take (amount = 1, now = Date.now()) {
    while (this.times.length && now - this.times[0].at >= this.windowMs) this.times.shift()
    const used = this.times.reduce((sum, t) => sum + t.amount, 0)
    if (used + amount > this.count) return false
    this.times.push({ at: now, amount })
    return true
  }
}

// Text that came from a peer, made safe for one log line: control characters escaped, length capped.
function printable (value, max = 200) {
  const text = String(value)
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'))
  return escaped.length > max ? escaped.slice(0, max) + '…' : escaped
}

module.exports = { LIMITS, PeerMessageError, RateLimit, jsonDepth, parseCatalog, parseProofs, printable }
