import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bestGan, firstSteps, largeSteps, PRESETS, runStep, type PlanInput } from './experiment.ts';

const plan = (preset: keyof typeof PRESETS, out = '/o'): PlanInput => ({ preset: PRESETS[preset], data: '/d/train', test: '/d/test', out, seed: 42 });

describe('npm run experiment', () => {
  it('paper: 3 GAN types × 2 partitions at 64 px, each evaluated on its best checkpoint, then compare full', () => {
    const steps = firstSteps(plan('paper'));
    expect(steps.map((s) => s.name)).toEqual([
      'train acgan, site, 64 px',
      'train cgan, site, 64 px',
      'train wgan-gp, site, 64 px',
      'train acgan, noniid:0.7, 64 px',
      'train cgan, noniid:0.7, 64 px',
      'train wgan-gp, noniid:0.7, 64 px',
      'evaluate /o/acgan-site-64px',
      'evaluate /o/cgan-site-64px',
      'evaluate /o/wgan-gp-site-64px',
      'evaluate /o/acgan-noniid-0-7-64px',
      'evaluate /o/cgan-noniid-0-7-64px',
      'evaluate /o/wgan-gp-noniid-0-7-64px',
      'compare --preset full',
    ]);
    const t = steps[0];
    expect(t.script).toBe('simulate');
    expect(t.args.join(' ')).toBe(
      '--data /d/train --out /o/acgan-site-64px --clients 4 --partition site --gan acgan --image-size 64 --g-channels 128 --d-channels 32 --batch-size 64 --local-steps 200 --rounds 100 --config /o/recipe.json --quality-every 5 --quality-per-class 64 --until-flat --flat-patience 4 --seed 42',
    );
    expect(t.done).toBe('/o/acgan-site-64px/summary.json');
    // Each report gets its run's split, so that it also answers per hospital.
    expect(steps[6].args).toEqual([
      '--checkpoint', '/o/acgan-site-64px/checkpoint-best.fgw', '--real-train', '/d/train', '--real-test', '/d/test', '--per-class', '500', '--out', '/o/acgan-site-64px/report',
      '--partition', 'site', '--clients', '4', '--partition-seed', '42',
    ]);
    expect(steps[10].args.slice(-6)).toEqual(['--partition', 'noniid:0.7', '--clients', '4', '--partition-seed', '42']);
    expect(steps[12].done).toBe('/o/compare/compare.json');
  });

  it('chooses the GAN type with the lowest best KID on the first partition, and trains it at 128 px', () => {
    const p = plan('paper');
    const kids: Record<string, unknown> = {
      '/o/acgan-site-64px/summary.json': { quality: { best: { round: 10, kid: 0.02 } } },
      '/o/cgan-site-64px/summary.json': { quality: { best: { round: 30, kid: 0.011 } } },
      '/o/wgan-gp-site-64px/summary.json': { quality: { best: null } },
    };
    expect(bestGan(p, (f) => kids[f])).toEqual({ gan: 'cgan', kid: 0.011 });
    const large = largeSteps(p, 'cgan');
    expect(large.map((s) => s.name)).toEqual(['train cgan, site, 128 px', 'evaluate /o/cgan-site-128px']);
    expect(large[1].args.slice(-6)).toEqual(['--partition', 'site', '--clients', '4', '--partition-seed', '42']);
    expect(() => bestGan(p, () => ({}))).toThrow(/no run recorded a quality curve/);
  });

  it('cpu: a 32 px ACGAN run by site and one non-IID, each with its report; nothing at a larger size', () => {
    const steps = firstSteps(plan('cpu'));
    expect(steps.map((s) => s.name)).toEqual(['train acgan, site, 32 px', 'train acgan, noniid:0.7, 32 px', 'evaluate /o/acgan-site-32px', 'evaluate /o/acgan-noniid-0-7-32px']);
    expect(steps[1].args.join(' ')).toBe(
      '--data /d/train --out /o/acgan-noniid-0-7-32px --clients 4 --partition noniid:0.7 --gan acgan --image-size 32 --g-channels 32 --d-channels 32 --batch-size 32 --local-steps 25 --rounds 36 --config /o/recipe.json --quality-every 4 --quality-per-class 32 --until-flat --flat-patience 4 --seed 42',
    );
    expect(largeSteps(plan('cpu'), 'acgan')).toEqual([]);
    expect(PRESETS.cpu.recipe).toEqual({ augment: { policy: ['color', 'translation', 'cutout'] }, ema: { decay: 0.995 }, discriminator: { dropout: 0 }, modeSeeking: { lambda: 0.3 } });
  });

  it('cpu-long: the cpu run with a 65-minute budget, up to 400 rounds, the cpu run\'s EMA decay', () => {
    const steps = firstSteps(plan('cpu-long', '/l'));
    expect(steps.map((s) => s.name)).toEqual(['train acgan, site, 32 px', 'evaluate /l/acgan-site-32px']);
    expect(steps[0].args.join(' ')).toBe(
      '--data /d/train --out /l/acgan-site-32px --clients 4 --partition site --gan acgan --image-size 32 --g-channels 32 --d-channels 32 --batch-size 32 --local-steps 25 --rounds 400 --config /l/recipe.json --quality-every 4 --quality-per-class 32 --until-flat --flat-patience 6 --seed 42 --time-budget-minutes 65',
    );
    expect(PRESETS['cpu-long'].recipe).toEqual({ augment: { policy: ['color', 'translation', 'cutout'] }, ema: { decay: 0.995 }, discriminator: { dropout: 0 }, modeSeeking: { lambda: 0.3 } });
    // Presets without a budget pass none.
    expect(firstSteps(plan('cpu'))[0].args).not.toContain('--time-budget-minutes');
  });

    it('skips a step whose result exists (a second call resumes)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'exp-'));
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'run', 'summary.json'), '{}');
    const log: string[] = [];
    runStep({ name: 'train x', script: 'simulate', args: ['--no-such-flag'], done: join(dir, 'run', 'summary.json') }, (l) => log.push(l));
    expect(log).toEqual([`✓ train x (done: ${join(dir, 'run', 'summary.json')})`]);
  });
});
