/** What the benchmark suites share: the options bench/run.ts gives a CPU suite, and the Python the PyTorch comparisons run. */

/** A suite's options: smoke-test sizes or the real ones, the threads it may use, where it keeps its files, where it logs. */
export interface BenchOptions {
  readonly smoke: boolean;
  readonly threads: number;
  readonly workDir: string;
  readonly log: (line: string) => void;
}

/** The system Python that runs bench/torch/*.py (PyTorch from python3-torch, see bench/setup.sh). */
export const PYTHON = '/usr/bin/python3';
