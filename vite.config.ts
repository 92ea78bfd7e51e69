import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The hospital web app lives in client/; `npm run build` writes dist/, which the federation server serves
 * at `/`. The operator console (client/console/, its own page: no worker, no tfjs) is a second entry,
 * written to dist/console/index.html and served at `/console`. `npm run dev` serves client/ with hot
 * reload (the console at /console/) and forwards the WebSocket (/ws) and the API (/api, the console's
 * live socket included) to a federation server: http://localhost:8080 by default, or FEDGAN_SERVER.
 */
const server = process.env.FEDGAN_SERVER ?? 'http://localhost:8080';

export default defineConfig({
  root: 'client',
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL('./client/index.html', import.meta.url)),
        console: fileURLToPath(new URL('./client/console/index.html', import.meta.url)),
      },
    },
  },
  // The worker (client/worker.ts) is an ES module worker; tfjs backends and the quality-check networks
  // are split into chunks it loads on demand.
  worker: { format: 'es' },
  server: {
    port: 5173,
    proxy: {
      '/ws': { target: server.replace(/^http/, 'ws'), ws: true },
      '/api': { target: server, ws: true },
    },
  },
});
