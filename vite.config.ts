import { defineConfig } from 'vite';

/**
 * The hospital web app lives in client/; `npm run build` writes dist/, which the federation server serves
 * at `/`. `npm run dev` serves client/ with hot reload and forwards the WebSocket (/ws) and the status API
 * (/api) to a federation server: http://localhost:8080 by default, or FEDGAN_SERVER.
 */
const server = process.env.FEDGAN_SERVER ?? 'http://localhost:8080';

export default defineConfig({
  root: 'client',
  build: { outDir: '../dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 8000 },
  // The worker (client/worker.ts) is an ES module worker; tfjs backends and the quality-check networks
  // are split into chunks it loads on demand.
  worker: { format: 'es' },
  server: {
    port: 5173,
    proxy: {
      '/ws': { target: server.replace(/^http/, 'ws'), ws: true },
      '/api': server,
    },
  },
});
