import type { DownstreamResult, RegimeResult, Regime } from '../downstream.ts';

/** report.json: exactly these keys (issue 6). */
export interface QualityReport {
  fid: number;
  kid: { mean: number; std: number };
  classification: Record<Regime, RegimeResult>;
  memorization: {
    syntheticToTrain: { p5: number; median: number };
    testToTrain: { p5: number; median: number };
  };
  diversity: Record<string, { synthetic: number | null; real: number | null }>;
  config: ReportConfig;
}

export interface ReportConfig {
  checkpoint: string;
  checkpointMeta: { round?: unknown; source?: unknown; createdAt?: unknown };
  gan: Record<string, unknown>;
  classes: string[];
  positiveClass: string;
  imageSize: number;
  perClass: number;
  realTrain: { dir: string; tiles: number; perClass: Record<string, number>; sourceSize: number; patients: number | null };
  realTest: { dir: string; tiles: number; perClass: Record<string, number>; sourceSize: number; patients: number | null };
  features: { extractor: string; dim: number; fidLabel: string };
  kid: { subsets: number; subsetSize: number };
  classifier: { model: string; size: number; channels: number; epochs: number; batchSize: number; learningRate: number; seeds: number[]; augmentation: string };
  linearProbe: boolean;
  seed: number;
  createdAt: string;
}

/** report-details.json: everything else the HTML shows (per-seed runs, FID terms, pairs, timings). */
export interface ReportDetails {
  fidParts: { meanTerm: number; traceCov1: number; traceCov2: number; traceSqrtProduct: number };
  classificationPerSeed: DownstreamResult['details'];
  linearProbe?: DownstreamResult;
  closestPairs: { synthetic: number; syntheticClass: string; realFile: string; distance: number }[];
  tsne: { x: number; y: number; classIndex: number; synthetic: boolean }[];
  timingsSeconds: Record<string, number>;
  backends: Record<string, string>;
}
