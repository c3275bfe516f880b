// The SSH executor's exit status against an in-process ssh2 server on loopback that answers an exec
// with its reply, exit-status (or exit-signal), EOF and CLOSE written back to back, so the client
// reads them in one chunk: what OpenSSH's sshd sends for `true` when the client is busy for a
// moment. x/crypto/ssh collects the exit status whenever it comes (ssh/session.go newSession) and
// fails with ExitMissingError only when the server sent none (ssh/session.go wait).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { Server, utils as ssh2Utils, type ServerChannel } from "ssh2";
import { SshCommandExecutor } from "../../infra/offline/providers/ssh-executor";

type Ending = (channel: ServerChannel) => void;

describe("the SSH executor reads the exit status that arrives with the exec reply", () => {
  const hostKey = ssh2Utils.generateKeyPairSync("ed25519");
  const clientKey = ssh2Utils.generateKeyPairSync("ed25519");
  const endings = new Map<string, Ending>([
    ["exit 0", (ch) => ch.exit(0)],
    ["exit 3", (ch) => ch.exit(3)],
    ["killed", (ch) => ch.exit("KILL", false, "")],
    ["terminated", (ch) => ch.exit("TERM", false, "stopped by the admin")],
    ["no status", () => undefined],
  ]);
  let server: Server;
  let port: number;

  before(async () => {
    server = new Server({ hostKeys: [hostKey.private] }, (client) => {
      client.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
      client.on("session", (acceptSession) =>
        acceptSession().on("exec", (acceptExec, _reject, info) => {
          const channel = acceptExec();
          endings.get(info.command)?.(channel);
          channel.end();
        }),
      );
      client.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  const run = (command: string) =>
    new SshCommandExecutor().runRemote(
      {
        connection: { host: "127.0.0.1", port, user: "root", privateKey: clientKey.private, dialErrorLimit: 0, perDialTimeout: 10 },
        command,
        environment: {},
        optionalEnvironment: {},
        logging: "none",
      },
      () => undefined,
    );

  test("exit status 0 sent together with the exec reply: the command succeeded", async () => {
    for (let i = 0; i < 5; i++) assert.deepEqual(await run("exit 0"), { stdout: "", stderr: "" });
  });

  test("exit status 3 sent together with the exec reply: x/crypto/ssh's ExitError text", async () => {
    await assert.rejects(run("exit 3"), { message: 'Process exited with status 3: running "exit 3":\n' });
  });

  test("an exit signal sent together with the exec reply: x/crypto/ssh's ExitError text, status 128 + 9 from signal KILL", async () => {
    await assert.rejects(run("killed"), { message: 'Process exited with status 137 from signal KILL: running "killed":\n' });
  });

  test("an exit signal with an error message: x/crypto/ssh adds it as the reason", async () => {
    await assert.rejects(run("terminated"), {
      message: 'Process exited with status 143 from signal TERM. Reason was: stopped by the admin: running "terminated":\n',
    });
  });

  test("a session closed without exit status or signal still fails with x/crypto/ssh's ExitMissingError text", async () => {
    await assert.rejects(run("no status"), {
      message: 'wait: remote command exited without exit status or exit signal: running "no status":\n',
    });
  });
});
