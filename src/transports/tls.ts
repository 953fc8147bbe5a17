import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { z } from 'zod';
import { invalid } from '../core/errors.js';

/** How far in the future a certificate's start may be and still be taken (clocks apart). */
export const CERTIFICATE_CLOCK_LEEWAY_MS = 5 * 60_000;
/** Oldest TLS version spoken, both ways. */
export const TLS_MIN_VERSION = 'TLSv1.2';
/** Largest certificate, key or CA file read (a chain of a few certificates is a few KiB). */
export const TLS_MAX_FILE_BYTES = 1024 * 1024;

/**
 * A listener's TLS settings as given: a certificate and its private key, each as a PEM file path
 * or as PEM text. The certificate may carry its chain (leaf first).
 */
export interface TlsServerInput {
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** Checked TLS settings of a listener: PEM text, the key known to match the certificate. */
export interface TlsServerConfig {
  readonly cert: string;
  readonly key: string;
}

/**
 * How a client speaks TLS: `ca` (PEM) is the only certificate authority trusted for the server's
 * certificate; without it the system's. The certificate is always verified (name and chain).
 * `cert` and `key` (PEM, both or neither): the client certificate presented to a server that asks
 * for one (mutual TLS).
 */
export interface TlsClientConfig {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/**
 * What a TLS listener that asks for client certificates learnt of one connection's peer, once
 * its handshake is done. Nothing is refused at the TLS layer for it: the protocol above decides.
 */
export interface TlsPeerCertificate {
  /**
   * The peer presented a certificate that chains up to the listener's client CA and is within
   * its validity period (OpenSSL's verification, as for any TLS peer).
   */
  readonly authorized: boolean;
  /** Why not: `no certificate`, or OpenSSL's code (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, …). */
  readonly reason?: string;
  /** The subject's common names (CN), as the certificate spells them. */
  readonly commonNames: readonly string[];
  /** Its subjectAltName entries of type DNS, as spelt. */
  readonly dnsNames: readonly string[];
}

/** The zod shape of `tls` options (strict: unknown keys refused); `loadTlsServer` checks the rest. */
export const tlsServerOption = () =>
  z.strictObject({
    certFile: z.string().min(1, 'must not be empty').optional(),
    keyFile: z.string().min(1, 'must not be empty').optional(),
    cert: z.string().min(1, 'must not be empty').optional(),
    key: z.string().min(1, 'must not be empty').optional(),
  });

/** The names errors give each setting (library options by default; the CLI passes its flags). */
export interface TlsFieldNames {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

/** The option names of `tls` in a library's options. */
export const TLS_OPTION_NAMES: TlsFieldNames = {
  certFile: 'tls.certFile',
  keyFile: 'tls.keyFile',
  cert: 'tls.cert',
  key: 'tls.key',
};

function readPem(path: string, field: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw invalid('INVALID_INPUT', field, 'must be a readable PEM file', `${path}: ${code}`);
  }
  if (bytes.length > TLS_MAX_FILE_BYTES)
    throw invalid(
      'INVALID_INPUT',
      field,
      `must be a PEM file of at most ${TLS_MAX_FILE_BYTES} bytes`,
      path,
    );
  return bytes.toString('utf8');
}

/** The first certificate of PEM text, or INVALID_INPUT naming `field`. */
function certificateOf(pem: string, field: string, where: string | undefined): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw invalid('INVALID_INPUT', field, 'must be a PEM certificate (BEGIN CERTIFICATE)', where);
  try {
    return new X509Certificate(pem);
  } catch {
    throw invalid('INVALID_INPUT', field, 'must be a valid PEM certificate', where);
  }
}

/**
 * Reads and checks a listener's TLS settings: exactly one of `certFile`/`cert` and of
 * `keyFile`/`key`; files readable; a PEM certificate that has not expired; an unencrypted PEM
 * private key that belongs to that certificate. Every refusal is INVALID_INPUT naming the setting
 * (and the path), so a gateway with bad TLS settings never starts.
 */
export function loadTlsServer(
  input: TlsServerInput,
  names: TlsFieldNames = TLS_OPTION_NAMES,
  now: number = Date.now(),
): TlsServerConfig {
  const pick = (
    file: string | undefined,
    text: string | undefined,
    fileField: string,
    textField: string,
  ) => {
    if (file === undefined && text === undefined)
      throw invalid(
        'INVALID_INPUT',
        fileField,
        `is required with TLS: give ${fileField} (a path) or ${textField} (PEM text)`,
      );
    if (file !== undefined && text !== undefined)
      throw invalid('INVALID_INPUT', fileField, `give ${fileField} or ${textField}, not both`);
    return file === undefined
      ? { pem: text as string, where: undefined, field: textField }
      : { pem: readPem(file, fileField), where: file, field: fileField };
  };
  const cert = pick(input.certFile, input.cert, names.certFile, names.cert);
  const key = pick(input.keyFile, input.key, names.keyFile, names.key);
  const certificate = certificateOf(cert.pem, cert.field, cert.where);
  if (Date.parse(certificate.validTo) < now)
    throw invalid(
      'INVALID_INPUT',
      cert.field,
      'must be a certificate that has not expired',
      `${cert.where ?? 'PEM'}: valid to ${certificate.validTo}`,
    );
  // Not yet valid: every client would refuse it. Five minutes of leeway for clocks a little apart.
  if (Date.parse(certificate.validFrom) > now + CERTIFICATE_CLOCK_LEEWAY_MS)
    throw invalid(
      'INVALID_INPUT',
      cert.field,
      'must be a certificate that is already valid',
      `${cert.where ?? 'PEM'}: valid from ${certificate.validFrom}`,
    );
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key.pem);
  } catch {
    throw invalid(
      'INVALID_INPUT',
      key.field,
      'must be an unencrypted PEM private key',
      key.where ?? 'PEM',
    );
  }
  if (!certificate.checkPrivateKey(privateKey))
    throw invalid(
      'INVALID_INPUT',
      key.field,
      `must be the private key of the certificate in ${cert.field}`,
      key.where,
    );
  try {
    createSecureContext({ cert: cert.pem, key: key.pem, minVersion: TLS_MIN_VERSION });
  } catch (error) {
    throw invalid(
      'INVALID_INPUT',
      cert.field,
      'must be usable for TLS with its key',
      (error as Error).message,
    );
  }
  return Object.freeze({ cert: cert.pem, key: key.pem });
}

/**
 * The subjectAltName entries of Node's `subjectaltname` text (`DNS:a, URI:b, DNS:"c, d"`): a
 * value with a comma, a quote or a control character is a JSON string, so a crafted name cannot
 * pass for two. Undefined when the text is not in that form (then no entry is trusted).
 */
export function subjectAltNames(
  text: string,
): { readonly type: string; readonly value: string }[] | undefined {
  const names: { type: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) return undefined;
    const type = text.slice(i, colon);
    let end: number;
    let value: string;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      end++;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        return undefined;
      }
    } else {
      const comma = text.indexOf(', ', colon + 1);
      end = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, end);
    }
    names.push({ type, value });
    if (end === text.length) break;
    if (!text.startsWith(', ', end)) return undefined;
    i = end + 2;
  }
  return names;
}

/** What the peer of a server-side TLS socket proved (see TlsPeerCertificate). */
export function tlsPeerCertificate(socket: TLSSocket): TlsPeerCertificate {
  const certificate = socket.getPeerCertificate() as Partial<
    ReturnType<TLSSocket['getPeerCertificate']>
  > | null;
  const presented = certificate !== null && certificate.raw !== undefined;
  const cn = presented ? certificate.subject?.CN : undefined;
  const commonNames = cn === undefined ? [] : Array.isArray(cn) ? [...(cn as string[])] : [cn];
  const alt = presented ? certificate.subjectaltname : undefined;
  const dnsNames = (alt === undefined ? [] : (subjectAltNames(alt) ?? []))
    .filter((name) => name.type === 'DNS')
    .map((name) => name.value);
  const authorized = presented && socket.authorized;
  // Node types it as an Error; it is OpenSSL's code, a string.
  const code = socket.authorizationError as unknown;
  return {
    authorized,
    ...(authorized
      ? {}
      : { reason: presented ? String(code ?? 'not verified') : 'no certificate' }),
    commonNames,
    dnsNames,
  };
}

/**
 * A client certificate and its key for mutual TLS, as files or PEM text: both or neither, then
 * checked as a listener's are (`loadTlsServer`: PEM, not expired, the key the certificate's own).
 * INVALID_INPUT naming the setting (`names`) otherwise; undefined when neither is given.
 */
export function loadTlsClientCertificate(
  input: TlsServerInput,
  names: { readonly cert: string; readonly key: string },
): { readonly cert: string; readonly key: string } | undefined {
  const hasCert = input.cert !== undefined || input.certFile !== undefined;
  const hasKey = input.key !== undefined || input.keyFile !== undefined;
  if (!hasCert && !hasKey) return undefined;
  if (!hasCert || !hasKey) {
    throw invalid(
      'INVALID_INPUT',
      hasCert ? names.key : names.cert,
      `is required with ${hasCert ? names.cert : names.key}: a client certificate goes with its key`,
    );
  }
  const loaded = loadTlsServer(input, {
    certFile: names.cert,
    keyFile: names.key,
    cert: names.cert,
    key: names.key,
  });
  return { cert: loaded.cert, key: loaded.key };
}

/** A CA file for clients (PEM, one or more certificates), or INVALID_INPUT naming `field`. */
export function loadTlsCa(path: string, field: string): string {
  const pem = readPem(path, field);
  certificateOf(pem, field, path);
  return pem;
}

/** Checks CA PEM text given directly (library callers). */
export function checkTlsCa(pem: string, field: string): string {
  certificateOf(pem, field, undefined);
  return pem;
}

/** Why a TLS client refused a server, in words, from Node's error code. */
export function tlsFailureReason(code: string | undefined): string | undefined {
  switch (code) {
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return "TLS: the server's certificate is not signed by a trusted CA";
    case 'CERT_HAS_EXPIRED':
      return "TLS: the server's certificate has expired";
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return "TLS: the server's certificate is not for this host name";
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'EPROTO':
      return 'TLS: the server does not speak TLS';
    default:
      return undefined;
  }
}
