// RSA key pairs made ahead on worker threads for the offline engine (infra/offline/key-pool.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { rsaKeyPair, RsaKeyPool, StandInRsaKeys, type KeyPairSource, type RsaKeyPair } from "../../infra/offline/key-pool";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function assertMatchingRsaPair(pair: RsaKeyPair, bits: number): void {
  assert.equal(pair.privateKey.asymmetricKeyType, "rsa");
  assert.equal(pair.privateKey.asymmetricKeyDetails?.modulusLength, bits);
  assert.equal(pair.publicKey.type, "public");
  const signature = sign("sha256", Buffer.from("plan"), pair.privateKey);
  assert.equal(verify("sha256", Buffer.from("plan"), pair.publicKey, signature), true);
  // exportable as the mock provider exports them (PKCS#1, PKCS#8, SPKI, JWK)
  assert.match(pair.privateKey.export({ format: "pem", type: "pkcs1" }).toString(), /^-----BEGIN RSA PRIVATE KEY-----/);
  assert.equal(
    createPublicKey(createPrivateKey(pair.privateKey.export({ format: "pem", type: "pkcs8" }))).export({ format: "jwk" }).n,
    pair.publicKey.export({ format: "jwk" }).n,
  );
}

test("each key of the count is made once: by a worker, or by the caller when none is ready", async () => {
  const pool = new RsaKeyPool(1024, 6, 1);
  try {
    const fromPool: RsaKeyPair[] = [];
    let madeByCaller = 0;
    for (let i = 0; i < 6; i++) {
      const pair = pool.takeRsa(1024);
      if (pair) fromPool.push(pair);
      else madeByCaller++;
    }
    assert.equal(fromPool.length + madeByCaller, 6);
    for (const pair of fromPool) assertMatchingRsaPair(pair, 1024);
    assert.equal(new Set(fromPool.map((p) => p.publicKey.export({ format: "jwk" }).n)).size, fromPool.length);
    // the worker made none of the keys the caller made: nothing more comes
    await sleep(500);
    assert.equal(pool.takeRsa(1024), undefined);
  } finally {
    await pool.close();
  }
});

/** Waits until the pool has `n` keys made and not taken. */
async function untilReady(pool: RsaKeyPool, n: number): Promise<void> {
  while (pool.readyCount() < n) await sleep(20);
}

test("a key a worker has claimed is taken from it, waiting while it is made, not made again", async () => {
  const pool = new RsaKeyPool(4096, 1, 1);
  try {
    // by now the worker has claimed the only key (a 4096-bit key takes it far longer than its start)
    await sleep(1500);
    const pair = pool.takeRsa(4096);
    assert.ok(pair, "the caller was told to make the key the worker claimed");
    assertMatchingRsaPair(pair, 4096);
    assert.equal(pool.takeRsa(4096), undefined);
  } finally {
    await pool.close();
  }
});

test("a pool serves no key of a size it does not make, and keeps its keys for the size it does", async () => {
  const pool = new RsaKeyPool(1024, 1, 1);
  try {
    await untilReady(pool, 1);
    assert.equal(pool.takeRsa(2048), undefined);
    assert.equal(pool.readyCount(), 1);
    const pair = pool.takeRsa(1024);
    assert.ok(pair);
    assertMatchingRsaPair(pair, 1024);
    assert.equal(pool.readyCount(), 0);
  } finally {
    await pool.close();
  }
});

test("without a ready key, rsaKeyPair makes one of the size asked", async () => {
  const empty = new RsaKeyPool(1024, 0);
  assertMatchingRsaPair(rsaKeyPair(1024, empty), 1024);
  assertMatchingRsaPair(rsaKeyPair(1024), 1024);
  await empty.close();
});

test("a closed pool hands out no more keys", async () => {
  const pool = new RsaKeyPool(1024, 50, 1);
  await untilReady(pool, 1);
  await pool.close();
  assert.equal(pool.takeRsa(1024), undefined);
});

test("the stand-in source hands out one pair per size, taken from its source once, and lists its public keys", () => {
  const asked: number[] = [];
  const source: KeyPairSource = {
    takeRsa(bits) {
      asked.push(bits);
      return undefined;
    },
  };
  const standIn = new StandInRsaKeys(source);
  assert.deepEqual(standIn.publicKeysB64(), []);
  const first = standIn.takeRsa(1024);
  assertMatchingRsaPair(first, 1024);
  assert.equal(standIn.takeRsa(1024), first);
  assert.equal(standIn.takeRsa(1024), first);
  const larger = standIn.takeRsa(2048);
  assertMatchingRsaPair(larger, 2048);
  assert.deepEqual(asked, [1024, 2048]);
  assert.deepEqual(
    standIn.publicKeysB64(),
    [first, larger].map((p) => p.publicKey.export({ format: "der", type: "spki" }).toString("base64")),
  );
});
