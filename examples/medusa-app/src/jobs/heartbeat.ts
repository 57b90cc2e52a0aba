import type { MedusaContainer } from "@medusajs/framework/types"

import { WORKER_PROBE_EVENT } from "../subscribers/worker-probe"

// A scheduled job that records each run (when it was due, which color's worker ran it), so the
// e2e suite can show a schedule runs once per tick across a release. Every minute unless
// HEARTBEAT_SCHEDULE (a cron line, seconds field allowed) says otherwise. It also drops its own
// rows and worker probes (src/api/ready/worker) older than an hour: a probe no worker handled in
// time is handled later and its row is never read.
const KEEP_MS = 60 * 60 * 1000

type Audit = {
  createHandledEvents(row: Record<string, string>): Promise<unknown>
  listHandledEvents(filters: Record<string, unknown>, config?: Record<string, unknown>): Promise<Array<{ id: string }>>
  deleteHandledEvents(ids: string[]): Promise<void>
}

export default async function heartbeat(container: MedusaContainer, context?: { scheduledFor?: Date }) {
  const audit = container.resolve("audit") as Audit
  await audit.createHandledEvents({
    event: "heartbeat",
    entity_id: (context?.scheduledFor ?? new Date()).toISOString(),
    color: process.env.DEPLOY_COLOR ?? "-",
    mode: process.env.MEDUSA_WORKER_MODE ?? "shared",
  })
  const old = await audit.listHandledEvents(
    { event: ["heartbeat", WORKER_PROBE_EVENT], created_at: { $lt: new Date(Date.now() - KEEP_MS) } },
    { select: ["id"], take: 1000 },
  )
  if (old.length) await audit.deleteHandledEvents(old.map((row) => row.id))
}

export const config = {
  name: "bluegreen-heartbeat",
  schedule: process.env.HEARTBEAT_SCHEDULE || "* * * * *",
}
