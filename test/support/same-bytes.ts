// Holds snapshots/proto-writer.ts to protobufjs: a resource must be written by the writer (not left to the
// protobufjs fallback, which would make the comparison empty) and give the very bytes protobufjs's
// fromObject + encode give. The golden tests run it over every resource they build.
import { expect } from 'chai';
import { isUnsupported, writeMessage } from '../../snapshots/proto-writer.ts';
import type { Resource } from '../../snapshots/resource.ts';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { encodeWithProtobufjs, resourceType } from '../../snapshots/wire.ts';

export function expectWriterMatchesProtobufjs(kind: ResourceKind, resource: Resource, context = ''): void {
  const type = resourceType(kind);
  const expected = Buffer.from(encodeWithProtobufjs(type, resource));
  const written = writeMessage(type, resource);
  const where = `${context}${context ? ': ' : ''}${kind} ${resource.name}`;
  if (isUnsupported(written)) expect.fail(`${where}: the writer left it to protobufjs (${written.unsupported})`);
  if (!written.equals(expected)) expect.fail(`${where}: the writer's ${written.length} bytes differ from protobufjs's ${expected.length} at byte ${firstDifference(written, expected)}`);
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
