// Pli envelope format v1 in the browser (docs/envelope.md), over libsodium.js.
//
// Everything the webmail opens or seals goes through here: the Argon2id derivation of the
// auth key and the bundle key (§10.3), the key bundle (§10.2), the canonical routing header
// (§3), sealing and opening envelopes with their detached key slots (§4–§6), and the
// recovery-key normalisation (§10.4). It passes tests/crypto/vectors/envelope-v1.json in
// Chromium (tests/browser/test_crypto_vectors.py). Keys never leave this module's callers:
// nothing here talks to the network.

import sodiumModule from "libsodium-wrappers-sumo";

export class CryptoError extends Error {}
export class KeyFormatError extends CryptoError {}
export class BundleError extends CryptoError {}
export class EnvelopeError extends CryptoError {}
export class SignatureError extends EnvelopeError {}
for (const cls of [CryptoError, KeyFormatError, BundleError, EnvelopeError, SignatureError]) {
  Object.defineProperty(cls.prototype, "name", { value: cls.name });
}

let sodium = null;

/** Resolves once libsodium's WebAssembly is instantiated; every other call needs it. */
export async function ready() {
  await sodiumModule.ready;
  sodium = sodiumModule;
  return sodium;
}

function lib() {
  if (sodium === null) throw new CryptoError("libsodium is not ready: await ready() first");
  return sodium;
}

// -- limits and constants -------------------------------------------------------------------

export const MAGIC = new Uint8Array([0x50, 0x4c, 0x49, 0x45]); // "PLIE"
export const VERSION = 1;
export const MAX_HEADER = 65536;
export const DEFAULT_CHUNK_SIZE = 65536;
const MAX_CHUNK = 1048576;
const ABYTES = 17;
const MIN_FRAME = ABYTES + 1;
const MAX_FRAME = MAX_CHUNK + ABYTES;
const SIGNATURE_FRAME = 64 + ABYTES;
const SLOT_BYTES = 80;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const BUNDLE_BYTES = 105;
const BUNDLE_AD = utf8("pli-bundle-v1");
const SIGNATURE_DOMAIN = concat(utf8("pli-envelope-v1"), new Uint8Array([0]));
const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1

/** libsodium's presets (docs/envelope.md §10.3). */
export const LIMITS = {
  INTERACTIVE: { opslimit: 2, memlimit: 67108864 },
  MODERATE: { opslimit: 3, memlimit: 268435456 },
  TEST_MINIMUM: { opslimit: 1, memlimit: 8192 },
};

// -- bytes ----------------------------------------------------------------------------------

export function utf8(text) {
  return new TextEncoder().encode(text);
}

export function concat(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new KeyFormatError("bad hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function b64url(bytes) {
  const s = lib();
  return s.to_base64(bytes, s.base64_variants.URLSAFE_NO_PADDING);
}

/** base64url without padding, canonical only (re-encoding gives the same text). */
export function fromB64url(text, length) {
  const s = lib();
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) {
    throw new KeyFormatError("not base64url");
  }
  let raw;
  try {
    raw = s.from_base64(text, s.base64_variants.URLSAFE_NO_PADDING);
  } catch {
    throw new KeyFormatError("not base64url");
  }
  if (b64url(raw) !== text) throw new KeyFormatError("non-canonical base64url");
  if (length !== undefined && raw.length !== length) throw new KeyFormatError("wrong length");
  return raw;
}

function u32(value) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

function readU32(bytes, at) {
  return new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, false);
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function hash32(data) {
  return lib().crypto_generichash(32, data, null);
}

// -- keys -----------------------------------------------------------------------------------

/** The public halves and usable secrets of a mailbox's keys (§10.1). */
export function mailboxKeys(encryptionSecret, signingSeed) {
  const s = lib();
  if (encryptionSecret.length !== KEY_BYTES || signingSeed.length !== KEY_BYTES) {
    throw new KeyFormatError("keys are 32 bytes");
  }
  const signing = s.crypto_sign_seed_keypair(signingSeed);
  return {
    encryptionSecret,
    encryptionPublic: s.crypto_scalarmult_base(encryptionSecret),
    signingSeed,
    signingSecret: signing.privateKey,
    signingPublic: signing.publicKey,
  };
}

/** Ed25519 detached verification that never throws (a malformed input is a refusal). */
export function verifyDetached(signature, message, publicKey) {
  try {
    return signature.length === 64 && lib().crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** Ed25519 detached signature of `message` with this mailbox's signing key. */
export function signDetached(message, keys) {
  return lib().crypto_sign_detached(message, keys.signingSecret);
}

/**
 * A new key slot giving `recipientPublic` the content key that `slot` gives `keys`
 * (crypto.reseal_slot): how a patient shares a document under a consent without the
 * content key or the document ever leaving the browser.
 */
export function resealSlot(slot, keys, recipientPublic) {
  const s = lib();
  if (!(slot instanceof Uint8Array) || slot.length !== SLOT_BYTES) {
    throw new EnvelopeError("not a recipient (bad slot)");
  }
  let contentKey;
  try {
    contentKey = s.crypto_box_seal_open(slot, keys.encryptionPublic, keys.encryptionSecret);
  } catch {
    throw new EnvelopeError("not a recipient (the slot does not open)");
  }
  try {
    return s.crypto_box_seal(contentKey, recipientPublic);
  } finally {
    s.memzero(contentKey);
  }
}

/** Display fingerprint: hex of BLAKE2b-128 of the raw public key. */
export function fingerprint(publicKey) {
  return toHex(lib().crypto_generichash(16, publicKey, null));
}

// -- Argon2id -------------------------------------------------------------------------------

export function normalizeSecret(secret) {
  if (typeof secret !== "string") throw new KeyFormatError("the secret must be a string");
  const normalized = secret.normalize("NFKC");
  if (!normalized) throw new KeyFormatError("the secret is empty");
  if (!normalized.isWellFormed()) throw new KeyFormatError("the secret is not valid Unicode");
  return utf8(normalized);
}

/**
 * One Argon2id run → {authKey, bundleKey} (§10.3). `floor` is the lowest acceptable preset:
 * a passphrase MUST NOT be derived below INTERACTIVE, whatever a server asks for.
 */
export function deriveKeys(secret, salt, limits, floor = LIMITS.INTERACTIVE) {
  const s = lib();
  if (!(salt instanceof Uint8Array) || salt.length !== SALT_BYTES) {
    throw new KeyFormatError("an Argon2id salt is 16 bytes");
  }
  const { opslimit, memlimit } = limits;
  if (!Number.isInteger(opslimit) || !Number.isInteger(memlimit)) {
    throw new KeyFormatError("Argon2id limits must be integers");
  }
  if (opslimit < floor.opslimit || memlimit < floor.memlimit) {
    throw new KeyFormatError("the server asked for Argon2id limits below the safe floor");
  }
  if (opslimit > 4 || memlimit > LIMITS.MODERATE.memlimit) {
    throw new KeyFormatError("the server asked for Argon2id limits this device cannot afford");
  }
  const out = s.crypto_pwhash(
    64,
    normalizeSecret(secret),
    salt,
    opslimit,
    memlimit,
    s.crypto_pwhash_ALG_ARGON2ID13,
  );
  return { output: out, authKey: out.slice(0, 32), bundleKey: out.slice(32, 64) };
}

export function newSalt() {
  return lib().randombytes_buf(SALT_BYTES);
}

// -- recovery keys (§10.4) ------------------------------------------------------------------

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32Decode(text) {
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text) {
    const index = BASE32.indexOf(ch);
    if (index < 0) throw new KeyFormatError("not a recovery key");
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
    value &= (1 << bits) - 1;
  }
  if (value !== 0) throw new KeyFormatError("not a recovery key (trailing bits)");
  return new Uint8Array(out);
}

/** The canonical grouped form of a typed recovery key, or KeyFormatError. */
export function normalizeRecoveryKey(text) {
  if (typeof text !== "string") throw new KeyFormatError("not a recovery key");
  const compact = text.replace(/[\s-]/g, "");
  if (!/^[\x00-\x7f]*$/.test(compact)) throw new KeyFormatError("not a recovery key");
  const upper = compact.toUpperCase();
  if (upper.length !== 52 || !/^[A-Z2-7]+$/.test(upper)) {
    throw new KeyFormatError("a recovery key has 52 symbols A-Z and 2-7");
  }
  const raw = base32Decode(upper);
  if (raw.length !== 32) throw new KeyFormatError("not a recovery key");
  return upper.match(/.{4}/g).join("-");
}

// -- key bundle (§10.2) ---------------------------------------------------------------------

export function openBundle(blob, bundleKey) {
  const s = lib();
  if (!(blob instanceof Uint8Array) || blob.length !== BUNDLE_BYTES) {
    throw new BundleError("not a key bundle (wrong length)");
  }
  if (blob[0] !== 1) throw new BundleError("unknown key bundle version");
  let plain;
  try {
    plain = s.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      blob.subarray(25),
      BUNDLE_AD,
      blob.subarray(1, 25),
      bundleKey,
    );
  } catch {
    throw new BundleError("the key bundle does not open with this key");
  }
  return mailboxKeys(plain.slice(0, 32), plain.slice(32, 64));
}

export function sealBundle(keys, bundleKey, nonce = null) {
  const s = lib();
  const n = nonce ?? s.randombytes_buf(24);
  const ct = s.crypto_aead_xchacha20poly1305_ietf_encrypt(
    concat(keys.encryptionSecret, keys.signingSeed),
    BUNDLE_AD,
    null,
    n,
    bundleKey,
  );
  return concat(new Uint8Array([1]), n, ct);
}

// -- routing header (§3) --------------------------------------------------------------------

const HEADER_KEYS = ["date", "from", "id", "prov", "sigkey", "size", "thread", "to", "type", "v"];
// Unicode category Cc: C0 controls, DEL, C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

function checkText(value, name) {
  if (typeof value !== "string") throw new EnvelopeError(`header ${name} must be a string`);
  if (!value.isWellFormed() || CONTROL.test(value)) {
    throw new EnvelopeError(`header ${name} holds a forbidden character`);
  }
  return value;
}

function checkDate(value) {
  checkText(value, "date");
  const m = DATE.exec(value);
  if (m === null) throw new EnvelopeError("header date is not YYYY-MM-DDTHH:MM:SSZ");
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  const t = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (
    year < 1 ||
    t.getUTCFullYear() !== year ||
    t.getUTCMonth() !== month - 1 ||
    t.getUTCDate() !== day ||
    t.getUTCHours() !== hour ||
    t.getUTCMinutes() !== minute ||
    t.getUTCSeconds() !== second
  ) {
    throw new EnvelopeError("header date is not a real date and time");
  }
  return value;
}

function checkFields(doc) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new EnvelopeError("the header is not a JSON object");
  }
  const gateway = doc.prov === "gateway";
  const expected = gateway ? [...HEADER_KEYS, "gw"].sort() : HEADER_KEYS;
  const keys = Object.keys(doc).sort();
  if (keys.length !== expected.length || keys.some((k, i) => k !== expected[i])) {
    throw new EnvelopeError("the header does not have exactly the v1 keys");
  }
  if (doc.v !== 1 || typeof doc.v !== "number") throw new EnvelopeError("header v must be 1");
  for (const name of ["id", "thread", "type", "from"]) checkText(doc[name], name);
  if (!Array.isArray(doc.to)) throw new EnvelopeError("header to must be an array");
  doc.to.forEach((r) => checkText(r, "to"));
  if (typeof doc.size !== "number" || !Number.isInteger(doc.size) || doc.size < 0 || doc.size > MAX_SAFE) {
    throw new EnvelopeError("header size must be an integer from 0 to 2^53-1");
  }
  checkDate(doc.date);
  if (doc.prov !== "e2e" && doc.prov !== "gateway") {
    throw new EnvelopeError('header prov must be "e2e" or "gateway"');
  }
  checkText(doc.sigkey, "sigkey");
  try {
    fromB64url(doc.sigkey, 32);
  } catch {
    throw new EnvelopeError("header sigkey is not a canonical base64url Ed25519 key");
  }
  if (gateway) {
    const gw = doc.gw;
    if (gw === null || typeof gw !== "object" || Array.isArray(gw)) {
      throw new EnvelopeError("header gw must be an object");
    }
    const gwKeys = Object.keys(gw).sort();
    if (gwKeys.length !== 2 || gwKeys[0] !== "peer" || gwKeys[1] !== "tls") {
      throw new EnvelopeError("header gw must have exactly peer and tls");
    }
    checkText(gw.peer, "gw.peer");
    checkText(gw.tls, "gw.tls");
  }
  return doc;
}

function sortedCopy(value) {
  if (Array.isArray(value)) return value.map(sortedCopy);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortedCopy(value[key]);
    return out;
  }
  return value;
}

/** The canonical bytes of a header given as an object of its fields. */
export function encodeHeader(fields) {
  const doc = checkFields(sortedCopy(fields));
  const bytes = utf8(JSON.stringify(doc));
  if (bytes.length > MAX_HEADER) throw new EnvelopeError("the header is longer than 64 KiB");
  return bytes;
}

/** Parse and check stored header bytes; refuse any non-canonical spelling. */
export function decodeHeader(bytes) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new EnvelopeError("the header is not UTF-8");
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    // Also catches a RangeError from hostile nesting.
    throw new EnvelopeError("the header is not JSON");
  }
  checkFields(doc);
  if (!equalBytes(utf8(JSON.stringify(sortedCopy(doc))), bytes)) {
    throw new EnvelopeError("the header is not in canonical form");
  }
  return doc;
}

// -- envelopes (§2, §4–§6) ------------------------------------------------------------------

function signatureMessage(headerHash, plaintextDigest) {
  return concat(SIGNATURE_DOMAIN, headerHash, plaintextDigest);
}

/**
 * Seal `plaintext` (Uint8Array) under a header. `fields` are the header fields without
 * `sigkey` and `size`, which are filled in. Returns {envelope, slots, header, headerHash}:
 * one slot per recipient public key, in order.
 */
export function sealEnvelope(fields, plaintext, signer, recipientKeys, chunkSize = DEFAULT_CHUNK_SIZE) {
  const s = lib();
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK) {
    throw new EnvelopeError("chunk size must be from 1 to 1 MiB");
  }
  const header = encodeHeader({
    ...fields,
    v: 1,
    sigkey: b64url(signer.signingPublic),
    size: plaintext.length,
  });
  const headerHash = hash32(header);
  const contentKey = s.crypto_secretstream_xchacha20poly1305_keygen();
  const slots = recipientKeys.map((pk) => s.crypto_box_seal(contentKey, pk));
  const { state, header: streamHeader } = s.crypto_secretstream_xchacha20poly1305_init_push(contentKey);
  const parts = [MAGIC, new Uint8Array([VERSION]), u32(header.length), header, streamHeader];
  const digest = s.crypto_generichash_init(null, 32);
  for (let at = 0; at < plaintext.length; at += chunkSize) {
    const chunk = plaintext.subarray(at, Math.min(at + chunkSize, plaintext.length));
    s.crypto_generichash_update(digest, chunk);
    const c = s.crypto_secretstream_xchacha20poly1305_push(
      state,
      chunk,
      headerHash,
      s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    );
    parts.push(u32(c.length), c);
  }
  const plaintextDigest = s.crypto_generichash_final(digest, 32);
  const signature = s.crypto_sign_detached(signatureMessage(headerHash, plaintextDigest), signer.signingSecret);
  const last = s.crypto_secretstream_xchacha20poly1305_push(
    state,
    signature,
    headerHash,
    s.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
  );
  parts.push(u32(last.length), last);
  return { envelope: concat(...parts), slots, header: decodeHeader(header), headerHash };
}

/** Only the routing header, without keys (what a server can read). */
export function readHeader(envelope) {
  return parsePrefix(envelope).header;
}

function parsePrefix(envelope) {
  if (!(envelope instanceof Uint8Array) || envelope.length < 9) {
    throw new EnvelopeError("truncated envelope");
  }
  if (!equalBytes(envelope.subarray(0, 4), MAGIC)) throw new EnvelopeError("not a Pli envelope");
  if (envelope[4] !== VERSION) throw new EnvelopeError("unknown envelope version");
  const headerLength = readU32(envelope, 5);
  if (headerLength < 1 || headerLength > MAX_HEADER) {
    throw new EnvelopeError("header length out of range");
  }
  if (envelope.length < 9 + headerLength) throw new EnvelopeError("truncated header");
  const headerBytes = envelope.slice(9, 9 + headerLength);
  const header = decodeHeader(headerBytes);
  return { header, headerBytes, offset: 9 + headerLength };
}

/**
 * Open an envelope with this mailbox's slot (§4, reader). Returns
 * {header, headerHash, plaintext, plaintextDigest, signature, frameLengths}. Any failure
 * throws EnvelopeError (SignatureError for the last step) and releases no plaintext.
 */
export function openEnvelope(envelope, slot, keys, maxSize = null) {
  const s = lib();
  const { header, headerBytes, offset } = parsePrefix(envelope);
  const headerHash = hash32(headerBytes);
  if (maxSize !== null && header.size > maxSize) throw new EnvelopeError("message too large");
  if (!(slot instanceof Uint8Array) || slot.length !== SLOT_BYTES) {
    throw new EnvelopeError("not a recipient (bad slot)");
  }
  let contentKey;
  try {
    contentKey = s.crypto_box_seal_open(slot, keys.encryptionPublic, keys.encryptionSecret);
  } catch {
    throw new EnvelopeError("not a recipient (the slot does not open)");
  }
  if (envelope.length < offset + 24) throw new EnvelopeError("truncated stream header");
  let state;
  try {
    state = s.crypto_secretstream_xchacha20poly1305_init_pull(envelope.subarray(offset, offset + 24), contentKey);
  } catch {
    throw new EnvelopeError("bad stream header");
  }
  let at = offset + 24;
  let total = 0;
  let signature = null;
  const chunks = [];
  const frameLengths = [];
  const digest = s.crypto_generichash_init(null, 32);
  while (signature === null) {
    if (envelope.length < at + 4) throw new EnvelopeError("truncated: no final frame");
    const length = readU32(envelope, at);
    if (length < MIN_FRAME || length > MAX_FRAME) throw new EnvelopeError("frame length out of range");
    at += 4;
    if (envelope.length < at + length) throw new EnvelopeError("truncated frame");
    let result;
    try {
      result = s.crypto_secretstream_xchacha20poly1305_pull(state, envelope.subarray(at, at + length), headerHash);
    } catch {
      result = false;
    }
    if (!result) throw new EnvelopeError("a frame does not decrypt (tampered or reordered)");
    at += length;
    frameLengths.push(length);
    if (result.tag === s.crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
      if (length !== SIGNATURE_FRAME) throw new EnvelopeError("malformed final frame");
      signature = result.message;
    } else if (result.tag === s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
      total += result.message.length;
      if (total > header.size) throw new EnvelopeError("more plaintext than the header says");
      s.crypto_generichash_update(digest, result.message);
      chunks.push(result.message);
    } else {
      throw new EnvelopeError("unexpected frame tag");
    }
  }
  if (at !== envelope.length) throw new EnvelopeError("trailing data after the final frame");
  if (total !== header.size) throw new EnvelopeError("plaintext size differs from the header");
  const plaintextDigest = s.crypto_generichash_final(digest, 32);
  const sigkey = fromB64url(header.sigkey, 32);
  const message = signatureMessage(headerHash, plaintextDigest);
  let valid = false;
  try {
    valid = s.crypto_sign_verify_detached(signature, message, sigkey);
  } catch {
    valid = false;
  }
  if (!valid) throw new SignatureError("the signature does not verify");
  return { header, headerHash, plaintext: concat(...chunks), plaintextDigest, signature, frameLengths };
}
