// Waiting for a server started in a namespace to listen.
import * as net from "node:net";

/** Resolve once something accepts TCP connections at host:port (from the test process's namespace). */
export async function waitForPort(
  host: string,
  port: number,
  what: string,
  timeoutMs = 10_000,
  /** false once the server's process is gone: no point waiting on */
  isAlive?: () => boolean,
  pollMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await acceptsConnections(host, port)) return;
    if (isAlive && !isAlive()) throw new Error(`${what}: the process exited before listening on ${host}:${port}`);
    if (Date.now() > deadline) throw new Error(`${what}: nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Whether something accepts a TCP connection at host:port now (the connection is closed at once). */
export function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
