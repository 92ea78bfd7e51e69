/**
 * Patient-level aggregation: a patient's score is the mean of its tiles' scores, and its label is
 * its tiles' label (every tile of a patient must carry the same label).
 */
import { MetricError } from './classification.ts';

export interface PatientScores {
  patients: string[];
  labels: boolean[];
  scores: number[];
  /** Tiles per patient, same order. */
  tiles: number[];
}

export function aggregateByPatient(patientOfTile: readonly string[], labels: readonly boolean[], scores: ArrayLike<number>): PatientScores {
  if (patientOfTile.length !== labels.length || labels.length !== scores.length) {
    throw new MetricError(`patient aggregation needs one patient, label and score per tile (got ${patientOfTile.length}, ${labels.length}, ${scores.length})`);
  }
  const byPatient = new Map<string, { label: boolean; sum: number; count: number }>();
  patientOfTile.forEach((p, i) => {
    if (!p) throw new MetricError(`tile ${i} has no patient`);
    const entry = byPatient.get(p);
    if (!entry) byPatient.set(p, { label: labels[i], sum: scores[i], count: 1 });
    else {
      if (entry.label !== labels[i]) throw new MetricError(`patient ${p} has tiles of both classes; a patient's tiles must share one label`);
      entry.sum += scores[i];
      entry.count++;
    }
  });
  const patients = [...byPatient.keys()].sort();
  return {
    patients,
    labels: patients.map((p) => byPatient.get(p)!.label),
    scores: patients.map((p) => byPatient.get(p)!.sum / byPatient.get(p)!.count),
    tiles: patients.map((p) => byPatient.get(p)!.count),
  };
}
