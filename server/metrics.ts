/**
 * Prometheus metrics (text exposition format 0.0.4), kept by hand: a few counters and gauges.
 * Every refusal the server makes is counted here, labelled by its reason.
 */

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (!keys.length) return '';
  return '{' + keys.map((k) => `${k}="${labels[k].replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',') + '}';
}

class Family {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly type: 'counter' | 'gauge',
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    const entries = this.values.size ? [...this.values] : [['', 0] as [string, number]];
    for (const [k, v] of entries) lines.push(`${this.name}${k} ${Number.isFinite(v) ? v : 0}`);
    return lines.join('\n');
  }
}

export class Metrics {
  private readonly families: Family[] = [];
  private family(name: string, type: 'counter' | 'gauge', help: string): Family {
    const f = new Family(name, type, help);
    this.families.push(f);
    return f;
  }

  readonly roundsCompleted = this.family('fedgan_rounds_completed_total', 'counter', 'Federated rounds completed (aggregated and checkpointed).');
  readonly roundsFailed = this.family('fedgan_round_attempts_failed_total', 'counter', 'Round attempts repeated because fewer than minCompletion updates arrived.');
  readonly currentRound = this.family('fedgan_round', 'gauge', 'Rounds completed so far.');
  readonly phase = this.family('fedgan_phase', 'gauge', 'Current phase of the round state machine (1 for the active phase).');
  readonly connected = this.family('fedgan_connected_hospitals', 'gauge', 'Authenticated hospitals connected.');
  readonly connections = this.family('fedgan_connections', 'gauge', 'Open WebSocket connections, authenticated or not.');
  readonly unauthenticated = this.family('fedgan_unauthenticated_connections', 'gauge', 'Open WebSocket connections still waiting for a valid hello (limits.maxUnauthenticated).');
  readonly sampled = this.family('fedgan_sampled_hospitals', 'gauge', 'Hospitals sampled in the round in flight.');
  readonly bytesIn = this.family('fedgan_bytes_received_total', 'counter', 'Bytes received in WebSocket messages.');
  readonly bytesOut = this.family('fedgan_bytes_sent_total', 'counter', 'Bytes sent in WebSocket messages.');
  readonly messagesIn = this.family('fedgan_messages_received_total', 'counter', 'WebSocket messages received, by kind.');
  readonly updatesAccepted = this.family('fedgan_updates_accepted_total', 'counter', 'Updates accepted into an aggregate.');
  readonly updatesRejected = this.family('fedgan_rejected_updates_total', 'counter', 'Updates refused, by reason.');
  readonly examplesClipped = this.family('fedgan_examples_clipped_total', 'counter', "Accepted updates that claimed more examples than their hospital's cap (counted at the cap).");
  readonly lossesClamped = this.family('fedgan_losses_clamped_total', 'counter', "Accepted updates whose losses were beyond ±1e6 (counted at the limit in the round's statistics).");
  readonly refusals = this.family('fedgan_refusals_total', 'counter', 'Every error sent or connection refused, by reason (includes rejected updates).');
  readonly aggregationSeconds = this.family('fedgan_aggregation_seconds_total', 'counter', 'CPU seconds spent decoding, validating and aggregating updates.');
  readonly aggregationBytes = this.family('fedgan_aggregation_bytes_total', 'counter', 'Update bytes decoded, validated and aggregated.');
  readonly lastAggregationSeconds = this.family('fedgan_last_round_aggregation_seconds', 'gauge', 'Aggregation seconds of the last completed round.');
  readonly lastRoundSeconds = this.family('fedgan_last_round_seconds', 'gauge', 'Wall-clock seconds of the last completed round.');
  readonly checkpointsWritten = this.family('fedgan_checkpoints_written_total', 'counter', 'Checkpoints written.');
  readonly checkpointWriteFailures = this.family('fedgan_checkpoint_write_failures_total', 'counter', 'Checkpoint writes that failed (each is retried with backoff; the aggregate is kept in memory).');
  readonly checkpointPending = this.family('fedgan_checkpoint_pending', 'gauge', '1 while a completed round waits for its checkpoint write to succeed.');
  readonly retryStopped = this.family('fedgan_round_retry_stopped', 'gauge', '1 while the server has stopped repeating a failed round (retry.maxFailedAttempts reached) until a hospital joins.');
  readonly qualityKid = this.family('fedgan_quality_kid', 'gauge', 'Latest quality figure: example-weighted mean KID of the hospitals\' probes of the model of round fedgan_quality_round.');
  readonly qualityRound = this.family('fedgan_quality_round', 'gauge', 'The round whose global model the latest quality figure measured.');
  readonly qualityBestKid = this.family('fedgan_quality_best_kid', 'gauge', 'Lowest quality KID recorded so far.');
  readonly qualityBestRound = this.family('fedgan_quality_best_round', 'gauge', 'The round of the best-quality model (its checkpoint is kept).');
  readonly checkpointsCorrupt = this.family('fedgan_checkpoints_corrupt_total', 'counter', 'Corrupt checkpoint files found (at start, or before old checkpoints are rotated out) and moved aside to *.corrupt.');
  readonly ready = this.family('fedgan_ready', 'gauge', '1 once the state is loaded.');
  readonly operatorActions = this.family('fedgan_operator_actions_total', 'counter', 'Operator console actions, by action (pause, resume, stop, rounds, settings, hospital-added, hospital-revoked, hospital-rotated).');
  readonly sampleGridSeconds = this.family('fedgan_sample_grid_seconds', 'gauge', 'Seconds the last console sample grid took to render (in the render worker).');
  readonly sampleGridRound = this.family('fedgan_sample_grid_round', 'gauge', 'The round of the global model of the last console sample grid.');

  /** Count a refusal (error message or refused connection). */
  refuse(reason: string): void {
    this.refusals.inc({ reason });
  }

  render(): string {
    return this.families.map((f) => f.render()).join('\n') + '\n';
  }
}
