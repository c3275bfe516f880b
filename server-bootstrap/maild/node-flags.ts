// The V8 flags maild runs with: the systemd unit's ExecStart (server-bootstrap/systemd/maild-unit.ts)
// and the tests' harness (test/harness/maild.ts) both use these, so what is measured is what ships.
// test/bench/maild-memory.bench.ts compares them with other settings ("Where maild's memory goes"
// in the README has the figures).
//
// Almost everything maild allocates per message is garbage within milliseconds (the 16-64 KiB
// chunks a message streams through, parser state); what lives is 13-16 MiB (heap snapshots,
// idle and under load). V8's defaults size the heap for throughput instead:
//
// --max-semi-space-size=4: the young generation stays at 8 MiB instead of growing to 104 MiB under
//   load. Scavenges become more frequent and each stays as short, since almost nothing in them
//   survives. Smaller semi-spaces (1, 2 MiB) saved no more at the peak once the old generation is
//   held as below, and cost more CPU: 0.50 and 0.41 ms of scavenge pauses per message against 0.27.
// --heap-growing-percent=30: after a full GC, the old generation may grow to 1.3 times what
//   survived before the next one (V8's own factor goes up to 4 on a machine with memory to spare:
//   heap-controller.cc). Without it, garbage promoted from the young generation piled up to
//   45-76 MiB of old space between full GCs: the peak PSS under the reuse load went from 139 to
//   111 MiB with it, for about 0.1 ms more CPU per message.
// --initial-old-space-size=32: the first full GC at 32 MiB of old space, not at the large initial
//   limit V8 starts with (heap.h: "Before the first full GC ... V8 starts with a very large old
//   generation allocation limit"), so a burst right after start does not pile up garbage either.
//
// None of these caps the heap: a large live heap (a hostile load holding many big messages) makes
// V8 collect more often, never aborts maild (unlike --max-old-space-size).
export const MAILD_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4", "--initial-old-space-size=32", "--heap-growing-percent=30"];
