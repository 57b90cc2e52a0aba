// One row per event a subscriber handled, with the process that handled it: the e2e suite reads
// this table to prove an event is handled exactly once across a release (one worker at a time).
//
// The module is CommonJS, like medusa-config.js: `medusa build` loads the config, and so this
// module, before anything is compiled, and without ts-node (not installed) only JavaScript loads.
const { model } = require("@medusajs/framework/utils")

const HandledEvent = model.define("handled_event", {
  id: model.id({ prefix: "hev" }).primaryKey(),
  event: model.text(),
  entity_id: model.text(),
  color: model.text(),
  mode: model.text(),
})

module.exports = { HandledEvent }
