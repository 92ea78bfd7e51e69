import { JobMeter, type JobRate } from '../job.ts';
import { setProgress } from './dom.ts';
import { formatDuration } from './etaText.ts';

/**
 * The progress line of the export and the quality check: the stage, how many of how many, the speed
 * measured in this browser and the time left at that speed, with the bar (dom.ts setProgress).
 */

/** Items a second as staff read them: "0.42", "14.3", "212". */
export function formatRate(perSecond: number): string {
  if (perSecond < 1) return perSecond.toFixed(2);
  if (perSecond < 100) return perSecond.toFixed(1);
  return Math.round(perSecond).toLocaleString('en-US');
}

/**
 * "Generating: 1,200 of 40,000 images — 14.3 images/s, about 47 min left." Without a rate yet, "measuring
 * the speed…"; `unit` names what is counted ("images", "tiles").
 */
export function jobProgressText(stage: string, done: number, total: number, rate: JobRate | undefined, unit: string): string {
  const head = `${stage}: ${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} ${unit}`;
  if (done >= total) return `${head}.`;
  if (!rate) return `${head} — measuring the speed…`;
  return `${head} — ${formatRate(rate.perSecond)} ${unit}/s, about ${formatDuration(rate.secondsLeft)} left.`;
}

/** One job's progress box: start(), update() on every progress event, stop(). */
export class JobProgress {
  private meter = new JobMeter();

  constructor(
    private readonly box: () => HTMLElement | null,
    private readonly unit: string,
  ) {}

  start(text: string): void {
    this.meter = new JobMeter();
    const box = this.box();
    if (!box) return;
    box.hidden = false;
    setProgress(box, 0, text);
  }

  /** `stage` names the step ("Generating"); `counted`: whether done/total count `unit` (else just the stage is shown). */
  update(done: number, total: number, stage: string, counted = true, atMs = performance.now()): void {
    this.meter.record(done, total, stage, atMs);
    const box = this.box();
    if (!box) return;
    box.hidden = false;
    setProgress(box, total ? done / total : 0, counted ? jobProgressText(stage, done, total, this.meter.rate, this.unit) : `${stage}…`);
  }

  stop(): void {
    const box = this.box();
    if (box) box.hidden = true;
  }
}
