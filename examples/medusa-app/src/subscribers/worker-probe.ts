import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"

// The other half of GET /ready/worker: the worker that handles the probe says who it is.
export const WORKER_PROBE_EVENT = "bluegreen.worker-probe"

export default async function workerProbe({ event, container }: SubscriberArgs<{ id: string }>) {
  const audit = container.resolve("audit") as {
    createHandledEvents(row: Record<string, string>): Promise<unknown>
  }
  await audit.createHandledEvents({
    event: event.name,
    entity_id: event.data.id,
    color: process.env.DEPLOY_COLOR ?? "-",
    mode: process.env.MEDUSA_WORKER_MODE ?? "shared",
  })
}

export const config: SubscriberConfig = {
  event: WORKER_PROBE_EVENT,
}
