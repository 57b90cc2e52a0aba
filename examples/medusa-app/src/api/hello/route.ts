import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"

// GET /hello: the one piece of custom code in this app, so a code-only rebuild can be measured.
// It also says which deployment color and worker mode answered.
export const GET = (_req: MedusaRequest, res: MedusaResponse) => {
  res.json({
    message: "Hello from Medusa",
    color: process.env.DEPLOY_COLOR ?? null,
    mode: process.env.MEDUSA_WORKER_MODE ?? "shared",
  })
}
