// Starts worker.js in workerd (Cloudflare's runtime) through miniflare, on
// 127.0.0.1, and prints one JSON line {"url": "http://127.0.0.1:PORT"} once
// it serves. Stops when stdin closes (its parent went away) or on SIGTERM/SIGINT.
//
//   node tests/standins/cloudflare/launch.mjs --token T --account A [--port 0] [--pool 32]
//        [--storage DIR]
//
// The worker's KV bindings KV_0 ... KV_{pool-1} are real miniflare KV
// namespaces, stored in DIR (the caller removes it; best on tmpfs: every
// write is a file and disk syncs make bulk writes ~5x slower) or, without
// --storage, in miniflare's own temporary folder. Its CONTROL service binding is
// answered here, in Node: POST /advance?slot=N&ms=M moves the clock of slot
// N's KV storage forward with miniflare's fake timers, so the runtime's own
// KV enforces expirations without anyone sleeping 60 s (Cloudflare's shortest TTL).
// That uses two internal hooks of the pinned miniflare (package-lock.json):
// _enableControlEndpoints and _getInternalDurableObjectNamespace; the launcher
// fails at start if they are gone.

import { fileURLToPath } from "node:url";
import path from "node:path";
import { parseArgs } from "node:util";
import * as miniflare from "miniflare";

const { Miniflare, _enableControlEndpoints } = miniflare;
const here = path.dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    token: { type: "string" },
    account: { type: "string" },
    port: { type: "string", default: "0" },
    pool: { type: "string", default: "32" },
    storage: { type: "string" },
  },
});
if (!args.token || !args.account) {
  console.error("launch.mjs: --token and --account are required");
  process.exit(2);
}
if (typeof _enableControlEndpoints !== "function") {
  console.error("launch.mjs: this miniflare has no _enableControlEndpoints; pin the version in package.json");
  process.exit(2);
}
_enableControlEndpoints();

const poolSize = Number(args.pool);
const kvNamespaces = {};
for (let slot = 0; slot < poolSize; slot++) kvNamespaces[`KV_${slot}`] = `slot-${slot}`;

let mf;
let objects;

async function control(request) {
  const url = new URL(request.url);
  if (url.pathname !== "/advance") return new Response("unknown control route", { status: 404 });
  objects ??= await mf._getInternalDurableObjectNamespace("kv", "kv:ns", "KVNamespaceObject");
  const stub = objects.get(objects.idFromName(`slot-${url.searchParams.get("slot")}`));
  const op = async (name, args) => {
    const reply = await stub.fetch("http://control/", { cf: { miniflare: { controlOp: { name, args } } } });
    if (!reply.ok) throw new Error(`control op ${name} failed: ${reply.status} ${await reply.text()}`);
    return reply.json();
  };
  const before = await op("now");
  const after = before + Number(url.searchParams.get("ms"));
  await op("enableFakeTimers", [after]);
  return Response.json({ before, after });
}

mf = new Miniflare({
  modules: true,
  scriptPath: path.join(here, "worker.js"),
  compatibilityDate: "2025-01-01",
  host: "127.0.0.1",
  port: Number(args.port),
  cf: false, // else miniflare downloads a file from the internet at every start
  kvNamespaces,
  kvPersist: args.storage ?? false, // a tmpfs folder is ~5x faster than disk for writes
  bindings: { API_TOKEN: args.token, ACCOUNT_ID: args.account, POOL_SIZE: String(poolSize) },
  serviceBindings: { CONTROL: control },
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();

const url = await mf.ready;
process.stdout.write(JSON.stringify({ url: url.origin }) + "\n");
