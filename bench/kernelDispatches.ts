import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

/**
 * Dispatches per tfjs kernel: which ops of the step issue the GPU programs. Every program tfjs runs
 * through `runWebGPUProgram` is charged to the outermost kernel being executed by the engine at that
 * moment (a kernel that runs helper kernels directly, such as a reshape inside a reduction, pays for
 * them), keyed as `Kernel:Program`. Dispatches recorded without `runWebGPUProgram` (this project's
 * fused Adam records its own pass) are not seen here; the GPU counters count them.
 */
export interface KernelDispatches {
  snapshot(): Map<string, number>;
  uninstall(): void;
}

type AnyFn = (...args: unknown[]) => unknown;

export function installKernelDispatches(backend: WebGPUBackend): KernelDispatches {
  const engine = tf.engine() as unknown as Record<string, AnyFn>;
  const be = backend as unknown as Record<string, AnyFn>;
  const counts = new Map<string, number>();
  const stack: string[] = [];
  const hadKernel = Object.prototype.hasOwnProperty.call(engine, 'runKernel');
  const hadProgram = Object.prototype.hasOwnProperty.call(be, 'runWebGPUProgram');
  const runKernel = engine.runKernel;
  const runProgram = be.runWebGPUProgram;
  engine.runKernel = function (this: unknown, name: unknown, ...rest: unknown[]) {
    stack.push(String(name));
    try {
      return runKernel.call(this, name, ...rest);
    } finally {
      stack.pop();
    }
  };
  be.runWebGPUProgram = function (this: unknown, program: unknown, ...rest: unknown[]) {
    const kernel = stack[0] ?? '(outside a kernel)';
    const prog = (program as { constructor: { name: string } }).constructor.name.replace(/Program$/, '');
    const key = `${kernel}:${prog}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    return runProgram.call(this, program, ...rest);
  };
  return {
    snapshot: () => new Map(counts),
    uninstall() {
      if (hadKernel) engine.runKernel = runKernel;
      else delete engine.runKernel;
      if (hadProgram) be.runWebGPUProgram = runProgram;
      else delete be.runWebGPUProgram;
    },
  };
}
