// One leader-election candidate as a process of its own (bench/failover.ts kills it with SIGKILL): prints
// "LEADING <epoch ms>" / "FOLLOWING <epoch ms>" on every change. Runs until killed or SIGTERM (then releases).
import { systemClock } from '../../xds-server/clock.ts';
import { kubeClientFrom } from '../../xds-server/kubernetes/control-plane.ts';
import { KubernetesLeaseStore, LeaderElector } from '../../xds-server/kubernetes/leader-election.ts';
import { silentLogger } from '../../xds-server/log.ts';

const [kubeconfig, identity, namespace = 'default', name = 'bench-failover'] = process.argv.slice(2);
if (!kubeconfig || !identity) {
  process.stderr.write('usage: lease-candidate.ts <kubeconfig> <identity> [namespace] [lease name]\n');
  process.exit(2);
}
const elector = new LeaderElector({
  identity,
  store: new KubernetesLeaseStore(kubeClientFrom(kubeconfig), namespace, name),
  clock: systemClock,
  log: silentLogger,
  onChange: (leading) => process.stdout.write(`${leading ? 'LEADING' : 'FOLLOWING'} ${Date.now()}\n`),
});
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
await elector.run(stop.signal);
