// The service manager's notification socket (sd_notify(3)): an AF_UNIX datagram socket whose
// path is passed to services as $NOTIFY_SOCKET; a Type=notify service sends "READY=1" on it when
// it is up. Node cannot receive unix datagrams, so a few lines of Debian's Python 3 receive them,
// with the sender's credentials (SO_PASSCRED / SCM_CREDENTIALS, as systemd reads them to check
// NotifyAccess=), and hand each message on as one JSON line.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";

export const NOTIFY_SOCKET_PATH = "/run/systemd/notify";

const RECEIVER = `
import json, os, socket, struct, sys
path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
os.chmod(path, 0o777)
print(json.dumps({"listening": path}), flush=True)
while True:
    data, anc, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = 0
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", cdata[:12])[0]
    print(json.dumps({"pid": pid, "data": data.decode("utf-8", "replace")}), flush=True)
`;

export interface NotifyMessage {
  pid: number;
  /** newline-separated VAR=value assignments (READY=1, STATUS=..., MAINPID=...) */
  fields: Record<string, string>;
}

export class NotifySocket {
  private constructor(private readonly child: ChildProcess) {}

  static start(onMessage: (m: NotifyMessage) => void, path = NOTIFY_SOCKET_PATH): Promise<NotifySocket> {
    const python = "/usr/bin/python3";
    if (!fs.existsSync(python)) throw new Error(`${python} is missing: the machine's notification socket needs Debian's python3`);
    const child = spawn(python, ["-c", RECEIVER, path], { stdio: ["ignore", "pipe", "inherit"] });
    return new Promise((resolve, reject) => {
      let pending = "";
      let listening = false;
      child.once("error", reject);
      child.once("exit", (code) => {
        if (!listening) reject(new Error(`the notification socket receiver exited (${code}) before listening`));
      });
      child.stdout!.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8");
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = JSON.parse(pending.slice(0, nl)) as { listening?: string; pid?: number; data?: string };
          pending = pending.slice(nl + 1);
          if (line.listening) {
            listening = true;
            resolve(new NotifySocket(child));
            continue;
          }
          const fields: Record<string, string> = {};
          for (const assignment of (line.data ?? "").split("\n")) {
            const eq = assignment.indexOf("=");
            if (eq > 0) fields[assignment.slice(0, eq)] = assignment.slice(eq + 1);
          }
          onMessage({ pid: line.pid ?? 0, fields });
        }
      });
    });
  }

  stop(): void {
    this.child.kill("SIGKILL");
  }
}
