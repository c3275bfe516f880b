// `journalctl` inside the machine: the options our scripts use (-u UNIT, -n N, --no-pager, -b,
// -o short|cat, -x, -e, -q), as journalctl(1) defines them. Anything else is refused by name.
import { readJournal, shortLine, type JournalRecord } from "./journal";

export function journalctl(argv: string[], bootId: string | undefined, write: (s: string) => void): number {
  const units: string[] = [];
  let lines: number | undefined;
  let output = "short";
  let thisBoot = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === "-u" || a === "--unit") units.push(next());
    else if (a.startsWith("--unit=")) units.push(a.slice(7));
    else if (a === "-n" || a === "--lines") lines = Number(next());
    else if (a.startsWith("--lines=")) lines = Number(a.slice(8));
    else if (/^-n\d+$/.test(a)) lines = Number(a.slice(2));
    else if (a === "-o" || a === "--output") output = next();
    else if (a.startsWith("--output=")) output = a.slice(9);
    else if (a === "-b" || a === "--boot") thisBoot = true;
    // -e jumps to the end in the pager and implies -n1000 (journalctl(1) --pager-end).
    else if (a === "-e" || a === "--pager-end") lines ??= 1000;
    else if (["--no-pager", "-x", "--catalog", "-q", "--quiet", "-xe"].includes(a)) continue;
    else if (a === "-xeu") units.push(next());
    else {
      write(`journalctl: option ${a} is not modeled by the machine's journal stand-in\n`);
      return 1;
    }
  }
  if (!["short", "cat"].includes(output)) {
    write(`journalctl: output mode ${output} is not modeled (short, cat)\n`);
    return 1;
  }
  const wanted = units.map((u) => (u.includes(".") ? u : `${u}.service`));
  let records: JournalRecord[] = readJournal().filter(
    (r) => (wanted.length === 0 || (r.unit !== undefined && wanted.includes(r.unit))) && (!thisBoot || r.boot === bootId),
  );
  if (lines !== undefined) records = records.slice(-lines);
  if (records.length === 0) {
    write("-- No entries --\n");
    return 0;
  }
  for (const r of records) write(`${output === "cat" ? r.message : shortLine(r)}\n`);
  return 0;
}
