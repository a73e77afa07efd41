// Replaces AssemblyScript's default `env.abort` import (which Envoy does not provide, so the module
// would fail to link) through `--use abort=…` in asconfig.json. It only logs at critical level: the
// compiler still emits `unreachable` after an abort, so the current callback traps, but the VM is never
// asked to exit (no WASI proc_exit), and the log line says why.
import { proxy_log } from "./logging";
import { LogLevel } from "./status";

export function filterAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = "scale_to_zero_buffer: abort: ";
  if (message !== null) text += message;
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  const bytes = String.UTF8.encode(text);
  proxy_log(LogLevel.Critical, changetype<usize>(bytes), <usize>bytes.byteLength);
}
