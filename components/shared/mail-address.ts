// The rules for the addresses of the box, in one place: the stack validator (components/config/)
// and maild's validator (server-bootstrap/maild/config.ts) both apply them, so an address the plan
// accepts is one the box accepts.

/** RFC 5322 3.2.3 dot-atom: atext (letters, digits, !#$%&'*+/=?^_`{|}~-) separated by single dots. */
export const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** RFC 5321 4.5.3.1.1: a local part is at most 64 octets. */
export const MAX_LOCAL_PART_OCTETS = 64;

/**
 * The local part of a mailbox (a user): lowercase letters, digits, ".", "_" and "-", dot-separated.
 * It is the IMAP login, which Dovecot refuses outside its auth_username_chars (default
 * `a-zA-Z0-9.-_@`, doc.dovecot.org/2.3/settings/core/#core_setting-auth_username_chars), and a
 * directory name under the mail store; and "+" is maild's recipient delimiter (`al+ice` is the
 * mailbox `al` with the extension `ice`, RFC 5233), so no mailbox name may contain it.
 */
const MAILBOX_LOCAL_PART = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** Why `local` cannot name a mailbox (a user), or undefined when it can. `local` is already lowercase. */
export function mailboxLocalPartProblem(local: string): string | undefined {
  if (MAILBOX_LOCAL_PART.test(local)) return undefined;
  const plus = local.includes("+") ? '; "+" separates an address extension (al+ice is the mailbox al), so make al+ice an alias' : "";
  return `local part "${local}" may only use a-z 0-9 . _ - for a mailbox (it is the IMAP login and a directory name)${plus}`;
}
