// CLI: tsx xds-server/main.ts --config config/gateway.yaml [--state-dir .state] [--xds-port 18000] [--admin-port 9902]
//      [--admin-address A] [--wake-address B: where Envoy reaches the admin port for wake calls] [--admin-token-file F]
//      [--admin-auth kubernetes|token|none]
//  or: tsx xds-server/main.ts --kubernetes [--kubeconfig F] [--controller-name N] [--gateway-address A | --gateway-address-pool 127.X.0.0/16]
//      [--leader-election-namespace NS (default $POD_NAMESPACE; none: single replica)] [--leader-election-id ID (default $POD_NAME)]
//      (same ports and flags)
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, type LogLevel } from './log.ts';
import { ConfigFileError, startControlPlane } from './control-plane.ts';
// Kubernetes mode (and its client library: ~85 MiB of RSS when imported into a bare node) is imported only when asked for
// (--kubernetes, below): file mode never loads it. test/unit/build.test.ts checks it stays that way.

const USAGE = `Usage: tsx xds-server/main.ts [options]            (file mode)
       tsx xds-server/main.ts --kubernetes [options]  (Kubernetes mode, Gateway API)

  --config F                 gateway config (file mode; default config/gateway.yaml)
  --state-dir D              marks, filter generation and process pid records (file mode; default .state)
  --filter F                 the built Wasm filter (default filter/build/filter.wasm)
  --xds-address A, --xds-port N        the ADS/LRS gRPC server (default 127.0.0.1:18000)
  --admin-address A, --admin-port N    the admin API (default 127.0.0.1:9902)
  --admin-token-file F       require "Authorization: Bearer <token>" (or set STZ_ADMIN_TOKEN)
  --admin-auth MODE          who may call the admin API: kubernetes (Kubernetes mode's default: a Kubernetes
                             bearer token, TokenReview + SubjectAccessReview on scaletozero.dev resources),
                             token (file mode's default: the static token, when one is given), none (open; warns).
                             In Kubernetes mode a static token needs --admin-auth=token (else: exit 2)
  --admin-audience A         Kubernetes mode: audience the TokenReview asks for (repeatable; default the API server's)
  --wake-address A           where Envoy reaches the admin port for the filter's wake calls
  --insecure-xds-plaintext   serve xDS and load reports without mutual TLS (logs a warning). Default: mTLS;
                             file mode keeps a local CA and certificates in <state-dir>/pki, Kubernetes mode a
                             CA Secret and one client certificate Secret per Gateway in its namespace
  --xds-certificates-namespace NS   Kubernetes mode: where the CA and the gateways' certificate Secrets live
                             (default $POD_NAMESPACE, else --leader-election-namespace; required for mTLS)
  --wake-port N              Kubernetes mode with mTLS: the HTTPS port of the filter's wake calls (default 9903)
  --envoy-sds-dir D          Kubernetes mode with mTLS: where the gateways' Envoys have their SDS files
                             (sds-certificate.yaml, sds-ca.yaml; default /etc/envoy-bootstrap, as deploy/ mounts them)
  --xds-server-name N        Kubernetes mode: a DNS name Envoys dial the control plane by, for its server
                             certificate (repeatable; default the deploy/ Services' names in that namespace)
                             Default: mTLS, with a local CA and certificates in <state-dir>/pki
  --log-level L              debug, info, warn or error (default info)
  --kubeconfig F, --controller-name N, --gateway-address A, --gateway-address-pool CIDR   (Kubernetes mode)
  --leader-election-namespace NS   replicas elect a leader on a Lease there (default $POD_NAMESPACE; unset: single replica)
  --leader-election-id ID          this replica's identity in the Lease (default $POD_NAME, else host-pid)
  -h, --help                 print this
`;

let parsed;
try {
  parsed = parse();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
const { values } = parsed;
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function parse() {
  return parseArgs({
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string', default: 'config/gateway.yaml' },
      'state-dir': { type: 'string', default: '.state' },
      filter: { type: 'string', default: 'filter/build/filter.wasm' },
      'xds-address': { type: 'string', default: '127.0.0.1' },
      'xds-port': { type: 'string', default: '18000' },
      'admin-address': { type: 'string', default: '127.0.0.1' },
      'admin-port': { type: 'string', default: '9902' },
      'admin-token-file': { type: 'string' },
      'admin-auth': { type: 'string' },
      'admin-audience': { type: 'string', multiple: true },
      'wake-address': { type: 'string' },
      'insecure-xds-plaintext': { type: 'boolean', default: false },
      'xds-certificates-namespace': { type: 'string' },
      'xds-server-name': { type: 'string', multiple: true },
      'wake-port': { type: 'string' },
      'envoy-sds-dir': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      kubernetes: { type: 'boolean', default: false },
      kubeconfig: { type: 'string' },
      // Default: DEFAULT_CONTROLLER_NAME (xds-server/kubernetes/cluster-state.ts).
      'controller-name': { type: 'string' },
      'gateway-address': { type: 'string', default: '127.0.0.1' },
      'gateway-address-pool': { type: 'string' },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string' },
    },
    strict: true,
  });
}

const log = createLogger({ level: values['log-level'] as LogLevel, module: 'control-plane' });

function port(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    log.error(`--${flag} must be a port number from 0 to 65535`, { given: value });
    process.exit(2);
  }
  return n;
}

const token = values['admin-token-file'] ? readFileSync(values['admin-token-file'], 'utf8').trim() : process.env.STZ_ADMIN_TOKEN;
const adminAuth = adminAuthMode();

/**
 * Kubernetes mode asks the cluster (RBAC) by default. A static token given there as well would either be
 * ignored (while someone believes it protects the API) or be a second key that bypasses RBAC: so it is an
 * error unless --admin-auth=token chooses it explicitly.
 */
function adminAuthMode(): 'kubernetes' | 'token' | 'none' {
  const given = values['admin-auth'];
  if (given !== undefined && given !== 'kubernetes' && given !== 'token' && given !== 'none') {
    log.error('--admin-auth must be kubernetes, token or none', { given });
    process.exit(2);
  }
  if (given === 'kubernetes' && !values.kubernetes) {
    log.error('--admin-auth=kubernetes needs --kubernetes (there is no cluster to ask in file mode)');
    process.exit(2);
  }
  if (given === 'token' && !token) {
    log.error('--admin-auth=token needs a token: --admin-token-file F or STZ_ADMIN_TOKEN');
    process.exit(2);
  }
  const mode = given ?? (values.kubernetes ? 'kubernetes' : token ? 'token' : 'none');
  if (mode === 'kubernetes' && token) {
    log.error('a static admin token (STZ_ADMIN_TOKEN or --admin-token-file) is given, but Kubernetes mode checks admin callers with Kubernetes RBAC: pass --admin-auth=token to use the static token instead, or remove it');
    process.exit(2);
  }
  if (mode === 'none' && token) {
    log.error('--admin-auth=none, but a static admin token is given: remove one of them');
    process.exit(2);
  }
  if (mode === 'none' && given === 'none') log.warn('the admin API is open: anyone who reaches it may mark and wake hosts (--admin-auth=none)');
  return mode;
}

const common = {
  filterWasmPath: path.resolve(values.filter),
  xdsAddress: values['xds-address'],
  xdsPort: port('xds-port', values['xds-port']),
  adminAddress: values['admin-address'],
  adminPort: port('admin-port', values['admin-port']),
  ...(adminAuth === 'token' && token ? { adminToken: token } : {}),
  ...(values['wake-address'] ? { wakeAddress: values['wake-address'] } : {}),
  log,
};

const onSignals = (close: () => Promise<void>): void => {
  const stop = (): void => {
    log.info('stopping');
    void close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
};

if (values.kubernetes) {
  // In a cluster the Deployment passes its namespace and pod name (downward API): replicas then elect a
  // leader for the once-only writes. Outside one, without the flag, this process is the only replica.
  const leaseNamespace = values['leader-election-namespace'] ?? process.env.POD_NAMESPACE;
  const identity = values['leader-election-id'] ?? process.env.POD_NAME ?? `${os.hostname()}-${process.pid}`;
  const certNamespace = values['xds-certificates-namespace'] ?? process.env.POD_NAMESPACE ?? values['leader-election-namespace'];
  if (!values['insecure-xds-plaintext'] && !certNamespace) {
    log.error('mutual TLS on xDS needs a namespace for its CA and certificate Secrets: run in a pod (POD_NAMESPACE), or pass --xds-certificates-namespace NS (or --insecure-xds-plaintext)');
    process.exit(2);
  }
  if (values['insecure-xds-plaintext'] && values['xds-certificates-namespace']) {
    log.error('--insecure-xds-plaintext and --xds-certificates-namespace contradict each other: remove one');
    process.exit(2);
  }
  // The names deploy/ gives the control plane (the headless xDS Service the Envoys dial, and the plain one).
  const serverDnsNames = values['xds-server-name'] ?? (certNamespace ? ['control-plane-xds', 'control-plane'].flatMap((svc) => [`${svc}.${certNamespace}.svc`, `${svc}.${certNamespace}.svc.cluster.local`]) : []);
  const [{ startKubernetesControlPlane }, { DEFAULT_CONTROLLER_NAME }, { ENVOY_SDS_FILE_NAMES }] = await Promise.all([
    import('./kubernetes/control-plane.ts'),
    import('./kubernetes/cluster-state.ts'),
    import('./kubernetes/xds-certificates.ts'),
  ]);
  try {
    const cp = await startKubernetesControlPlane({
      ...common,
      ...(values.kubeconfig ? { kubeconfig: path.resolve(values.kubeconfig) } : {}),
      controllerName: values['controller-name'] ?? DEFAULT_CONTROLLER_NAME,
      defaultGatewayAddress: values['gateway-address'],
      ...(values['gateway-address-pool'] ? { gatewayAddressPool: values['gateway-address-pool'] } : {}),
      ...(adminAuth === 'kubernetes' ? { adminRbac: values['admin-audience'] ? { audiences: values['admin-audience'] } : {} } : {}),
      ...(leaseNamespace ? { leaderElection: { namespace: leaseNamespace, identity, ...(process.env.POD_UID ? { podUid: process.env.POD_UID } : {}) } } : {}),
      ...(!values['insecure-xds-plaintext'] && certNamespace
        ? {
            xdsCertificates: {
              namespace: certNamespace,
              serverNames: { dnsNames: ['localhost', ...serverDnsNames], ipAddresses: ['127.0.0.1'] },
              ...(values['wake-port'] ? { wakePort: port('wake-port', values['wake-port']) } : {}),
              ...(values['envoy-sds-dir']
                ? { envoySdsFiles: { certificateSds: path.join(values['envoy-sds-dir'], ENVOY_SDS_FILE_NAMES.certificate), caSds: path.join(values['envoy-sds-dir'], ENVOY_SDS_FILE_NAMES.ca) } }
                : {}),
            },
          }
        : {}),
    });
    onSignals(() => cp.close());
  } catch (err) {
    log.error('could not start in Kubernetes mode', { error: (err as Error).message });
    process.exit(2);
  }
} else {
  try {
    const cp = await startControlPlane({
      ...common,
      configPath: path.resolve(values.config),
      stateDir: path.resolve(values['state-dir']),
      xdsSecurity: values['insecure-xds-plaintext'] ? 'plaintext' : 'mtls',
    });
    cp.hostOutput.on('line', (host, line) => log.info('host output', { host, line }));
    process.on('SIGHUP', () => {
      cp.reloadConfig().catch((err: Error) => log.error('config reload failed', { error: err.message }));
    });
    onSignals(() => cp.close());
  } catch (err) {
    if (err instanceof ConfigFileError) {
      log.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}
