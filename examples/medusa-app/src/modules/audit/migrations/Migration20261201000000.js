// Written by hand in the shape `medusa db:generate audit` produces. The class name is what
// `mikro_orm_migrations.name` records, and what the deployment's schema check compares with the
// migrations an image knows before it flips traffic to that image.
const { Migration } = require("@medusajs/framework/mikro-orm/migrations")

class Migration20261201000000 extends Migration {
  async up() {
    this.addSql(
      'create table if not exists "handled_event" ("id" text not null, "event" text not null, ' +
        '"entity_id" text not null, "color" text not null, "mode" text not null, ' +
        '"created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), ' +
        '"deleted_at" timestamptz null, constraint "handled_event_pkey" primary key ("id"));'
    )
    this.addSql(
      'CREATE INDEX IF NOT EXISTS "IDX_handled_event_deleted_at" ON "handled_event" ("deleted_at") WHERE deleted_at IS NULL;'
    )
  }

  async down() {
    this.addSql('drop table if exists "handled_event" cascade;')
  }
}

module.exports = { Migration20261201000000 }
