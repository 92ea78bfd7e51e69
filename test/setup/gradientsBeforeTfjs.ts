import * as tf from '@tensorflow/tfjs-core';

/**
 * The gradient registry as it was before `@tensorflow/tfjs` loaded (see ./tfjsUnion.ts): taken when this
 * module is evaluated, which tfjsUnion.ts makes happen just before the bundle is.
 */
type GradConfig = NonNullable<ReturnType<typeof tf.getGradient>>;
const registry = (globalThis as { _tfGlobals?: Map<string, unknown> })._tfGlobals?.get('gradRegistry') as Map<string, GradConfig> | undefined;
if (!registry) throw new Error('tfjs-core’s gradient registry (globalThis._tfGlobals gradRegistry) was not found: test/setup/tfCpu.ts registers the gradients first');
const kept = new Map(registry);

export const gradientsBeforeTfjs = {
  /** Register again every gradient the bundle replaced. */
  restore(): void {
    for (const [kernelName, config] of kept) if (registry.get(kernelName) !== config) tf.registerGradient(config);
  },
};
