#!/usr/bin/env node
'use strict';
// A Medusa-like CLI for the testapp image, installed as node_modules/.bin/medusa so that
// `npx medusa <command>` in /app works as it does in a real Medusa project.
//
//   medusa db:migrate   parses DATABASE_URL like a Postgres client (percent-decoding), connects
//                       to host:port and logs in (SCRAM-SHA-256, md5 or cleartext, as the
//                       server asks), so a wrongly encoded URL or password fails here like it
//                       would in Medusa; then prints "migrations applied (testapp <version>)".
//                       Without sslmode=disable on a non-local host it first asks for TLS, as
//                       Medusa's modules do, and fails when the server has none.
//                       Baked BEHAVIOUR=badmigrate: prints a migration error and exits 1.
//                       MIGRATE_DELAY_MS=N: works N ms, then needs the database again.
//   medusa start        runs the testapp server (server.js)
//   medusa --version
// Never prints the password.

const net = require('node:net');
const crypto = require('node:crypto');
const path = require('node:path');

const APP_DIR = path.resolve(__dirname, process.env.TESTAPP_DIR || '.');
const build = require(path.join(APP_DIR, 'build.json'));
const CONNECT_TIMEOUT_MS = Number(process.env.MIGRATE_TIMEOUT_MS || 10000);
// How long the migration "works" between its first and last talk to the database, so a test
// can act while one is running (kill Postgres, cancel the run).
const MIGRATE_DELAY_MS = Number(process.env.MIGRATE_DELAY_MS || 0);

function fail(msg) {
  console.error(`error: ${msg}`);
  process.exit(1);
}

function parseDatabaseUrl(raw) {
  if (!raw) fail('DATABASE_URL is not set');
  let u;
  try { u = new URL(raw); } catch (e) { fail('DATABASE_URL is not a valid URL'); }
  if (!['postgres:', 'postgresql:'].includes(u.protocol)) fail(`DATABASE_URL scheme ${u.protocol} is not postgres`);
  const dec = (s) => { try { return decodeURIComponent(s); } catch (e) { fail('DATABASE_URL has a malformed percent-encoding'); } return ''; };
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port || 5432),
    user: dec(u.username),
    password: dec(u.password),
    database: dec(u.pathname.replace(/^\//, '')) || dec(u.username),
    sslmode: u.searchParams.get('sslmode'),
  };
}

// --- a minimal Postgres wire-protocol client: startup + authentication only ----------------

function msg(type, body) {
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  return type ? Buffer.concat([Buffer.from(type), len, body]) : Buffer.concat([len, body]);
}
const cstr = (s) => Buffer.from(`${s}\0`, 'utf8');
const int32 = (n) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

function startupMessage(cfg) {
  return msg(null, Buffer.concat([int32(196608), cstr('user'), cstr(cfg.user), cstr('database'),
    cstr(cfg.database), cstr('application_name'), cstr('medusa-testapp-migrate'), Buffer.from([0])]));
}

function scram(password) {
  const nonce = crypto.randomBytes(18).toString('base64');
  const clientFirstBare = `n=*,r=${nonce}`;
  return {
    first() {
      const m = Buffer.from(`n,,${clientFirstBare}`);
      return msg('p', Buffer.concat([cstr('SCRAM-SHA-256'), int32(m.length), m]));
    },
    final(serverFirst) {
      const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
      if (!attrs.r.startsWith(nonce)) throw new Error('SCRAM: server nonce mismatch');
      const salted = crypto.pbkdf2Sync(password.normalize('NFKC'), Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
      const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
      const storedKey = crypto.createHash('sha256').update(clientKey).digest();
      const clientFinalNoProof = `c=biws,r=${attrs.r}`;
      const authMessage = `${clientFirstBare},${serverFirst},${clientFinalNoProof}`;
      const sig = crypto.createHmac('sha256', storedKey).update(authMessage).digest();
      const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i])).toString('base64');
      return msg('p', Buffer.from(`${clientFinalNoProof},p=${proof}`));
    },
  };
}

function pgError(body) {
  // ErrorResponse fields: type byte + cstring, ...; M = message, C = SQLSTATE.
  const fields = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    fields[String.fromCharCode(body[i])] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return `${fields.M || 'unknown error'}${fields.C ? ` (SQLSTATE ${fields.C})` : ''}`;
}

function login(cfg) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: cfg.host, port: cfg.port });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`timeout after ${CONNECT_TIMEOUT_MS} ms connecting to ${cfg.host}:${cfg.port}`)); }, CONNECT_TIMEOUT_MS);
    const done = (err) => { clearTimeout(timer); sock.destroy(); if (err) reject(err); else resolve(); };
    const local = ['localhost', '127.0.0.1', '::1'].includes(cfg.host);
    const wantSsl = cfg.sslmode ? cfg.sslmode !== 'disable' : !local;
    let sasl = null;
    let buf = Buffer.alloc(0);
    let phase = wantSsl ? 'ssl' : 'auth';
    sock.on('error', (e) => done(new Error(`cannot reach ${cfg.host}:${cfg.port}: ${e.code || e.message}`)));
    sock.on('connect', () => sock.write(wantSsl ? msg(null, int32(80877103)) : startupMessage(cfg)));
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (phase === 'ssl') {
        const answer = String.fromCharCode(buf[0]);
        buf = buf.subarray(1);
        if (answer === 'N') return done(new Error('The server does not support SSL connections (add sslmode=disable to DATABASE_URL for a server without TLS)'));
        return done(new Error('the server offers TLS, which this stand-in does not speak; use sslmode=disable'));
      }
      while (buf.length >= 5) {
        const type = String.fromCharCode(buf[0]);
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        if (type === 'E') return done(new Error(pgError(body)));
        if (type === 'Z') { sock.write(msg('X', Buffer.alloc(0))); return done(); }
        if (type !== 'R') continue; // ParameterStatus, BackendKeyData, notices
        const code = body.readInt32BE(0);
        if (code === 0) continue; // AuthenticationOk; wait for ReadyForQuery
        if (code === 3) sock.write(msg('p', cstr(cfg.password)));
        else if (code === 5) {
          const inner = crypto.createHash('md5').update(cfg.password + cfg.user).digest('hex');
          const outer = crypto.createHash('md5').update(inner).update(body.subarray(4, 8)).digest('hex');
          sock.write(msg('p', cstr(`md5${outer}`)));
        } else if (code === 10) { sasl = scram(cfg.password); sock.write(sasl.first()); }
        else if (code === 11) sock.write(sasl.final(body.subarray(4).toString('utf8')));
        else if (code === 12) continue; // SASLFinal; AuthenticationOk follows
        else return done(new Error(`unsupported authentication request ${code}`));
      }
      return undefined;
    });
  });
}

async function migrate() {
  const cfg = parseDatabaseUrl(process.env.DATABASE_URL);
  console.log(`info: connecting to ${cfg.host}:${cfg.port}/${cfg.database} as ${cfg.user}`);
  try {
    await login(cfg);
  } catch (e) {
    fail(`Could not connect to the database: ${e.message}`);
  }
  if (MIGRATE_DELAY_MS > 0) {
    console.log(`info: migrating for ${MIGRATE_DELAY_MS} ms`);
    await new Promise((resolve) => { setTimeout(resolve, MIGRATE_DELAY_MS); });
    try {
      await login(cfg);
    } catch (e) {
      fail(`lost the database during the migration: ${e.message}`);
    }
  }
  if (build.behaviour === 'badmigrate') {
    fail(`migration Migration20250101000000_testapp_${build.version} failed: column "handle" of relation "product" already exists (badmigrate behaviour)`);
  }
  console.log(`migrations applied (testapp ${build.version})`);
}

function main(argv) {
  const cmd = argv[0];
  if (cmd === 'db:migrate') return migrate();
  if (cmd === 'start') { process.chdir(APP_DIR); return require(path.join(APP_DIR, 'server.js')).start(); }
  if (cmd === '--version' || cmd === '-v') { console.log(`testapp ${build.version} (medusa stand-in)`); return undefined; }
  console.error('usage: medusa db:migrate | start | --version');
  process.exit(2);
  return undefined;
}

main(process.argv.slice(2));
