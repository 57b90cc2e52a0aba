import { readdirSync } from "fs"
import path from "path"

import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import { ContainerRegistrationKeys, Modules } from "@medusajs/framework/utils"

// GET /ready: 200 only when this server could do its job now. Medusa's own /health answers "OK"
// as soon as HTTP is up, which proves nothing about what a request needs. Each probe is bounded:
// a Redis that does not answer makes its client queue commands rather than fail.
const PROBE_MS = 2000

function within<T>(what: string, promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${PROBE_MS} ms`)), PROBE_MS)),
  ])
}

type Sql = { raw(query: string): Promise<{ rows: Array<Record<string, string>> }> }
type Cache = { set(key: string, value: unknown, ttl?: number): Promise<void>; get(key: string): Promise<unknown> }

// The app's own modules' migrations (src/modules/*/migrations), by the class name MikroORM records.
// Medusa's own modules are migrated by the release's migrate step, which this server's start
// waits for; the app's are the ones a hand-made deploy forgets.
function ownMigrations(): string[] {
  const modules = path.join(process.cwd(), "src/modules")
  let names: string[] = []
  for (const module of readdirSync(modules, { withFileTypes: true }).filter((entry) => entry.isDirectory())) {
    let files: string[] = []
    try {
      files = readdirSync(path.join(modules, module.name, "migrations"))
    } catch {
      continue // a module without migrations
    }
    names = names.concat(files.filter((file) => /^Migration.*\.js$/.test(file)).map((file) => file.slice(0, -3)))
  }
  return names
}

export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const problems: string[] = []
  const sql = req.scope.resolve(ContainerRegistrationKeys.PG_CONNECTION) as Sql
  try {
    const applied = await within("the database", sql.raw("select name from mikro_orm_migrations"))
    const done = new Set(applied.rows.map((row) => row.name))
    const pending = ownMigrations().filter((name) => !done.has(name))
    if (pending.length) problems.push(`migrations not applied: ${pending.join(", ")}`)
  } catch (err) {
    problems.push(`database: ${(err as Error).message}`)
  }
  if (process.env.REDIS_URL) {
    // The cache module is the Redis one when REDIS_URL is set (medusa-config.js): a write read back.
    const cache = req.scope.resolve(Modules.CACHE) as Cache
    const key = `bluegreen:ready:${process.pid}`
    const value = String(Date.now())
    try {
      await within("Redis", cache.set(key, value, 30))
      if (String(await within("Redis", cache.get(key))) !== value) problems.push("redis: a value written was not read back")
    } catch (err) {
      problems.push(`redis: ${(err as Error).message}`)
    }
  }
  const color = process.env.DEPLOY_COLOR ?? null
  if (problems.length) {
    res.status(503).json({ ready: false, color, problems })
    return
  }
  res.status(200).json({ ready: true, color })
}
