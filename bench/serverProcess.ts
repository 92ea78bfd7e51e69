/**
 * The real server entry (server/main.ts) with a synthetic model of BENCH_PARAMS float32 parameters instead
 * of the GAN, for bench/server.ts (which spawns it so that the server's RSS is measured on its own).
 */
import { runMain } from '../server/main.ts';
import { benchWeights } from './serverModel.ts';

void runMain({ initialWeights: async () => benchWeights(Number(process.env.BENCH_PARAMS ?? 5_000_000), 0) });
