// CLI: tsx xds-server/main.ts --config config/gateway.yaml [--state-dir .state] [--xds-port 18000] [--admin-port 9902]
//      [--admin-address A] [--wake-address B: where Envoy reaches the admin port for wake calls] [--admin-token-file F]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, type LogLevel } from './log.ts';
import { ConfigFileError, startControlPlane } from './control-plane.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'config/gateway.yaml' },
    'state-dir': { type: 'string', default: '.state' },
    filter: { type: 'string', default: 'filter/build/filter.wasm' },
    'xds-address': { type: 'string', default: '127.0.0.1' },
    'xds-port': { type: 'string', default: '18000' },
    'admin-address': { type: 'string', default: '127.0.0.1' },
    'admin-port': { type: 'string', default: '9902' },
    'admin-token-file': { type: 'string' },
    'wake-address': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  },
  strict: true,
});

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

try {
  const cp = await startControlPlane({
    configPath: path.resolve(values.config),
    stateDir: path.resolve(values['state-dir']),
    filterWasmPath: path.resolve(values.filter),
    xdsAddress: values['xds-address'],
    xdsPort: port('xds-port', values['xds-port']),
    adminAddress: values['admin-address'],
    adminPort: port('admin-port', values['admin-port']),
    ...(token ? { adminToken: token } : {}),
    ...(values['wake-address'] ? { wakeAddress: values['wake-address'] } : {}),
    log,
  });
  cp.hostOutput.on('line', (host, line) => log.info('host output', { host, line }));
  process.on('SIGHUP', () => {
    cp.reloadConfig().catch((err: Error) => log.error('config reload failed', { error: err.message }));
  });
  const stop = (): void => {
    log.info('stopping');
    void cp.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} catch (err) {
  if (err instanceof ConfigFileError) {
    log.error(err.message);
    process.exit(2);
  }
  throw err;
}
