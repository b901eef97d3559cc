// Runs in the page (tests/browser/test_crypto_vectors.py): every section of the envelope-v1
// vectors, through the module the webmail itself uses (globalThis.pliCrypto).
(v) => {
  const c = globalThis.pliCrypto;
  const fails = [];
  const counts = {};
  const count = (k) => { counts[k] = (counts[k] || 0) + 1; };
  for (const [name, k] of Object.entries(v.keys)) {
    const m = c.mailboxKeys(c.fromHex(k.encryption_secret), c.fromHex(k.signing_seed));
    if (c.toHex(m.encryptionPublic) !== k.encryption_public) fails.push("key " + name);
    if (c.b64url(m.signingPublic) !== k.signing_public_b64) fails.push("sigkey " + name);
    if (c.fingerprint(m.signingPublic) !== k.signing_public_fingerprint) fails.push("fp " + name);
    count("keys");
  }
  for (const a of v.argon2id) {
    const floor = a.opslimit >= 2 ? c.LIMITS.INTERACTIVE : c.LIMITS.TEST_MINIMUM;
    const d = c.deriveKeys(a.secret_text, c.fromHex(a.salt), a, floor);
    if (c.toHex(d.output) !== a.output) fails.push("argon2id " + a.name);
    if (c.toHex(d.authKey) !== a.auth_key || c.toHex(d.bundleKey) !== a.bundle_key) fails.push("split " + a.name);
    count("argon2id");
  }
  const rk = v.recovery_keys;
  for (const t of rk.accepted_inputs_text) {
    if (c.normalizeRecoveryKey(t) !== rk.canonical_text) fails.push("recovery " + t);
    count("recovery");
  }
  for (const t of rk.refused_inputs_text) {
    try { c.normalizeRecoveryKey(t); fails.push("recovery accepted " + t); } catch (e) { count("recovery"); }
  }
  for (const b of v.bundles) {
    const k = c.openBundle(c.fromHex(b.blob), c.fromHex(b.bundle_key));
    if (c.toHex(k.encryptionSecret) !== b.encryption_secret || c.toHex(k.signingSeed) !== b.signing_seed) fails.push("bundle " + b.name);
    if (c.toHex(c.sealBundle(k, c.fromHex(b.bundle_key), c.fromHex(b.nonce))) !== b.blob) fails.push("bundle seal " + b.name);
    count("bundles");
  }
  for (const b of v.bundle_failures) {
    try { c.openBundle(c.fromHex(b.blob), c.fromHex(b.bundle_key)); fails.push("bundle opened " + b.name); }
    catch (e) { if (!(e instanceof c.BundleError)) fails.push("bundle error " + b.name); else count("bundle_failures"); }
  }
  for (const h of v.headers) {
    if (c.toHex(c.encodeHeader(h.fields)) !== h.canonical) fails.push("header " + h.name);
    c.decodeHeader(c.fromHex(h.canonical));
    if (c.toHex(c.hash32(c.fromHex(h.canonical))) !== h.header_hash) fails.push("header hash " + h.name);
    count("headers");
  }
  for (const h of v.header_failures) {
    try { c.decodeHeader(c.fromHex(h.input)); fails.push("header accepted " + h.name); }
    catch (e) { if (!(e instanceof c.EnvelopeError)) fails.push("header error " + h.name); else count("header_failures"); }
  }
  for (const e of v.envelopes) {
    const keys = c.mailboxKeys(c.fromHex(e.recipient_encryption_secret), new Uint8Array(32));
    const o = c.openEnvelope(c.fromHex(e.envelope), c.fromHex(e.slot), keys);
    const same = c.toHex(o.plaintext) === e.plaintext && c.toHex(o.signature) === e.signature
      && c.toHex(o.headerHash) === e.header_hash && c.toHex(o.plaintextDigest) === e.plaintext_digest
      && JSON.stringify(o.frameLengths) === JSON.stringify(e.frame_lengths)
      && c.toHex(c.encodeHeader(o.header)) === e.header;
    if (!same) fails.push("envelope " + e.name);
    count("envelopes");
  }
  for (const e of v.envelope_failures) {
    const keys = c.mailboxKeys(c.fromHex(e.recipient_encryption_secret), new Uint8Array(32));
    try { c.openEnvelope(c.fromHex(e.envelope), c.fromHex(e.slot), keys); fails.push("envelope accepted " + e.name); }
    catch (x) {
      const signature = x instanceof c.SignatureError;
      if (!(x instanceof c.EnvelopeError) || signature !== (e.expect === "SignatureError")) fails.push("envelope error " + e.name + " " + x);
      else count("envelope_failures");
    }
  }
  return { fails, counts };
}
