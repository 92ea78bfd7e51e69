/**
 * FedAvg throughput benchmark: streams N client updates of P float32 parameters through
 * FedAvgAccumulator (validation included) and reports GB/s of float32 input consumed.
 *
 *     node --import tsx bench/aggregate.ts [clients=20] [params=5000000] [repeats=5]
 */
import { FedAvgAccumulator } from '../shared/aggregate/fedavg.ts';
import { Rng } from '../shared/rng.ts';
import type { WeightSet } from '../shared/weights.ts';

const clients = Number(process.argv[2] ?? 20);
const params = Number(process.argv[3] ?? 5_000_000);
const repeats = Number(process.argv[4] ?? 5);

/** A realistic-ish layout: a few large kernels and many small (batch-norm-sized) tensors. */
function makeLayout(total: number): { name: string; shape: number[] }[] {
  const layout: { name: string; shape: number[] }[] = [];
  let left = total;
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, i % 4 === 3 ? 256 : Math.ceil(total / 6));
    layout.push({ name: `g/layer${i}/${i % 4 === 3 ? 'bn/gamma' : 'kernel'}`, shape: [size] });
    left -= size;
  }
  return layout;
}

const layout = makeLayout(params);
const rng = new Rng(1);
const updates: WeightSet[] = Array.from({ length: clients }, () => ({
  fingerprint: 'bench',
  tensors: layout.map(({ name, shape }) => {
    const data = new Float32Array(shape[0]);
    for (let i = 0; i < data.length; i++) data[i] = rng.next() - 0.5;
    return { name, shape, data };
  }),
}));

const inputBytes = clients * params * 4;
const rates: number[] = [];
for (let r = 0; r < repeats + 1; r++) {
  const t0 = performance.now();
  const acc = new FedAvgAccumulator();
  for (let c = 0; c < clients; c++) acc.add({ weights: updates[c], examples: 100 + c });
  const result = acc.result();
  const seconds = (performance.now() - t0) / 1000;
  if (result.tensors.length !== layout.length) throw new Error('unexpected result');
  if (r > 0) rates.push(inputBytes / seconds / 1e9); // first run is warm-up
}
rates.sort((a, b) => a - b);
const median = rates[Math.floor(rates.length / 2)];
console.log(
  `FedAvg: ${clients} updates × ${params.toLocaleString('en-US')} params (${layout.length} tensors, ` +
    `${(inputBytes / 1e6).toFixed(0)} MB float32 input): median ${median.toFixed(2)} GB/s, ` +
    `best ${rates[rates.length - 1].toFixed(2)} GB/s over ${repeats} runs (validation + accumulation + result)`,
);
