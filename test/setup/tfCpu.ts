// Every Node test runs tfjs on the pure-JS cpu backend, with this project's cpu kernels and all gradients
// (tfjs-core's, loaded without the rest of @tensorflow/tfjs: vitest.config.ts, test/setup/tfjsGradients.ts).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerMissingGradients } from '../../shared/gan/gradients.ts';
import { registerFastCpuKernels } from '../../shared/kernels/cpu/index.ts';

tf.env().set('PROD', true); // silences the "install tfjs-node" banner; tfjs-node cannot be installed offline anyway
registerMissingGradients();
registerFastCpuKernels();
await tf.setBackend('cpu');
