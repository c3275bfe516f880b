/**
 * Authoritative DNS for the local internet: knotd 3.2 inside a namespace host.
 *
 * Every zone gets an SOA and an NS `ns.<origin>` (with A/AAAA = the host's addresses) unless its
 * lines bring their own. Knot listens on the host's IPv4, IPv6 and loopback, port 53. Stub resolvers
 * in the namespaces query it directly (call `net.setResolver(knot.host.ipv4)`); it answers
 * authoritatively, without recursion.
 *
 * Records change at runtime through knotc transactions (addRecords/removeRecords) or through RFC 2136
 * updates signed with `tsig` (hmac-sha256), which the zones accept from any address.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, mustRun, type NetHost, type RunResult } from "./netns";

export interface KnotServer {
  host: NetHost;
  /** replace/add records: zone-file lines with fully qualified owner names, e.g. `a.example.test. 300 IN A 198.51.100.9`;
   *  existing records of the same owner and type are replaced */
  addRecords(zone: string, lines: string[]): Promise<void>;
  removeRecords(zone: string, name: string, type: string): Promise<void>;
  /** key allowed to do RFC 2136 updates on every zone */
  tsig: { name: string; algorithm: "hmac-sha256"; secretB64: string };
  stop(): Promise<void>;
}

interface ParsedLine {
  owner: string;
  ttl: string;
  type: string;
  rdata: string;
}

function fqdn(name: string): string {
  return name.endsWith(".") ? name.toLowerCase() : `${name.toLowerCase()}.`;
}

/** Split a zone-file line into owner, ttl, type and rdata (TTL and class IN optional, either order). */
function parseLine(line: string): ParsedLine {
  const m = /^(\S+)\s+(?:IN\s+)?(?:(\d+)\s+)?(?:IN\s+)?([A-Za-z][A-Za-z0-9]*)\s+(\S.*)$/i.exec(line.trim());
  if (!m) throw new Error(`knot: record "${line}" is not "<owner.> [ttl] [IN] <type> <data>"`);
  const [, owner, ttl, type, rdata] = m;
  if (!owner.endsWith(".")) {
    throw new Error(`knot: record "${line}" must start with a fully qualified owner name ending in "."`);
  }
  // rdata stays exactly as written (TXT quoting included): knotc parses it as zone-file text.
  return { owner, ttl: ttl ?? "300", type: type.toUpperCase(), rdata };
}

function zoneFile(origin: string, lines: string[], host: NetHost): string {
  const parsed = lines.map(parseLine);
  const has = (type: string) => parsed.some((p) => p.type === type && fqdn(p.owner) === origin);
  const out = [`$ORIGIN ${origin}`, "$TTL 300"];
  if (!has("SOA")) out.push(`${origin} 300 IN SOA ns.${origin} hostmaster.${origin} 1 3600 600 86400 60`);
  if (!has("NS")) {
    out.push(`${origin} 300 IN NS ns.${origin}`);
    out.push(`ns.${origin} 300 IN A ${host.ipv4}`);
    out.push(`ns.${origin} 300 IN AAAA ${host.ipv6}`);
  }
  for (const p of parsed) out.push(`${p.owner} ${p.ttl} IN ${p.type} ${p.rdata}`);
  return out.join("\n") + "\n";
}

export async function startKnot(net: LocalInternet, host: NetHost, zones: { origin: string; lines: string[] }[]): Promise<KnotServer> {
  for (const bin of ["/usr/sbin/knotd", "/usr/sbin/knotc"]) {
    if (!fs.existsSync(bin)) throw new Error(`startKnot: ${bin} not found; install the Debian package "knot"`);
  }
  const dir = fs.mkdtempSync(path.join(net.workDir, "knot-"));
  const zonesDir = path.join(dir, "zones");
  fs.mkdirSync(zonesDir);
  const socket = path.join(dir, "knot.sock");
  const tsig = { name: "update-key.", algorithm: "hmac-sha256" as const, secretB64: randomBytes(32).toString("base64") };
  const origins = zones.map((z) => fqdn(z.origin));
  // knot's file template "%s" is the zone name without its trailing dot
  zones.forEach((z, i) => fs.writeFileSync(path.join(zonesDir, `${origins[i].slice(0, -1)}.zone`), zoneFile(origins[i], z.lines, host)));
  const conf = `server:
    rundir: "${dir}"
    listen: [ ${host.ipv4}@53, ${host.ipv6}@53, 127.0.0.1@53 ]
database:
    storage: "${dir}"
control:
    listen: "${socket}"
log:
  - target: stderr
    any: info
key:
  - id: ${tsig.name}
    algorithm: ${tsig.algorithm}
    secret: ${tsig.secretB64}
acl:
  - id: tsig-update
    key: ${tsig.name}
    action: update
template:
  - id: default
    storage: "${zonesDir}"
    file: "%s.zone"
    acl: [ tsig-update ]
    zonefile-sync: -1
    semantic-checks: off
zone:
${origins.map((o) => `  - domain: ${o}`).join("\n")}
`;
  fs.writeFileSync(path.join(dir, "knot.conf"), conf);
  await mustRun(["/usr/sbin/knotc", "-c", path.join(dir, "knot.conf"), "conf-check"]);
  const child: ChildProcess = host.spawn(["/usr/sbin/knotd", "-c", path.join(dir, "knot.conf")], { logFile: path.join(dir, "knotd.log") });

  const knotc = (args: string[]): Promise<RunResult> =>
    host.run(["/usr/sbin/knotc", "-s", socket, "-t", "10", ...args], { timeoutMs: 15_000 });
  const mustKnotc = async (args: string[]): Promise<string> => {
    const r = await knotc(args);
    // knotc reports some failures with exit 0 and "error" in the output
    if (r.code !== 0 || /\berror\b/i.test(r.stdout + r.stderr)) {
      throw new Error(`knotc ${args.join(" ")} failed: ${(r.stderr + r.stdout).trim()}`);
    }
    return r.stdout;
  };

  // Ready when every zone answers its SOA on the host's address.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      const logText = fs.existsSync(path.join(dir, "knotd.log")) ? fs.readFileSync(path.join(dir, "knotd.log"), "utf8") : "";
      throw new Error(`startKnot: knotd exited with code ${child.exitCode}:\n${logText}`);
    }
    const r = await knotc(["zone-status"]);
    if (r.code === 0 && origins.every((o) => new RegExp(`\\[${o.replace(/\./g, "\\.")}\\][^\\n]*serial: \\d+`).test(r.stdout))) break;
    if (Date.now() > deadline) throw new Error(`startKnot: zones not loaded after 10 s: ${r.stdout}${r.stderr}`);
    await new Promise((res) => setTimeout(res, 50));
  }

  const transaction = async (zone: string, body: (z: string) => Promise<void>) => {
    const z = fqdn(zone);
    if (!origins.includes(z)) throw new Error(`knot: zone "${zone}" is not served (zones: ${origins.join(", ")})`);
    await mustKnotc(["zone-begin", z]);
    try {
      await body(z);
      await mustKnotc(["zone-commit", z]);
    } catch (err) {
      await knotc(["zone-abort", z]);
      throw err;
    }
  };

  return {
    host,
    tsig,
    async addRecords(zone, lines) {
      const parsed = lines.map(parseLine);
      await transaction(zone, async (z) => {
        const seen = new Set<string>();
        for (const p of parsed) {
          const key = `${fqdn(p.owner)} ${p.type}`;
          if (seen.has(key)) continue;
          seen.add(key);
          // unset fails when nothing is there yet; that is fine for "replace or add"
          await knotc(["zone-unset", z, fqdn(p.owner), p.type]);
        }
        for (const p of parsed) await mustKnotc(["zone-set", z, fqdn(p.owner), p.ttl, p.type, p.rdata]);
      });
    },
    async removeRecords(zone, name, type) {
      await transaction(zone, async (z) => {
        await knotc(["zone-unset", z, fqdn(name), type.toUpperCase()]);
      });
    },
    async stop() {
      await LocalInternet.stopProcess(child);
    },
  };
}
