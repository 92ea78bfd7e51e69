// Entry of the sample-grid render worker (server/console/samples.ts workerRenderer): plain JavaScript, so
// it starts whatever the parent's loader flags are; it registers tsx in this thread, then loads the
// TypeScript worker (renderWorker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./renderWorker.ts');
