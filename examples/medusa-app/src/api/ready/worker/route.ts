import { randomUUID } from "crypto"

import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import { Modules } from "@medusajs/framework/utils"

import { WORKER_PROBE_EVENT } from "../../../subscribers/worker-probe"

// GET /ready/worker: 200 only once a worker of this server's own color has handled an event this
// request emitted. A worker has no HTTP API, so this is how a deployment proves it processes
// (consumes Redis, runs a subscriber, writes the database) rather than merely runs. The
// deployment checks it after the new worker starts (healthGate.workerCheck).
const WAIT_MS = 3000

type HandledEvent = { id: string; color: string; mode: string }
type Audit = {
  listHandledEvents(filters: Record<string, string>): Promise<HandledEvent[]>
  deleteHandledEvents(ids: string[]): Promise<void>
}

export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const color = process.env.DEPLOY_COLOR ?? "-"
  const probe = `probe-${color}-${randomUUID()}`
  const began = Date.now()
  await req.scope.resolve(Modules.EVENT_BUS).emit({ name: WORKER_PROBE_EVENT, data: { id: probe } })
  const audit = req.scope.resolve("audit") as Audit
  while (Date.now() - began < WAIT_MS) {
    const rows = await audit.listHandledEvents({ entity_id: probe })
    if (rows.length) {
      await audit.deleteHandledEvents(rows.map((row) => row.id))
      const [row] = rows
      if (row.color !== color) {
        res.status(503).send(`the probe was handled by a ${row.color} ${row.mode}, not by a ${color} worker`)
        return
      }
      res.status(200).send(`handled by the ${color} ${row.mode} in ${Date.now() - began} ms`)
      return
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  res.status(503).send(`no worker handled the probe within ${WAIT_MS} ms (is a ${color} worker running and reaching Redis?)`)
}
