/**
 * A one-line progress bar on a TTY (redrawn in place); on a pipe or in CI it prints nothing until
 * `done`, so logs stay clean.
 */
export interface ProgressSink {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): boolean;
}

export class ProgressBar {
  private current = 0;
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: ProgressSink = process.stderr,
  ) {}

  /** Advances by `n` and redraws at most every 100 ms. */
  tick(n = 1, detail = ''): void {
    this.current = Math.min(this.total, this.current + n);
    const now = Date.now();
    if (this.out.isTTY !== true || (now - this.lastDraw < 100 && this.current < this.total)) return;
    this.lastDraw = now;
    const width = Math.max(10, Math.min(40, (this.out.columns ?? 80) - this.label.length - 40));
    const frac = this.total === 0 ? 1 : this.current / this.total;
    const filled = Math.round(frac * width);
    const elapsed = (now - this.started) / 1000;
    const eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    const text = `${this.label} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${this.current}/${this.total} ${eta > 0.5 ? `ETA ${eta.toFixed(0)}s ` : ''}${detail}`;
    this.out.write(`\r${text.slice(0, (this.out.columns ?? 120) - 1)}\x1b[K`);
  }

  /** Clears the bar. */
  done(): void {
    if (this.out.isTTY === true) this.out.write('\r\x1b[K');
  }
}
