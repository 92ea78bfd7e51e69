import * as tf from '@tensorflow/tfjs-core';

/**
 * Swap a registered kernel or gradient for this project's, with an undo that puts the original back.
 * Kernels and gradients live in tfjs's global registries, so every override must be reversible:
 * the benchmark runs stock and fast paths in one process.
 */
export type Restore = () => void;

export function overrideKernel(kernelName: string, backendName: string, kernelFunc: tf.KernelFunc): Restore {
  const original = tf.getKernel(kernelName, backendName);
  if (original) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc, setupFunc: undefined, disposeFunc: undefined });
  return () => {
    tf.unregisterKernel(kernelName, backendName);
    if (original) tf.registerKernel(original);
  };
}

export function overrideGradient(config: tf.GradConfig): Restore {
  const original = tf.getGradient(config.kernelName);
  tf.registerGradient(config);
  return () => {
    if (original) tf.registerGradient(original);
  };
}

/** The original kernel function, to fall back on for cases a replacement does not handle. */
export function originalKernel(kernelName: string, backendName: string): tf.KernelFunc {
  const k = tf.getKernel(kernelName, backendName);
  if (!k) throw new Error(`no ${kernelName} kernel is registered for ${backendName}`);
  return k.kernelFunc;
}

/**
 * Register this project's kernels for webgpu (replacing any earlier registration) and their gradients;
 * the undo restores the gradients and unregisters the kernels.
 */
export function installWebGPUKernels(kernels: Record<string, unknown>, gradients: tf.GradConfig[] = []): Restore {
  for (const [kernelName, kernelFunc] of Object.entries(kernels)) {
    if (tf.getKernel(kernelName, 'webgpu')) tf.unregisterKernel(kernelName, 'webgpu');
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: kernelFunc as tf.KernelFunc });
  }
  const restores = gradients.map(overrideGradient);
  return () => {
    for (const r of restores.reverse()) r();
    for (const kernelName of Object.keys(kernels)) tf.unregisterKernel(kernelName, 'webgpu');
  };
}
