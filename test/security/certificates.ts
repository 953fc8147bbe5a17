import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Files made by `makeCertificates`, all PEM. */
export interface TestCertificates {
  readonly dir: string;
  /** The CA that signed the server certificate. */
  readonly caCert: string;
  /** A certificate for 127.0.0.1 and localhost (subjectAltName), signed by the CA. */
  readonly serverCert: string;
  readonly serverKey: string;
  /** Another CA, which signed nothing here: trusting only it, a client refuses the server. */
  readonly otherCaCert: string;
  /** A private key that is not the server certificate's. */
  readonly otherKey: string;
  /** A file that is not PEM at all. */
  readonly notPem: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A throw-away PKI made with Debian's `openssl` CLI at test time: a CA, a server certificate
 * for 127.0.0.1/localhost signed by it, and a second, unrelated CA. EC P-256 keys (fast to
 * make on a loaded machine); small fixed serial numbers (no long digit runs on disk for the
 * suite's card-number scan to trip on).
 */
export function makeCertificates(dir: string): TestCertificates {
  const ca = (name: string, cn: string) =>
    openssl(
      [
        'req',
        '-x509',
        ...EC,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-subj',
        `/CN=${cn}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
  ca('ca', 'ecr-bridge test CA');
  ca('other-ca', 'ecr-bridge unrelated CA');
  openssl(
    ['req', '-new', ...EC, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'],
    dir,
  );
  writeFileSync(
    join(dir, 'server.ext'),
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '7',
      '-days',
      '2',
      '-extfile',
      'server.ext',
      '-out',
      'server.crt',
    ],
    dir,
  );
  writeFileSync(join(dir, 'not-pem.txt'), 'this is not a certificate\n');
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    otherCaCert: join(dir, 'other-ca.crt'),
    otherKey: join(dir, 'other-ca.key'),
    notPem: join(dir, 'not-pem.txt'),
  };
}

/** A client certificate and its key, as files. */
export interface ClientCertificate {
  readonly cert: string;
  readonly key: string;
}

/**
 * A terminal's client certificate for mutual TLS, signed by the CA of `makeCertificates` (or by
 * its unrelated CA with `signer: 'other-ca'`): subject CN `cn`, and `dns` as DNS
 * subjectAltNames. `serial` must differ per certificate of one CA (small: see above).
 */
export function makeClientCertificate(
  certs: TestCertificates,
  name: string,
  options: {
    readonly cn: string;
    readonly dns?: readonly string[];
    readonly signer?: 'ca' | 'other-ca';
    readonly serial: number;
  },
): ClientCertificate {
  const dir = certs.dir;
  openssl(
    [
      'req',
      '-new',
      ...EC,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${options.cn}`,
    ],
    dir,
  );
  writeFileSync(
    join(dir, `${name}.ext`),
    [
      ...(options.dns === undefined || options.dns.length === 0
        ? []
        : [`subjectAltName=${options.dns.map((d) => `DNS:${d}`).join(',')}`]),
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
      '',
    ].join('\n'),
  );
  const signer = options.signer ?? 'ca';
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${signer}.crt`,
      '-CAkey',
      `${signer}.key`,
      '-set_serial',
      String(options.serial),
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}
