import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"

// Records which process handled the event: with MEDUSA_WORKER_MODE=server/worker the server only
// enqueues it in Redis and the worker runs this, so the audit table shows the two containers
// cooperate, and that across a release each product is handled once, by one color's worker.
export default async function productCreated({ event, container }: SubscriberArgs<{ id: string }>) {
  const mode = process.env.MEDUSA_WORKER_MODE ?? "shared"
  const color = process.env.DEPLOY_COLOR ?? "-"
  // The audit module (src/modules/audit), resolved by its name: it is JavaScript, so untyped here.
  const audit = container.resolve("audit") as {
    createHandledEvents(row: Record<string, string>): Promise<unknown>
  }
  await audit.createHandledEvents({ event: event.name, entity_id: event.data.id, color, mode })
  container.resolve("logger").info(`product.created ${event.data.id} handled (mode=${mode}, color=${color})`)
}

export const config: SubscriberConfig = {
  event: "product.created",
}
