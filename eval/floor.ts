/**
 * The real floor of the quality report: shared/metrics/realFloor.ts (the web app's Quality panel uses the
 * same function).
 */
export { realFloor, subsampleRows, type RealFloor } from '../shared/metrics/realFloor.ts';
