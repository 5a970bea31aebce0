// Access Ledger customer page. For each subject token (SPEC.md §12) it
// fetches GET /v1/subjects/<tag> (§14, every page), checks in the browser
// with WebCrypto everything the answer claims (checkpoint signature §2-§3,
// inclusion proofs §1, the log-signed index commitment §8/§14, the index
// proof over the recomputed value, the policies in force) and lists the
// accesses. "Verified" is shown only when every check holds.
//
// No dependencies, no build step; served by ledgerd with a CSP that allows
// only 'self' (so no inline script or style here or in index.html).
'use strict';

// ---------------------------------------------------------------- vocabulary

// SPEC.md §9, in words a customer reads.
const PURPOSES = {
  CUSTOMER_SUPPORT: 'Answering your own requests for help',
  PAYMENT_INITIATION: 'Making a payment you asked for',
  ACCOUNT_VERIFICATION: 'Verifying your account ownership and details',
  FRAUD_PREVENTION: 'Detecting and preventing fraud',
  LEGAL_COMPLIANCE: 'Complying with law and regulation',
  PERSONAL_FINANCIAL_MANAGEMENT: 'Budgeting and insights you asked for',
  CREDIT_UNDERWRITING: 'Assessing credit you applied for',
  TARGETED_ADVERTISING: 'Targeted or behavioural advertising (prohibited)',
  CROSS_SELLING: 'Selling you other products (prohibited)',
  SALE_OF_DATA: 'Selling your data (prohibited)',
};
const CATEGORIES = {
  ACCOUNT_BASIC: 'account details',
  BALANCES: 'balances',
  TRANSACTIONS: 'transaction history',
  STATEMENTS: 'statements',
  PAYMENT_SUPPORT: 'account and routing numbers',
  CUSTOMER_CONTACT: 'your name, address, e-mail and phone',
  BILLS: 'bills and payees',
  TERMS: 'account terms, rates and fees',
};
const TYPE_ACCESS = 'application/vnd.access-ledger.access.v1+json';
const TYPE_POLICY = 'application/vnd.access-ledger.policy.v1+json';
const TYPE_INDEX = 'application/vnd.access-ledger.index.v1+json';
const TOKEN_PREFIX = 'ledger-subject-v1';
const PAGE_LIMIT = 1000;   // the server's maximum (SPEC.md §14)
const MAX_PAGES = 1000;

// ------------------------------------------------------------------- errors

// VerifyError: the server's answer does not prove what it claims.
class VerifyError extends Error {}
// TokenError: the token the customer entered is malformed.
class TokenError extends Error {}
// ServerError: the log could not be reached or refused the request.
class ServerError extends Error {}

function fail(msg) { throw new VerifyError(msg); }

// ------------------------------------------------------------------- bytes

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function u64be(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

function toBase64(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

// fromBase64 decodes standard base64 strictly (canonical, padded), or
// returns null.
function fromBase64(s) {
  if (typeof s !== 'string' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s))
    return null;
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return toBase64(out) === s ? out : null;  // rejects non-zero padding bits
}

function toBase64Url(bytes) {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// fromBase64Url decodes unpadded base64url strictly, or returns null.
function fromBase64Url(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  let std = s.replace(/-/g, '+').replace(/_/g, '/');
  while (std.length % 4) std += '=';
  const out = fromBase64(std);
  return out && toBase64Url(out) === s ? out : null;
}

// b64 decodes a base64 field of the server's answer or fails naming it.
function b64(s, what, length) {
  const out = fromBase64(s);
  if (!out) fail(what + ' is not valid base64');
  if (length !== undefined && out.length !== length) fail(what + ' must be ' + length + ' bytes');
  return out;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// ------------------------------------------------------------------ crypto

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
}

async function ed25519Verify(publicKey, signature, message) {
  let key;
  try {
    key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    return false;  // not a valid Ed25519 public key
  }
  return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
}

// -------------------------------------------------------------- signed notes

// parseVerifierKey parses "<name>+<hash>+<base64(0x01 || key)>" and checks
// the key ID (SPEC.md §2). Returns {name, keyId, publicKey, text}.
async function parseVerifierKey(text) {
  // The name and hash contain no '+'; the base64 key may.
  const m = /^([^+]*)\+([^+]*)\+(.*)$/.exec(text.trim());
  if (!m) throw new VerifyError('a log key has the form name+hash+key');
  const [, name, hash, keyB64] = m;
  if (!name || /[\s]/.test(name)) throw new VerifyError('the log key\'s name is empty or contains spaces');
  if (!/^[0-9a-f]{8}$/.test(hash)) throw new VerifyError('the log key\'s hash must be 8 lowercase hex digits');
  const raw = fromBase64(keyB64);
  if (!raw || raw.length !== 33 || raw[0] !== 0x01) throw new VerifyError('the log key is not an Ed25519 key');
  const publicKey = raw.subarray(1);
  const id = (await sha256(utf8.encode(name), new Uint8Array([0x0a, 0x01]), publicKey)).subarray(0, 4);
  if (hex(id) !== hash) throw new VerifyError('the log key\'s hash does not match its key');
  return { name, keyId: id, publicKey, text: text.trim() };
}

// verifyCheckpoint checks the log's signature on a checkpoint note (SPEC.md
// §2-§3) and returns {origin, size (BigInt), root}.
async function verifyCheckpoint(note, key) {
  if (typeof note !== 'string') fail('the answer has no checkpoint');
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(note)) fail('the checkpoint contains control characters');
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) fail('the checkpoint is not a signed note');
  const text = note.slice(0, split + 1);
  const sigLines = note.slice(split + 2, -1).split('\n');
  if (sigLines.length > 100) fail('the checkpoint has more than 100 signatures');
  let signed = false;
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) fail('the checkpoint has a malformed signature line');
    if (m[1] !== key.name) continue;  // another signer (a witness): ignored
    const sig = fromBase64(m[2]);
    if (!sig || sig.length < 5) fail('the checkpoint has a malformed signature');
    if (!equalBytes(sig.subarray(0, 4), key.keyId)) continue;
    if (sig.length !== 68 || !(await ed25519Verify(key.publicKey, sig.subarray(4), utf8.encode(text))))
      fail('the log\'s signature on the checkpoint does not verify');
    signed = true;
  }
  if (!signed) fail('the checkpoint is not signed by the log key ' + key.text);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) fail('the checkpoint has too few lines');
  if (lines[0] !== key.name) fail('the checkpoint is for log "' + lines[0] + '", not "' + key.name + '"');
  if (!/^(0|[1-9][0-9]{0,19})$/.test(lines[1])) fail('the checkpoint size is not a number');
  const size = BigInt(lines[1]);
  if (size >= 1n << 64n) fail('the checkpoint size is too large');
  return { origin: lines[0], size, root: b64(lines[2], 'the checkpoint root', 32) };
}

// ------------------------------------------------------------ Merkle proofs

// verifyInclusion checks an RFC 9162 §2.1.3.2 inclusion proof of |entry|
// at |index| against the checkpoint; |what| names it in errors.
async function verifyInclusion(entry, index, proof, checkpoint, what) {
  if (!Array.isArray(proof)) fail(what + ': the inclusion proof is missing');
  let fn = BigInt(index);
  let sn = checkpoint.size - 1n;
  if (fn > sn) fail(what + ' is beyond the checkpoint');
  let r = await sha256(new Uint8Array([0]), entry);
  for (let i = 0; i < proof.length; i++) {
    const p = b64(proof[i], what + ': inclusion hash ' + i, 32);
    if (sn === 0n) fail(what + ': the inclusion proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(new Uint8Array([1]), p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = await sha256(new Uint8Array([1]), r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail(what + ': the inclusion proof is too short');
  if (!equalBytes(r, checkpoint.root)) fail(what + ': the inclusion proof does not lead to the signed checkpoint');
}

// --------------------------------------------------------------- envelopes

// openEnvelope parses a log entry (SPEC.md §8, byte-exact form), verifies
// its signature with its keyid and returns {type, keyid, payload}.
async function openEnvelope(bytes, what) {
  let text, env;
  try {
    text = strictUtf8.decode(bytes);
    env = JSON.parse(text);
  } catch (e) {
    fail(what + ' is not a JSON envelope');
  }
  if (!env || typeof env !== 'object' || !Array.isArray(env.signatures) || env.signatures.length !== 1 ||
      typeof env.payload !== 'string' || typeof env.payloadType !== 'string')
    fail(what + ' is not a signed envelope');
  const s = env.signatures[0];
  const exact = JSON.stringify({
    payload: env.payload, payloadType: env.payloadType,
    signatures: [{ keyid: s && s.keyid, sig: s && s.sig }],
  });
  if (exact !== text) fail(what + ' is not in the envelope\'s exact byte form');
  const payload = b64(env.payload, what + ' payload');
  const keyid = fromBase64Url(s.keyid);
  if (!keyid || keyid.length !== 32) fail(what + ': the signing key is malformed');
  const sig = b64(s.sig, what + ' signature', 64);
  const type = utf8.encode(env.payloadType);
  const pae = concat(utf8.encode('DSSEv1 ' + type.length + ' '), type,
    utf8.encode(' ' + payload.length + ' '), payload);
  if (!(await ed25519Verify(keyid, sig, pae))) fail(what + ': the signature does not verify');
  let body;
  try {
    body = JSON.parse(strictUtf8.decode(payload));
  } catch (e) {
    fail(what + ': the payload is not JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) fail(what + ': the payload is not an object');
  return { type: env.payloadType, keyid: s.keyid, payload: body };
}

// ------------------------------------------------------------ subject index

function tagBit(tag, d) { return (tag[d >> 3] >> (7 - (d & 7))) & 1; }

// subjectValue returns u64be(n) || chain_n over |indices| (SPEC.md §14).
async function subjectValue(indices) {
  let chain = new Uint8Array(32);
  for (const i of indices) chain = await sha256(new Uint8Array([4]), chain, u64be(i));
  return concat(u64be(indices.length), chain);
}

// verifyIndexProof recomputes the index root from |tag|'s proof (SPEC.md
// §14, "Proofs"); |value| is the recomputed value for "member", else null.
async function verifyIndexProof(root, tag, value, proof) {
  if (!proof || typeof proof !== 'object' || !Array.isArray(proof.siblings)) fail('the index proof is missing');
  const k = proof.siblings.length;
  if (k > 256) fail('the index proof is longer than 256 hashes');
  let h;
  if (proof.end === 'member') {
    if (!value) fail('the index proof says the tag is in the index, but no accesses are listed');
    h = await sha256(new Uint8Array([2]), tag, value);
  } else if (proof.end === 'empty') {
    if (value) fail('the index proof says the tag is absent, but accesses are listed');
    h = new Uint8Array(32);
  } else if (proof.end === 'leaf') {
    if (value) fail('the index proof says the tag is absent, but accesses are listed');
    const other = fromBase64Url(proof.other_tag);
    if (!other || other.length !== 32) fail('the index proof\'s other tag is malformed');
    const otherValue = b64(proof.other_value, 'the index proof\'s other value', 40);
    if (equalBytes(other, tag)) fail('the index proof\'s other tag is this tag');
    for (let d = 0; d < k; d++)
      if (tagBit(other, d) !== tagBit(tag, d)) fail('the index proof\'s other tag is not on this tag\'s path');
    h = await sha256(new Uint8Array([2]), other, otherValue);
  } else {
    fail('the index proof has an unknown end');
  }
  for (let d = k; d >= 1; d--) {
    const s = b64(proof.siblings[d - 1], 'index proof hash ' + (d - 1), 32);
    h = tagBit(tag, d - 1) === 0 ? await sha256(new Uint8Array([3]), h, s) : await sha256(new Uint8Array([3]), s, h);
  }
  if (!equalBytes(h, root)) fail('the index proof does not lead to the committed index root: the list of accesses is not the one the log committed to');
}

// ------------------------------------------------------------------- tokens

// parseToken parses a subject token strictly (SPEC.md §12).
function parseToken(line) {
  const f = line.split(':');
  if (f[0] !== TOKEN_PREFIX) throw new TokenError('it does not start with "' + TOKEN_PREFIX + ':"');
  if (f.length !== 6) throw new TokenError('it must have 6 fields separated by ":", it has ' + f.length);
  const [, holder, period, customerB64, tagB64, proofB64] = f;
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(holder)) throw new TokenError('the bank\'s name "' + holder + '" is not valid');
  if (!/^[0-9]{4}-(0[1-9]|1[0-2])$/.test(period)) throw new TokenError('the period "' + period + '" is not YYYY-MM');
  const customer = fromBase64Url(customerB64);
  if (!customer || customer.length < 1 || customer.length > 256) throw new TokenError('the customer id is not valid base64url');
  const tag = fromBase64Url(tagB64);
  if (!tag || tag.length !== 32) throw new TokenError('the tag is not 32 bytes of base64url');
  const proof = fromBase64Url(proofB64);
  if (!proof || proof.length !== 80) throw new TokenError('the proof is not 80 bytes of base64url');
  let customerText;
  try { customerText = strictUtf8.decode(customer); } catch (e) { customerText = '0x' + hex(customer); }
  return { holder, period, customer: customerText, tag, tagText: tagB64 };
}

// ------------------------------------------------------------------ network

async function getJson(url) {
  let res;
  try {
    res = await fetch(url, { cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw new ServerError('the log server could not be reached (' + e.message + ')');
  }
  let body;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const why = body && typeof body.error === 'string' ? body.error : 'HTTP ' + res.status;
    throw new ServerError('the log server answered ' + res.status + ': ' + why);
  }
  if (!body || typeof body !== 'object') throw new ServerError('the log server\'s answer is not JSON');
  return body;
}

// -------------------------------------------------------------- verification

function isIndex(v) { return Number.isSafeInteger(v) && v >= 0; }

// checkAccess checks one listed access: in the log, an access entry for
// this tag. Returns the parsed access with its index.
async function checkAccess(item, tagText, checkpoint, what) {
  if (!item || !isIndex(item.index)) fail(what + ' has no index');
  const entry = b64(item.entry, what);
  await verifyInclusion(entry, item.index, item.inclusion, checkpoint, what);
  const env = await openEnvelope(entry, what);
  if (env.type !== TYPE_ACCESS) fail(what + ' is not an access entry');
  const a = env.payload;
  if (a.subject !== tagText) fail(what + ' is about another subject tag');
  if (typeof a.purpose !== 'string' || !Array.isArray(a.categories) || typeof a.accessor !== 'string' ||
      typeof a.time !== 'string')
    fail(what + ' lacks a purpose, categories, accessor or time');
  return { index: item.index, access: a, policyRef: item.policy };
}

// checkPolicies verifies the answer's policies (each in the log, a policy
// entry) and returns them by leaf index.
async function checkPolicies(list, checkpoint, byIndex) {
  if (list === undefined) return;
  if (!Array.isArray(list)) fail('the policies list is malformed');
  for (const p of list) {
    if (!p || !isIndex(p.index)) fail('a policy has no index');
    if (byIndex.has(p.index)) continue;
    const what = 'policy entry ' + p.index;
    const entry = b64(p.entry, what);
    await verifyInclusion(entry, p.index, p.inclusion, checkpoint, what);
    const env = await openEnvelope(entry, what);
    if (env.type !== TYPE_POLICY) fail(what + ' is not a policy entry');
    const pol = env.payload;
    if (!Array.isArray(pol.purposes)) fail(what + ' lists no purposes');
    byIndex.set(p.index, pol);
  }
}

// disclosure judges one access against the policy the answer names for it:
// true (disclosed), false (not) or null (no policy given). A policy must be
// the same holder's and accessor's, and logged before the access.
function disclosure(row, policies) {
  const ref = row.policyRef;
  if (ref === undefined || ref === null) return { disclosed: false, why: 'no policy in force was published' };
  const pIndex = typeof ref === 'object' ? ref.index : ref;
  if (!isIndex(pIndex) || !policies.has(pIndex)) fail('access entry ' + row.index + ' names a policy the answer does not include');
  if (pIndex >= row.index) fail('access entry ' + row.index + ' names a policy logged after it');
  const pol = policies.get(pIndex);
  const a = row.access;
  if (pol.holder !== a.holder || pol.accessor !== a.accessor)
    fail('access entry ' + row.index + ' names another accessor\'s policy');
  const listed = pol.purposes.find((p) => p && p.purpose === a.purpose);
  const version = Number.isSafeInteger(pol.version) ? ' (version ' + pol.version + ')' : '';
  if (!listed) return { disclosed: false, why: 'the purpose is not in the policy' + version, version: pol.version };
  const cats = Array.isArray(listed.categories) ? listed.categories : [];
  const missing = a.categories.filter((c) => !cats.includes(c));
  if (missing.length) return { disclosed: false, why: 'not disclosed: ' + missing.map(categoryWords).join(', '), version: pol.version };
  return { disclosed: true, why: 'as disclosed in the policy' + version, version: pol.version };
}

// checkPage verifies one page of GET /v1/subjects/<tag> on its own and
// returns what it proves.
async function checkPage(ans, token, key, offset) {
  const checkpoint = await verifyCheckpoint(ans.checkpoint, key);
  if (ans.subject !== token.tagText) fail('the answer is about another subject tag');
  if (!Array.isArray(ans.indices) || !ans.indices.every(isIndex)) fail('the list of access indices is malformed');
  const indices = ans.indices;
  if (ans.count !== indices.length) fail('the access count does not match the list');
  for (let i = 1; i < indices.length; i++)
    if (indices[i] <= indices[i - 1]) fail('the access indices are not strictly increasing');

  let commitment = null;
  let indexRoot = new Uint8Array(32);  // no commitment yet: the empty index
  if (ans.commitment !== null) {
    const c = ans.commitment;
    if (!c || !isIndex(c.index)) fail('the index commitment is malformed');
    const entry = b64(c.entry, 'the index commitment');
    await verifyInclusion(entry, c.index, c.inclusion, checkpoint, 'the index commitment');
    const env = await openEnvelope(entry, 'the index commitment');
    if (env.type !== TYPE_INDEX) fail('the index commitment is not an index entry');
    const keyid = fromBase64Url(env.keyid);
    if (!equalBytes(keyid, key.publicKey)) fail('the index commitment is not signed by the log key');
    const p = env.payload;
    if (p.size !== c.index) fail('the index commitment does not cover exactly the entries before it');
    indexRoot = fromBase64Url(p.root);
    if (!indexRoot || indexRoot.length !== 32) fail('the index commitment\'s root is malformed');
    commitment = { index: c.index, size: p.size, time: p.time, subjects: p.subjects, accesses: p.accesses };
    if (indices.length && indices[indices.length - 1] >= p.size) fail('an access index is beyond the index commitment');
  } else if (indices.length) {
    fail('accesses are listed without an index commitment');
  }
  const value = indices.length ? await subjectValue(indices) : null;
  await verifyIndexProof(indexRoot, token.tag, value, ans.proof);

  if (ans.offset !== offset) fail('the server answered another page than asked');
  if (!Array.isArray(ans.entries)) fail('the answer lists no entries');
  if (!isIndex(ans.limit) || ans.limit === 0) fail('the page size is malformed');
  const want = Math.max(0, Math.min(ans.limit, indices.length - offset));
  if (ans.entries.length !== want)
    fail('the page lists ' + ans.entries.length + ' accesses where the index has ' + want);
  const rows = [];
  for (let j = 0; j < ans.entries.length; j++) {
    const item = ans.entries[j];
    const what = 'access entry ' + (item && item.index);
    if (!item || item.index !== indices[offset + j]) fail('listed access ' + (offset + j) + ' is not the one the index commits to');
    rows.push(await checkAccess(item, token.tagText, checkpoint, what));
  }
  const pending = [];
  const pendingList = ans.pending === undefined ? [] : ans.pending;
  if (!Array.isArray(pendingList)) fail('the pending list is malformed');
  let last = commitment ? commitment.size - 1 : -1;
  for (const item of pendingList) {
    if (!item || !isIndex(item.index) || item.index <= last) fail('the pending accesses are not after the commitment, in order');
    last = item.index;
    const row = await checkAccess(item, token.tagText, checkpoint, 'pending access entry ' + item.index);
    row.pending = true;
    pending.push(row);
  }
  const policies = new Map();
  await checkPolicies(ans.policies, checkpoint, policies);
  for (const r of rows.concat(pending)) r.disclosure = disclosure(r, policies);
  return { checkpoint, commitment, indices, rows, pending };
}

// lookUp fetches every page for |token| and verifies each; throws
// TokenError, ServerError or VerifyError.
async function lookUp(token, key) {
  const base = '/v1/subjects/' + token.tagText;
  let offset = 0;
  let result = null;
  const rows = new Map();
  for (let page = 0; page < MAX_PAGES; page++) {
    const ans = await getJson(base + '?offset=' + offset + '&limit=' + PAGE_LIMIT);
    const got = await checkPage(ans, token, key, offset);
    if (result) {
      // A later page may come with a newer commitment: its list extends
      // the earlier one (the log only grows).
      for (let i = 0; i < result.indices.length; i++)
        if (got.indices[i] !== result.indices[i]) fail('the list of accesses changed between pages');
    }
    for (const r of got.rows) rows.set(r.index, r);
    result = got;
    offset += got.rows.length;
    if (offset >= got.indices.length) break;
    if (got.rows.length === 0) fail('the server returned an empty page');
  }
  if (offset < result.indices.length) fail('too many pages');
  result.rows = result.indices.map((i) => rows.get(i));
  // An access committed by a newer commitment on a later page may also be
  // listed as pending on an earlier one: list it once.
  result.pending = result.pending.filter((r) => !rows.has(r.index));
  return result;
}

// ------------------------------------------------------------------- display

function purposeWords(code) { return PURPOSES[code] || code; }
function categoryWords(code) { return CATEGORIES[code] || code; }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October',
  'November', 'December'];

function periodWords(period) {
  return MONTHS[Number(period.slice(5, 7)) - 1] + ' ' + period.slice(0, 4);
}

// timeWords shows an RFC 3339 UTC time as "2026-12-01 10:00 UTC", the same
// for every reader; the full value is in the element's datetime.
function timeWords(t) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?/.exec(t);
  return m ? m[1] + ' ' + m[2] + ' UTC' : t;
}

function accessTable(rows, caption) {
  const table = el('table', { class: 'accesses' });
  table.append(el('caption', {}, caption));
  const head = el('tr', {});
  for (const h of ['When', 'Who', 'Why', 'Which data', 'Disclosed']) head.append(el('th', { scope: 'col' }, h));
  table.append(el('thead', {}, head));
  const body = el('tbody', {});
  for (const r of rows) {
    const a = r.access;
    const tr = el('tr', { class: 'access-row', 'data-index': r.index });
    tr.append(el('td', { 'data-label': 'When' }, el('time', { datetime: a.time }, timeWords(a.time))));
    const who = el('td', { 'data-label': 'Who', class: 'who' }, el('span', { class: 'accessor' }, a.accessor));
    if (typeof a.actor === 'string' && a.actor) who.append(el('span', { class: 'sub' }, 'by ' + a.actor));
    tr.append(who);
    const why = el('td', { 'data-label': 'Why', class: 'why' }, el('span', { class: 'purpose' }, purposeWords(a.purpose)));
    if (typeof a.detail === 'string' && a.detail) why.append(el('span', { class: 'sub' }, '“' + a.detail + '”'));
    tr.append(why);
    tr.append(el('td', { 'data-label': 'Which data', class: 'categories' }, a.categories.map(categoryWords).join(', ')));
    const d = r.disclosure;
    tr.append(el('td', { 'data-label': 'Disclosed', class: 'disclosed ' + (d.disclosed ? 'yes' : 'no') },
      el('span', { class: 'mark', 'aria-hidden': 'true' }, d.disclosed ? '✓' : '✗'),
      el('span', { class: 'disclosed-text' }, d.disclosed ? ' Yes' : ' No'),
      el('span', { class: 'sub' }, d.why)));
    body.append(tr);
  }
  table.append(body);
  return el('div', { class: 'table-wrap' }, table);
}

function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }

function renderResult(box, token, outcome, keySource) {
  box.replaceChildren();
  const title = token
    ? el('h2', {}, 'Customer ', el('span', { class: 'customer' }, token.customer), ' at ', token.holder,
      el('span', { class: 'period' }, periodWords(token.period)))
    : el('h2', {}, 'Token ' + outcome.number);
  box.append(title);
  if (outcome.error) {
    const kind = outcome.error instanceof TokenError ? 'token-error'
      : outcome.error instanceof ServerError ? 'server-error'
        : outcome.error instanceof VerifyError ? 'verify-failed' : 'error';
    const label = kind === 'token-error' ? 'This token is not valid: '
      : kind === 'server-error' ? 'Could not check: '
        : kind === 'verify-failed' ? 'Verification failed: ' : 'Error: ';
    box.dataset.state = kind;
    box.append(el('p', { class: 'status bad', role: 'alert' }, el('span', { class: 'badge' }, '✗'), ' ',
      el('strong', {}, label), outcome.error.message));
    if (kind === 'verify-failed')
      box.append(el('p', { class: 'hint' }, 'The log\'s answer does not prove what it claims, so no accesses are shown. '
        + 'Try again later; if it persists, tell your bank or regulator.'));
    return;
  }
  const r = outcome.result;
  const n = r.rows.length;
  if (r.commitment) {
    box.dataset.state = 'verified';
    box.append(el('p', { class: 'status good' }, el('span', { class: 'badge' }, '✓'), ' ',
      el('strong', { class: 'verified' }, 'Verified'), ' — ',
      n === 0 ? 'the log proves that nobody accessed your data under this token (as of log entry ' + r.commitment.size + ')'
        : 'the log proves these ' + plural(n, 'access is', 'accesses are') + ' all of them (as of log entry '
          + r.commitment.size + ')'));
    if (n > 0) box.append(accessTable(r.rows, plural(n, 'access', 'accesses') + ' to your data in ' + periodWords(token.period)));
    else box.append(el('p', { class: 'empty' }, 'No accesses recorded.'));
  } else {
    // Nothing to prove completeness against yet: not "verified".
    box.dataset.state = 'unproven';
    box.append(el('p', { class: 'status warn' }, el('span', { class: 'badge' }, '!'), ' ',
      el('strong', {}, 'Not yet provable'), ' — the log has not committed its index yet, so it cannot prove which '
        + 'accesses there are. Try again in a few seconds.'));
  }
  if (r.pending.length) {
    box.append(el('p', { class: 'hint' }, 'Logged since the last index commitment (each is proven to be in the log; '
      + 'the next commitment will prove the list complete):'));
    box.append(accessTable(r.pending, plural(r.pending.length, 'recent access', 'recent accesses')));
  }
  const facts = el('p', { class: 'facts' },
    'Checked against the log\'s checkpoint of ' + plural(Number(r.checkpoint.size), 'entry', 'entries'),
    r.commitment && r.commitment.time ? ', index committed at ' + timeWords(r.commitment.time) : '',
    ', with ', keySource, '. ', 'The token\'s own VRF proof is not checked in the browser.');
  box.append(facts);
}

// ------------------------------------------------------------------- wiring

let servedKey = null;  // {key, error}

async function loadServedKey() {
  const out = document.getElementById('served-key');
  try {
    const info = await getJson('/v1/log');
    if (typeof info.verifier_key !== 'string') throw new ServerError('the log did not say its key');
    servedKey = { key: await parseVerifierKey(info.verifier_key) };
    out.textContent = info.verifier_key;
  } catch (e) {
    servedKey = { error: e };
    out.textContent = 'unavailable: ' + e.message;
  }
  showKeyChoice();
}

function showKeyChoice() {
  const pasted = document.getElementById('trusted-key').value.trim();
  document.getElementById('key-summary').textContent = pasted ? 'the key you entered' : 'the key this server publishes';
}

// trustedKey returns the key to check with and how to describe it.
async function trustedKey() {
  const pasted = document.getElementById('trusted-key').value.trim();
  if (pasted) {
    try {
      const key = await parseVerifierKey(pasted);
      return { key, source: el('span', { class: 'key-source', 'data-source': 'entered' },
        'the log key you entered (', el('code', {}, key.text), ')') };
    } catch (e) {
      throw new TokenError('the log key you entered is not valid: ' + e.message);
    }
  }
  if (!servedKey) await loadServedKey();
  if (servedKey.error) throw servedKey.error;
  return { key: servedKey.key, source: el('span', { class: 'key-source', 'data-source': 'served' },
    'the log key this server publishes (', el('code', {}, servedKey.key.text), '; paste one you obtained independently to rule out a dishonest server)') };
}

async function run(event) {
  event.preventDefault();
  const button = document.getElementById('verify');
  const status = document.getElementById('form-status');
  const results = document.getElementById('results');
  const lines = document.getElementById('tokens').value.split(/\r?\n/).map((l) => l.trim()).filter((l) => l);
  results.replaceChildren();
  if (!lines.length) {
    status.textContent = 'Paste at least one token.';
    return;
  }
  if (!window.crypto || !crypto.subtle) {
    status.textContent = 'This browser cannot check signatures here: open the page over HTTPS (or on localhost).';
    return;
  }
  button.disabled = true;
  status.textContent = 'Checking ' + plural(lines.length, 'token', 'tokens') + '…';
  let keyInfo = null;
  let keyError = null;
  try { keyInfo = await trustedKey(); } catch (e) { keyError = e; }
  let done = 0;
  for (let i = 0; i < lines.length; i++) {
    const box = el('section', { class: 'card result', 'data-state': 'checking', 'aria-busy': 'true' });
    box.append(el('h2', {}, 'Token ' + (i + 1)), el('p', { class: 'status' }, 'Checking…'));
    results.append(box);
    let token = null;
    const outcome = { number: i + 1 };
    try {
      token = parseToken(lines[i]);
      if (keyError) throw keyError;
      outcome.result = await lookUp(token, keyInfo.key);
    } catch (e) {
      outcome.error = e;
    }
    renderResult(box, token, outcome, keyInfo ? keyInfo.source.cloneNode(true) : '');
    box.removeAttribute('aria-busy');
    done++;
  }
  status.textContent = 'Checked ' + plural(done, 'token', 'tokens') + '.';
  button.disabled = false;
}

async function loadFile() {
  const input = document.getElementById('token-file');
  const file = input.files && input.files[0];
  if (!file) return;
  if (file.size > 1 << 20) {
    document.getElementById('form-status').textContent = 'That file is too large to be a list of tokens.';
    return;
  }
  const text = await file.text();
  const area = document.getElementById('tokens');
  area.value = (area.value.trim() ? area.value.trim() + '\n' : '') + text.trim();
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('token-form').addEventListener('submit', run);
  document.getElementById('token-file').addEventListener('change', loadFile);
  document.getElementById('trusted-key').addEventListener('input', showKeyChoice);
  loadServedKey();
});
