// Logging through proxy_log with the level checked before any string is built, so disabled debug
// lines cost one host call and no allocation. Every line starts with "#<context id>" (Envoy already
// prefixes the plugin name).
import { LogLevel } from "./abi/status";
import { getLogLevel, log } from "./abi/logging";

export function logEnabled(level: LogLevel): bool {
  return getLogLevel() <= level;
}

export function logAt(level: LogLevel, contextId: u32, message: string): void {
  if (!logEnabled(level)) return;
  log(level, "#" + contextId.toString() + " " + message);
}
