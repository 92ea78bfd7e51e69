// Browser host (bundled by Vite): register tfjs-core's gradient definitions from its ESM build.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
