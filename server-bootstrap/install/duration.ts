// Pulumi custom timeouts are Go durations (`10m`, `90s`, `1h30m`); the deployment's waits take
// them in the same form.

const DURATION_UNITS: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };

/** Seconds in a Go duration, rounded up; an error names the input and shows the form. */
export function durationSeconds(text: string, name = "waitTimeout"): number {
  const parts = /^(?:\d+(?:\.\d+)?(?:h|ms|m|s))+$/.test(text) ? [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)] : [];
  const seconds = Math.ceil(parts.reduce((sum, [, n, unit]) => sum + Number(n) * DURATION_UNITS[unit], 0));
  if (parts.length === 0 || seconds < 1) throw new Error(`${name}: "${text}" is not a duration of at least 1 s such as 90s, 10m or 1h30m`);
  return seconds;
}
