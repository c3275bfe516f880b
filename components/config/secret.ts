// A `{secure: "v1:..."}` stack-config value that could not be decrypted. The offline plan reads
// stack files without the Pulumi CLI, so it carries encrypted values through validation as this
// marker instead of their plaintext; the Pulumi program wraps whatever it gets in pulumi.secret.
export class SecretValue {
  constructor(readonly ciphertext: string) {}

  // No toJSON: callers serialising config (the offline plan) find markers with a JSON.stringify
  // replacer, which never sees the object if toJSON has already replaced it.
  toString(): string {
    return "[secret]";
  }
}
