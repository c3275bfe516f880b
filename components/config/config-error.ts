// Validation collects every problem before failing, so one run shows the user everything to mend.

export interface ConfigProblem {
  /** Where in the stack config, e.g. `domains[1].dmarc.policy` (namespace `mailstack:` stripped). */
  path: string;
  /** What is wrong and what is allowed. */
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    const lines = problems.map((p) => `${p.path}: ${p.message}`);
    super([`stack configuration has ${count}:`, ...lines].join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

export class Problems {
  readonly list: ConfigProblem[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }

  get count(): number {
    return this.list.length;
  }
}
