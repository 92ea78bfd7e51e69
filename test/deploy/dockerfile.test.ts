import { readFileSync, statSync } from 'node:fs';
import { join, posix, relative, resolve } from 'node:path';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, ENV, PATHS } from '../../server/config.ts';
import viteConfig from '../../vite.config.ts';
import { parseDockerfile, type DockerInstruction, type DockerStage } from '../helpers/dockerfile.ts';
import { dockerignoreMatcher } from '../helpers/dockerignore.ts';
import { importClosure } from '../helpers/importClosure.ts';
import { find, podSpec, rendered, ROOT } from './k8sFiles.ts';

/**
 * The Dockerfile without a container engine: dockerfile-utils' linter, then its stages read with
 * dockerfile-ast and checked against what the server and the simulation load at run time (their import
 * closure), the server's config module and the Deployment.
 */

const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const { stages } = parseDockerfile(text);
const ignored = dockerignoreMatcher(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const runtime = stages.at(-1)!;
const stage = (name: string) => stages.find((s) => s.name === name)!;
const all = (s: DockerStage, keyword: string) => s.instructions.filter((i) => i.keyword === keyword);
const workdir = (s: DockerStage) => all(s, 'WORKDIR').at(-1)!.args[0];
const runs = (s: DockerStage) => all(s, 'RUN').map((i) => i.args.join(' '));

/**
 * COPY source → where it lands in the image, for copies from the build context (`from` unset) or from a
 * stage. Docker's rules: a directory's contents are copied into the destination; a file lands in the
 * destination when that ends with '/' (or several sources are given), else it becomes the destination.
 * Sources in other stages are directories here (node_modules, dist).
 */
function copies(s: DockerStage, from?: string): { src: string; dest: string }[] {
  return all(s, 'COPY')
    .filter((i: DockerInstruction) => i.from === from)
    .flatMap((i) => {
      const target = i.args.at(-1)!;
      const dest = posix.resolve(workdir(s), target);
      const srcs = i.args.slice(0, -1);
      return srcs.map((src) => {
        const isDir = from !== undefined || statSync(join(ROOT, src)).isDirectory();
        const into = isDir || !(target.endsWith('/') || srcs.length > 1) ? dest : posix.join(dest, posix.basename(src));
        return { src: posix.normalize(src).replace(/\/$/, ''), dest: into };
      });
    });
}

describe('Dockerfile', () => {
  it('passes the dockerfile-utils linter with no problem at all', () => {
    expect(validate(text)).toEqual([]);
  });

  it('is multi-stage on a slim Node 20 image: build (all deps, the web app), deps (production deps), runtime last', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    for (const s of stages) expect(s.base, s.name).toMatch(/^node:20(\.[\d.]+)?-[a-z]*-?slim(@sha256:[0-9a-f]{64})?$/);
    expect(runs(stage('build'))).toEqual(['npm ci --no-audit --no-fund', 'npm run build']);
    expect(pkg.scripts.build).toMatch(/^vite build/);
    expect(runs(stage('deps'))[0]).toMatch(/^npm ci --omit=dev /);
  });

  it('the runtime stage takes node_modules from the production-only stage and dist/ from the web-app build, where the server looks', () => {
    const app = workdir(runtime);
    expect(copies(runtime, 'deps')).toEqual([{ src: posix.join(workdir(stage('deps')), 'node_modules'), dest: posix.join(app, 'node_modules') }]);
    // vite writes dist/ (vite.config.ts: root client/, outDir ../dist); the server serves DEFAULTS.staticDir.
    expect(relative(ROOT, resolve(ROOT, viteConfig.root!, viteConfig.build!.outDir!))).toBe(DEFAULTS.staticDir);
    expect(copies(runtime, 'build')).toEqual([{ src: posix.join(workdir(stage('build')), DEFAULTS.staticDir), dest: posix.join(app, DEFAULTS.staticDir) }]);
    expect(copies(stage('build')).map((c) => c.src)).toContain('.');
  });

  it('copies every file the server and the simulation load, and .dockerignore keeps none of them out', () => {
    const jobCommand = podSpec(find(rendered('simulate'), 'Job', 'fedgan-simulated-hospitals')).containers[0].command!;
    const cmd = all(runtime, 'CMD').at(-1)!.json!;
    const entries = [cmd.at(-1)!, jobCommand.at(-1)!];
    const { files, packages } = importClosure(ROOT, entries);
    expect(files).toEqual(expect.arrayContaining(['server/main.ts', 'server/config.ts', 'cli/simulate.ts', 'shared/gan/gan.ts']));
    const app = workdir(runtime);
    const fromContext = copies(runtime);
    for (const f of [...files, 'package.json']) {
      const lands = fromContext.filter((c) => c.src === '.' || f === c.src || f.startsWith(c.src + '/')).map((c) => posix.join(c.dest, posix.relative(c.src, f)));
      expect(lands, `${f} is copied to ${app}/${f}`).toContain(posix.join(app, f));
      expect(ignored(f), `${f} is not in .dockerignore`).toBe(false);
    }
    // Packages: production dependencies (the deps stage installs nothing else), tsx included for --import.
    for (const p of [...packages, 'tsx']) expect(pkg.dependencies[p], `${p} in dependencies`).toBeDefined();
  });

  it('leaves tests, secrets and local state out of the build context but keeps what the build needs', () => {
    for (const p of ['.git', 'node_modules', 'dist', 'state', 'server/auth.test.ts', 'tokens.yaml', 'deploy/k8s', 'join-links.txt']) expect(ignored(p), p).toBe(true);
    for (const p of ['package.json', 'package-lock.json', 'vite.config.ts', 'tsconfig.json', 'client/index.html', 'client/main.ts', 'shared/weights.ts', 'server/main.ts', 'cli/simulate.ts'])
      expect(ignored(p), p).toBe(false);
  });

  it('runs `npm run server` as a numeric non-root user, the Deployment\'s, exposing the server port', () => {
    const cmd = all(runtime, 'CMD').at(-1)!.json!;
    expect(cmd.join(' ')).toBe(pkg.scripts.server);
    const users = all(runtime, 'USER');
    expect(users).toHaveLength(1);
    const [uid, gid] = users[0].args[0].split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    const pod = podSpec(find(rendered('base'), 'Deployment', 'fedgan'));
    expect([uid, gid]).toEqual([pod.securityContext.runAsUser, pod.securityContext.runAsGroup]);
    // Nothing runs as root after USER.
    expect(runtime.instructions.slice(runtime.instructions.indexOf(users[0])).filter((i) => i.keyword === 'RUN')).toEqual([]);
    expect(all(runtime, 'EXPOSE').flatMap((i) => i.args)).toEqual([String(DEFAULTS.port)]);
  });

  it('sets only environment the server reads (plus NODE_ENV), and its HEALTHCHECK is the liveness path', () => {
    const env = Object.fromEntries(all(runtime, 'ENV').flatMap((i) => i.env!));
    for (const k of Object.keys(env)) if (k !== 'NODE_ENV') expect(Object.values(ENV), k).toContain(k);
    expect(env[ENV.PORT]).toBe(String(DEFAULTS.port));
    const c = podSpec(find(rendered('base'), 'Deployment', 'fedgan')).containers[0];
    expect(env[ENV.STATE_DIR]).toBe(c.env!.find((e) => e.name === ENV.STATE_DIR)!.value);
    const hc = all(runtime, 'HEALTHCHECK');
    expect(hc).toHaveLength(1);
    expect(hc[0].raw).toContain(`'${PATHS.healthz}'`);
  });
});
