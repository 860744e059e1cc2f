// Cloudflare's Workers KV REST API, served by a Worker on top of real KV
// bindings, for hubkv's tests. It runs in workerd (Cloudflare's runtime)
// through miniflare: every value, expiration, prefix listing and size limit
// below is the runtime's own KV, not an imitation.
//
// Routes (under /client/v4, as on api.cloudflare.com), each answering with
// Cloudflare's envelope {"success", "errors", "messages", "result"[, "result_info"]}:
//
//   POST   /accounts/:account/storage/kv/namespaces              create {title}
//   GET    /accounts/:account/storage/kv/namespaces/:ns          namespace info
//   DELETE /accounts/:account/storage/kv/namespaces/:ns          delete (wipes it)
//   GET    .../namespaces/:ns/values/:key                        raw value; 404 code 10009
//   PUT    .../namespaces/:ns/values/:key?expiration_ttl=&expiration=
//                                                                raw body or multipart (value, metadata)
//   DELETE .../namespaces/:ns/values/:key
//   GET    .../namespaces/:ns/metadata/:key                      metadata, no value
//   GET    .../namespaces/:ns/keys?prefix=&cursor=&limit=        10 <= limit <= 1000
//   PUT    .../namespaces/:ns/bulk                               [{key, value, base64?, expiration?, expiration_ttl?, metadata?}]
//   POST   .../namespaces/:ns/bulk/delete                        ["key", ...] (DELETE .../bulk too)
//   POST   .../namespaces/:ns/bulk/get                           {keys, type?, withMetadata?}
//
// Keys in URLs are percent-decoded whole (a key may contain "/", "?", "#", "%").
// Requests need "Authorization: Bearer <API_TOKEN>" and the configured account
// (else 403, code 10000). The driver relies on codes 10009 (key not found) and
// 10000 (authentication) and on the HTTP statuses; other codes here are the
// stand-in's own (10001 for any other KV error).
//
// A namespace id is fresh for every "create"; behind it is one binding of a
// fixed pool (KV_0 ... KV_{POOL_SIZE-1}: the runtime binds namespaces at start),
// wiped when the namespace is deleted so the next one starts empty.
//
// Test-only routes (loopback only, no token):
//   POST /__test/namespaces/:ns/clock  {"advance": seconds}
//        moves the runtime's KV clock of that namespace forward (miniflare's
//        fake timers, through the launcher's CONTROL service): expiration is
//        then enforced by the runtime's KV itself on reads and listings. Such a
//        namespace is retired when deleted (miniflare keeps it in test mode,
//        where values are limited to 1 KiB), never reused.
//   POST /__test/namespaces/:ns/faults {"times", "status", "retry_after",
//        "delay_ms", "unsuccessful"}
//        the next `times` API requests on that namespace wait `delay_ms`, then
//        answer `status` (with Retry-After when given) or, for bulk writes and
//        deletes, report the first `unsuccessful` keys as unsuccessful without
//        writing them. (Resets, HTML pages and broken JSON come from
//        tests/standins/faulty_http.py in front of the Worker.)
//   GET  /__test/stats                 the pool's state and requests served

const API = "/client/v4/accounts/";
const MAX_BULK_ITEMS = 10000;
const MAX_BULK_GET_KEYS = 100;
const WRITE_CONCURRENCY = 32;

let pool = null; // {free: [slot], namespaces: Map(id -> {slot, title, tainted})}
const faults = new Map(); // namespace id -> fault
let requestsServed = 0;

class ApiError extends Error {
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

function envelope(result, status = 200, extra = {}) {
  return Response.json(
    { success: true, errors: [], messages: [], result, ...extra },
    { status },
  );
}

function failure(error) {
  return Response.json(
    { success: false, errors: [{ code: error.code, message: error.message }], messages: [], result: null },
    { status: error.status, headers: error.headers },
  );
}

// The status and message of an error thrown by a KV binding call
// ("KV PUT failed: 413 Value length of ... exceeds limit of ...").
function bindingError(error) {
  const match = /(\d{3}) (.*)$/s.exec(String(error && error.message));
  if (match === null) return new ApiError(500, 10001, `KV failed: ${error}`);
  const status = Number(match[1]);
  return new ApiError(status, status === 404 ? 10009 : 10001, match[2]);
}

function slotsOf(env) {
  if (pool === null) {
    const size = Number(env.POOL_SIZE);
    pool = { free: Array.from({ length: size }, (_, i) => i), namespaces: new Map() };
  }
  return pool;
}

function namespaceOf(env, id) {
  const entry = slotsOf(env).namespaces.get(id);
  if (entry === undefined) {
    throw new ApiError(404, 10013, `namespace ${JSON.stringify(id)} not found`);
  }
  return entry;
}

function bindingOf(env, id) {
  return env[`KV_${namespaceOf(env, id).slot}`];
}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function decodeKey(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, 10001, "could not URL-decode the key name");
  }
}

async function readJson(request) {
  try {
    return await request.json();
  } catch {
    throw new ApiError(400, 10001, "the request body is not valid JSON");
  }
}

// Options of KV.put() from Cloudflare's expiration / expiration_ttl fields.
function putOptions(expiration, expirationTtl, metadata) {
  const options = {};
  if (expirationTtl !== undefined && expirationTtl !== null && expirationTtl !== "") {
    options.expirationTtl = Number(expirationTtl);
  } else if (expiration !== undefined && expiration !== null && expiration !== "") {
    options.expiration = Number(expiration);
  }
  if (metadata !== undefined && metadata !== null) options.metadata = metadata;
  return options;
}

async function mapLimit(items, limit, fn) {
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const index = next++;
      await fn(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// -- namespaces -------------------------------------------------------------

function createNamespace(env, body) {
  const state = slotsOf(env);
  if (state.free.length === 0) {
    throw new ApiError(
      400,
      10001,
      `stand-in: all ${env.POOL_SIZE} KV bindings are in use or retired; delete namespaces ` +
        "after use, or start the launcher with a larger pool (--pool)",
    );
  }
  const id = randomId();
  const title = (body && body.title) || id;
  state.namespaces.set(id, { slot: state.free.shift(), title, tainted: false });
  return { id, title, supports_url_encoding: true };
}

async function wipe(kv) {
  let cursor;
  do {
    const page = await kv.list({ cursor });
    await mapLimit(page.keys, WRITE_CONCURRENCY, (key) => kv.delete(key.name));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor !== undefined);
}

async function deleteNamespace(env, id) {
  const entry = namespaceOf(env, id);
  const state = slotsOf(env);
  state.namespaces.delete(id);
  faults.delete(id);
  if (!entry.tainted) {
    await wipe(env[`KV_${entry.slot}`]);
    state.free.push(entry.slot);
  }
  return {};
}

// -- keys and values --------------------------------------------------------

async function getValue(kv, key) {
  const value = await kv.get(key, { type: "stream" });
  if (value === null) throw new ApiError(404, 10009, "get: 'key not found'");
  return new Response(value, { headers: { "Content-Type": "application/octet-stream" } });
}

async function putValue(kv, key, request, query) {
  const type = request.headers.get("Content-Type") || "";
  let value;
  let metadata;
  if (type.startsWith("multipart/form-data")) {
    const form = await request.formData();
    value = form.get("value");
    if (value === null) throw new ApiError(400, 10001, "the multipart body has no 'value' field");
    if (typeof value !== "string") value = await value.arrayBuffer();
    const rawMetadata = form.get("metadata");
    if (rawMetadata !== null) {
      try {
        metadata = JSON.parse(typeof rawMetadata === "string" ? rawMetadata : await rawMetadata.text());
      } catch {
        throw new ApiError(400, 10001, "metadata is not valid JSON");
      }
    }
  } else {
    value = await request.arrayBuffer();
  }
  const options = putOptions(query.get("expiration"), query.get("expiration_ttl"), metadata);
  try {
    await kv.put(key, value, options);
  } catch (error) {
    throw bindingError(error);
  }
  return {};
}

async function getMetadata(kv, key) {
  const found = await kv.getWithMetadata(key, { type: "stream" });
  if (found.value === null) throw new ApiError(404, 10009, "get: 'key not found'");
  await found.value.cancel();
  return found.metadata;
}

async function listKeys(kv, query) {
  const limit = query.has("limit") ? Number(query.get("limit")) : 1000;
  if (!Number.isInteger(limit) || limit < 10 || limit > 1000) {
    throw new ApiError(400, 10001, `invalid limit ${query.get("limit")}: must be 10 to 1000`);
  }
  const prefix = query.get("prefix") || undefined;
  const cursor = query.get("cursor") || undefined;
  let page;
  try {
    page = await kv.list({ prefix, cursor, limit });
  } catch (error) {
    throw bindingError(error);
  }
  const result = page.keys.map((key) => {
    const item = { name: key.name };
    if (key.expiration !== undefined) item.expiration = key.expiration;
    if (key.metadata !== undefined) item.metadata = key.metadata;
    return item;
  });
  const next = page.list_complete ? "" : page.cursor;
  return envelope(result, 200, { result_info: { count: result.length, cursor: next } });
}

function checkBulk(items, what) {
  if (!Array.isArray(items)) throw new ApiError(400, 10001, `${what}: the body must be a JSON array`);
  if (items.length > MAX_BULK_ITEMS) {
    throw new ApiError(413, 10001, `${what}: at most ${MAX_BULK_ITEMS} keys per request, got ${items.length}`);
  }
}

function base64Bytes(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function bulkWrite(kv, items, fault) {
  checkBulk(items, "bulk write");
  for (const item of items) {
    if (item === null || typeof item.key !== "string" || typeof item.value !== "string") {
      throw new ApiError(400, 10001, "bulk write: every item needs a string key and a string value");
    }
  }
  const skip = new Set(items.slice(0, fault ? fault.unsuccessful || 0 : 0).map((item) => item.key));
  const unsuccessful = [...skip];
  let firstError = null;
  await mapLimit(items, WRITE_CONCURRENCY, async (item) => {
    if (skip.has(item.key)) return;
    const value = item.base64 ? base64Bytes(item.value) : item.value;
    try {
      await kv.put(item.key, value, putOptions(item.expiration, item.expiration_ttl, item.metadata));
    } catch (error) {
      firstError = firstError || bindingError(error);
    }
  });
  if (firstError !== null) throw firstError;
  return { successful_key_count: items.length - unsuccessful.length, unsuccessful_keys: unsuccessful };
}

async function bulkDelete(kv, keys, fault) {
  checkBulk(keys, "bulk delete");
  if (!keys.every((key) => typeof key === "string")) {
    throw new ApiError(400, 10001, "bulk delete: the body must be an array of key names");
  }
  const skip = new Set(keys.slice(0, fault ? fault.unsuccessful || 0 : 0));
  await mapLimit(keys, WRITE_CONCURRENCY, async (key) => {
    if (!skip.has(key)) await kv.delete(key);
  });
  return { successful_key_count: keys.length - skip.size, unsuccessful_keys: [...skip] };
}

async function bulkGet(kv, body) {
  const keys = body && body.keys;
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_BULK_GET_KEYS) {
    throw new ApiError(400, 10001, `bulk get: keys must be an array of 1 to ${MAX_BULK_GET_KEYS} key names`);
  }
  const type = body.type || "text";
  const withMetadata = Boolean(body.withMetadata ?? body.with_metadata);
  let found;
  try {
    found = withMetadata ? await kv.getWithMetadata(keys, { type }) : await kv.get(keys, { type });
  } catch (error) {
    throw bindingError(error);
  }
  const values = {};
  for (const key of keys) {
    let item = found.get(key);
    if (item === undefined) {
      // This runtime's bulk get drops keys that look like array indices ("0",
      // "42"); the real API answers every key, so read those one by one.
      item = withMetadata ? await kv.getWithMetadata(key, { type }) : await kv.get(key, { type });
      if (withMetadata && item.value === null) item = null;
    }
    values[key] = item ?? null;
  }
  return { values };
}

// -- faults and the clock (test-only) ----------------------------------------

async function applyFault(id) {
  const fault = faults.get(id);
  if (fault === undefined || fault.times <= 0) return { response: null, fault: null };
  fault.times -= 1;
  if (fault.times <= 0) faults.delete(id);
  if (fault.delay_ms) await new Promise((resolve) => setTimeout(resolve, fault.delay_ms));
  if (fault.status) {
    const headers = {};
    if (fault.retry_after !== undefined) headers["Retry-After"] = String(fault.retry_after);
    const code = fault.status === 403 ? 10000 : 10001;
    return { response: failure(new ApiError(fault.status, code, `stand-in fault: HTTP ${fault.status}`, headers)), fault };
  }
  return { response: null, fault };
}

async function testRoute(env, request, parts) {
  if (parts[0] === "stats" && request.method === "GET") {
    const state = slotsOf(env);
    return Response.json({
      pool: Number(env.POOL_SIZE),
      free: state.free.length,
      live: state.namespaces.size,
      requests: requestsServed,
    });
  }
  if (parts[0] === "namespaces" && parts.length === 3 && request.method === "POST") {
    const id = parts[1];
    const entry = namespaceOf(env, id);
    const body = await readJson(request);
    if (parts[2] === "faults") {
      faults.set(id, { times: 1, ...body });
      return Response.json({ armed: faults.get(id) });
    }
    if (parts[2] === "clock") {
      const seconds = Number(body.advance);
      if (!(seconds > 0)) throw new ApiError(400, 10001, "advance must be a number of seconds > 0");
      entry.tainted = true;
      const reply = await env.CONTROL.fetch(
        `http://control/advance?slot=${entry.slot}&ms=${Math.round(seconds * 1000)}`,
        { method: "POST" },
      );
      return new Response(reply.body, { status: reply.status, headers: { "Content-Type": "application/json" } });
    }
  }
  throw new ApiError(404, 10001, "no such test route");
}

// -- routing -----------------------------------------------------------------

async function route(request, env) {
  const url = new URL(request.url);
  if (url.pathname.startsWith("/__test/")) {
    return testRoute(env, request, url.pathname.slice("/__test/".length).split("/"));
  }
  if (!url.pathname.startsWith(API)) throw new ApiError(404, 7003, "No route for that URI");
  if (request.headers.get("Authorization") !== `Bearer ${env.API_TOKEN}`) {
    throw new ApiError(403, 10000, "Authentication error");
  }
  // account / "storage" / "kv" / "namespaces" / ns / kind / rest (kept encoded)
  const [account, storage, kv, namespaces, id, kind, ...rest] = url.pathname.slice(API.length).split("/");
  if (account !== env.ACCOUNT_ID) throw new ApiError(403, 10000, "Authentication error");
  if (storage !== "storage" || kv !== "kv" || namespaces !== "namespaces") {
    throw new ApiError(404, 7003, "No route for that URI");
  }
  const method = request.method;
  if (id === undefined || id === "") {
    if (method === "POST") return envelope(createNamespace(env, await readJson(request)));
    throw new ApiError(405, 10001, "use POST to create a namespace");
  }
  if (kind === undefined) {
    if (method === "GET") {
      const entry = namespaceOf(env, id);
      return envelope({ id, title: entry.title, supports_url_encoding: true });
    }
    if (method === "DELETE") return envelope(await deleteNamespace(env, id));
    throw new ApiError(405, 10001, `method ${method} not allowed here`);
  }
  const binding = bindingOf(env, id);
  const { response, fault } = await applyFault(id);
  if (response !== null) return response;
  const key = rest.length > 0 ? decodeKey(rest.join("/")) : undefined;
  if (kind === "values" && key !== undefined) {
    if (method === "GET") return getValue(binding, key);
    if (method === "PUT") return envelope(await putValue(binding, key, request, url.searchParams));
    if (method === "DELETE") {
      await binding.delete(key);
      return envelope({});
    }
  }
  if (kind === "metadata" && key !== undefined && method === "GET") {
    return envelope(await getMetadata(binding, key));
  }
  if (kind === "keys" && rest.length === 0 && method === "GET") {
    return listKeys(binding, url.searchParams);
  }
  if (kind === "bulk") {
    const sub = rest.join("/");
    if (sub === "" && method === "PUT") {
      return envelope(await bulkWrite(binding, await readJson(request), fault));
    }
    if ((sub === "delete" && method === "POST") || (sub === "" && method === "DELETE")) {
      return envelope(await bulkDelete(binding, await readJson(request), fault));
    }
    if (sub === "get" && method === "POST") return envelope(await bulkGet(binding, await readJson(request)));
  }
  throw new ApiError(404, 7003, "No route for that URI");
}

export default {
  async fetch(request, env) {
    requestsServed += 1;
    try {
      return await route(request, env);
    } catch (error) {
      if (error instanceof ApiError) return failure(error);
      return failure(new ApiError(500, 10001, `stand-in error: ${error && error.stack}`));
    }
  },
};
