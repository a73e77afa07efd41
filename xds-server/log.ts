// A small structured logger: one JSON line per event, so logs explain themselves and stay greppable.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(module: string): Logger;
}

export function createLogger(options: { level?: LogLevel; module?: string; write?: (line: string) => void } = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const make = (module: string): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
      if (RANK[level] < min) return;
      write(JSON.stringify({ time: new Date().toISOString(), level, module, msg, ...fields }));
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (sub) => make(module ? `${module}.${sub}` : sub),
    };
  };
  return make(options.module ?? '');
}

/** For tests and embedding: discards everything. */
export const silentLogger: Logger = createLogger({ write: () => {} });
