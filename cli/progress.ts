/**
 * A one-line progress bar on stderr. On a terminal it redraws in place; otherwise (CI, logs) it prints
 * a line at most every `logEverySeconds`.
 */
export class ProgressBar {
  private lastLog = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly logEverySeconds = 10,
  ) {
    this.tty = Boolean(out.isTTY);
  }

  /** The characters the bar's line takes on a terminal (it is padded to this, and cleared with as many). */
  private get lineWidth(): number {
    return Math.min(this.out.columns || 120, 120) - 1;
  }

  update(done: number, detail = ''): void {
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 28;
    const filled = Math.round(frac * width);
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${detail}`;
    if (this.tty) {
      this.out.write(`\r${line.slice(0, (this.out.columns || 120) - 1).padEnd(this.lineWidth)}`);
    } else {
      const now = Date.now();
      if (now - this.lastLog >= this.logEverySeconds * 1000 || frac === 1) {
        this.lastLog = now;
        this.out.write(`${line}\n`);
      }
    }
  }

  /** A line of its own above the bar (on a terminal the bar is cleared first and redrawn by the next update). */
  note(line: string): void {
    if (this.tty) this.out.write(`\r${' '.repeat(this.lineWidth)}\r`);
    this.out.write(`${line}\n`);
  }

  done(detail = ''): void {
    this.update(this.total, detail);
    if (this.tty) this.out.write('\n');
  }
}
