import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"

// Logs which process handled the event: with MEDUSA_WORKER_MODE=server/worker the server only
// enqueues it in Redis and the worker runs this, which shows the two containers cooperate.
export default async function productCreated({ event, container }: SubscriberArgs<{ id: string }>) {
  const logger = container.resolve("logger")
  logger.info(
    `product.created ${event.data.id} handled (mode=${process.env.MEDUSA_WORKER_MODE ?? "shared"}, color=${process.env.DEPLOY_COLOR ?? "-"})`
  )
}

export const config: SubscriberConfig = {
  event: "product.created",
}
