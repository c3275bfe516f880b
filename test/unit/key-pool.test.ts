// RSA key pairs made ahead on worker threads for the offline engine (infra/offline/key-pool.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { rsaKeyPair, RsaKeyPool, type RsaKeyPair } from "../../infra/offline/key-pool";

/** Waits for the pool's next key (the workers make them in the background). */
async function nextKey(pool: RsaKeyPool, bits: number): Promise<RsaKeyPair> {
  for (;;) {
    const pair = pool.takeRsa(bits);
    if (pair) return pair;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

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

test("a pool hands out the number of distinct RSA key pairs it was asked for, of the size asked, then none", async () => {
  const pool = new RsaKeyPool(1024, 3, 2);
  try {
    const pairs = [await nextKey(pool, 1024), await nextKey(pool, 1024), await nextKey(pool, 1024)];
    for (const pair of pairs) assertMatchingRsaPair(pair, 1024);
    const moduli = new Set(pairs.map((p) => p.publicKey.export({ format: "jwk" }).n));
    assert.equal(moduli.size, 3);
    // every worker has finished its share: nothing more will come
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(pool.takeRsa(1024), undefined);
  } finally {
    await pool.close();
  }
});

test("a pool serves no key of a size it does not make", async () => {
  const pool = new RsaKeyPool(1024, 1, 1);
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(pool.takeRsa(2048), undefined);
    assertMatchingRsaPair(await nextKey(pool, 1024), 1024);
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
  await pool.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(pool.takeRsa(1024), undefined);
});
