/**
 * A table printed one row at a time as results arrive (a live round table): fixed column widths
 * taken from the header and a minimum width, numbers right-aligned, text left-aligned.
 */
export interface LiveColumn {
  readonly header: string;
  /** Minimum width (default: the header's). */
  readonly width?: number;
  readonly align?: 'left' | 'right';
}

export class LiveTable {
  private readonly widths: number[];
  private printedHeader = false;

  constructor(private readonly columns: readonly LiveColumn[], private readonly out: { write(chunk: string): boolean }) {
    this.widths = columns.map((c) => Math.max(c.header.length, c.width ?? 0));
  }

  private line(cells: readonly string[]): string {
    return cells.map((cell, i) => (this.columns[i].align === 'left' ? cell.padEnd(this.widths[i]) : cell.padStart(this.widths[i]))).join('  ').trimEnd();
  }

  /** Prints the header (once) and a separator. */
  header(): void {
    if (this.printedHeader) return;
    this.printedHeader = true;
    this.out.write(`${this.line(this.columns.map((c) => c.header))}\n${this.widths.map((w) => '─'.repeat(w)).join('  ')}\n`);
  }

  /** Prints one row (the header first if needed). */
  row(cells: readonly string[]): void {
    this.header();
    this.out.write(`${this.line(cells)}\n`);
  }
}
