import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerTestError, podman, podmanTry, say } from './podman.ts';

/**
 * Builds the repository's Dockerfile as it is (no patch, no other Dockerfile), with podman:
 *   --pull=never       the base is the one in podman's store (base.ts), no registry is asked;
 *   --format docker    OCI images have no HEALTHCHECK: podman would drop the Dockerfile's;
 *   the host's CA bundle and an npmrc naming it, mounted read-only into every RUN, so that the build's
 *   `npm ci` trusts the certificate authorities this machine trusts (its way to the npm registry).
 * buildah leaves an empty file where each of the two was mounted; a second step removes them from the
 * image (one RUN as root, then the Dockerfile's user again, its config otherwise unchanged).
 */

export const CA_BUNDLE = process.env.FEDGAN_CA_BUNDLE ?? '/etc/ssl/certs/ca-certificates.crt';
/** Where the mounts land in the build containers; npm reads /usr/local/etc/npmrc (its global config). */
const CA_IN_BUILD = '/etc/ssl/certs/ca-certificates.crt';
const NPMRC_IN_BUILD = '/usr/local/etc/npmrc';

export async function buildImage(root: string, tag: string): Promise<{ seconds: number }> {
  const t = Date.now();
  if (!existsSync(CA_BUNDLE)) throw new ContainerTestError(`no CA bundle at ${CA_BUNDLE} (install ca-certificates, or set FEDGAN_CA_BUNDLE)`);
  const work = mkdtempSync(join(tmpdir(), 'fedgan-image-'));
  const raw = `${tag}-unstripped`;
  const previous = await podmanTry(['image', 'inspect', '--format', '{{.Id}}', tag]);
  try {
    const npmrc = join(work, 'npmrc');
    // The CA bundle, and more patience with the registry than npm's default (2 retries): a reset connection
    // should not fail the build.
    writeFileSync(npmrc, `cafile=${CA_IN_BUILD}\nfetch-retries=6\nfetch-retry-mintimeout=5000\nfetch-retry-maxtimeout=60000\n`);
    say(`podman build ${root} (the Dockerfile unchanged) -> ${tag}`);
    // --layers=false: no cache images are kept (each run would leave ~1.7 GB of superseded ones behind); the
    // stages' npm ci then run every time (about 2 minutes on 2 cores).
    const build = () =>
      podman(
        ['build', '--pull=never', '--format', 'docker', '--layers=false', '-v', `${CA_BUNDLE}:${CA_IN_BUILD}:ro`, '-v', `${npmrc}:${NPMRC_IN_BUILD}:ro`, '-f', join(root, 'Dockerfile'), '-t', raw, root],
        { echo: true, timeoutMs: 1_800_000 },
      );
    try {
      await build();
    } catch (e) {
      // Once more after a network failure of the registry (the whole build: podman cannot resume a stage).
      if (!/ECONNRESET|ETIMEDOUT|EAI_AGAIN|ECONNREFUSED|socket hang up|network/i.test(String(e))) throw e;
      say(`the build failed on the network, building once more:\n${String(e).split('\n').slice(-3).join('\n')}`);
      await build();
    }
    // The runtime stage's config, to restore it after the clean-up step.
    const user = (await podman(['image', 'inspect', '--format', '{{.Config.User}}', raw])).trim();
    const strip = join(work, 'Containerfile.strip');
    writeFileSync(
      strip,
      [
        `FROM ${raw}`,
        'USER 0',
        // The empty mount points; directories only when the mount created them (empty, not in the base).
        `RUN rm -f ${CA_IN_BUILD} ${NPMRC_IN_BUILD} && (rmdir /etc/ssl/certs /etc/ssl 2>/dev/null || true)`,
        `USER ${user}`,
        '',
      ].join('\n'),
    );
    await podman(['build', '--pull=never', '--format', 'docker', '--layers=false', '-f', strip, '-t', tag, work], { timeoutMs: 300_000 });
    // The image this one replaces (an earlier run's), unless something still uses it.
    const before = previous.code === 0 ? previous.stdout.trim() : '';
    const now = (await podman(['image', 'inspect', '--format', '{{.Id}}', tag])).trim();
    if (before && before !== now) await podmanTry(['rmi', before]);
    return { seconds: (Date.now() - t) / 1000 };
  } finally {
    await podmanTry(['rmi', raw]);
    rmSync(work, { recursive: true, force: true });
  }
}

/** The image's size in bytes, as podman reports it. */
export async function imageSize(tag: string): Promise<number> {
  return Number((await podman(['image', 'inspect', '--format', '{{.Size}}', tag])).trim());
}
