/**
 * A flood of WebSockets that never say hello (server/flood.test.ts, bench/server.ts): `sockets` of them
 * open at all times, each reopened as soon as the server drops it, spread over source addresses
 * (127.0.0.x on Linux loopback, so the server sees several attackers).
 */
import { WebSocket } from 'ws';

export interface FloodOptions {
  /** Sockets kept open (or opening) at all times. */
  sockets: number;
  /** Source addresses to spread them over (default ['127.0.0.1']). */
  addresses?: string[];
  /** Delay before reopening a dropped socket (default 0: at once). */
  reopenMs?: number;
}

export interface Flood {
  /** Sockets currently open (upgraded, not yet closed). */
  readonly open: number;
  /** Upgrades completed so far. */
  readonly opened: number;
  /** Sockets the server closed or refused so far, by close code (`error` for a refused upgrade or a reset). */
  readonly closedBy: Map<string, number>;
  stop(): Promise<void>;
}

/** 127.0.0.`first` … 127.0.0.`first + n − 1`. */
export function loopbackAddresses(n: number, first = 2): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${first + i}`);
}

export function startFlood(url: string, opts: FloodOptions): Flood {
  const addresses = opts.addresses ?? ['127.0.0.1'];
  const live = new Set<WebSocket>();
  const closedBy = new Map<string, number>();
  let open = 0;
  let opened = 0;
  let running = true;
  const count = (k: string) => closedBy.set(k, (closedBy.get(k) ?? 0) + 1);

  const spawn = (i: number) => {
    if (!running) return;
    const ws = new WebSocket(url, { localAddress: addresses[i % addresses.length], perMessageDeflate: false });
    live.add(ws);
    let wasOpen = false;
    let done = false;
    const finish = (why: string) => {
      if (done) return;
      done = true;
      live.delete(ws);
      if (wasOpen) open--;
      if (running) count(why);
      if (running) setTimeout(() => spawn(i), opts.reopenMs ?? 0);
    };
    ws.on('open', () => {
      wasOpen = true;
      open++;
      opened++;
    });
    ws.on('close', (code: number) => finish(String(code)));
    ws.on('error', () => finish('error'));
    ws.on('unexpected-response', (req) => {
      req.destroy();
      finish('error');
    });
  };
  for (let i = 0; i < opts.sockets; i++) spawn(i);

  return {
    get open() {
      return open;
    },
    get opened() {
      return opened;
    },
    closedBy,
    async stop() {
      running = false;
      for (const ws of live) ws.terminate();
      live.clear();
    },
  };
}
