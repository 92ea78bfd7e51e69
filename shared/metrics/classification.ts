/**
 * Binary classification metrics from per-item scores. `labels[i]` is true for the positive class
 * (MSIH in this project); `scores[i]` is the predicted probability of the positive class. Predictions
 * are `score ≥ threshold` (default 0.5).
 */

export interface BinaryMetrics {
  accuracy: number;
  /** F1 of the positive class. */
  f1: number;
  /** Mean of sensitivity and specificity. */
  balancedAccuracy: number;
  /** Area under the ROC curve; ties count one half. */
  auroc: number;
  /** Items with each outcome. */
  counts: { tp: number; fp: number; tn: number; fn: number };
}

export class MetricError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricError';
  }
}

function check(labels: readonly boolean[], scores: ArrayLike<number>): void {
  if (labels.length !== scores.length) throw new MetricError(`${labels.length} labels but ${scores.length} scores`);
  if (labels.length === 0) throw new MetricError('no items to score');
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new MetricError(`score ${i} is ${scores[i]}`);
  }
}

export function confusion(labels: readonly boolean[], scores: ArrayLike<number>, threshold = 0.5): BinaryMetrics['counts'] {
  check(labels, scores);
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  labels.forEach((positive, i) => {
    const predicted = scores[i] >= threshold;
    if (positive && predicted) c.tp++;
    else if (positive) c.fn++;
    else if (predicted) c.fp++;
    else c.tn++;
  });
  return c;
}

export function accuracy(labels: readonly boolean[], scores: ArrayLike<number>, threshold = 0.5): number {
  const c = confusion(labels, scores, threshold);
  return (c.tp + c.tn) / labels.length;
}

/** F1 = 2TP / (2TP + FP + FN); 0 when there is no positive item and no positive prediction. */
export function f1Score(labels: readonly boolean[], scores: ArrayLike<number>, threshold = 0.5): number {
  const c = confusion(labels, scores, threshold);
  const denom = 2 * c.tp + c.fp + c.fn;
  return denom === 0 ? 0 : (2 * c.tp) / denom;
}

/** (sensitivity + specificity) / 2; needs both classes present. */
export function balancedAccuracy(labels: readonly boolean[], scores: ArrayLike<number>, threshold = 0.5): number {
  const c = confusion(labels, scores, threshold);
  if (c.tp + c.fn === 0 || c.tn + c.fp === 0) throw new MetricError('balanced accuracy needs both classes among the labels');
  return (c.tp / (c.tp + c.fn) + c.tn / (c.tn + c.fp)) / 2;
}

/**
 * AUROC as the Mann–Whitney statistic: the probability that a random positive scores above a
 * random negative, ties counting ½ (average ranks). Needs both classes present.
 */
export function auroc(labels: readonly boolean[], scores: ArrayLike<number>): number {
  check(labels, scores);
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const avgRank = (i + j) / 2 + 1; // ranks are 1-based
    for (let t = i; t <= j; t++) {
      if (labels[order[t]]) {
        positives++;
        rankSum += avgRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) throw new MetricError('AUROC needs both classes among the labels');
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function binaryMetrics(labels: readonly boolean[], scores: ArrayLike<number>, threshold = 0.5): BinaryMetrics {
  return {
    accuracy: accuracy(labels, scores, threshold),
    f1: f1Score(labels, scores, threshold),
    balancedAccuracy: balancedAccuracy(labels, scores, threshold),
    auroc: auroc(labels, scores),
    counts: confusion(labels, scores, threshold),
  };
}
