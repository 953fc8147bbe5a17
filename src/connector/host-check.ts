import { EcrError } from '../core/errors.js';

/**
 * The connector's Host check, against DNS rebinding: a web page on `evil.example` whose name the
 * attacker then points at 127.0.0.1 makes the victim's browser talk to the connector as if it
 * were `evil.example`, and read the answers. The browser still sends `Host: evil.example`, so a
 * connector that answers only to the names it is known by leaves such a page nothing to read.
 * Pure functions: the hook that applies them is in server.ts.
 */

/** The address the connector listens on: the POS runs on the same machine. */
export const CONNECTOR_LISTEN_HOST = '127.0.0.1';
/** Names of the loopback interface, always answered to, with or without a port. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];
/** Longest Host header read: a DNS name (253 characters) and `:65535`. Longer is refused. */
export const CONNECTOR_MAX_HOST_LENGTH = 259;
/** Most names ALLOWED_HOSTS may list. */
export const CONNECTOR_MAX_ALLOWED_HOSTS = 32;

/** The rule of an ALLOWED_HOSTS value, as config errors state it. */
export const ALLOWED_HOSTS_RULE =
  'must be host names or IP addresses separated by commas, without a scheme or port, such as pos.shop.lan,192.168.1.20,[fd00::1]';

/** The rule of the Host header, as 421 answers state it. */
export const HOST_RULE =
  'must be localhost, 127.0.0.1 or [::1] (with or without a port), or a name in ALLOWED_HOSTS';

/**
 * Whether `entry` (lower case) is a host name or an IP address as a browser writes it in `Host`:
 * letters, digits, `.`, `-`, `_`, or an IPv6 address in brackets, in the form the URL parser
 * keeps (`127.1`, `[0::1]` or a port would never match what a browser sends, so they are refused).
 */
function isHostEntry(entry: string): boolean {
  if (!/^(?:[a-z0-9._-]{1,253}|\[[0-9a-f:.]{2,45}\])$/.test(entry)) return false;
  try {
    return new URL(`http://${entry}/`).host === entry;
  } catch {
    return false;
  }
}

/**
 * The names of an ALLOWED_HOSTS value (`pos.shop.lan, 192.168.1.20`), lower case, or undefined
 * when it breaks ALLOWED_HOSTS_RULE (an empty name, a port, a scheme, too many names).
 */
export function parseAllowedHosts(value: string): string[] | undefined {
  const names = value.split(',').map((name) => name.trim().toLowerCase());
  if (names.length > CONNECTOR_MAX_ALLOWED_HOSTS) return undefined;
  return names.every(isHostEntry) ? names : undefined;
}

/** The names the connector answers to: the loopback names, its listen address, and `extra`. */
export function allowedHosts(extra: readonly string[] = []): ReadonlySet<string> {
  return new Set([...LOOPBACK_HOSTS, CONNECTOR_LISTEN_HOST, ...extra.map((h) => h.toLowerCase())]);
}

/**
 * The name of a Host header without its port (`[::1]:8080` → `[::1]`), lower case; undefined
 * when the header is not `host[:port]`.
 */
function hostName(header: string): string | undefined {
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d{1,5}))?$/.exec(header);
  if (match === null) return undefined;
  const port = match[2];
  if (port !== undefined && Number(port) > 65535) return undefined;
  return (match[1] as string).toLowerCase();
}

/**
 * Undefined when a request with this Host header may be answered, otherwise the error to answer
 * with (MISDIRECTED_REQUEST, HTTP 421). No header at all, or an empty one, passes: only HTTP/1.0
 * clients leave it out (Node refuses HTTP/1.1 without one), and a browser, the only tool DNS
 * rebinding has, always sends one.
 */
export function checkHost(
  header: string | undefined,
  allowed: ReadonlySet<string>,
): EcrError | undefined {
  if (header === undefined || header === '') return undefined;
  if (header.length <= CONNECTOR_MAX_HOST_LENGTH) {
    const name = hostName(header);
    if (name !== undefined && allowed.has(name)) return undefined;
  }
  const shown =
    header.length > 64 ? `${JSON.stringify(header.slice(0, 64))}…` : JSON.stringify(header);
  return new EcrError('MISDIRECTED_REQUEST', `host: ${HOST_RULE} (got ${shown})`, {
    field: 'host',
    rule: HOST_RULE,
  });
}
