/**
 * Where maild's memory goes, idle and at the peak of the daemon benchmark's load, without changing
 * maild: the process as the benchmark runs it (daemon.bench.ts: its spam filter beside it, the
 * signed message, `smtp-source -d -s 20`, the Node flags it ships with), with a preloaded probe
 * (maild-memory-probe.cjs: V8's heap spaces and Node's counters every 100 ms) and two heap
 * snapshots (`--heapsnapshot-signal`), one idle and one under load. Then the same load under other
 * Node settings (VARIANTS), to see what each would save and what it costs.
 *
 *   npm run bench:maild-memory           (root; as bench:daemon)
 *   BENCH_MESSAGES=2000 BENCH_MAILD_VARIANTS="node-defaults;shipped MALLOC_ARENA_MAX=2" npm run bench:maild-memory
 *   BENCH_KEEP_LOGS=DIR                  keeps maild's logs and both heap snapshots (for DevTools' Memory tab)
 *
 * Memory is maild's own process only (not rspamd's): PSS from /proc/<pid>/smaps_rollup, and by
 * mapping from /proc/<pid>/smaps. Node runs from a private copy of its binary (daemon.bench.ts,
 * privateNodeBinary), so its code pages are charged to maild alone, as on a server.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import {
  benchSmtpSource,
  benchWorld,
  keepLog,
  privateNodeBinary,
  progress,
  requirePrograms,
  sleep,
  startMaild,
  type BenchContext,
  type Load,
} from "./daemon.bench";
import { emptyNamespace } from "./daemon-peers";
import { MAILD_NODE_FLAGS } from "../../server-bootstrap/maild/node-flags";

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 5000);
const LOAD: Load = { reuse: process.env.BENCH_MEMORY_REUSE !== "0", sessions: Number(process.env.BENCH_MEMORY_SESSIONS ?? 20) };
/**
 * Node settings to compare with the shipped ones (the first run, "": server-bootstrap/maild/node-flags.ts),
 * `;`-separated; each is Node flags and NAME=value environment variables (glibc's malloc reads
 * MALLOC_ARENA_MAX and MALLOC_TRIM_THRESHOLD_, mallopt(3)), in place of the shipped flags; the word
 * `shipped` stands for the shipped flags (`shipped MALLOC_ARENA_MAX=2`), `node-defaults` for none.
 */
const VARIANTS = [
  "",
  ...(
    process.env.BENCH_MAILD_VARIANTS ??
    "node-defaults;--max-semi-space-size=4;shipped MALLOC_ARENA_MAX=2;shipped --v8-pool-size=1;shipped UV_THREADPOOL_SIZE=2;--max-semi-space-size=1 --max-old-space-size=64"
  ).split(";"),
]
  .map((v) => v.trim())
  .filter((v, i, all) => all.indexOf(v) === i);
/** How a variant is named in the report: "" is maild as shipped. */
const label = (variant: string) => (variant === "" ? `as shipped (${MAILD_NODE_FLAGS.join(" ")})` : variant);
const PROBE = path.join(__dirname, "maild-memory-probe.cjs");
const MiB = 1024 * 1024;

interface ProbeLine {
  t: number;
  mem: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  heap: {
    total_heap_size: number;
    total_physical_size: number;
    used_heap_size: number;
    malloced_memory: number;
    peak_malloced_memory: number;
  };
  spaces: Record<string, { size: number; used: number; physical: number }>;
  builtins: number;
  handles: number;
  /** main-thread GC pauses so far, ms (maild-memory-probe.cjs) */
  gcPauseMs: { minor: number; major: number; other: number };
  /** main-thread GC pauses so far, by kind */
  gcCount: { minor: number; major: number; other: number };
}

/** PSS in KiB of one process, by kind of mapping (proc(5), /proc/<pid>/smaps). */
export function pssByMapping(pid: number, nodeBinary: string): Record<string, number> {
  const out: Record<string, number> = {};
  let kind = "";
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1];
      const perms = head[0].split(" ")[1];
      kind =
        name === nodeBinary
          ? perms.includes("x")
            ? "node binary: code"
            : perms.includes("w")
              ? "node binary: data"
              : "node binary: read-only data (V8 snapshot, built-in JS, ICU)"
          : name === "[heap]"
            ? "[heap] (brk: malloc's main arena)"
            : name === "[stack]"
              ? "[stack] (main thread)"
              : name.startsWith("/")
                ? "other files (shared libraries, ICU data)"
                : name === ""
                  ? "anonymous (V8 heap, malloc arenas, thread stacks)"
                  : `other ${name}`;
      continue;
    }
    const pss = /^Pss:\s+(\d+) kB/.exec(line);
    if (pss) out[kind] = (out[kind] ?? 0) + Number(pss[1]);
  }
  return out;
}

function pssKb(pid: number): number {
  return Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
}

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Heap snapshot (V8's JSON format: snapshot.meta describes the flat nodes array) summed by node type and by constructor. */
export function summariseHeapSnapshot(
  file: string,
  top = 12,
): { totalMb: number; byType: [string, number][]; byName: [string, number][]; largestStrings: [string, number][] } {
  const snap = JSON.parse(fs.readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const byType = new Map<string, number>();
  const byName = new Map<string, number>();
  const largestStrings: [string, number][] = [];
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + iType]];
    const size = snap.nodes[i + iSize];
    total += size;
    byType.set(type, (byType.get(type) ?? 0) + size);
    const name =
      type === "object" || type === "closure" || type === "native"
        ? `${type} ${snap.strings[snap.nodes[i + iName]].slice(0, 60)}`
        : type === "code"
          ? `code ${snap.strings[snap.nodes[i + iName]].replace(/\s.*/, "").slice(0, 40)}`
          : type;
    byName.set(name, (byName.get(name) ?? 0) + size);
    if (type === "string" && size > 64 * 1024) {
      // a string node's name is its text: show where it starts, as one line
      largestStrings.push([JSON.stringify(snap.strings[snap.nodes[i + iName]].slice(0, 48)), size]);
    }
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return {
    totalMb: total / MiB,
    byType: sorted(byType),
    byName: sorted(byName),
    largestStrings: largestStrings.sort((a, b) => b[1] - a[1]).slice(0, 6),
  };
}

async function waitForSnapshot(dir: string, count: number): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".heapsnapshot")) : [];
    if (files.length >= count) {
      const file = path.join(dir, files.sort()[count - 1]);
      // written in one go; complete once its size stops changing
      let size = -1;
      while (fs.statSync(file).size !== size) {
        size = fs.statSync(file).size;
        await sleep(500);
      }
      return file;
    }
    if (Date.now() > deadline) throw new Error(`no heap snapshot ${count} in ${dir} after 120 s`);
    await sleep(200);
  }
}

interface VariantResult {
  variant: string;
  idleMb: number;
  peakMb: number;
  afterMb: number;
  msgsPerS: number;
  cpuMsPerMsg: number;
  idleMap: Record<string, number>;
  peakMap: Record<string, number>;
  probe: ProbeLine[];
  peakAt: number;
  loadStart: number;
  loadEnd: number;
  snapshots?: { idle: string; load: string };
}

async function runVariant(
  variant: string,
  net: LocalInternet,
  host: NetHost,
  world: Awaited<ReturnType<typeof benchWorld>>,
  snapshots: boolean,
): Promise<VariantResult> {
  const dir = path.join(net.workDir, host.name);
  fs.mkdirSync(dir, { recursive: true });
  const probeFile = path.join(dir, "probe.jsonl");
  const snapDir = path.join(dir, "snapshots");
  fs.mkdirSync(snapDir);
  const tokens = (variant === "" ? "shipped" : variant)
    .split(/\s+/)
    .filter((t) => t !== "" && t !== "node-defaults")
    .flatMap((t) => (t === "shipped" ? [...MAILD_NODE_FLAGS] : [t]));
  const env = Object.fromEntries(tokens.filter((t) => !t.startsWith("--")).map((t) => t.split(/=(.*)/s).slice(0, 2)));
  const flags = tokens.filter((t) => t.startsWith("--"));
  const ctx: BenchContext = { net, knot: world.knot, dir };
  const maild = await startMaild(host, ctx, {
    nodeFlags: ["--require", PROBE, "--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapDir}`, ...flags],
    env: { ...process.env, ...env, MAILD_MEMORY_PROBE: probeFile },
  });
  try {
    const nodeBinary = privateNodeBinary(net.workDir);
    // as bench:daemon reads idle memory (its IDLE_AFTER_MS)
    await sleep(10_000);
    const idleMb = pssKb(maild.pid) / 1024;
    const idleMap = pssByMapping(maild.pid, nodeBinary);
    let idleSnap: string | undefined;
    if (snapshots) {
      process.kill(maild.pid, "SIGUSR2");
      idleSnap = await waitForSnapshot(snapDir, 1);
      await sleep(1000);
    }
    let peakKb = 0;
    let peakMap: Record<string, number> = {};
    let peakAt = 0;
    let running = true;
    let loadSnap: Promise<string> | undefined;
    const sampler = (async () => {
      while (running) {
        const kb = pssKb(maild.pid);
        if (kb > peakKb) {
          peakKb = kb;
          peakAt = Date.now();
          peakMap = pssByMapping(maild.pid, nodeBinary);
        }
        // the second snapshot once 40 % of the messages are in, under full load
        if (snapshots && !loadSnap && maild.stored() >= MESSAGES * 0.4) {
          process.kill(maild.pid, "SIGUSR2");
          loadSnap = waitForSnapshot(snapDir, 2);
        }
        await sleep(100);
      }
    })();
    const cpu0 = cpuSeconds(maild.pid);
    const loadStart = Date.now();
    const r = await world.load.run(benchSmtpSource(LOAD, world.message, host.ipv4, MESSAGES));
    const loadEnd = Date.now();
    const cpu = cpuSeconds(maild.pid) - cpu0;
    running = false;
    await sampler;
    if (r.code !== 0) throw new Error(`smtp-source: exit ${r.code}: ${(r.stderr || r.stdout).slice(0, 1000)}`);
    const loadSnapFile = loadSnap ? await loadSnap : undefined;
    // BENCH_KEEP_LOGS keeps the snapshots too, for a closer look (Chrome DevTools' Memory tab)
    if (idleSnap) keepLog(idleSnap, `${host.name}-idle`);
    if (loadSnapFile) keepLog(loadSnapFile, `${host.name}-load`);
    await sleep(2000);
    const afterMb = pssKb(maild.pid) / 1024;
    const stored = maild.stored();
    if (stored !== MESSAGES) throw new Error(`${label(variant)}: stored ${stored} of ${MESSAGES}`);
    const probe = fs
      .readFileSync(probeFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ProbeLine);
    return {
      variant,
      idleMb,
      peakMb: peakKb / 1024,
      afterMb,
      // the heap snapshot under load stops maild for a while: its rate is not comparable
      msgsPerS: snapshots ? NaN : stored / ((loadEnd - loadStart) / 1000),
      cpuMsPerMsg: snapshots ? NaN : (cpu * 1000) / stored,
      idleMap,
      peakMap,
      probe,
      peakAt,
      loadStart,
      loadEnd,
      ...(idleSnap && loadSnapFile ? { snapshots: { idle: idleSnap, load: loadSnapFile } } : {}),
    };
  } finally {
    await maild.stop();
    await emptyNamespace(host);
  }
}

/** PSS of a bare Node process (the same private binary) that only waits: the floor under maild. */
async function bareNode(net: LocalInternet, host: NetHost): Promise<{ mb: number; map: Record<string, number> }> {
  const child = host.spawn([privateNodeBinary(net.workDir), "-e", "setInterval(() => {}, 1 << 30)"]);
  await sleep(2000);
  const mb = pssKb(child.pid!) / 1024;
  const map = pssByMapping(child.pid!, privateNodeBinary(net.workDir));
  await LocalInternet.stopProcess(child);
  return { mb, map };
}

const mb = (bytes: number) => (bytes / MiB).toFixed(1);

function nearest(probe: ProbeLine[], t: number): ProbeLine {
  return probe.reduce((best, p) => (Math.abs(p.t - t) < Math.abs(best.t - t) ? p : best), probe[0]);
}

function report(snapshotRun: VariantResult, results: VariantResult[], bare: { mb: number; map: Record<string, number> }): string {
  const base = results[0];
  const out: string[] = [];
  out.push(
    `maild alone (its own process; rspamd not counted); load: ${benchSmtpSource(LOAD, { file: "MSG" } as never, "maild", MESSAGES)
      .slice(1)
      .join(" ")}`,
  );
  out.push(`bare Node (node -e 'setInterval(...)', same binary): ${bare.mb.toFixed(1)} MiB PSS`, "");

  out.push(
    "PSS by mapping, MiB (the shipped settings, the run without heap snapshots: writing one takes memory of its own):",
    "",
    "| mapping | bare Node | idle | peak |",
    "|---|---:|---:|---:|",
  );
  const kinds = [...new Set([...Object.keys(base.idleMap), ...Object.keys(base.peakMap)])].sort(
    (a, b) => (base.peakMap[b] ?? 0) - (base.peakMap[a] ?? 0),
  );
  for (const k of kinds)
    out.push(
      `| ${k} | ${((bare.map[k] ?? 0) / 1024).toFixed(1)} | ${((base.idleMap[k] ?? 0) / 1024).toFixed(1)} | ${((base.peakMap[k] ?? 0) / 1024).toFixed(1)} |`,
    );
  out.push(`| total | ${bare.mb.toFixed(1)} | ${base.idleMb.toFixed(1)} | ${base.peakMb.toFixed(1)} |`, "");

  const idle = base.probe.filter((p) => p.t < base.loadStart).at(-1) ?? base.probe[0];
  const atPeak = nearest(base.probe, base.peakAt);
  const during = base.probe.filter((p) => p.t >= base.loadStart && p.t <= base.loadEnd);
  const maxOf = (f: (p: ProbeLine) => number) => Math.max(...during.map(f));
  const spaceNames = Object.keys(idle.spaces);
  out.push(
    "V8 and Node's own account, MiB (the shipped settings; committed = physical pages of the space):",
    "",
    "| figure | idle | at the PSS peak | highest during the load |",
    "|---|---:|---:|---:|",
  );
  const row = (label: string, f: (p: ProbeLine) => number) =>
    out.push(`| ${label} | ${mb(f(idle))} | ${mb(f(atPeak))} | ${mb(maxOf(f))} |`);
  row("rss (process.memoryUsage)", (p) => p.mem.rss);
  row("V8 heap committed (total_physical_size)", (p) => p.heap.total_physical_size);
  row("V8 heap used", (p) => p.heap.used_heap_size);
  for (const s of spaceNames) row(`  ${s}: committed`, (p) => p.spaces[s].physical);
  for (const s of spaceNames) row(`  ${s}: used`, (p) => p.spaces[s].used);
  row("V8 malloced (its own C++ allocations)", (p) => p.heap.malloced_memory);
  row("external (Buffers and ArrayBuffers outside the heap)", (p) => p.mem.external);
  row("  of which ArrayBuffers (Buffer backing stores)", (p) => p.mem.arrayBuffers);
  out.push(
    `| Node built-in modules loaded | ${idle.builtins} | ${atPeak.builtins} | ${maxOf((p) => p.builtins)} |`,
    `| active handles (sockets, timers, ...) | ${idle.handles} | ${atPeak.handles} | ${maxOf((p) => p.handles)} |`,
    "",
  );

  if (snapshotRun.snapshots) {
    for (const [label, file] of [
      ["idle", snapshotRun.snapshots.idle],
      ["under load (40 % of the messages in)", snapshotRun.snapshots.load],
    ] as const) {
      const s = summariseHeapSnapshot(file);
      out.push(`Heap snapshot ${label}: ${s.totalMb.toFixed(1)} MiB live (after the full GC a snapshot makes)`, "");
      out.push("| node type | MiB |", "|---|---:|", ...s.byType.map(([k, v]) => `| ${k} | ${mb(v)} |`), "");
      out.push("| largest groups | MiB |", "|---|---:|", ...s.byName.map(([k, v]) => `| ${k.replace(/\|/g, "\\|")} | ${mb(v)} |`), "");
      out.push(
        "| largest strings (first characters) | MiB |",
        "|---|---:|",
        ...s.largestStrings.map(([k, v]) => `| ${k.replace(/\|/g, "\\|")} | ${mb(v)} |`),
        "",
      );
    }
  }

  out.push(
    "Node settings compared (each a fresh maild under the same load):",
    "",
    "| settings | idle PSS MiB | peak PSS MiB | of the peak: anonymous + [heap] MiB | 2 s after the load MiB | msgs/s | CPU ms/msg (maild only) | new space committed at most MiB | old space committed at most MiB | GC pauses during the load, ms/msg: minor / major | full GCs during the load |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const r of results) {
    const newSpace = Math.max(...r.probe.map((p) => p.spaces.new_space?.physical ?? 0));
    const oldSpace = Math.max(...r.probe.map((p) => p.spaces.old_space?.physical ?? 0));
    const [first, last] = [nearest(r.probe, r.loadStart), nearest(r.probe, r.loadEnd)];
    const gcPerMsg = (k: "minor" | "major") => ((last.gcPauseMs[k] - first.gcPauseMs[k]) / MESSAGES).toFixed(3);
    const anon =
      ((r.peakMap["anonymous (V8 heap, malloc arenas, thread stacks)"] ?? 0) + (r.peakMap["[heap] (brk: malloc's main arena)"] ?? 0)) /
      1024;
    out.push(
      `| ${label(r.variant)} | ${r.idleMb.toFixed(1)} | ${r.peakMb.toFixed(1)} | ${anon.toFixed(1)} | ${r.afterMb.toFixed(1)} | ${r.msgsPerS.toFixed(0)} | ${r.cpuMsPerMsg.toFixed(2)} | ${mb(newSpace)} | ${mb(oldSpace)} | ${gcPerMsg("minor")} / ${gcPerMsg("major")} | ${last.gcCount.major - first.gcCount.major} |`,
    );
  }
  return out.join("\n") + "\n";
}

async function main(): Promise<void> {
  requirePrograms(["/usr/sbin/smtp-source", "/usr/sbin/knotd", "/usr/bin/dkimsign", "/usr/bin/rspamd"]);
  const net = await LocalInternet.create();
  const results: VariantResult[] = [];
  try {
    const world = await benchWorld(net);
    const bare = await bareNode(net, await net.addHost("bare-node"));
    progress(`maild ${label("")}: ${MESSAGES} messages, heap snapshots idle and under load ...`);
    const snapshotRun = await runVariant("", net, await net.addHost("maild-snapshots"), world, true);
    for (const [i, variant] of VARIANTS.entries()) {
      progress(`maild ${label(variant)}: ${MESSAGES} messages ...`);
      const r = await runVariant(variant, net, await net.addHost(`maild-mem-${i}`), world, false);
      progress(
        `maild ${label(variant)}: idle ${r.idleMb.toFixed(1)} MiB, peak ${r.peakMb.toFixed(1)} MiB, ${r.msgsPerS.toFixed(0)} msgs/s`,
      );
      results.push(r);
    }
    await world.knot.stop();
    process.stdout.write("\n" + report(snapshotRun, results, bare));
  } finally {
    await net.destroy();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench:maild-memory: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
