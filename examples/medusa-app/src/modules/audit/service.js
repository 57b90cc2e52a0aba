const { MedusaService } = require("@medusajs/framework/utils")
const { HandledEvent } = require("./models/handled-event")

// Generated methods: createHandledEvents, listHandledEvents, ...
class AuditModuleService extends MedusaService({ HandledEvent }) {}

module.exports = { AuditModuleService }
