// Runs the release's migrate command (argv after the env digest) unless the last migration that
// succeeded against this database was of the same inputs, so a code-only release does no
// migration work when there is none to do. Read by core/migrate_once.py, run with `node -e` in the
// one-off container of the new image.
//
// The inputs: every file under a directory named migrations, migration-scripts, links or search
// anywhere in the app (node_modules included: what `medusa db:migrate` reads), the Medusa config,
// package.json and the lockfiles, and a digest of the migrate env (plain values, secret names).
// The last fingerprint lives in the database itself (table bluegreen_migrated), so a restore
// brings back the fingerprint of the schema it restores. Any doubt (no pg module, no connection,
// an unreadable file) runs the migration, as if this did not exist.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const [envDigest, ...command] = process.argv.slice(1);
const TABLE = 'bluegreen_migrated';
const KINDS = new Set(['migrations', 'migration-scripts', 'links', 'search']);
const ROOT_FILES = ['medusa-config.js', 'medusa-config.ts', 'package.json', 'package-lock.json', 'yarn.lock',
  'pnpm-lock.yaml'];

function fingerprint() {
  const root = process.cwd();
  const files = [];
  const walk = (dir, inKind) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, inKind || KINDS.has(entry.name));
      else if (inKind && entry.isFile()) files.push(full);
    }
  };
  walk(root, false);
  for (const name of ROOT_FILES) if (fs.existsSync(path.join(root, name))) files.push(path.join(root, name));
  const hash = crypto.createHash('sha256').update(`env ${envDigest}\n`);
  for (const file of files.sort()) hash.update(`${path.relative(root, file)}\0`).update(fs.readFileSync(file)).update('\0');
  return { digest: hash.digest('hex'), files: files.length };
}

async function connect() {
  const { Client } = require(require.resolve('pg', { paths: [process.cwd()] }));
  let ssl;
  try {
    ssl = JSON.parse(process.env.DATABASE_DRIVER_OPTIONS || '{}')?.connection?.ssl;
  } catch {
    ssl = undefined;
  }
  const client = new Client({ connectionString: process.env.DATABASE_URL, ssl, connectionTimeoutMillis: 10000 });
  await client.connect();
  return client;
}

// As PID 1 of a container without an init, node ignores a signal it has no handler for: a stop
// (or a cancelled `pulumi up`) must end this before the migration starts, and reach it after.
let child = null;
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => (child ? child.kill(signal) : process.exit(128 + os.constants.signals[signal])));
}

function run(argv) {
  return new Promise((resolve) => {
    child = spawn(argv[0], argv.slice(1), { stdio: 'inherit' });
    child.on('error', (error) => {
      console.error(`bluegreen: cannot run ${argv[0]}: ${error.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (os.constants.signals[signal] || 1)));
  });
}

async function main() {
  let current;
  try {
    current = fingerprint();
    const db = await connect();
    try {
      await db.query(`create table if not exists ${TABLE} (fingerprint text not null, files integer not null, `
        + 'migrated_at timestamptz not null default now())');
      const { rows } = await db.query(`select fingerprint, migrated_at from ${TABLE} order by migrated_at desc limit 1`);
      if (rows.length === 1 && rows[0].fingerprint === current.digest) {
        console.log(`bluegreen: nothing to migrate: the last migration of this database (${rows[0].migrated_at.toISOString()}) `
          + `had the same ${current.files} migration, link, script, search, config and lock files and env `
          + `(fingerprint ${current.digest.slice(0, 12)})`);
        return 0;
      }
    } finally {
      await db.end();
    }
  } catch (error) {
    console.log(`bluegreen: migrating without comparing with the last migration (${error.message})`);
  }
  const code = await run(command);
  if (code === 0 && current) {
    try {
      const db = await connect();
      try {
        await db.query('begin');
        await db.query(`delete from ${TABLE}`);
        await db.query(`insert into ${TABLE} (fingerprint, files) values ($1, $2)`, [current.digest, current.files]);
        await db.query('commit');
      } finally {
        await db.end();
      }
      console.log(`bluegreen: migrated; fingerprint ${current.digest.slice(0, 12)} recorded`);
    } catch (error) {
      console.log(`bluegreen: migrated, but the fingerprint was not recorded (${error.message}); the next release migrates again`);
    }
  }
  return code;
}

main().then((code) => process.exit(code), (error) => {
  console.error(`bluegreen: ${error.stack || error}`);
  process.exit(1);
});
