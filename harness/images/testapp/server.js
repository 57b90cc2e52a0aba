'use strict';
// A dependency-free stand-in for a Medusa backend, for deployment tests. It behaves like Medusa
// where a deployment can observe it:
//   GET /health          503 until BOOT_DELAY_MS after start, then 200 "OK"
//   GET /                {color, version, mode} (DEPLOY_COLOR, baked APP_VERSION, MEDUSA_WORKER_MODE)
//   GET /slow?ms=N       answers after N ms (long requests across a flip or a shutdown)
//   GET /whoami          {color, version, replica} (replica: the container's host name)
//   GET /cpu?ms=N        keeps the one Node thread busy for N ms, then answers (a CPU-bound route)
//   GET /ws              websocket (RFC 6455 handshake by hand), echoes text frames
//   GET /store/products  400 without x-publishable-api-key, like Medusa's store API
//   GET /app             the admin (404 in worker mode or with DISABLE_MEDUSA_ADMIN=true)
// The baked BEHAVIOUR (build arg) changes the image, not the runtime config:
//   healthy | never-healthy (/health 503 forever) | crash (exit 1 after the boot delay) |
//   badmigrate (only `medusa db:migrate` fails) | preview-only (/health 503 unless the Host is
//   an IP address: it passes the gate on the preview route and fails the live route's check) |
//   errors-10pct (every 10th request but /health answers 500: healthy to the gate and the
//   post-switch check, failing 10% of real traffic).
// SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close websockets, exit 0.

const http = require('node:http');
const os = require('node:os');
const crypto = require('node:crypto');
const build = require('./build.json');

const PORT = Number(process.env.PORT || 9000);
const BOOT_DELAY_MS = Number(process.env.BOOT_DELAY_MS || 1500);
const SHUTDOWN_TIMEOUT_MS = Number(process.env.SHUTDOWN_TIMEOUT_MS || 25000);
const MODE = process.env.MEDUSA_WORKER_MODE || 'shared';
const COLOR = process.env.DEPLOY_COLOR || null;
const ADMIN_DISABLED = MODE === 'worker' || process.env.DISABLE_MEDUSA_ADMIN === 'true';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC11B85';

const startedAt = Date.now();
let draining = false;
const sockets = new Set(); // upgraded websocket sockets: server.close() does not track them

function log(msg) {
  console.log(`[testapp ${build.version} ${COLOR || '-'} ${MODE}] ${msg}`);
}

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function healthy() {
  if (draining || build.behaviour === 'never-healthy') return false;
  return Date.now() - startedAt >= BOOT_DELAY_MS;
}

function hostAccepted(req) {
  if (build.behaviour !== 'preview-only') return true;
  return /^[0-9.]+(:[0-9]+)?$/.test(req.headers.host || '');
}

let answered = 0;

function route(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (draining) res.setHeader('connection', 'close');
  if (build.behaviour === 'errors-10pct' && url.pathname !== '/health' && ++answered % 10 === 0) {
    return send(res, 500, { error: 'errors-10pct behaviour' });
  }
  switch (url.pathname) {
    case '/health':
      return healthy() && hostAccepted(req) ? send(res, 200, 'OK', 'text/plain') : send(res, 503, 'Service Unavailable', 'text/plain');
    case '/':
      return send(res, 200, { color: COLOR, version: build.version, mode: MODE });
    case '/_debug/headers': // what reached the app, so a test can check what the router strips
      return send(res, 200, { color: COLOR, headers: req.headers });
    case '/slow': {
      const ms = Math.min(Number(url.searchParams.get('ms') || 1000), 600000);
      setTimeout(() => send(res, 200, { color: COLOR, version: build.version, slept_ms: ms }), ms);
      return undefined;
    }
    case '/whoami':
      return send(res, 200, { color: COLOR, version: build.version, replica: os.hostname() });
    case '/cpu': {
      const ms = Math.min(Number(url.searchParams.get('ms') || 10), 1000);
      const until = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
      let spins = 0;
      while (process.hrtime.bigint() < until) spins += 1;
      return send(res, 200, { color: COLOR, replica: os.hostname(), spins });
    }
    case '/store/products':
      if (MODE === 'worker') break;
      if (!req.headers['x-publishable-api-key']) {
        return send(res, 400, {
          type: 'not_allowed',
          message: 'Publishable API key required in the request header: x-publishable-api-key. '
            + 'You can manage your keys in settings in the dashboard.',
        });
      }
      return send(res, 200, { products: [], count: 0, offset: 0, limit: 50 });
    case '/app':
      if (ADMIN_DISABLED) break;
      return send(res, 200, '<!doctype html><title>Medusa Admin (testapp)</title>', 'text/html');
    default:
      break;
  }
  return send(res, 404, { type: 'not_found', message: `Cannot ${req.method} ${url.pathname}` });
}

// --- websocket: just enough RFC 6455 for a test client ------------------------------------

function wsFrame(opcode, payload) {
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode; header[1] = 126; header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode; header[1] = 127; header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

// Parses complete frames off the front of buf; returns [frames, rest].
function wsParse(buf) {
  const frames = [];
  for (;;) {
    if (buf.length < 2) break;
    const opcode = buf[0] & 0x0f;
    const masked = (buf[1] & 0x80) !== 0;
    let len = buf[1] & 0x7f;
    let off = 2;
    if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
    else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
    const maskOff = off;
    if (masked) off += 4;
    if (buf.length < off + len) break;
    const payload = Buffer.from(buf.subarray(off, off + len));
    if (masked) for (let i = 0; i < len; i += 1) payload[i] ^= buf[maskOff + (i % 4)];
    frames.push({ opcode, payload });
    buf = buf.subarray(off + len);
  }
  return [frames, buf];
}

function upgrade(req, socket) {
  const url = new URL(req.url, 'http://localhost');
  const key = req.headers['sec-websocket-key'];
  if (url.pathname !== '/ws' || !key || draining || String(req.headers.upgrade).toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    let frames;
    [frames, pending] = wsParse(Buffer.concat([pending, chunk]));
    for (const { opcode, payload } of frames) {
      if (opcode === 0x1) socket.write(wsFrame(0x1, Buffer.from(`${COLOR || '-'} ${build.version}: ${payload.toString('utf8')}`)));
      else if (opcode === 0x9) socket.write(wsFrame(0xa, payload)); // ping -> pong
      else if (opcode === 0x8) { socket.end(wsFrame(0x8, payload.subarray(0, 2))); return; }
    }
  });
}

// --- lifecycle ------------------------------------------------------------------------------

const server = http.createServer(route);
server.on('upgrade', upgrade);
server.keepAliveTimeout = 65000; // longer than nginx's keepalive to upstreams, like a tuned Medusa

function shutdown(signal) {
  if (draining) return;
  draining = true;
  log(`${signal}: draining (in-flight requests finish, new connections refused)`);
  // Going away (1001) to websocket clients: they reconnect through the router.
  for (const s of sockets) s.end(wsFrame(0x8, Buffer.from([0x03, 0xe9])));
  server.close(() => { log('drained, exiting 0'); process.exit(0); });
  server.closeIdleConnections();
  setTimeout(() => { log('shutdown timeout, exiting 1'); process.exit(1); }, SHUTDOWN_TIMEOUT_MS).unref();
}

function start() {
  server.listen(PORT, '0.0.0.0', () => log(`listening on 0.0.0.0:${PORT} (behaviour ${build.behaviour}, boot delay ${BOOT_DELAY_MS} ms)`));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (build.behaviour === 'crash') {
    setTimeout(() => { log('crash behaviour: exiting 1 after boot delay'); process.exit(1); }, BOOT_DELAY_MS);
  }
}

module.exports = { start };
if (require.main === module) start();
