import { z } from 'zod';
import { ConfigError, parseWith } from './configError.ts';

/**
 * The one typed configuration of a conditional GAN: architecture and training hyper-parameters.
 * Defaults follow the paper (and ../shared/gpu/baseline/ganstep.js for the architecture):
 * ACGAN/CGAN use Adam 2e-4, β1 0.5; WGAN-GP uses n_critic 5, λ 10, Adam 1e-4, betas (0, 0.9).
 */
export const GAN_TYPES = ['acgan', 'cgan', 'wgan-gp'] as const;
export type GanType = (typeof GAN_TYPES)[number];
export const DISCRIMINATOR_TYPES = ['cnn', 'resnet', 'vit', 'swin'] as const;
export type DiscriminatorType = (typeof DISCRIMINATOR_TYPES)[number];

const imageSize = z
  .number()
  .int()
  .min(16, 'must be at least 16')
  .max(256, 'must be at most 256')
  .refine((s) => s % 8 === 0, 'must be a multiple of 8 (the generator upsamples 3 times from size/8)');

const optimizerSchema = z
  .object({
    learningRate: z.number().positive().max(1),
    beta1: z.number().min(0).max(0.999),
    beta2: z.number().min(0).max(0.9999),
  })
  .strict();
export type OptimizerConfig = z.infer<typeof optimizerSchema>;

export const ganConfigSchema = z
  .object({
    gan: z.enum(GAN_TYPES).default('acgan'),
    classes: z
      .array(z.string().regex(/^[A-Za-z0-9_-]+$/, 'class names may hold letters, digits, _ and - only'))
      .min(2, 'needs at least 2 classes')
      .max(64)
      .refine((c) => new Set(c).size === c.length, 'class names must be unique')
      .default(['MSIH', 'nonMSIH']),
    imageSize: imageSize.default(64),
    latentDim: z.number().int().min(1).max(1024).default(100),
    generator: z
      .object({
        /** Channels after the dense projection; halves at each of the three upsampling stages. */
        baseChannels: z.number().int().min(1).max(1024).default(128),
        momentum: z.number().min(0).max(1).default(0.8),
        dropout: z.number().min(0).max(0.9).default(0),
      })
      .strict()
      .default({ baseChannels: 128, momentum: 0.8, dropout: 0 }),
    discriminator: z
      .object({
        type: z.enum(DISCRIMINATOR_TYPES).default('cnn'),
        /** Channels of the first stage; doubles at each downsampling stage. */
        baseChannels: z.number().int().min(1).max(512).default(32),
        dropout: z.number().min(0).max(0.9).default(0.25),
        /** Transformer discriminators (vit, swin). */
        patchSize: z.number().int().min(1).max(32).default(8),
        embedDim: z.number().int().min(4).max(1024).default(96),
        depth: z.number().int().min(1).max(24).default(4),
        heads: z.number().int().min(1).max(32).default(4),
        windowSize: z.number().int().min(1).max(32).default(4),
      })
      .strict()
      .default({ type: 'cnn', baseChannels: 32, dropout: 0.25, patchSize: 8, embedDim: 96, depth: 4, heads: 4, windowSize: 4 }),
    /** Defaults depend on the GAN type (see resolveOptimizers). */
    optimizerG: optimizerSchema.partial().default({}),
    optimizerD: optimizerSchema.partial().default({}),
    batchSize: z.number().int().min(1).max(4096).default(32),
    nCritic: z.number().int().min(1).max(20).default(5),
    gpLambda: z.number().min(0).max(1000).default(10),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(42),
  })
  .strict();

export type GanConfigInput = z.input<typeof ganConfigSchema>;
export type GanConfig = Omit<z.output<typeof ganConfigSchema>, 'optimizerG' | 'optimizerD'> & {
  optimizerG: OptimizerConfig;
  optimizerD: OptimizerConfig;
};

export function defaultOptimizer(gan: GanType): OptimizerConfig {
  return gan === 'wgan-gp' ? { learningRate: 1e-4, beta1: 0, beta2: 0.9 } : { learningRate: 2e-4, beta1: 0.5, beta2: 0.999 };
}

/** Validate and complete a GAN config; throws ConfigError naming every bad field. */
export function parseGanConfig(input: unknown = {}, source = 'GAN config', prefix = ''): GanConfig {
  const c = parseWith(ganConfigSchema, input ?? {}, source, prefix);
  const d = defaultOptimizer(c.gan);
  const cfg: GanConfig = { ...c, optimizerG: { ...d, ...c.optimizerG }, optimizerD: { ...d, ...c.optimizerD } };
  if (cfg.discriminator.type === 'vit' || cfg.discriminator.type === 'swin') {
    const { patchSize, embedDim, heads } = cfg.discriminator;
    const extra: { path: string; message: string }[] = [];
    if (cfg.imageSize % patchSize !== 0) extra.push({ path: 'discriminator.patchSize', message: `must divide imageSize ${cfg.imageSize}` });
    if (embedDim % heads !== 0) extra.push({ path: 'discriminator.embedDim', message: `must be divisible by heads (${heads})` });
    const grid = cfg.imageSize / patchSize;
    if (cfg.discriminator.type === 'swin' && Number.isInteger(grid) && grid > cfg.discriminator.windowSize && grid % cfg.discriminator.windowSize !== 0) {
      extra.push({ path: 'discriminator.windowSize', message: `must divide the swin patch grid ${grid} (imageSize / patchSize)` });
    }
    if (extra.length) throw new ConfigError(source, extra.map((e) => ({ ...e, path: prefix ? `${prefix}.${e.path}` : e.path })));
  }
  return cfg;
}
