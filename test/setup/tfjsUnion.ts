/**
 * `@tensorflow/tfjs` in the Node tests (vitest.config.ts resolves it here, except from this file): the package itself, loaded after
 * this project's gradients, which it must not replace.
 *
 * The bundle registers tfjs-core's gradients again when it loads. In the app, the server and the CLI it is
 * loaded first, by `#tfjs-gradients`, and shared/gan/gradients.ts then replaces the ones it fixes (Softmax,
 * for second-order gradients). The tests load tfjs-core's gradients without the bundle
 * (test/setup/tfjsGradients.ts), so a test that imports `@tensorflow/tfjs` (the nsfwjs feature networks)
 * loads it after the setup: ./gradientsBeforeTfjs.ts takes the registry as the setup left it, and it is put
 * back once the bundle has loaded. The registry ends as in the app: tfjs-core's gradients, this project's
 * fixes on top.
 */
import { gradientsBeforeTfjs } from './gradientsBeforeTfjs.ts';
export * from '@tensorflow/tfjs';
export { default } from '@tensorflow/tfjs';

gradientsBeforeTfjs.restore();
