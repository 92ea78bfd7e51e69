/**
 * Prepares the issue-13 GPU run for the lent device machine (experiments/deviceRun.sh), which has no
 * node_modules, cannot reach a registry, and takes at most 64 MiB of working tree and carried files:
 *
 *   bash ../shared/gpu/prepare-carry.sh      # once: Node, Dawn's dawn.node and the Vulkan loader in .gpu-carry/
 *   npm run device:prepare                    # this script: fills .device-run/ (git-ignored), about 45 MB
 *
 * then one device call: `run` with carry [".device-run"] and `bash experiments/deviceRun.sh`.
 *
 * .device-run/ holds:
 * - node.xz, dawn.node.xz and the libvulkan1 package, copied from .gpu-carry/;
 * - simulate.mjs: `npm run simulate` (cli/simulate.ts) bundled with tfjs, the WebGPU fast path and
 *   nsfwjs's MobileNetV2 (the quality probe's features) into one ES module;
 * - train-<size>/: the training tiles decoded and resized to the run's size, exactly as the simulation
 *   reads them (node/tileFolder.ts resizeToRGB), stored as PNG with the manifest's patient and site
 *   columns: 39 MB of 512 px JPEGs become ~12 MB, and the run reads the same pixels (checked here: every
 *   prepared tile read back at that size is byte-identical to the original read at that size);
 * - recipe.json: the paper preset's recipe (the product's RECIPE_DEFAULTS), the GAN config file of the run;
 * - with `--resume DIR` (the run/ folder an earlier call brought back): resume/, its summary.json, checkpoints
 *   and FedBN weights, from which deviceRun.sh goes on (`simulate --resume`).
 */
import { build } from 'esbuild';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, runCli } from '../node/cliError.ts';
import { parseFlags } from '../node/flags.ts';
import { encodeRgbPng } from '../node/png.ts';
import { readManifest, readTileFolder } from '../node/tileFolder.ts';
import { PRESETS } from './experiment.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLASSES = ['MSIH', 'nonMSIH'];
/** The device run's working tree and carried files together may not exceed this (device README). */
export const DEVICE_TREE_LIMIT = 64 * 1024 * 1024;

const USAGE = `Usage: npm run device:prepare -- [options]

Fills .device-run/ for experiments/deviceRun.sh (run \`bash ../shared/gpu/prepare-carry.sh\` first).

  --data DIR     training tiles laid out <label>/<tile>.jpg|png with manifest.csv beside or above
                 (default ../shared/data/crc-msi/train)
  --size S       tile size of the run in px (default 64)
  --out DIR      (default .device-run)
  --gpu-carry DIR  where prepare-carry.sh put Node, dawn.node and libvulkan1 (default .gpu-carry)
  --resume DIR   the run/ folder an earlier device call brought back: the next call goes on from its last round
  --bench        also carry the speed benchmark (.gpu-carry/gan-bench.mjs, built by
                 \`node --import tsx bench/ganBundle.ts\`): deviceRun.sh then times PyTorch and the WebGPU
                 step (issue 19) before it trains, in the same call`;

export interface PreparedTiles {
  count: number;
  bytes: number;
}

/**
 * Write `tiles` resized to `size` as PNG under `out/<class>/`, with a manifest.csv that keeps each tile's
 * patient and site (its file name now ends in .png), and check that reading the written folder at `size`
 * gives back exactly the original tiles' pixels.
 */
export function prepareTiles(data: string, size: number, out: string): PreparedTiles {
  const tiles = readTileFolder(data, { classes: CLASSES, size });
  const manifest = readManifest(data);
  rmSync(out, { recursive: true, force: true });
  let bytes = 0;
  const rows = ['file,label,patient,site'];
  for (const t of tiles) {
    const name = basename(t.file).replace(/\.(jpe?g|png)$/i, '') + '.png';
    const dir = join(out, t.className);
    mkdirSync(dir, { recursive: true });
    const png = encodeRgbPng(t.pixels, size);
    writeFileSync(join(dir, name), png);
    bytes += png.length;
    const row = manifest?.get(basename(t.file));
    rows.push([`${t.className}/${name}`, t.className, row?.patient ?? '', row?.site ?? ''].join(','));
  }
  writeFileSync(join(out, 'manifest.csv'), rows.join('\n') + '\n');
  const back = readTileFolder(out, { classes: CLASSES, size });
  if (back.length !== tiles.length) throw new Error(`prepared ${tiles.length} tiles but read back ${back.length}`);
  back.forEach((b, i) => {
    const t = tiles[i];
    if (b.className !== t.className || b.site !== t.site || b.patient !== t.patient || !b.pixels.every((v, j) => v === t.pixels[j])) {
      throw new Error(`prepared tile ${b.file} differs from ${t.file} read at ${size} px`);
    }
  });
  return { count: tiles.length, bytes };
}

/** cli/simulate.ts and everything it imports as one ES module that runs with Node alone. */
export async function bundleSimulate(outfile: string): Promise<number> {
  const result = await build({
    entryPoints: [join(ROOT, 'cli', 'simulate.ts')],
    outfile,
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // The quality probe uses MobileNetV2 only; InceptionV3 (the report's network, 30 MB) and ONNX Runtime
    // (the report's native engine) stay out: the report runs on the development machine.
    external: ['nsfwjs/models/inception_v3', 'nsfwjs/models/mobilenet_v2_mid', 'onnxruntime-node'],
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'warning',
    metafile: true,
  });
  return Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
}

/**
 * Copy what `simulate --resume` reads from an earlier run folder (cli/simulationResume.ts) into `to`:
 * summary.json, checkpoint.fgw, local-weights/ where the run has them, and checkpoint-best.fgw unless the
 * best round is the last (checkpoint.fgw then holds it: a paper-size checkpoint is ~9 MB of the 64 MiB a
 * call carries). Returns the bytes copied.
 */
export function copyResumeRun(from: string, to: string): number {
  for (const needed of ['summary.json', 'checkpoint.fgw']) {
    if (!existsSync(join(from, needed))) throw new CliError(`--resume ${from}: no ${needed} there (the run/ folder of an earlier device call holds it)`);
  }
  let summary: { rounds?: unknown[]; quality?: { best?: { round?: number } | null } };
  try {
    summary = JSON.parse(readFileSync(join(from, 'summary.json'), 'utf8'));
  } catch (e) {
    throw new CliError(`--resume ${from}: summary.json is not valid JSON (${(e as Error).message})`);
  }
  const bestIsLast = summary.quality?.best?.round === summary.rounds?.length;
  mkdirSync(to, { recursive: true });
  for (const name of ['summary.json', 'checkpoint.fgw', ...(bestIsLast ? [] : ['checkpoint-best.fgw']), 'local-weights']) {
    if (existsSync(join(from, name))) cpSync(join(from, name), join(to, name), { recursive: true });
  }
  return sizeOf(to);
}

function sizeOf(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((s, n) => s + sizeOf(join(path, n)), 0);
}

async function main(argv: string[]): Promise<void> {
  const f = parseFlags(argv, {
    data: { type: 'string', default: join(ROOT, '..', 'shared', 'data', 'crc-msi', 'train') },
    size: { type: 'string', default: '64' },
    out: { type: 'string', default: '.device-run' },
    'gpu-carry': { type: 'string', default: '.gpu-carry' },
    resume: { type: 'string' },
    bench: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f === 'help') {
    console.log(USAGE);
    return;
  }
  const size = Number(f.size);
  if (!Number.isInteger(size) || size < 16 || size % 8 !== 0) throw new CliError(`--size must be a multiple of 8 from 16, got "${f.size}"`);
  const out = resolve(f.out as string);
  const carry = resolve(f['gpu-carry'] as string);
  const needed = ['node.xz', 'dawn.node.xz'];
  const deb = existsSync(carry) ? readdirSync(carry).find((n) => /^libvulkan1_.*\.deb$/.test(n)) : undefined;
  const missing = needed.filter((n) => !existsSync(join(carry, n)));
  if (missing.length || !deb) throw new CliError(`${carry} lacks ${[...missing, ...(deb ? [] : ['libvulkan1_*.deb'])].join(', ')}: run \`bash ../shared/gpu/prepare-carry.sh\` first`);
  rmSync(out, { recursive: true, force: true }); // nothing stale travels (e.g. a check's unpacked dawn.node)
  mkdirSync(out, { recursive: true });
  const exclude = join(ROOT, '.git', 'info', 'exclude');
  const rel = `/${basename(out)}/`;
  if (out.startsWith(ROOT) && existsSync(dirname(exclude)) && !(existsSync(exclude) && readFileSync(exclude, 'utf8').split('\n').includes(rel))) appendFileSync(exclude, `${rel}\n`);
  for (const n of [...needed, deb]) copyFileSync(join(carry, n), join(out, n));
  const t0 = Date.now();
  const tiles = prepareTiles(f.data as string, size, join(out, `train-${size}`));
  console.log(`tiles: ${tiles.count} at ${size} px, ${(tiles.bytes / 1e6).toFixed(1)} MB, read back identical (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  const bundle = await bundleSimulate(join(out, 'simulate.mjs'));
  console.log(`simulate.mjs: ${(bundle / 1e6).toFixed(1)} MB`);
  // The run is the paper preset's first: its GAN config file is the preset's.
  writeFileSync(join(out, 'recipe.json'), JSON.stringify(PRESETS.paper.recipe, null, 2) + '\n');
  if (f.bench) {
    const bench = join(carry, 'gan-bench.mjs');
    if (!existsSync(bench)) throw new CliError(`--bench: ${bench} is missing: run \`node --import tsx bench/ganBundle.ts\` first`);
    copyFileSync(bench, join(out, 'gan-bench.mjs'));
    console.log(`gan-bench.mjs: ${(statSync(bench).size / 1e6).toFixed(1)} MB (deviceRun.sh benchmarks before it trains)`);
  }
  if (f.resume) console.log(`resume/: ${(copyResumeRun(resolve(f.resume as string), join(out, 'resume')) / 1e6).toFixed(1)} MB from ${f.resume}`);
  const total = sizeOf(out);
  console.log(`${out}: ${(total / 1e6).toFixed(1)} MB (with the working tree, at most ${DEVICE_TREE_LIMIT / 2 ** 20} MiB may travel)`);
  if (total > DEVICE_TREE_LIMIT) throw new CliError(`${out} is ${(total / 2 ** 20).toFixed(1)} MiB: over the ${DEVICE_TREE_LIMIT / 2 ** 20} MiB a device call carries`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void runCli(() => main(process.argv.slice(2)));
