import { isIPv4 } from "node:net";

/** Whether a socket's remote address is loopback: 127.0.0.0/8, ::1, or 127.x mapped into IPv6 (RFC 4291 2.5.5.2). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.toLowerCase().startsWith("::ffff:") ? address.slice(7) : address;
  if (isIPv4(v4)) return v4.startsWith("127.");
  return address === "::1";
}
