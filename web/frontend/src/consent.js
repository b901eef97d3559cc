// The patient's consent answers and withdrawals, signed in the browser with the patient's
// Ed25519 key (the key never leaves the page). The format is messaging/kinds/consent.py's:
// canonical JSON (the RFC 8785 subset the schemas use: sorted keys, no whitespace, UTF-8,
// integers only, no control characters), BLAKE2b-256 digests behind a context string, and
// signatures over context || canonical JSON of every field but "signature".

import { b64url, hash32, signDetached, toHex, utf8, concat } from "./envelope.js";

export class ConsentError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConsentError";
  }
}

const CONTEXT_REQUEST = "pli-consent-request-v1\u0000";
const CONTEXT_RESPONSE = "pli-consent-response-v1\u0000";
const CONTEXT_REVOCATION = "pli-consent-revocation-v1\u0000";
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkValue(value) {
  if (value === null || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new ConsentError("only safe integers have a canonical form");
    return;
  }
  if (typeof value === "string") {
    if (FORBIDDEN.test(value)) throw new ConsentError("text with control characters or lone surrogates");
    return;
  }
  if (Array.isArray(value)) return value.forEach(checkValue);
  if (typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      checkValue(key);
      checkValue(item);
    }
    return;
  }
  throw new ConsentError(`a ${typeof value} has no canonical encoding`);
}

// Keys compare by code point, as Python's sort_keys does (JavaScript's default sort compares
// UTF-16 code units, which differs beyond the Basic Multilingual Plane).
function byCodePoint(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort(byCodePoint)) out[key] = sorted(value[key]);
    return out;
  }
  return value;
}

/** The canonical JSON text of a consent object (what is hashed and signed). */
export function canonicalJson(value) {
  checkValue(value);
  return JSON.stringify(sorted(value));
}

function digest(context, body) {
  return b64url(hash32(concat(utf8(context), utf8(canonicalJson(body)))));
}

/** RFC 3339 UTC to the second, as the schemas write times. */
export function utcSecond(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function newId() {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** The hash a response names: of the request exactly as the patient was shown it. */
export function requestDigest(request) {
  return digest(CONTEXT_REQUEST, request);
}

/** The hash a withdrawal names: of the signed response, signature included. */
export function responseDigest(response) {
  return digest(CONTEXT_RESPONSE, response);
}

/**
 * The patient's signed answer to `request` (its JSON as received): `decision` is "grant" or
 * "refuse". Refuses to sign a request that is not addressed to `patient`.
 */
export function answer(request, decision, keys, patient, now = new Date()) {
  if (request.type !== "consent-request" || request.version !== 1) throw new ConsentError("not a consent request");
  if (request.patient !== patient) throw new ConsentError("this request is not addressed to you");
  if (decision !== "grant" && decision !== "refuse") throw new ConsentError("the decision is grant or refuse");
  const body = {
    type: "consent-response",
    version: 1,
    response_id: newId(),
    request_id: request.request_id,
    request_hash: requestDigest(request),
    patient,
    professional: request.professional,
    decision,
    answered_at: utcSecond(now),
  };
  const signature = signDetached(concat(utf8(CONTEXT_RESPONSE), utf8(canonicalJson(body))), keys);
  return { ...body, signature: b64url(signature) };
}

/** The patient's signed withdrawal of the grant `response` (its signed JSON) gave. */
export function revoke(response, keys, patient, now = new Date()) {
  if (response.type !== "consent-response" || response.decision !== "grant") throw new ConsentError("only a grant can be withdrawn");
  if (response.patient !== patient) throw new ConsentError("this grant is not yours");
  const body = {
    type: "consent-revocation",
    version: 1,
    revocation_id: newId(),
    request_id: response.request_id,
    response_hash: responseDigest(response),
    patient,
    professional: response.professional,
    revoked_at: utcSecond(now),
  };
  const signature = signDetached(concat(utf8(CONTEXT_REVOCATION), utf8(canonicalJson(body))), keys);
  return { ...body, signature: b64url(signature) };
}

/** Whether a grant's scope covers a document (messaging/consent.py Grant.covers). */
export function covers(scope, documentId, categories) {
  if (scope.kind === "record") return true;
  if (scope.kind === "categories") return scope.categories.some((c) => categories.includes(c));
  return scope.document === documentId;
}
