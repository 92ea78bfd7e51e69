import { z } from 'zod';
import { ConfigError, parseWith } from './configError.ts';
import { isPlainObject } from '../plainObject.ts';

/**
 * The one typed configuration of a conditional GAN: architecture and training hyper-parameters.
 * Defaults follow the paper (and ../shared/gpu/baseline/ganstep.js for the architecture):
 * ACGAN/CGAN use Adam 2e-4, β1 0.5; WGAN-GP uses n_critic 5, λ 10, Adam 1e-4, betas (0, 0.9).
 */
export const GAN_TYPES = ['acgan', 'cgan', 'wgan-gp'] as const;
export type GanType = (typeof GAN_TYPES)[number];
export const DISCRIMINATOR_TYPES = ['cnn', 'resnet', 'vit', 'swin'] as const;
export type DiscriminatorType = (typeof DISCRIMINATOR_TYPES)[number];
/** DiffAugment's transforms (shared/gan/augment.ts). */
export const AUGMENTATIONS = ['color', 'translation', 'cutout'] as const;
export type Augmentation = (typeof AUGMENTATIONS)[number];
/** The adversarial term: non-saturating BCE or hinge (ACGAN, CGAN), Wasserstein (WGAN-GP, its only one). */
export const ADVERSARIAL_LOSSES = ['bce', 'hinge', 'wasserstein'] as const;
export type AdversarialLoss = (typeof ADVERSARIAL_LOSSES)[number];

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

/**
 * Differentiable augmentation (Zhao et al. 2020) of every discriminator input, reals and fakes, in every
 * GAN type (shared/gan/augment.ts). Off while `policy` is empty.
 */
const augmentSchema = z
  .object({
    /** Transforms, applied in this order: `color` (brightness, saturation, contrast), `translation`, `cutout`. */
    policy: z
      .array(z.enum(AUGMENTATIONS))
      .refine((p) => new Set(p).size === p.length, 'transforms must not repeat')
      .default([]),
    /** Largest shift of `translation`, as a fraction of the image side (rounded to whole pixels); DiffAugment: 1/8. */
    translation: z.number().min(0).max(0.5).default(0.125),
    /** Side of `cutout`'s zeroed square, as a fraction of the image side (rounded to whole pixels); DiffAugment: 1/2. */
    cutout: z.number().positive().max(1).default(0.5),
  })
  .strict();
export type AugmentConfig = z.infer<typeof augmentSchema>;

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
        /**
         * How each stage doubles the resolution before its convolution: `nearest` (the paper's) copies pixels
         * into 2 × 2 blocks, `bilinear` interpolates (shared/nn/layers.ts upsample2x). No weights change.
         */
        upsample: z.enum(['nearest', 'bilinear']).default('nearest'),
      })
      .strict()
      .default({ baseChannels: 128, momentum: 0.8, dropout: 0, upsample: 'nearest' }),
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
        /**
         * Spectral normalisation (Miyato et al. 2018) of every conv, dense and embedding weight of the
         * discriminator: each computes with W / σ(W), σ estimated by one power iteration per training step
         * (shared/nn/spectralNorm.ts). Off by default (docs/recipe.md says why).
         */
        spectralNorm: z.boolean().default(false),
        /**
         * Minibatch standard deviation (Karras et al. 2018): the backbone's features get one more, the mean
         * over features of their standard deviation across the batch, so the discriminator can tell a batch
         * of too-similar fakes from a batch of reals (shared/gan/discriminators/minibatchStd.ts). Reals and
         * fakes are then scored in separate passes; not with differential privacy.
         */
        minibatchStd: z.boolean().default(false),
      })
      .strict()
      .default({ type: 'cnn', baseChannels: 32, dropout: 0.25, patchSize: 8, embedDim: 96, depth: 4, heads: 4, windowSize: 4, spectralNorm: false, minibatchStd: false }),
    /** Defaults depend on the GAN type (see resolveOptimizers). */
    optimizerG: optimizerSchema.partial().default({}),
    optimizerD: optimizerSchema.partial().default({}),
    batchSize: z.number().int().min(1).max(4096).default(32),
    nCritic: z.number().int().min(1).max(20).default(5),
    gpLambda: z.number().min(0).max(1000).default(10),
    /** Defaults to `bce` (ACGAN, CGAN) or `wasserstein` (WGAN-GP); see parseGanConfig. */
    adversarialLoss: z.enum(ADVERSARIAL_LOSSES).optional(),
    augment: augmentSchema.default({ policy: [], translation: 0.125, cutout: 0.5 }),
    /**
     * An exponential moving average of the generator's weights, ema ← decay·ema + (1 − decay)·G after every
     * generator step, carried in the weight set as `ema/g/…` tensors; `generate()` samples from it. null: off.
     */
    ema: z
      .object({ decay: z.number().min(0).lt(1, 'must be below 1 (an average with decay 1 never moves)') })
      .strict()
      .nullable()
      .default(null),
    /** R1 regularisation of ACGAN and CGAN discriminators on real images, γ/2·E‖∇ₓD(x)‖² (Mescheder et al. 2018). null: off. */
    r1: z
      .object({ gamma: z.number().positive().max(1e4) })
      .strict()
      .nullable()
      .default(null),
    /**
     * Mode seeking (Mao et al. 2019, MSGAN): the generator's loss adds λ / (r + 1e-5), r the mean absolute
     * difference of two fakes of the same class over that of their latents, for the batch's pairs
     * (shared/gan/objectives.ts modeSeekingTerm). Fakes that ignore their latent (mode collapse) make r small
     * and the term large. null: off.
     */
    modeSeeking: z
      .object({ lambda: z.number().positive().max(100) })
      .strict()
      .nullable()
      .default(null),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(42),
  })
  .strict();

export type GanConfigInput = z.input<typeof ganConfigSchema>;
export type GanConfig = Omit<z.output<typeof ganConfigSchema>, 'optimizerG' | 'optimizerD' | 'adversarialLoss'> & {
  optimizerG: OptimizerConfig;
  optimizerD: OptimizerConfig;
  adversarialLoss: AdversarialLoss;
};

export function defaultOptimizer(gan: GanType): OptimizerConfig {
  return gan === 'wgan-gp' ? { learningRate: 1e-4, beta1: 0, beta2: 0.9 } : { learningRate: 2e-4, beta1: 0.5, beta2: 0.999 };
}

/**
 * The small-data recipe the product trains with by default (docs/recipe.md, decided by `npm run ablation`):
 * DiffAugment on every discriminator input, an EMA of the generator, and no dropout in the discriminator. The GAN config's own field
 * defaults stay the plain GAN (every option off), so a config spells out exactly what it trains; the
 * product's entry points (the federation config's `model`, `npm run simulate`) start from the recipe
 * through `withRecipeDefaults`. An explicit value always wins: `ema: null` or `augment: { policy: [] }`
 * turns an option off, `discriminator: { dropout: 0.25 }` brings the paper's dropout back.
 */
export const RECIPE_DEFAULTS = {
  augment: { policy: ['color', 'translation', 'cutout'] },
  ema: { decay: 0.999 },
  // DiffAugment regularises the discriminator; dropout on top of it left the discriminator at chance and
  // cost KID and diversity in the ablation (docs/recipe.md).
  discriminator: { dropout: 0 },
  // Mode seeking at λ 0.3: in the 3,000-step CPU federation it met the diversity, class-fidelity,
  // synthetic-only and memorization goals and brought FID closer to the real floor (4.9× against 6.4×
  // without); at λ 1 it had overshot the reals' diversity and cost fidelity (docs/recipe.md).
  modeSeeking: { lambda: 0.3 },
} as const satisfies GanConfigInput;

/** `input` with the recipe's options filled in where it does not set them (see RECIPE_DEFAULTS). */
export function withRecipeDefaults(input: unknown): unknown {
  if (!isPlainObject(input)) return input; // parseGanConfig says what is wrong
  const o = input;
  // The discriminator's other fields keep their own defaults; a value that is not a mapping is left to the parser.
  const d = o.discriminator === undefined ? {} : isPlainObject(o.discriminator) ? o.discriminator : null;
  return {
    ...('augment' in o ? {} : { augment: { policy: [...RECIPE_DEFAULTS.augment.policy] } }),
    ...('ema' in o ? {} : { ema: { ...RECIPE_DEFAULTS.ema } }),
    ...('modeSeeking' in o ? {} : { modeSeeking: { ...RECIPE_DEFAULTS.modeSeeking } }),
    ...o,
    ...(d && !('dropout' in d) ? { discriminator: { ...d, ...RECIPE_DEFAULTS.discriminator } } : {}),
  };
}

/**
 * Why differential privacy (DP-SGD on the discriminator, the federation config's `privacy.dp`) cannot train
 * this GAN config, or null when it can. Batch norm mixes the examples of a batch (each tile's output depends
 * on every other tile's, and its running statistics average them all), so a tile's gradient is not its own:
 * clipping it bounds nothing, and the running statistics leak. The ResNet discriminator has batch norm
 * outside WGAN-GP's critic. Spectral normalisation is refused too: its σ(W) would have to be each tile's
 * own. The one text for the config check and the training step (shared/privacy/dpSgd.ts), with the field
 * of the GAN config it is about.
 */
export function dpRefusal(cfg: Pick<GanConfig, 'gan' | 'discriminator'>): { field: 'discriminator.spectralNorm' | 'discriminator.minibatchStd' | 'discriminator.type'; message: string } | null {
  if (cfg.discriminator.minibatchStd) {
    return {
      field: 'discriminator.minibatchStd',
      message: "differential privacy cannot train a discriminator with minibatch standard deviation: its extra feature is a statistic of the whole batch, so every tile's score depends on the other tiles and no tile's gradient is its own to clip. Turn discriminator.minibatchStd off",
    };
  }
  if (cfg.discriminator.spectralNorm) {
    return {
      field: 'discriminator.spectralNorm',
      message: 'differential privacy cannot train a spectrally normalised discriminator: each tile would need its own W / σ(W) and σ(W) through its own copy of the weights, which the per-example gradients do not compute. Turn discriminator.spectralNorm off',
    };
  }
  if (cfg.discriminator.type === 'resnet' && cfg.gan !== 'wgan-gp') {
    return {
      field: 'discriminator.type',
      message: `differential privacy needs a discriminator without batch norm, and the resnet discriminator uses batch norm for ${cfg.gan}: batch norm mixes the tiles of a batch, so no tile's gradient is its own to clip (and its running statistics average every tile). Use cnn, vit or swin (or wgan-gp, whose resnet critic uses layer norm)`,
    };
  }
  return null;
}

/** Validate and complete a GAN config; throws ConfigError naming every bad field. */
export function parseGanConfig(input: unknown = {}, source = 'GAN config', prefix = ''): GanConfig {
  const c = parseWith(ganConfigSchema, input ?? {}, source, prefix);
  const d = defaultOptimizer(c.gan);
  const wgan = c.gan === 'wgan-gp';
  const adversarialLoss = c.adversarialLoss ?? (wgan ? 'wasserstein' : 'bce');
  const cfg: GanConfig = { ...c, optimizerG: { ...d, ...c.optimizerG }, optimizerD: { ...d, ...c.optimizerD }, adversarialLoss };
  const extra: { path: string; message: string }[] = [];
  if (wgan !== (adversarialLoss === 'wasserstein')) {
    extra.push({
      path: 'adversarialLoss',
      message: wgan ? `wgan-gp uses the wasserstein loss, not ${adversarialLoss}` : `${c.gan} takes bce or hinge (wasserstein needs wgan-gp's gradient penalty)`,
    });
  }
  if (wgan && cfg.r1) extra.push({ path: 'r1', message: 'applies to acgan and cgan only (wgan-gp has its gradient penalty)' });
  // R1 differentiates the discriminator twice; the WebGPU fast path's batch norm is differentiable once.
  if (!wgan && cfg.r1 && cfg.discriminator.type === 'resnet') {
    extra.push({ path: 'r1', message: "needs a discriminator without batch norm (the resnet has batch norm outside wgan-gp's critic): use cnn, vit or swin" });
  }
  if (cfg.discriminator.type === 'vit' || cfg.discriminator.type === 'swin') {
    const { patchSize, embedDim, heads } = cfg.discriminator;
    if (cfg.imageSize % patchSize !== 0) extra.push({ path: 'discriminator.patchSize', message: `must divide imageSize ${cfg.imageSize}` });
    if (embedDim % heads !== 0) extra.push({ path: 'discriminator.embedDim', message: `must be divisible by heads (${heads})` });
    const grid = cfg.imageSize / patchSize;
    if (cfg.discriminator.type === 'swin' && Number.isInteger(grid) && grid > cfg.discriminator.windowSize && grid % cfg.discriminator.windowSize !== 0) {
      extra.push({ path: 'discriminator.windowSize', message: `must divide the swin patch grid ${grid} (imageSize / patchSize)` });
    }
  }
  if (extra.length) throw new ConfigError(source, extra.map((e) => ({ ...e, path: prefix ? `${prefix}.${e.path}` : e.path })));
  return cfg;
}
