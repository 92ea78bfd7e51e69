import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../../server/auth.ts';
import { writeSyntheticTiles } from '../../node/testing/syntheticTiles.ts';
import { kustomize, type K8sObject } from '../helpers/kustomize.ts';
import { buildDir, find, ROOT } from '../deploy/k8sFiles.ts';
import { BASE_IMAGE, ensureBaseImage } from './base.ts';
import { buildImage, imageSize } from './image.ts';
import { indexedJobAsPods, serverForKubePlay, toYaml } from './kubePlay.ts';
import { checkPodmanWorks, configurePodman, ContainerTestError, ensurePackages, lockMachine, podman, podmanTry, say } from './podman.ts';
import { podmanRunSpec, quantity } from './podmanRun.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * npm run test:container (docs/deploy.md, "The container test"): the image built from the Dockerfile as it
 * is, run under the prod Deployment's constraints, a federation played against it by the Node hospitals,
 * stopped and resumed; then the dev overlay started with `podman kube play` and the simulate-scale
 * overlay's hospitals (one pod each) completing a round against it. Everything it creates in podman is
 * removed at the end, also on failure. FEDGAN_SKIP_CONTAINER_TEST=1 skips it, saying so.
 */

const IMAGE = 'localhost/fedgan-crc:dev';
const PREFIX = `fedgan-ctest-${process.pid}`;
const HOSPITALS = ['sim-1', 'sim-2'];
const TOKENS = Object.fromEntries(HOSPITALS.map((h, i) => [h, `container-test-token-${i + 1}-${process.pid}-0123456789`]));
const OPERATOR_TOKEN = `container-test-operator-${process.pid}-0123456789`;

/** A federation small enough for a round in seconds on a CPU (the overlays' own are sized for a real run). */
function testFederation(o: { rounds: number; localSteps: number; imageSize: number }): string {
  return [
    `rounds: ${o.rounds}`,
    `localSteps: ${o.localSteps}`,
    'fraction: 1',
    `minFit: ${HOSPITALS.length}`,
    `minAvailable: ${HOSPITALS.length}`,
    `minCompletion: ${HOSPITALS.length}`,
    'roundDeadlineSeconds: 600',
    'quality:',
    '  everyRounds: 0',
    'model:',
    '  gan: acgan',
    '  classes: [MSIH, nonMSIH]',
    `  imageSize: ${o.imageSize}`,
    '  latentDim: 8',
    '  batchSize: 4',
    '  generator:',
    '    baseChannels: 8',
    '  discriminator:',
    '    baseChannels: 4',
    '',
  ].join('\n');
}

const plainTokens = () => HOSPITALS.map((h) => `- hospital: ${h}\n  token: ${TOKENS[h]}\n`).join('');
const hashedTokens = () => HOSPITALS.map((h) => `- hospital: ${h}\n  sha256: ${sha256Hex(TOKENS[h])}\n`).join('');

/** What this run created, removed in reverse order at the end whatever happened. */
class Cleanup {
  private readonly steps: { what: string; run: () => Promise<unknown> | unknown }[] = [];
  add(what: string, run: () => Promise<unknown> | unknown): void {
    this.steps.push({ what, run });
  }
  async run(): Promise<void> {
    while (this.steps.length) {
      const s = this.steps.pop()!;
      try {
        await s.run();
      } catch (e) {
        say(`clean-up: ${s.what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}

class Check {
  count = 0;
  ok(cond: unknown, what: string, detail = ''): void {
    if (!cond) throw new ContainerTestError(`FAILED: ${what}${detail ? `\n${detail}` : ''}`);
    this.count++;
    say(`ok   ${what}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  try {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
    return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
  } catch {
    return { status: 0, type: '', body: '' };
  }
}

async function until<T>(what: string, timeoutMs: number, f: () => Promise<T | undefined | false>, onTimeout?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new ContainerTestError(`timed out after ${timeoutMs / 1000} s waiting for ${what}${onTimeout ? `\n${await onTimeout()}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function logsOf(ctr: string): Promise<string> {
  const r = await podmanTry(['logs', ctr]);
  return (r.stdout + r.stderr).trim().split('\n').slice(-40).join('\n');
}

/** Nothing of the test listens on an address other than loopback: the sockets on `port`, and a connection from outside. */
async function onlyLoopback(check: Check, port: number, what: string): Promise<void> {
  const ss = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  if (ss.status === 0) {
    const locals = ss.stdout.trim().split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)[3]);
    check.ok(locals.every((a) => a.startsWith('127.0.0.1:')), `${what}: port ${port} is bound to 127.0.0.1 only`, `listening: ${locals.join(', ') || '(no listening socket: forwarded by iptables)'}`);
  } else say(`${what}: no \`ss\` here (iproute2): the listening sockets are not listed, only the outside connection is tried`);
  const external = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal && !a.address.startsWith('10.88.'))
    .map((a) => a!.address);
  for (const addr of external) {
    const reached = await new Promise<boolean>((res) => {
      const s = connect({ host: addr, port, timeout: 2000 });
      s.once('connect', () => (s.destroy(), res(true)));
      s.once('error', () => res(false));
      s.once('timeout', () => (s.destroy(), res(false)));
    });
    check.ok(!reached, `${what}: not reachable on this machine's address ${addr}:${port}`);
  }
}

/** Inside the container: who it runs as, what it may write, its capabilities, no-new-privileges, seccomp. */
const INSIDE = `
const fs = require('node:fs');
const status = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8').trim().split('\\n').map((l) => l.split(':\\t')));
const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); fs.rmSync(p); return 'ok'; } catch (e) { return e.code; } };
console.log(JSON.stringify({
  uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(),
  capEff: status.CapEff, capPrm: status.CapPrm, capBnd: status.CapBnd, noNewPrivs: status.NoNewPrivs, seccomp: status.Seccomp,
  root: tryWrite('/probe'), app: tryWrite('/app/probe'), etc: tryWrite('/etc/probe'),
  tmp: tryWrite('/tmp/probe'), state: tryWrite(process.env.STATE_DIR + '/probe'),
  pid1: fs.readFileSync('/proc/1/cmdline', 'utf8').split('\\0').join(' ').trim(),
}));`;

async function checkInside(check: Check, ctr: string, spec: { uid: number; gid: number; fsGroup?: number }, what: string): Promise<void> {
  const r = JSON.parse((await podman(['exec', ctr, 'node', '-e', INSIDE])).trim());
  check.ok(r.uid === spec.uid && r.gid === spec.gid, `${what}: runs as ${spec.uid}:${spec.gid}`, JSON.stringify(r));
  if (spec.fsGroup !== undefined) check.ok(r.groups.includes(spec.fsGroup), `${what}: in the fsGroup ${spec.fsGroup}`, JSON.stringify(r.groups));
  check.ok(r.root === 'EROFS' && r.app === 'EROFS' && r.etc === 'EROFS', `${what}: read-only root filesystem (/, /app, /etc: EROFS)`, JSON.stringify(r));
  check.ok(r.tmp === 'ok' && r.state === 'ok', `${what}: /tmp and the state volume are writable`, JSON.stringify(r));
  check.ok([r.capEff, r.capPrm, r.capBnd].every((c: string) => /^0+$/.test(c)), `${what}: no capabilities (effective, permitted, bounding all 0)`, JSON.stringify(r));
  check.ok(r.noNewPrivs === '1', `${what}: no new privileges`);
  check.ok(r.seccomp === '2', `${what}: seccomp filter on`);
  check.ok(/^node .*server\/main\.ts$/.test(r.pid1), `${what}: PID 1 is the server (${r.pid1})`);
}

async function statusOf(base: string, token?: string): Promise<any> {
  const r = await get(`${base}/api/status`, token ? { Authorization: `Bearer ${token}` } : {});
  return r.status === 200 ? JSON.parse(r.body) : undefined;
}

function startHospitals(server: string, work: string, tokensFile: string, imageSize: number): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/simulate.ts', '--server', server, '--tokens', tokensFile, '--clients', String(HOSPITALS.length), '--data', join(work, 'tiles'), '--image-size', String(imageSize), '--out', join(work, 'sim-out')], {
    cwd: ROOT,
    env: { ...process.env, DAWN_NODE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const exited = new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  return { child, output: () => out, exited };
}

/** Part 1: the image run as the prod Deployment says, a federation against it, SIGTERM, and a resume. */
async function runAsDeployment(check: Check, cleanup: Cleanup, work: string): Promise<void> {
  const objs = kustomize(buildDir('prod'));
  const deployment = find(objs, 'Deployment', 'fedgan');
  const pod = (deployment as any).spec.template.spec;
  const ROUNDS = 3;
  mkdirSync(work, { recursive: true });

  // The volumes, filled as the kubelet would: ConfigMap and Secret files (Secret: root-owned, group fsGroup, its mode).
  const files: Record<string, string> = {};
  for (const v of pod.volumes) {
    const dir = join(work, 'volumes', v.name);
    if (v.configMap) {
      mkdirSync(dir, { recursive: true });
      const cm = find(objs, 'ConfigMap', v.configMap.name) as any;
      for (const it of v.configMap.items) writeFileSync(join(dir, it.path), it.key === 'federation.yaml' ? testFederation({ rounds: ROUNDS, localSteps: 10, imageSize: 16 }) : cm.data[it.key]);
      files[v.name] = dir;
    } else if (v.secret) {
      mkdirSync(dir, { recursive: true });
      if (v.secret.secretName !== 'fedgan-tokens') throw new ContainerTestError(`unexpected Secret volume ${v.secret.secretName}`);
      for (const it of v.secret.items) {
        writeFileSync(join(dir, it.path), hashedTokens());
        chownSync(join(dir, it.path), 0, pod.securityContext.fsGroup);
        chmodSync(join(dir, it.path), v.secret.defaultMode);
      }
      files[v.name] = dir;
    }
  }
  chmodSync(join(work, 'volumes'), 0o755);
  chmodSync(work, 0o755);
  const named: Record<string, string> = {};
  for (const v of pod.volumes) {
    if (!v.persistentVolumeClaim && !v.emptyDir) continue;
    const name = `${PREFIX}-${v.name}`;
    await podman(['volume', 'create', name]);
    cleanup.add(`volume ${name}`, () => podman(['volume', 'rm', '-f', name]));
    named[v.name] = name;
  }
  const hostPort = await freePort();
  const spec = podmanRunSpec(deployment, { files, named }, { 'fedgan-operator': { token: OPERATOR_TOKEN } }, hostPort);
  const base = `http://127.0.0.1:${hostPort}`;
  say(`podman run ${spec.flags.join(' ').split(OPERATOR_TOKEN).join('<the Secret fedgan-operator, key token>')} ${IMAGE}`);

  const start = async (name: string) => {
    const t = Date.now();
    await podman(['run', '-d', '--pull=never', '--name', name, ...spec.flags, ...(spec.entrypoint ? ['--entrypoint', JSON.stringify(spec.entrypoint)] : []), IMAGE, ...(spec.args ?? [])]);
    cleanup.add(`container ${name}`, () => podmanTry(['rm', '-f', '-t', '0', name]));
    await until(`${name} ready (${spec.readinessPath})`, 180_000, async () => (await get(base + spec.readinessPath)).status === 200, () => logsOf(name));
    return (Date.now() - t) / 1000;
  };
  const first = `${PREFIX}-server`;
  const readyIn = await start(first);
  check.ok(true, `the container is ready ${readyIn.toFixed(1)} s after podman run`);

  // What podman applied, from its own record.
  const hc = JSON.parse(await podman(['inspect', first]))[0].HostConfig;
  check.ok(hc.ReadonlyRootfs === true && hc.CapDrop?.length > 0 && hc.SecurityOpt?.includes('no-new-privileges'), 'podman inspect: read-only root, capabilities dropped, no-new-privileges');
  const limits = pod.containers[0].resources.limits;
  check.ok(hc.Memory === Math.round(quantity(limits.memory)), `podman inspect: memory limit ${hc.Memory} bytes (the manifest's ${limits.memory})`);
  check.ok(hc.NanoCpus === Math.round(quantity(limits.cpu) * 1e9), `podman inspect: CPU limit ${hc.NanoCpus / 1e9} (the manifest's ${limits.cpu})`);

  // Every endpoint.
  const health = await get(base + spec.livenessPath);
  check.ok(health.status === 200, `GET ${spec.livenessPath}: 200`);
  check.ok((await get(base + spec.readinessPath)).status === 200, `GET ${spec.readinessPath}: 200`);
  const pub = await statusOf(base);
  check.ok(pub && pub.view !== 'operator' && pub.config?.rounds === ROUNDS, 'GET /api/status: the public view, with the mounted federation config');
  const full = await statusOf(base, OPERATOR_TOKEN);
  check.ok(full?.view === 'operator', 'GET /api/status with OPERATOR_TOKEN (from the Secret, as env): the operator view');
  const metrics = await get(base + '/metrics');
  check.ok(metrics.status === 200 && /^fedgan_ready 1$/m.test(metrics.body), 'GET /metrics: 200, fedgan_ready 1');
  const index = await get(base + '/');
  check.ok(index.status === 200 && index.type.startsWith('text/html') && /<html/i.test(index.body), 'GET /: the web app (text/html)');
  const logs = await logsOf(first);
  check.ok(logs.includes(`2 hospital(s) from TOKENS_FILE`), 'the server read the tokens Secret (hashes only)', logs);
  const hcRun = await podmanTry(['healthcheck', 'run', first]);
  check.ok(hcRun.code === 0, "the image's HEALTHCHECK (node, no curl) passes", hcRun.stdout + hcRun.stderr);
  await onlyLoopback(check, hostPort, 'podman run');
  await checkInside(check, first, spec, 'inside the container');

  // A federation by the Node hospitals against the container.
  writeSyntheticTiles(join(work, 'tiles'), { perClass: 8 });
  writeFileSync(join(work, 'hospital-tokens.yaml'), plainTokens());
  const t0 = Date.now();
  const sim = startHospitals(`ws://127.0.0.1:${hostPort}/ws`, work, join(work, 'hospital-tokens.yaml'), 16);
  cleanup.add('the Node hospitals', () => sim.child.exitCode === null && sim.child.kill('SIGKILL'));
  await until('round 1 completed', 300_000, async () => ((await statusOf(base))?.history?.length ?? 0) >= 1 || (sim.child.exitCode !== null && 'exited'), async () => sim.output() + (await logsOf(first)));
  const done = (await statusOf(base)).history.length as number;
  check.ok(done >= 1, `a round of ${HOSPITALS.length} Node hospitals completed against the container (${((Date.now() - t0) / 1000).toFixed(1)} s from their start)`, sim.output());

  // SIGTERM, what the kubelet sends: exit 0 well within the grace period, every completed round kept.
  const tStop = Date.now();
  await podman(['kill', '--signal', 'TERM', first]);
  const code = Number((await podman(['wait', first], { timeoutMs: (spec.stopTimeoutSeconds + 30) * 1000 })).trim());
  const stopSeconds = (Date.now() - tStop) / 1000;
  check.ok(code === 0, `SIGTERM: exit code 0 in ${stopSeconds.toFixed(1)} s (grace period ${spec.stopTimeoutSeconds} s)`, await logsOf(first));
  check.ok(stopSeconds < spec.stopTimeoutSeconds, 'SIGTERM: stopped within terminationGracePeriodSeconds');
  const stateVolume = named[pod.containers[0].volumeMounts.find((m: any) => m.mountPath === '/var/lib/fedgan/state').name];
  const mountpoint = (await podman(['volume', 'inspect', '--format', '{{.Mountpoint}}', stateVolume])).trim();
  const kept = readdirSync(join(mountpoint, 'checkpoints')).filter((f) => /^round-\d{6}\.fgw$/.test(f)).sort();
  const newest = Number(/\d+/.exec(kept.at(-1)!)![0]);
  check.ok(newest >= done, `the state volume keeps every completed round (newest checkpoint round ${newest}, ${done} completed before SIGTERM)`, kept.join(', '));

  // A new container on the same state volume (a replaced pod) resumes there; the hospitals reconnect.
  await podman(['rm', first]);
  const second = `${PREFIX}-server-2`;
  const again = await start(second);
  const resumed = await statusOf(base);
  check.ok(resumed.round === newest && resumed.history.length === newest, `restarted on the same volume: resumed at round ${resumed.round}, its history kept (ready in ${again.toFixed(1)} s)`, JSON.stringify(resumed).slice(0, 400));
  const code2 = await Promise.race([sim.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 300_000))]);
  const final = await statusOf(base);
  check.ok(code2 === 0 && final.round === ROUNDS && final.history.length === ROUNDS, `the hospitals reconnected and finished all ${ROUNDS} rounds (exit ${code2}; the server at round ${final.round})`, sim.output().split('\n').slice(-20).join('\n'));
  check.ok(new RegExp(`round ${ROUNDS} complete: ${HOSPITALS.length} hospitals`).test(sim.output()), `the hospitals report round ${ROUNDS} complete`);
  await podman(['stop', '-t', String(spec.stopTimeoutSeconds), second]);
  const code3 = JSON.parse(await podman(['inspect', second]))[0].State.ExitCode;
  check.ok(code3 === 0, 'podman stop (SIGTERM) of the resumed container: exit code 0');
}

/** Part 2: the dev overlay with podman kube play, and the simulate-scale overlay's hospitals against it. */
async function kubePlay(check: Check, cleanup: Cleanup, work: string): Promise<void> {
  mkdirSync(work, { recursive: true });
  const dev = kustomize(buildDir('dev'));
  const hostPort = await freePort();
  const secretFiles = { 'fedgan-tokens': { 'tokens.yaml': plainTokens() } };
  const secrets = { 'fedgan-operator': { token: OPERATOR_TOKEN } };
  const server = serverForKubePlay(dev, { configData: { 'fedgan-config': { 'federation.yaml': testFederation({ rounds: 1, localSteps: 2, imageSize: 32 }) } }, secretFiles, secrets, hostPort });
  for (const o of server) {
    if (o.kind === 'PersistentVolumeClaim' && (await podmanTry(['volume', 'exists', o.metadata.name])).code === 0) {
      throw new ContainerTestError(`a podman volume ${o.metadata.name} exists already (not made by this test): remove it (podman volume rm ${o.metadata.name}) and run again`);
    }
  }
  const serverYaml = join(work, 'kube-server.yaml');
  writeFileSync(serverYaml, toYaml(server));
  // kube play makes named volumes of its own (ConfigMap and emptyDir volumes) that kube down leaves: removed
  // (those that were not there before) after every pod is down.
  // Its bridge network (podman-default-kube-network), when this run made it, goes too.
  const lines = async (args: string[]) => (await podman(args)).split('\n').filter(Boolean);
  const volumesBefore = new Set(await lines(['volume', 'ls', '-q']));
  const networksBefore = new Set(await lines(['network', 'ls', '--format', '{{.Name}}']));
  cleanup.add('volumes and network made by kube play', async () => {
    for (const v of await lines(['volume', 'ls', '-q'])) if (!volumesBefore.has(v)) await podmanTry(['volume', 'rm', '-f', v]);
    for (const n of await lines(['network', 'ls', '--format', '{{.Name}}'])) if (!networksBefore.has(n)) await podmanTry(['network', 'rm', n]);
  });
  const t = Date.now();
  cleanup.add('kube down (server)', () => podmanTry(['kube', 'down', serverYaml]));
  await podman(['kube', 'play', serverYaml], { echo: true });
  const base = `http://127.0.0.1:${hostPort}`;
  const pods = JSON.parse(await podman(['pod', 'ps', '--format', 'json'])) as { Name: string; InfraId: string; Containers: { Names: string; Id: string }[] }[];
  const serverPod = pods.find((p) => p.Name.startsWith('fedgan-pod'));
  if (!serverPod) throw new ContainerTestError(`kube play made no fedgan pod: ${pods.map((p) => p.Name).join(', ')}`);
  const serverCtr = serverPod.Containers.find((c) => c.Id !== serverPod.InfraId)!.Names;
  await until('the kube-played server ready', 180_000, async () => (await get(base + '/readyz')).status === 200, () => logsOf(serverCtr));
  check.ok(true, `kube play of the dev overlay: ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  for (const p of ['/healthz', '/api/status', '/metrics', '/']) check.ok((await get(base + p)).status === 200, `kube play: GET ${p}: 200`);
  const hcRun = await podmanTry(['healthcheck', 'run', serverCtr]);
  check.ok(hcRun.code === 0, 'kube play: the liveness probe (exec, node) passes', hcRun.stdout + hcRun.stderr);
  await onlyLoopback(check, hostPort, 'kube play');
  const dep = find(dev, 'Deployment', 'fedgan') as any;
  await checkInside(check, serverCtr, { uid: dep.spec.template.spec.securityContext.runAsUser, gid: dep.spec.template.spec.securityContext.runAsGroup, fsGroup: dep.spec.template.spec.securityContext.fsGroup }, 'kube play');

  // The hospitals: the simulate-scale overlay's Indexed Job, one pod per hospital, against the server pod.
  const scale = kustomize(buildDir('simulate-scale'));
  const job = find(scale, 'Job', 'fedgan-hospitals') as any;
  const infra = JSON.parse(await podman(['inspect', serverPod.InfraId]))[0];
  const ip = Object.values(infra.NetworkSettings.Networks as Record<string, { IPAddress: string }>)[0]?.IPAddress || infra.NetworkSettings.IPAddress;
  const containerPort = dep.spec.template.spec.containers[0].ports[0].containerPort;
  const hospitals = indexedJobAsPods(job, { hospitals: HOSPITALS.length, service: { host: 'fedgan', to: `${ip}:${containerPort}` }, secrets });
  const claim = job.spec.template.spec.volumes.find((v: any) => v.persistentVolumeClaim).persistentVolumeClaim.claimName as string;
  if ((await podmanTry(['volume', 'exists', claim])).code === 0) throw new ContainerTestError(`a podman volume ${claim} exists already (not made by this test): remove it and run again`);
  await podman(['volume', 'create', claim]);
  cleanup.add(`volume ${claim}`, () => podmanTry(['volume', 'rm', '-f', claim]));
  const tilesAt = (await podman(['volume', 'inspect', '--format', '{{.Mountpoint}}', claim])).trim();
  writeSyntheticTiles(join(work, 'tiles-32'), { perClass: 8, size: 32 });
  cpSync(join(work, 'tiles-32'), tilesAt, { recursive: true });
  const hospitalsYaml = join(work, 'kube-hospitals.yaml');
  writeFileSync(hospitalsYaml, toYaml([...hospitals, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fedgan-tokens' }, data: secretFiles['fedgan-tokens'] } as K8sObject]));
  const th = Date.now();
  cleanup.add('kube down (hospitals)', () => podmanTry(['kube', 'down', hospitalsYaml]));
  await podman(['kube', 'play', hospitalsYaml], { echo: true });
  const names = hospitals.map((p) => `${p.metadata.name}-hospital`);
  for (const [i, name] of names.entries()) {
    const code = Number((await podman(['wait', name], { timeoutMs: 600_000 })).trim());
    const out = await logsOf(name);
    check.ok(code === 0, `kube play: hospital pod ${i} (index ${i}) exited 0`, out);
    check.ok(new RegExp(`${HOSPITALS[i]}: update for round 1 accepted`).test(out), `kube play: pod ${i} trained as ${HOSPITALS[i]}, its update accepted`, out);
    if (i === 0) check.ok(/round 1 complete: 2 hospitals/.test(out), 'kube play: round 1 complete with both hospitals', out);
  }
  const st = await statusOf(base);
  check.ok(st?.history?.length === 1 && st.history[0].participants === HOSPITALS.length, `kube play: the server recorded the round of ${HOSPITALS.length} hospital pods (${((Date.now() - th) / 1000).toFixed(1)} s)`);
}

async function main(): Promise<void> {
  if (process.env.FEDGAN_SKIP_CONTAINER_TEST === '1') {
    say('SKIPPED on request (FEDGAN_SKIP_CONTAINER_TEST=1): the image was not built or run.');
    return;
  }
  const times: Record<string, number> = {};
  const t = (k: string, t0: number) => (times[k] = (Date.now() - t0) / 1000);
  const check = new Check();
  const cleanup = new Cleanup();
  const work = mkdtempSync(join(tmpdir(), 'fedgan-ctest-'));
  cleanup.add('work dir', () => rmSync(work, { recursive: true, force: true }));
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      if (interrupted) return;
      interrupted = true;
      say(`${sig}: cleaning up`);
      void cleanup.run().finally(() => process.exit(130));
    });
  }
  let t0 = Date.now();
  try {
    ensurePackages();
    configurePodman();
    const release = await lockMachine();
    cleanup.add('the machine lock', release);
    t('packages', t0);
    t0 = Date.now();
    const b = await ensureBaseImage();
    t(`base image (${b.source})`, t0);
    await checkPodmanWorks(BASE_IMAGE);
    t0 = Date.now();
    // For working on this test only: FEDGAN_CONTAINER_REUSE_IMAGE=1 takes the image of the last run as it is.
    if (process.env.FEDGAN_CONTAINER_REUSE_IMAGE === '1' && (await podmanTry(['image', 'exists', IMAGE])).code === 0) say(`FEDGAN_CONTAINER_REUSE_IMAGE=1: ${IMAGE} of an earlier run, not rebuilt`);
    else await buildImage(ROOT, IMAGE);
    t('image build', t0);
    const size = await imageSize(IMAGE);
    say(`image ${IMAGE}: ${(size / 1e6).toFixed(0)} MB`);
    // FEDGAN_CONTAINER_PARTS=run or =kube runs one of the two parts (default: both).
    const parts = (process.env.FEDGAN_CONTAINER_PARTS ?? 'run,kube').split(',');
    for (const p of parts) if (p !== 'run' && p !== 'kube') throw new ContainerTestError(`FEDGAN_CONTAINER_PARTS: "${p}" is neither run nor kube`);
    if (parts.includes('run')) {
      t0 = Date.now();
      await runAsDeployment(check, cleanup, join(work, 'run'));
      t('run under the Deployment + federation + SIGTERM + resume', t0);
    }
    if (parts.includes('kube')) {
      t0 = Date.now();
      await kubePlay(check, cleanup, join(work, 'kube'));
      t('kube play + hospital pods', t0);
    }
    say(`all ${check.count} checks passed; image ${(size / 1e6).toFixed(0)} MB`);
  } finally {
    const tc = Date.now();
    await cleanup.run();
    t('clean-up', tc);
    for (const [k, v] of Object.entries(times)) say(`time: ${k}: ${v.toFixed(1)} s`);
  }
}

main().catch((e) => {
  process.stderr.write(`\nnpm run test:container failed: ${e instanceof Error ? e.message : String(e)}\n`);
  if (!(e instanceof ContainerTestError) && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
