// Renders a StackPlan for people (table), machines (json) and DNS servers (zone files).
import { renderZone } from "../../components/records/zone-file";
import type { PlannedRecord } from "../../components/records/types";
import { srvPresentation } from "../../components/records/srv";
import { containsUnknown, displayValue, markUnknown, shortType, type StackPlan } from "./plan";
import { Secret, Unknown } from "../offline/engine";
import { textTable } from "./text-table";

export type PlanFormat = "table" | "json" | "zone";
export const PLAN_FORMATS: readonly PlanFormat[] = ["table", "json", "zone"];

/**
 * Cloudflare assigns each account its own name servers, unknown offline; these stand-ins are in
 * the reserved .invalid TLD (RFC 6761 6.4) so nobody mistakes them for real ones.
 */
export const DEFAULT_ZONE_NAMESERVERS = ["ns1.cloudflare.invalid", "ns2.cloudflare.invalid"];

export interface ZoneRenderOptions {
  /** Name servers for the NS records; Cloudflare assigns the real ones per account. */
  nameservers?: string[];
  serial?: number;
}

/** The handful of inputs that tell resources of one type apart. */
const SUMMARY_INPUTS: Record<string, string[]> = {
  "hcloud:index/primaryIp:PrimaryIp": ["type", "location", "autoDelete", "deleteProtection"],
  "hcloud:index/server:Server": ["serverType", "image", "location", "userData"],
  "hcloud:index/volume:Volume": ["size", "format", "location"],
  "hcloud:index/rdns:Rdns": ["ipAddress", "dnsPtr"],
  "hcloud:index/storageBox:StorageBox": ["storageBoxType", "location", "deleteProtection"],
  "hcloud:index/storageBoxSubaccount:StorageBoxSubaccount": ["homeDirectory"],
  "hcloud:index/firewall:Firewall": [],
  "tls:index/privateKey:PrivateKey": ["algorithm", "rsaBits", "ecdsaCurve"],
  "cloudflare:index/dnsRecord:DnsRecord": ["type", "name"],
};

function summary(inputs: Record<string, unknown>, type: string): string {
  const keys = SUMMARY_INPUTS[type];
  if (!keys) return "";
  return keys
    .filter((k) => inputs[k] !== undefined)
    .map((k) => `${k}=${displayValue(inputs[k])}`)
    .join(" ");
}

function recordValue(r: PlannedRecord): string {
  if (r.type === "MX") return `${r.priority} ${r.content}`;
  if (r.type === "SRV" && r.data && "weight" in r.data) return srvPresentation(r.data);
  return r.content;
}

export function formatTable(plan: StackPlan): string {
  const custom = plan.resources.filter((r) => r.custom);
  const out: string[] = [];
  out.push(`Stack ${plan.stack}: mail host ${plan.hostname}, ${custom.length} resources, ${Object.keys(plan.zones).length} DNS zones`);
  if (plan.ipv4 === null || plan.ipv6 === null) {
    out.push("Addresses are unknown until Hetzner assigns them (pass --ipv4 ADDR --ipv6 PREFIX to fill them in).");
  }
  out.push("", "Resources");
  out.push(
    textTable([
      ["TYPE", "NAME", "OPTIONS", "INPUTS"],
      ...custom.map((r) => [
        shortType(r.type),
        r.name,
        [r.options.protect ? "protect" : "", r.options.deleteBeforeReplace ? "deleteBeforeReplace" : ""].filter(Boolean).join(",") || "-",
        summary(r.inputs, r.type),
      ]),
    ]),
  );
  for (const [zone, records] of Object.entries(plan.zones)) {
    out.push("", `DNS records in zone ${zone}`);
    out.push(textTable([["NAME", "TYPE", "CONTENT"], ...records.map((r) => [r.name, r.type, markUnknown(recordValue(r))])]));
  }
  out.push("", "Reverse DNS (PTR, set through the Hetzner API)");
  out.push(textTable([["ADDRESS", "PTR"], ...plan.ptr.map((p) => [markUnknown(p.address), p.ptr])]));
  return out.join("\n") + "\n";
}

export function formatJson(plan: StackPlan): string {
  const resources = plan.resources.map((r) => ({
    type: r.type,
    name: r.name,
    custom: r.custom,
    options: r.options,
    inputs: r.inputs,
  }));
  const text = JSON.stringify(
    { stack: plan.stack, hostname: plan.hostname, ipv4: plan.ipv4, ipv6: plan.ipv6, resources, zones: plan.zones, ptr: plan.ptr },
    (_k, v: unknown) => (v === Unknown ? null : v instanceof Secret ? "[secret]" : v),
    2,
  );
  return markUnknown(text) + "\n";
}

/**
 * One complete zone file per Cloudflare zone. Records whose content is not known yet (no
 * --ipv4/--ipv6) are written as comments, so the zone still loads.
 */
export function formatZones(plan: StackPlan, options: ZoneRenderOptions = {}): string {
  return Object.entries(plan.zones)
    .map(([zone, records]) => {
      const known = records.filter((r) => !containsUnknown(JSON.stringify(r)));
      const pending = records.filter((r) => containsUnknown(JSON.stringify(r)));
      const text = renderZone(zone, known, {
        nameservers: options.nameservers ?? DEFAULT_ZONE_NAMESERVERS,
        hostmaster: `hostmaster.${zone}`,
        serial: options.serial ?? 1,
      });
      const notes = pending.map((r) => `; known after pulumi up: ${r.name} ${r.type} ${markUnknown(recordValue(r))}`);
      return notes.length ? `${text}${notes.join("\n")}\n` : text;
    })
    .join("\n");
}
