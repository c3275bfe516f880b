// Structured logs: one JSON object per line on stdout, for journald and log shippers.
// Callers pass facts (addresses, ids, codes), never secrets or message content.
// Not pino (10.4, measured for issue 14): bundled it adds 63 KB minified and 40-100 ms to start,
// and wrote these lines slower (10-14 µs a line against 5.4 µs) to the same sink.

export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, string | number | boolean | undefined | null | string[]>;

export interface Logger {
  log(level: LogLevel, event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export function createLogger(write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const log = (level: LogLevel, event: string, fields: LogFields = {}): void => {
    write(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }) + "\n");
  };
  return {
    log,
    info: (e, f) => log("info", e, f),
    warn: (e, f) => log("warn", e, f),
    error: (e, f) => log("error", e, f),
  };
}
