/**
 * Where the web app's worker finds tfjs-backend-wasm's binaries: Vite emits them next to the app's other
 * assets (hashed names) and these are their URLs. tfjs runs the SIMD one where the browser has WebAssembly
 * SIMD, else the plain one; never the threaded one (client/backendInfo.ts passes `wasmThreads: false`, see
 * shared/backend.ts), which is listed only because tfjs wants a URL for each of the three.
 */
import plain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import simd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import threadedSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

export const WASM_PATHS: Record<string, string> = {
  'tfjs-backend-wasm.wasm': plain,
  'tfjs-backend-wasm-simd.wasm': simd,
  'tfjs-backend-wasm-threaded-simd.wasm': threadedSimd,
};
