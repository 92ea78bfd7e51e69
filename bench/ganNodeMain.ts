/** Entry of the single-file Node bundle for the GPU machine (bench/ganBundle.ts builds it). */
import { runNodeBench } from './ganNode.ts';

runNodeBench(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
