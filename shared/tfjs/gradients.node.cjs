// Node host: tfjs-core's CommonJS build ships without gradient definitions, and its ESM build cannot be
// imported by Node (extensionless paths). The @tensorflow/tfjs Node bundle registers every gradient onto
// the same tfjs-core instance, so load it for that side effect. (The Node tests load tfjs-core's gradients
// without the rest of the bundle instead: vitest.config.ts, test/setup/tfjsGradients.ts.)
require('@tensorflow/tfjs');
