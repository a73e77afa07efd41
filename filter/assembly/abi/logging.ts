// Spec section "Logging".
import { LogLevel, Status } from "./status";

@external("env", "proxy_log")
export declare function proxy_log(level: u32, messagePtr: usize, messageSize: usize): u32;

@external("env", "proxy_get_log_level")
export declare function proxy_get_log_level(returnLevelPtr: usize): u32;

const LEVEL_SLOT: usize = memory.data(4);

/** The host's current log level; Trace when the host cannot say (so nothing is hidden by mistake). */
export function getLogLevel(): LogLevel {
  if (proxy_get_log_level(LEVEL_SLOT) != Status.Ok) return LogLevel.Trace;
  return <LogLevel>load<u32>(LEVEL_SLOT);
}

export function log(level: LogLevel, message: string): Status {
  const bytes = String.UTF8.encode(message);
  return <Status>proxy_log(level, changetype<usize>(bytes), <usize>bytes.byteLength);
}
