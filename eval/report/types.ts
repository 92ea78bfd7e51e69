import type { DownstreamResult, HospitalDownstream, HospitalResult, RegimeResult, Regime } from '../downstream.ts';
import type { ClassFidelity, ClassFidelitySeed } from '../classFidelity.ts';
import type { RealFloor } from '../floor.ts';
import type { Goal } from './goals.ts';
import type { EvaluatePrivacy } from '../evaluate.ts';
import type { MembershipScoreRow, MembershipSection } from '../membership.ts';

/** report.json: exactly these keys (issues 6 and 13). */
export interface QualityReport {
  /** All synthetic tiles vs all real training tiles. */
  fid: number;
  kid: { mean: number; std: number };
  /** Real test vs real training tiles, and synthetic vs real training tiles, at one sample size. */
  floor: RealFloor;
  classification: Record<Regime, RegimeResult>;
  /** The real-only classifiers (one per seed) applied to the synthetic tiles, and to the real test tiles as the reference. */
  classFidelity: { synthetic: ClassFidelity; realTest: ClassFidelity };
  memorization: {
    syntheticToTrain: { p5: number; median: number };
    testToTrain: { p5: number; median: number };
  };
  diversity: Record<string, { synthetic: number | null; real: number | null }>;
  /** Membership-inference audit: GAN-Leaks and LOGAN AUCs of training vs held-out tiles (eval/membership.ts). */
  membership: MembershipSection;
  /** The goals, each with its figure, threshold and whether it is met (eval/report/goals.ts). */
  goals: Goal[];
  /**
   * Per hospital of the federation's split (`--partition`): the classifier on its own tiles, and on them +
   * the synthetic tiles. null when no split was given.
   */
  hospitals: HospitalSection | null;
  config: ReportConfig;
}

export interface HospitalSection {
  /** As simulate's --partition, --clients and --seed. */
  partition: string;
  clients: number;
  seed: number;
  hospitals: (Omit<HospitalResult, 'perClass'> & { perClass: Record<string, number> })[];
  meanOverHospitals: HospitalDownstream['meanOverHospitals'];
}

interface RealSetConfig {
  dir: string;
  tiles: number;
  perClass: Record<string, number>;
  sourceSize: number;
  /** Patients named by manifest.csv (null when it does not name one for every tile). */
  patients: number | null;
  patientsPerClass: Record<string, number> | null;
}

export interface ReportConfig {
  checkpoint: string;
  /** batchNorm: the federation's policy; batchNormRecalibrated: the generator's statistics were recalibrated data-free (FedBN). */
  checkpointMeta: { round?: unknown; source?: unknown; createdAt?: unknown; batchNorm?: unknown; batchNormRecalibrated?: boolean };
  gan: Record<string, unknown>;
  classes: string[];
  positiveClass: string;
  imageSize: number;
  perClass: number;
  realTrain: RealSetConfig;
  realTest: RealSetConfig;
  features: { extractor: string; dim: number; fidLabel: string };
  kid: { subsets: number; subsetSize: number };
  classifier: { model: string; size: number; channels: number; epochs: number; batchSize: number; learningRate: number; seeds: number[]; augmentation: string };
  linearProbe: boolean;
  /** The differential privacy the checkpoint was trained with, as given to the evaluator (null: not given). */
  privacy: EvaluatePrivacy | null;
  seed: number;
  createdAt: string;
}

/** report-details.json: everything else the HTML shows (per-seed runs, FID terms, pairs, timings). */
export interface ReportDetails {
  fidParts: { meanTerm: number; traceCov1: number; traceCov2: number; traceSqrtProduct: number };
  /** Which rows (indices into the real test and the synthetic tiles) the floor comparison used. */
  floorRows: { test: number[]; synthetic: number[] };
  classificationPerSeed: DownstreamResult['details'];
  /** Per hospital (with `--partition`): every seed's figures, own tiles only and with the synthetic tiles. */
  hospitalsPerSeed?: HospitalDownstream['details'];
  /** Class fidelity per seed, and the raw scores it was computed from (the real-only models' positive-class probabilities). */
  classFidelityPerSeed: { synthetic: ClassFidelitySeed[]; realTest: ClassFidelitySeed[] };
  realOnlyScores: { syntheticLabels: number[]; testLabels: number[]; perSeed: { seed: number; synthetic: number[]; test: number[] }[] };
  linearProbe?: DownstreamResult;
  closestPairs: { synthetic: number; syntheticClass: string; realFile: string; distance: number }[];
  /** Every tile the membership audit scored: its file, whether it was a training tile (member), and both attacks' scores. */
  membershipScores: MembershipScoreRow[];
  tsne: { x: number; y: number; classIndex: number; synthetic: boolean }[];
  timingsSeconds: Record<string, number>;
  backends: Record<string, string>;
}
