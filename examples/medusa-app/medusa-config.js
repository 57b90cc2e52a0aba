// Medusa configuration, read entirely from the environment that the Pulumi program gives every
// Medusa container (core/medusa_env.py: plain_env + secret_env). Nothing here is baked in
// at build time: `medusa build` loads this file with an empty environment and the same image then
// runs as server, worker or one-off migrator depending on MEDUSA_WORKER_MODE.
//
// CommonJS on purpose: `medusa build` (tsconfig allowJs) emits it to .medusa/server as it is.
const { defineConfig } = require("@medusajs/framework/utils")

const env = process.env

const WORKER_MODES = ["shared", "worker", "server"]
const workerMode = env.MEDUSA_WORKER_MODE || "shared"
if (!WORKER_MODES.includes(workerMode)) {
  throw new Error(`MEDUSA_WORKER_MODE must be one of ${WORKER_MODES.join("|")}, got "${workerMode}"`)
}

const redisUrl = env.REDIS_URL || undefined
// A separate server and worker only work when they share events, workflows and locks.
if (!redisUrl && workerMode !== "shared") {
  throw new Error(`MEDUSA_WORKER_MODE=${workerMode} needs REDIS_URL (server and worker share Redis)`)
}

// Leaves out unset values so that defineConfig's own defaults still apply to them.
function defined(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, value]) => value !== undefined && value !== ""))
}

function jsonEnv(name) {
  const raw = env[name]
  if (!raw) return undefined
  try {
    return JSON.parse(raw)
  } catch (err) {
    throw new Error(`${name} is not valid JSON: ${err.message}`)
  }
}

// Redis-backed infrastructure modules: with these a server and a worker container cooperate
// (the worker consumes events, scheduled jobs and async workflow steps the server enqueues).
const redisModules = redisUrl
  ? [
      {
        resolve: "@medusajs/medusa/event-bus-redis",
        options: { redisUrl },
      },
      {
        resolve: "@medusajs/medusa/workflow-engine-redis",
        options: { redis: { redisUrl } },
      },
      {
        resolve: "@medusajs/medusa/locking",
        options: {
          providers: [
            {
              resolve: "@medusajs/medusa/locking-redis",
              id: "locking-redis",
              is_default: true,
              options: { redisUrl },
            },
          ],
        },
      },
      // The Cache module (Modules.CACHE) is what 2.21 loads by default (in-memory); the newer
      // Caching module (@medusajs/medusa/caching + caching-redis) is still behind the WIP
      // feature flag MEDUSA_FF_CACHING, so it is not enabled here.
      {
        resolve: "@medusajs/medusa/cache-redis",
        options: { redisUrl },
      },
    ]
  : []

// Optional integrations that ship inside @medusajs/medusa: enabled only when configured.
const optionalModules = []
if (env.S3_BUCKET) {
  optionalModules.push({
    resolve: "@medusajs/medusa/file",
    options: {
      providers: [
        {
          resolve: "@medusajs/medusa/file-s3",
          id: "s3",
          options: {
            bucket: env.S3_BUCKET,
            region: env.S3_REGION,
            endpoint: env.S3_ENDPOINT,
            file_url: env.S3_FILE_URL,
            access_key_id: env.S3_ACCESS_KEY_ID,
            secret_access_key: env.S3_SECRET_ACCESS_KEY,
          },
        },
      ],
    },
  })
}
if (env.STRIPE_API_KEY) {
  optionalModules.push({
    resolve: "@medusajs/medusa/payment",
    options: {
      providers: [
        {
          resolve: "@medusajs/medusa/payment-stripe",
          id: "stripe",
          options: { apiKey: env.STRIPE_API_KEY },
        },
      ],
    },
  })
}

module.exports = defineConfig({
  projectConfig: defined({
    databaseUrl: env.DATABASE_URL,
    // e.g. {"connection":{"ssl":{"rejectUnauthorized":false}}} for a managed Postgres; the
    // bundled Postgres has no TLS and its URL says sslmode=disable instead.
    databaseDriverOptions: jsonEnv("DATABASE_DRIVER_OPTIONS"),
    redisUrl,
    workerMode,
    http: defined({
      storeCors: env.STORE_CORS,
      adminCors: env.ADMIN_CORS,
      authCors: env.AUTH_CORS,
      jwtSecret: env.JWT_SECRET,
      cookieSecret: env.COOKIE_SECRET,
    }),
  }),
  admin: defined({
    // The dashboard is built by the Dockerfile's own admin stage (`medusa build --admin-only`),
    // so the server's build skips it (MEDUSA_ADMIN_BUILD=skip); the worker never serves it.
    disable: env.MEDUSA_ADMIN_BUILD === "skip" || env.DISABLE_MEDUSA_ADMIN === "true" || workerMode === "worker",
    // Fixed into the dashboard at build time (the Dockerfile's MEDUSA_BACKEND_URL argument);
    // "/" is the origin the dashboard was loaded from, which behind the router is the API's.
    backendUrl: env.MEDUSA_BACKEND_URL || "/",
  }),
  // The app's own module (src/modules/audit): its table records which process handled an event.
  modules: [{ resolve: "./src/modules/audit" }, ...redisModules, ...optionalModules],
})
