// Secrets the program makes for the box: the key maild signs SRS addresses with (srs.ts), and the
// API key and hash nonce maild and Dovecot share for auth policy requests (auth-policy-server.ts).
// They come from one random key kept in the Pulumi state as a secret: an Ed25519 private key of
// @pulumi/tls (32 random bytes, never replaced unless its resource is), from which each secret is
// derived with HMAC-SHA256 under its own label, so none reveals another and a rebuilt server gets
// the same ones (an SRS address in flight still verifies after a rebuild).
import { createHmac, createPrivateKey } from "node:crypto";
import type { DeploySecrets } from "../server-bootstrap/install/deploy-files";

const LABELS: Record<keyof DeploySecrets, string> = {
  srs: "mailstack box secret: SRS",
  authPolicyKey: "mailstack box secret: Dovecot auth policy API key",
  authPolicyNonce: "mailstack box secret: Dovecot auth policy hash nonce",
};

/** Every box secret, from the PEM of the Ed25519 key (64 hex characters each). */
export function deriveBoxSecrets(privateKeyPem: string): DeploySecrets {
  const key = createPrivateKey(privateKeyPem).export({ format: "der", type: "pkcs8" });
  const derive = (label: string) => createHmac("sha256", key).update(label).digest("hex");
  return {
    srs: derive(LABELS.srs),
    authPolicyKey: derive(LABELS.authPolicyKey),
    authPolicyNonce: derive(LABELS.authPolicyNonce),
  };
}
