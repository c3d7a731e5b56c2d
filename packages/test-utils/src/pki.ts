// A test PKI made with the real openssl: a CA, a server certificate for
// localhost/127.0.0.1, good and bad client certificates (wrong CA, expired,
// revoked with a CRL, a DN outside an allowed list).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export interface KeyPair { readonly cert: string; readonly key: string }

export interface Pki {
  readonly dir: string;
  readonly ca: KeyPair;
  readonly crl: string;
  readonly server: KeyPair;
  /** O=virtd test, CN=client1: inside the allowed DN list the tests use. */
  readonly client: KeyPair;
  /** O=intruder: valid but outside the allowed list. */
  readonly outsider: KeyPair;
  readonly expired: KeyPair;
  readonly revoked: KeyPair;
  /** Signed by another CA. */
  readonly rogue: KeyPair;
}

const openssl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

function caConfig(dir: string, name: string): string {
  const conf = path.join(dir, `${name}.cnf`);
  fs.mkdirSync(path.join(dir, `${name}-db`), { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}-db`, 'index.txt'), '');
  fs.writeFileSync(path.join(dir, `${name}-db`, 'crlnumber'), '01\n');
  fs.writeFileSync(conf, [
    '[ ca ]', 'default_ca = CA_default',
    '[ CA_default ]',
    `dir = ${path.join(dir, `${name}-db`)}`,
    'database = $dir/index.txt', 'new_certs_dir = $dir', 'crlnumber = $dir/crlnumber',
    `certificate = ${path.join(dir, `${name}.pem`)}`, `private_key = ${path.join(dir, `${name}.key`)}`,
    'default_md = sha256', 'default_days = 2', 'default_crl_days = 2', 'policy = policy_any',
    'unique_subject = no', 'rand_serial = yes', 'copy_extensions = copy',
    '[ policy_any ]', 'countryName = optional', 'organizationName = optional', 'commonName = supplied',
    '[ server_ext ]', 'basicConstraints = CA:FALSE', 'keyUsage = digitalSignature, keyEncipherment',
    'extendedKeyUsage = serverAuth', 'subjectAltName = DNS:localhost, IP:127.0.0.1',
    '[ client_ext ]', 'basicConstraints = CA:FALSE', 'keyUsage = digitalSignature, keyEncipherment',
    'extendedKeyUsage = clientAuth',
    '',
  ].join('\n'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/O=virtd test/CN=${name}`, '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return conf;
}

function issue(dir: string, conf: string, name: string, subj: string, ext: string, dates?: [string, string]): KeyPair {
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj], dir);
  openssl(['ca', '-batch', '-config', conf, '-extensions', ext, '-in', `${name}.csr`, '-out', `${name}.pem`, '-notext',
    ...(dates ? ['-startdate', dates[0], '-enddate', dates[1]] : [])], dir);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

export function makePki(dir: string): Pki {
  const conf = caConfig(dir, 'ca');
  const server = issue(dir, conf, 'server', '/O=virtd test/CN=localhost', 'server_ext');
  const client = issue(dir, conf, 'client', '/C=GB/O=virtd test/CN=client1', 'client_ext');
  const outsider = issue(dir, conf, 'outsider', '/C=GB/O=intruder/CN=client2', 'client_ext');
  const expired = issue(dir, conf, 'expired', '/C=GB/O=virtd test/CN=expired', 'client_ext', ['20200101000000Z', '20200102000000Z']);
  const revoked = issue(dir, conf, 'revoked', '/C=GB/O=virtd test/CN=revoked', 'client_ext');
  openssl(['ca', '-batch', '-config', conf, '-revoke', 'revoked.pem'], dir);
  openssl(['ca', '-batch', '-config', conf, '-gencrl', '-out', 'crl.pem'], dir);
  const rogueConf = caConfig(dir, 'rogue-ca');
  const rogue = issue(dir, rogueConf, 'rogue', '/C=GB/O=virtd test/CN=client1', 'client_ext');
  return {
    dir,
    ca: { cert: path.join(dir, 'ca.pem'), key: path.join(dir, 'ca.key') },
    crl: path.join(dir, 'crl.pem'),
    server, client, outsider, expired, revoked, rogue,
  };
}
