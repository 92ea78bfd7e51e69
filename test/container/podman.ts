import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * podman for `npm run test:container`: installed from Debian's packages when missing, run with a
 * containers.conf of this test's own (CONTAINERS_CONF) that works on the CI machines: runc (crun fails on
 * their hybrid cgroups), cgroupfs (no systemd), and rlimits the machine grants (podman's defaults are refused).
 */

/** Where this test keeps what survives between runs on one machine: the local base image's root filesystem. */
export const CACHE_DIR = process.env.FEDGAN_CONTAINER_CACHE ?? join(homedir(), '.cache', 'fedgan-container');

/** Debian packages the test needs, by the command that shows each is there. */
const PACKAGES: Record<string, string> = {
  podman: 'podman',
  runc: 'runc',
  debootstrap: 'debootstrap',
  slirp4netns: 'slirp4netns',
  iptables: 'iptables',
  // The pause process of kube play's pods.
  catatonit: 'catatonit',
};

export class ContainerTestError extends Error {}

/** Prints a line with the seconds since the start of the run. */
const t0 = Date.now();
export function say(line: string): void {
  process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Installs what is missing with apt-get (as root: CI runs as root). Fails loudly with the reason. */
export function ensurePackages(): void {
  if (process.getuid?.() !== 0) {
    throw new ContainerTestError('npm run test:container runs as root (CI does): rootful podman, debootstrap and chroot for the local base image. Run it as root, or set FEDGAN_SKIP_CONTAINER_TEST=1 to skip it on purpose.');
  }
  const missing = Object.entries(PACKAGES)
    .filter(([cmd]) => !have(cmd) && !(cmd === 'iptables' && have('nft')))
    .map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  say(`installing ${missing.join(', ')} from Debian's archive`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...missing, 'uidmap', 'fuse-overlayfs', 'containernetworking-plugins', 'ca-certificates']]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) throw new ContainerTestError(`apt-get ${args[0]} failed (exit ${r.status}): cannot install ${missing.join(', ')}`);
  }
}

/** Writes the containers.conf and points CONTAINERS_CONF at it for every podman this process starts. */
export function configurePodman(): void {
  mkdirSync(CACHE_DIR, { recursive: true });
  const conf = join(CACHE_DIR, 'containers.conf');
  writeFileSync(
    conf,
    [
      '# Written by test/container/podman.ts for npm run test:container.',
      '[containers]',
      '# podman\'s default rlimits are above what these machines grant.',
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[engine]',
      '# crun fails on hybrid cgroups (v1 + v2), runc works; no systemd to manage cgroups.',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      '',
    ].join('\n'),
  );
  process.env.CONTAINERS_CONF = conf;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command, collecting its output; `echo` also streams it (for long builds). Never throws. */
export function exec(cmd: string, args: string[], opts: { echo?: boolean; input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b;
      if (opts.echo) process.stdout.write(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b;
      if (opts.echo) process.stderr.write(b);
    });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => {
      stderr += String(e);
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** podman with this test's config; throws with podman's own message when it fails. */
export async function podman(args: string[], opts: { echo?: boolean; input?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
  const r = await exec('podman', args, opts);
  if (r.code !== 0) throw new ContainerTestError(`podman ${args.join(' ')} failed (exit ${r.code}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-30).join('\n')}`);
  return r.stdout;
}

/** podman that may fail (clean-up, probes); returns its result. */
export function podmanTry(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return exec('podman', args, opts);
}

/** Checks that podman can start a container here at all; throws with the reason otherwise. */
export async function checkPodmanWorks(image: string): Promise<void> {
  const r = await podmanTry(['run', '--rm', '--network', 'none', image, 'node', '-e', 'console.log("ok")'], { timeoutMs: 120_000 });
  if (r.code !== 0 || r.stdout.trim() !== 'ok') {
    throw new ContainerTestError(`podman cannot run a container on this machine (exit ${r.code}):\n${r.stderr.trim()}\nSet FEDGAN_SKIP_CONTAINER_TEST=1 to skip this test on purpose.`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One container test at a time on a machine: the kube-played pods and volumes have the manifests' names
 * (fedgan-pod-0, fedgan-state…), so a second run would collide with the first. Waits for a running one
 * (saying so), takes over from one that died; returns the release function.
 */
export async function lockMachine(): Promise<() => void> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const dir = join(CACHE_DIR, 'lock');
  let said = false;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = NaN;
      try {
        pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        // Being written: look again.
      }
      if (Number.isInteger(pid) && !alive(pid)) {
        say(`the container test of process ${pid} ended without releasing ${dir}: taking over`);
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (!said) say(`another container test runs on this machine (process ${pid}, ${dir}): waiting for it`);
      said = true;
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}
