import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { PATHS } from './config.ts';

/** HTTP routes: probes, metrics, status JSON and the built web app. */

export interface HttpDeps {
  isReady(): boolean;
  metrics(): string;
  status(): unknown;
  /** Directory of the built web app (`dist/`). */
  staticDir: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.webmanifest': 'application/manifest+json',
};

export const PLACEHOLDER_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FedGAN federation server</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>FedGAN federation server</h1>
<p>The server is running, but the web app is not built.</p>
<p>Run <code>npm run build</code> (or <code>npm start</code>, which builds first) to serve it here.</p>
<p>Status: <a href="${PATHS.status}">${PATHS.status}</a> · Metrics: <a href="${PATHS.metrics}">${PATHS.metrics}</a></p>
</body></html>
`;

/** Headers that let the web app use SharedArrayBuffer (tfjs wasm threads) and keep it same-origin. */
const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'X-Content-Type-Options': 'nosniff',
};

function send(res: ServerResponse, code: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

export function createHttpHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const root = resolve(deps.staticDir);
  return (req, res) => {
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return send(res, 400, 'text/plain; charset=utf-8', 'bad request\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    }
    switch (pathname) {
      case PATHS.healthz:
        return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      case PATHS.readyz:
        return deps.isReady() ? send(res, 200, 'text/plain; charset=utf-8', 'ready\n') : send(res, 503, 'text/plain; charset=utf-8', 'loading state\n');
      case PATHS.metrics:
        return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', deps.metrics());
      case PATHS.status:
        return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(deps.status()), { 'Access-Control-Allow-Origin': '*' });
      case PATHS.ws:
        return send(res, 426, 'text/plain; charset=utf-8', 'this is a WebSocket endpoint\n', { Upgrade: 'websocket' });
    }
    serveStatic(root, pathname, req, res);
  };
}

function serveStatic(root: string, pathname: string, req: IncomingMessage, res: ServerResponse): void {
  const index = join(root, 'index.html');
  if (!existsSync(index)) {
    if (pathname === '/' || pathname === '/index.html') return send(res, 200, 'text/html; charset=utf-8', PLACEHOLDER_HTML, ISOLATION_HEADERS);
    return send(res, 404, 'text/plain; charset=utf-8', 'not found (the web app is not built: run npm run build)\n');
  }
  const rel = normalize(pathname).replace(/^([/\\])+/, '');
  let file = resolve(root, rel);
  if (file !== root && !file.startsWith(root + sep)) return send(res, 403, 'text/plain; charset=utf-8', 'forbidden\n');
  let st = safeStat(file);
  if (st?.isDirectory()) {
    file = join(file, 'index.html');
    st = safeStat(file);
  }
  if (!st || !st.isFile()) {
    // Unknown paths without an extension are app routes: serve the app.
    if (extname(pathname) === '') {
      file = index;
      st = safeStat(file);
    }
    if (!st) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
  const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  const immutable = /[/\\]assets[/\\]/.test(file);
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': st.size,
    'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    ...ISOLATION_HEADERS,
  });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}

function safeStat(file: string) {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}
