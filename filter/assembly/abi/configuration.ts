// Spec sections "Configuration" and "Buffers": the plugin configuration is read as buffer
// PluginConfiguration, only while proxy_on_configure runs.
import { BufferType, Status } from "./status";
import { takeString } from "./memory";

@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(
  bufferType: u32, start: usize, maxSize: usize, returnDataPtr: usize, returnSizePtr: usize,
): u32;

const DATA_SLOT: usize = memory.data(4);
const SIZE_SLOT: usize = memory.data(4);

/** Reads [start, start+maxSize) of a host buffer as UTF-8. Empty string with NotFound when absent. */
export class BufferRead {
  constructor(public status: Status, public text: string) {}
}

export function getBufferString(bufferType: BufferType, start: usize, maxSize: usize): BufferRead {
  store<u32>(DATA_SLOT, 0);
  store<u32>(SIZE_SLOT, 0);
  const status = <Status>proxy_get_buffer_bytes(bufferType, start, maxSize, DATA_SLOT, SIZE_SLOT);
  if (status != Status.Ok) return new BufferRead(status, "");
  return new BufferRead(status, takeString(<usize>load<u32>(DATA_SLOT), <usize>load<u32>(SIZE_SLOT)));
}

export function getPluginConfiguration(size: usize): BufferRead {
  if (size == 0) return new BufferRead(Status.Ok, "");
  return getBufferString(BufferType.PluginConfiguration, 0, size);
}
