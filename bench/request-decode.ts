// Micro-benchmark: CPU time to decode an ADS request carrying N resource names (Envoy's EDS request and its ACK
// at N hosts), by our reader (xds-server/protos/request-decode.ts) and by protobufjs (decode + toObject, as the
// ADS service did before). "cold": the first such request in a fresh process (after a few small ones, as a
// stream's CDS/LDS requests come first), each in its own child process; "cold after warm-up": the same after
// the control plane's start-up warm-up of the reader (xds-server/protos/warm-up.ts warmUpRequestReading, on
// other names); "warm": the median of many after warming up. CPU time (process.cpuUsage), not wall time: the machine is shared.
//
//   npx tsx bench/request-decode.ts [--names 5000] [--cold-runs 15] [--warm-runs 300]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { warmUpRequestReading } from '../xds-server/protos/warm-up.ts';
import {
  decodeDeltaDiscoveryRequest,
  decodeDeltaDiscoveryRequestByProtobufjs,
  decodeDiscoveryRequest,
  decodeDiscoveryRequestByProtobufjs,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
} from '../xds-server/protos/codec.ts';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '5000' },
    'cold-runs': { type: 'string', default: '15' },
    'warm-runs': { type: 'string', default: '300' },
    child: { type: 'string' },
    'warmed-up': { type: 'boolean', default: false },
  },
});
const N = Number(values.names);
const DECODERS = {
  'sotw ours': decodeDiscoveryRequest,
  'sotw protobufjs': decodeDiscoveryRequestByProtobufjs,
  'delta ours': decodeDeltaDiscoveryRequest,
  'delta protobufjs': decodeDeltaDiscoveryRequestByProtobufjs,
} as const;
type Which = keyof typeof DECODERS;

const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const node = { id: 'envoy-bench', cluster: 'gw', user_agent_name: 'envoy', metadata: { fields: { 'scaletozero.dev/gateway': { stringValue: 'default' } } } };

function requests(which: Which): { small: Buffer[]; big: Buffer } {
  // Cluster names as the file mode names them at N hosts (one per host).
  const names = Array.from({ length: N }, (_, i) => `host_h${i}`);
  if (which.startsWith('sotw')) {
    return {
      small: [encodeDiscoveryRequest({ node, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' }), encodeDiscoveryRequest({ version_info: '1', type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener', response_nonce: '2' })],
      // The ACK: the same names with a version and a nonce.
      big: encodeDiscoveryRequest({ version_info: '1796069679436.9c8fd29b29da5f41', resource_names: names, type_url: EDS, response_nonce: '7' }),
    };
  }
  return {
    small: [encodeDeltaDiscoveryRequest({ node, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names_subscribe: ['*'] }), encodeDeltaDiscoveryRequest({ type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener', response_nonce: '2' })],
    big: encodeDeltaDiscoveryRequest({ type_url: EDS, resource_names_subscribe: names }),
  };
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

if (values.child !== undefined) {
  const which = values.child as Which;
  const decode = DECODERS[which];
  const { small, big } = requests(which);
  if (values['warmed-up']) warmUpRequestReading();
  for (const s of small) decode(s);
  const t = cpuMs();
  decode(big);
  process.stdout.write(String(cpuMs() - t));
  process.exit(0);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const self = fileURLToPath(import.meta.url);
console.log(`decode of one request with ${N} resource names, CPU ms (median)`);
console.log('decoder            bytes   cold (fresh process)   cold after warm-up     warm');
for (const which of Object.keys(DECODERS) as Which[]) {
  const cold: number[] = [];
  const warmedUp: number[] = [];
  for (let i = 0; i < Number(values['cold-runs']); i++) {
    const child = (extra: string[]): number => Number(execFileSync(process.execPath, [...process.execArgv, self, '--child', which, '--names', String(N), ...extra], { encoding: 'utf8' }));
    cold.push(child([]));
    warmedUp.push(child(['--warmed-up']));
  }
  const decode = DECODERS[which];
  const { big } = requests(which);
  for (let i = 0; i < 200; i++) decode(big);
  const warm: number[] = [];
  for (let i = 0; i < Number(values['warm-runs']); i++) {
    const t = cpuMs();
    decode(big);
    warm.push(cpuMs() - t);
  }
  const cell = (xs: number[]): string => `${median(xs).toFixed(2).padStart(8)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`.padEnd(22);
  console.log(`${which.padEnd(18)} ${String(big.length).padStart(6)}   ${cell(cold)} ${cell(warmedUp)} ${median(warm).toFixed(3).padStart(8)}`);
}
