// The V8 flags maild runs with: the systemd unit's ExecStart (server-bootstrap/systemd/maild-unit.ts)
// and the tests' harness (test/harness/maild.ts) both use these, so what is measured is what ships.
//
// --max-semi-space-size=4: V8's young generation holds the short-lived chunks maild streams every
// message through (16-64 KiB each). With V8's default semi-spaces, tens of MiB of them pile up
// between scavenges under load: ten 8 MB messages at once took maild's peak RSS to 179 MiB, with
// 4 MiB semi-spaces to 150 MiB (test/integration/maild-load.test.ts, with rspamd). Scavenges become
// more frequent and each stays as short, since almost nothing in them survives.
export const MAILD_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];
