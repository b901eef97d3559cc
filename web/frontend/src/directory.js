// Recipients' keys from the directory, checked against the key transparency log
// (RFC 9162 §2.1: leaf and node hashes, inclusion proof verification §2.1.3.2).
//
// GET /v1/directory/mailboxes/{address} answers the current keys and the proof of the
// address's latest leaf. Before sealing for a key, the browser checks that the leaf names
// this address and these keys with the "published" status, that the audit path leads from
// the leaf to the root of the tree head served with it, and that the head is signed by the
// log key (and names the log) the instance announced at sign-in. Consistency with heads
// seen before is not checked yet (see docs/webmail.md, "Known limits").

import { concat, fromB64url, utf8, verifyDetached } from "./envelope.js";

const LEAF_DOMAIN = concat(utf8("pli-key-leaf-v1"), new Uint8Array([0]));
const STH_DOMAIN = concat(utf8("pli-sth-v1"), new Uint8Array([0]));

export class KeyProofError extends Error {}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

const leafHash = (data) => sha256(new Uint8Array([0]), data);
const nodeHash = (l, r) => sha256(new Uint8Array([1]), l, r);

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.at = 0;
  }
  take(n) {
    if (this.at + n > this.bytes.length) throw new KeyProofError("truncated");
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u8() {
    return this.take(1)[0];
  }
  u16() {
    const b = this.take(2);
    return (b[0] << 8) | b[1];
  }
  u64() {
    const b = this.take(8);
    let v = 0;
    for (const x of b) v = v * 256 + x;
    return v;
  }
  text() {
    return new TextDecoder("utf-8", { fatal: true }).decode(this.take(this.u16()));
  }
  end() {
    if (this.at !== this.bytes.length) throw new KeyProofError("trailing bytes");
  }
}

export function parseLeaf(bytes) {
  const r = new Reader(bytes);
  if (!equal(r.take(LEAF_DOMAIN.length), LEAF_DOMAIN)) throw new KeyProofError("not a key leaf");
  const status = r.u8();
  r.u64();
  r.u64();
  const address = r.text();
  const encryptionKey = r.take(32);
  const signingKey = r.take(32);
  r.end();
  return { status: status === 1 ? "published" : status === 2 ? "revoked" : "unknown", address, encryptionKey, signingKey };
}

export function parseHead(bytes) {
  const r = new Reader(bytes);
  if (!equal(r.take(STH_DOMAIN.length), STH_DOMAIN)) throw new KeyProofError("not a tree head");
  const logId = r.text();
  const treeSize = r.u64();
  const timestampMs = r.u64();
  const root = r.take(32);
  const signed = bytes.slice(0, r.at);
  const signature = r.take(r.u16());
  r.end();
  return { logId, treeSize, timestampMs, root, signature, signed };
}

/** RFC 9162 §2.1.3.2. */
export async function verifyInclusion(leaf, index, treeSize, path, root) {
  if (index >= treeSize) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r = await leafHash(leaf);
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** The checked keys of `address`: {address, encryptionKey, signingKey, treeSize}. */
export async function verifiedKeys(address, mailbox, log) {
  if (!mailbox.keys || !mailbox.proof) throw new KeyProofError("no published key");
  const proof = mailbox.proof;
  const leafBytes = fromB64url(proof.leaf);
  const leaf = parseLeaf(leafBytes);
  const encryptionKey = fromB64url(mailbox.keys.encryption_key, 32);
  const signingKey = fromB64url(mailbox.keys.signing_key, 32);
  if (leaf.status !== "published" || leaf.address.toLowerCase() !== address.toLowerCase()) {
    throw new KeyProofError("the log's leaf is not a publication for this address");
  }
  if (!equal(leaf.encryptionKey, encryptionKey) || !equal(leaf.signingKey, signingKey)) {
    throw new KeyProofError("the keys differ from the log's leaf");
  }
  const head = parseHead(fromB64url(proof.head));
  if (head.treeSize !== proof.tree_size) throw new KeyProofError("the proof is for another tree");
  if (head.logId !== log.id || !verifyDetached(head.signature, head.signed, log.key)) {
    throw new KeyProofError("the tree head is not signed by this instance's key log");
  }
  const path = proof.inclusion.map((h) => fromB64url(h, 32));
  if (!(await verifyInclusion(leafBytes, proof.leaf_index, proof.tree_size, path, head.root))) {
    throw new KeyProofError("the inclusion proof does not verify");
  }
  return { address, encryptionKey, signingKey, treeSize: head.treeSize };
}
