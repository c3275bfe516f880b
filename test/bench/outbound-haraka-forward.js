// Haraka plugin for the outbound benchmark (installed as plugins/bench_forward.js, listed after
// haraka-plugin-aliases). Haraka has no "accept this recipient because an alias forwards it"
// rule of its own, and its outbound queue is used by the core only for relaying clients; this
// plugin supplies both for the one alias the benchmark configures:
//   rcpt:  accept a recipient that the aliases plugin has just rewritten (it marks the
//          transaction with notes.forward); every other recipient falls through to Haraka's
//          default 550. The mark is per transaction: enough for the benchmark, which sends one
//          recipient per message, not a relay policy for real use.
//   queue: hand the message to Haraka's own outbound queue (outbound.send_trans_email, the same
//          call Haraka makes for relayed mail), then fsync the queue directory before 250.
//          Haraka fsyncs each queue file itself (FsyncWriteStream) but not the directory entry
//          its rename creates; with this, the durability equals maild's and Postfix's.
"use strict";
const fs = require("node:fs");
const outbound = require("./outbound");
const { queue_dir } = require("./outbound/queue");

exports.hook_rcpt = function (next, connection) {
  const txn = connection.transaction;
  if (txn && txn.notes.forward) return next(OK);
  next();
};

exports.hook_queue = function (next, connection) {
  const fail = (err) => {
    connection.logerror(this, `queue directory fsync failed: ${err.message}`);
    next(DENYSOFT, "queue write failed");
  };
  outbound.send_trans_email(connection.transaction, (code, msg) => {
    if (code !== OK) return next(code, msg);
    fs.open(queue_dir, "r", (err, fd) => {
      if (err) return fail(err);
      fs.fsync(fd, (err2) => {
        fs.close(fd, () => (err2 ? fail(err2) : next(OK, msg)));
      });
    });
  });
};
