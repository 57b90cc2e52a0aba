// The app's own Medusa module (registered in medusa-config.js). JavaScript for the reason in
// models/handled-event.js; Medusa reads a module's definition from its `default` export.
const { Module } = require("@medusajs/framework/utils")
const { AuditModuleService } = require("./service")

const AUDIT_MODULE = "audit"

module.exports = { default: Module(AUDIT_MODULE, { service: AuditModuleService }), AUDIT_MODULE }
