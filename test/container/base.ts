import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_DIR, ContainerTestError, exec, podman, podmanTry, say } from './podman.ts';

/**
 * The Dockerfile's base image, `node:20-bookworm-slim`. No registry is reachable from CI, so unless the real
 * image is already in podman's store (or can be pulled), an equivalent is built here from what is reachable:
 *   - Debian bookworm, `debootstrap --variant=minbase` from Debian's archive (the slim image is bookworm too);
 *   - this machine's Node 20 binary (the official linux-x64 build, as in the real image, at /usr/local/bin);
 *   - npm 10.8.2 from the npm registry (`npm pack`), the npm of the real image, at /usr/local/lib/node_modules;
 *   - the user `node` (uid and gid 1000), the entrypoint script and CMD of the real image.
 * It is imported under the real image's name, so that the Dockerfile builds unchanged, and labelled with a
 * key of what went into it. Its root filesystem is cached in CACHE_DIR by that key: a second run on the same
 * machine imports it again without debootstrap or the registry.
 */

export const BASE_IMAGE = 'docker.io/library/node:20-bookworm-slim';
export const NPM_VERSION = '10.8.2';
const SUITE = 'bookworm';
const MIRROR = process.env.FEDGAN_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
/** Bump when the recipe below changes, so that cached bases are rebuilt. */
const RECIPE = 'fedgan-base-1';
const KEY_LABEL = 'org.fedgan.local-base-key';

/** The official image's entrypoint: a first argument that is a flag or not a command runs under node. */
const ENTRYPOINT = `#!/bin/sh
set -e
if [ "\${1#-}" != "\${1}" ] || [ -z "$(command -v "\${1}")" ] || { [ -f "\${1}" ] && ! [ -x "\${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
`;

function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('end', () => res(h.digest('hex')))
      .on('error', rej);
  });
}

async function nodeBinary(): Promise<{ path: string; version: string }> {
  const version = process.version;
  if (!/^v20\./.test(version)) throw new ContainerTestError(`the local base image needs a Node 20 binary (the image is node:20); this is Node ${version}`);
  return { path: process.execPath, version: version.slice(1) };
}

/** What the local base is made of, as a short key. */
async function baseKey(node: { path: string; version: string }): Promise<string> {
  const h = createHash('sha256');
  h.update(`${RECIPE}\n${SUITE}\n${MIRROR}\nnpm@${NPM_VERSION}\nnode ${node.version} ${await sha256File(node.path)}\n${ENTRYPOINT}`);
  return h.digest('hex').slice(0, 16);
}

async function imageLabel(image: string, label: string): Promise<string | null | undefined> {
  const r = await podmanTry(['image', 'inspect', '--format', `{{ index .Labels "${label}" }}`, image]);
  if (r.code !== 0) return undefined; // no such image
  const v = r.stdout.trim();
  return v === '' || v === '<no value>' ? null : v;
}

async function sh(cmd: string, args: string[], what: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) throw new ContainerTestError(`${what}: ${cmd} ${args.join(' ')} failed (exit ${r.code}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-20).join('\n')}`);
  return r.stdout;
}

/** Builds the root filesystem and writes it as a tar to `out`. */
async function buildRootfs(node: { path: string; version: string }, out: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'fedgan-base-'));
  const root = join(work, 'rootfs');
  try {
    say(`debootstrap --variant=minbase ${SUITE} (${MIRROR})`);
    await sh('debootstrap', ['--variant=minbase', SUITE, root, MIRROR], 'debootstrap', { timeoutMs: 900_000 });
    // As the slim image: no package lists, no downloaded packages, no docs to speak of.
    for (const d of ['var/lib/apt/lists', 'var/cache/apt/archives', 'var/cache/apt']) {
      for (const f of existsSync(join(root, d)) ? readdirSync(join(root, d)) : []) if (f.endsWith('.deb') || f.endsWith('.bin') || f.includes('_dists_')) rmSync(join(root, d, f), { force: true });
    }
    rmSync(join(root, 'var/log'), { recursive: true, force: true });
    mkdirSync(join(root, 'var/log'));

    say(`node ${node.version} (${node.path}) and npm ${NPM_VERSION} (npm pack) into /usr/local`);
    writeFileSync(join(root, 'usr/local/bin/node'), readFileSync(node.path));
    chmodSync(join(root, 'usr/local/bin/node'), 0o755);
    const pack = join(work, 'pack');
    mkdirSync(pack);
    const packed = (await sh('npm', ['pack', `npm@${NPM_VERSION}`, '--silent'], `npm ${NPM_VERSION} from the npm registry`, { cwd: pack, timeoutMs: 300_000 })).trim().split('\n').at(-1)!;
    const npmDir = join(root, 'usr/local/lib/node_modules/npm');
    mkdirSync(npmDir, { recursive: true });
    await sh('tar', ['-xzf', join(pack, packed), '-C', npmDir, '--strip-components=1', '--no-same-owner'], 'unpacking npm');
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));
    writeFileSync(join(root, 'usr/local/bin/docker-entrypoint.sh'), ENTRYPOINT);
    chmodSync(join(root, 'usr/local/bin/docker-entrypoint.sh'), 0o755);

    // The user `node`, uid and gid 1000, home /home/node: as the real image.
    await sh('chroot', [root, 'groupadd', '--gid', '1000', 'node'], 'adding the group node');
    await sh('chroot', [root, 'useradd', '--uid', '1000', '--gid', 'node', '--shell', '/bin/bash', '--create-home', 'node'], 'adding the user node');
    const v = (await sh('chroot', [root, '/usr/local/bin/node', '/usr/local/bin/npm', '--version'], 'npm in the new root')).trim();
    if (v !== NPM_VERSION) throw new ContainerTestError(`npm in the local base says ${v}, expected ${NPM_VERSION}`);

    say('packing the root filesystem');
    const tmpOut = `${out}.partial`;
    await sh('tar', ['--numeric-owner', '--xattrs', '-C', root, '-cf', tmpOut, '.'], 'packing the root filesystem', { timeoutMs: 600_000 });
    renameSync(tmpOut, out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Makes sure `node:20-bookworm-slim` is in podman's store: the real one if there (or pullable), else the
 * local equivalent, from the cache or built. Returns what was used and how long it took.
 */
export async function ensureBaseImage(): Promise<{ source: 'real' | 'local-present' | 'local-cache' | 'local-built'; seconds: number }> {
  const t = Date.now();
  const seconds = () => (Date.now() - t) / 1000;
  const node = await nodeBinary();
  const key = await baseKey(node);
  const label = await imageLabel(BASE_IMAGE, KEY_LABEL);
  if (label === null) {
    say(`${BASE_IMAGE}: the real image is in podman's store`);
    return { source: 'real', seconds: seconds() };
  }
  if (label === key) {
    say(`${BASE_IMAGE}: the local base ${key} is in podman's store`);
    return { source: 'local-present', seconds: seconds() };
  }
  if (label === undefined && process.env.FEDGAN_TRY_PULL === '1') {
    say(`pulling ${BASE_IMAGE}`);
    const r = await podmanTry(['pull', BASE_IMAGE], { timeoutMs: 120_000 });
    if (r.code === 0) return { source: 'real', seconds: seconds() };
    say(`cannot pull it (${r.stderr.trim().split('\n').at(-1)}): building the local equivalent`);
  }
  mkdirSync(CACHE_DIR, { recursive: true });
  const tar = join(CACHE_DIR, `base-${key}.tar`);
  let source: 'local-cache' | 'local-built' = 'local-cache';
  if (!existsSync(tar)) {
    source = 'local-built';
    // Older bases are of no use any more.
    for (const f of readdirSync(CACHE_DIR)) if (/^base-[0-9a-f]{16}\.tar(\.partial)?$/.test(f)) rmSync(join(CACHE_DIR, f), { force: true });
    await buildRootfs(node, tar);
  } else say(`${BASE_IMAGE}: the local base ${key} from ${tar}`);
  await podman([
    'import',
    '--change', `LABEL ${KEY_LABEL}=${key}`,
    '--change', `ENV NODE_VERSION=${node.version}`,
    '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--change', 'ENTRYPOINT ["docker-entrypoint.sh"]',
    '--change', 'CMD ["node"]',
    tar,
    BASE_IMAGE,
  ]);
  say(`${BASE_IMAGE}: local base ${key} imported (${source === 'local-built' ? 'built now' : 'from the cache'}) in ${seconds().toFixed(1)} s`);
  return { source, seconds: seconds() };
}
