// Typed hooks on everything the ADS server does. Logs, metrics, the admin API and tests all listen here,
// so tests wait on "the server classified this request" instead of sleeping.
import { EventEmitter } from 'node:events';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import type { Verdict } from './verdict.ts';

export interface StreamRef {
  streamId: number;
  nodeId: string;
}

export interface AdsEventMap {
  'stream-open': [StreamRef];
  'stream-close': [StreamRef & { reason: string }];
  /** `clientVersion`: the request's version_info (the last version of this type the client accepted, from anyone; delta: the filter config's version in initial_resource_versions). */
  request: [StreamRef & { kind: ResourceKind; verdict: Verdict; names: string[]; clientVersion: string }];
  /** `names`: the resources sent; `removed`: names sent as removed_resources (delta streams only). */
  response: [StreamRef & { kind: ResourceKind; version: string; nonce: string; names: string[]; removed?: string[] }];
  ack: [StreamRef & { kind: ResourceKind; version: string }];
  /** A (delta) client is at a version without a response: nothing it subscribes to changed in it. Not an ACK. */
  settled: [StreamRef & { kind: ResourceKind; version: string }];
  nack: [StreamRef & { kind: ResourceKind; rejectedVersion: string; message: string }];
  'snapshot-set': [{ group: string; versions: Readonly<Record<ResourceKind, string>> }];
}

export class AdsEvents extends EventEmitter<AdsEventMap> {}
