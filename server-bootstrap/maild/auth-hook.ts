// The submission seam (issue 5): SMTP AUTH on 465/587 checks a user's password against the
// argon2id hash in the config. Port 25 never offers AUTH; this is unused until submission exists.

export interface SubmissionAuth {
  /** resolves to the canonical user address on success, undefined on a wrong name or password */
  verify(username: string, password: string, clientIp: string): Promise<string | undefined>;
}
