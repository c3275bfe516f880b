// IPv6 text form shared by the DNS records the stack publishes and maild's own DNS client.

/**
 * RFC 5952 4: lowercase hex, no leading zeros in a group, the longest run of two or more zero
 * groups compressed to "::" (the first of equal runs; 4.2.2: a single zero group stays "0").
 */
export function ipv6GroupsText(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i >= 2 && j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}
