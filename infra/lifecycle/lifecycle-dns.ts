// The DNS a lifecycle's world publishes: what the Cloudflare stand-in holds, written into knot as it
// changes (the world's onRecordsChanged), and the PTRs the Hetzner stand-in sets (ptrChanged).
// Pure conversions here; lifecycle.ts wires them.
import type { CloudflareRecord } from "../offline/providers/cloudflare-world";

function absolute(name: string): string {
  return name === "." ? "." : `${name.replace(/\.$/, "")}.`;
}

/** A TXT content as a zone file needs it: Cloudflare keeps quoted content as sent, bare content unquoted. */
function txtRdata(content: string): string {
  if (content.trimStart().startsWith('"')) return content;
  return `"${content.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** One record as a zone-file line (RFC 1035 5.1) with an absolute owner name, as knot's addRecords takes it. */
export function zoneLine(r: CloudflareRecord): string {
  const ttl = r.ttl === 1 ? 300 : r.ttl;
  const owner = absolute(r.name);
  let rdata: string;
  switch (r.type) {
    case "TXT":
      rdata = txtRdata(r.content);
      break;
    case "MX":
      rdata = `${r.priority ?? 0} ${absolute(r.content)}`;
      break;
    case "CNAME":
    case "NS":
    case "PTR":
      rdata = absolute(r.content);
      break;
    case "SRV": {
      // Cloudflare's SRV content is "weight port target", the priority beside it (cloudflare.md sec. 5).
      const [weight, port, target] = r.content.split(/\s+/);
      rdata = `${r.priority ?? 0} ${weight} ${port} ${absolute(target)}`;
      break;
    }
    default:
      rdata = r.content;
  }
  return `${owner} ${ttl} IN ${r.type} ${rdata}`;
}

/** The ACME DNS-01 challenge records: written and removed by the certificate's own step, never planned. */
export function isChallenge(name: string): boolean {
  return /^_acme-challenge\./.test(name);
}

/**
 * The records the API holds that the zone's authoritative server (knot) does not answer with, as
 * `<TYPE> <name>: <why>` lines (empty when the world resolves what Cloudflare holds). Compares what
 * a resolver sees: addresses, TXT strings, MX exchange and preference, SRV port and target, CAA
 * tag and value, TLSA data.
 */
export async function unservedRecords(records: CloudflareRecord[], nameserver: string): Promise<string[]> {
  const { promises: dnsp } = await import("node:dns");
  const r = new dnsp.Resolver({ timeout: 2000, tries: 2 });
  r.setServers([nameserver]);
  const wanted = records.filter((x) => !isChallenge(x.name));
  const problems: string[] = [];
  const answers = new Map<string, Promise<string[]>>();
  const lookup = (type: string, name: string): Promise<string[]> => {
    const key = `${type} ${name}`;
    if (!answers.has(key)) {
      const q = (async (): Promise<string[]> => {
        switch (type) {
          case "A":
            return r.resolve4(name);
          case "AAAA":
            return (await r.resolve6(name)).map((a) => a.toLowerCase());
          case "TXT":
            return (await r.resolveTxt(name)).map((chunks) => chunks.join(""));
          case "MX":
            return (await r.resolveMx(name)).map((m) => `${m.priority} ${m.exchange}`);
          case "SRV":
            return (await r.resolveSrv(name)).map((s) => `${s.priority} ${s.weight} ${s.port} ${s.name || "."}`);
          case "CAA":
            return (await r.resolveCaa(name)).map((c) => {
              const [tag, value] = Object.entries(c).find(([k]) => k !== "critical" && k !== "type") ?? ["?", "?"];
              return `${c.critical} ${tag} ${value}`;
            });
          case "TLSA":
            return (await r.resolveTlsa(name)).map(
              (t) => `${t.certUsage} ${t.selector} ${t.match} ${Buffer.from(t.data).toString("hex").toUpperCase()}`,
            );
          default:
            return [];
        }
      })().catch((err: NodeJS.ErrnoException) => [`(${err.code ?? err.message})`]);
      answers.set(key, q);
    }
    return answers.get(key)!;
  };
  const expected = (x: CloudflareRecord): string => {
    switch (x.type) {
      case "TXT": {
        // The strings a resolver joins: each quoted string's content, escapes undone.
        const parts = [...x.content.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, "$1"));
        return parts.length ? parts.join("") : x.content;
      }
      case "MX":
        return `${x.priority ?? 0} ${x.content.replace(/\.$/, "")}`;
      case "SRV": {
        const [weight, port, target] = x.content.split(/\s+/);
        return `${x.priority ?? 0} ${weight} ${port} ${target === "." ? "." : target.replace(/\.$/, "")}`;
      }
      case "CAA": {
        const d = x.data as { flags: number; tag: string; value: string };
        return `${d.flags} ${d.tag} ${d.value}`;
      }
      case "AAAA":
        return x.content.toLowerCase();
      default:
        return x.content;
    }
  };
  for (const x of wanted) {
    if (!["A", "AAAA", "TXT", "MX", "SRV", "CAA", "TLSA"].includes(x.type)) continue;
    const got = await lookup(x.type, x.name);
    if (!got.includes(expected(x)))
      problems.push(`${x.type} ${x.name}: expected ${expected(x)}, knot answers ${got.join(" | ") || "nothing"}`);
  }
  return problems;
}
