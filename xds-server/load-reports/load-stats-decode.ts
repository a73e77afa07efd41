// What the control plane reads of a LoadStatsRequest, taken straight from its bytes: the node's id, and per
// cluster its name and the requests issued and in progress (summed over its localities). Envoy sends one
// report per second listing every cluster, each with its localities, and its whole Node (hundreds of
// extension entries) in every report: decoding all of that into objects, only to read three fields, made
// ~2-3 MiB of garbage per second at 5,000 clusters, which kept V8's young generation at its largest and
// promoted a share of every report into the old generation. Here a report allocates its output only: one
// small object and one name per cluster that had a request issued or in progress. A cluster with neither is
// left out (its name is not even read): everything that reads reports takes an absent cluster as zero, and
// a gateway at rest reports thousands of them every second.
//
// Field numbers come from the protos (the same protobufjs types as everywhere else), not from constants here.
import protobuf from 'protobufjs';
import { messageType } from '../protos/load.ts';
import type { ClusterLoad } from './lrs-service.ts';

export interface DecodedLoadStats {
  /** node.id, when the report names its node (Envoy does in every report). */
  nodeId: string | undefined;
  /** The clusters with a request issued or in progress, in the report's order. */
  clusters: ClusterLoad[];
}

interface FieldIds {
  requestNode: number;
  requestClusterStats: number;
  nodeId: number;
  clusterName: number;
  localityStats: number;
  issued: number;
  inProgress: number;
}

let ids: FieldIds | undefined;

function fieldIds(): FieldIds {
  if (ids) return ids;
  const id = (type: string, field: string): number => {
    const f = messageType(type).fields[field];
    if (!f) throw new Error(`${type} has no field ${field}`);
    return f.id;
  };
  ids = {
    requestNode: id('envoy.service.load_stats.v3.LoadStatsRequest', 'node'),
    requestClusterStats: id('envoy.service.load_stats.v3.LoadStatsRequest', 'cluster_stats'),
    nodeId: id('envoy.config.core.v3.Node', 'id'),
    clusterName: id('envoy.config.endpoint.v3.ClusterStats', 'cluster_name'),
    localityStats: id('envoy.config.endpoint.v3.ClusterStats', 'upstream_locality_stats'),
    issued: id('envoy.config.endpoint.v3.UpstreamLocalityStats', 'total_issued_requests'),
    inProgress: id('envoy.config.endpoint.v3.UpstreamLocalityStats', 'total_requests_in_progress'),
  };
  return ids;
}

const VARINT = 0;
const LENGTH_DELIMITED = 2;

/** Decodes a LoadStatsRequest's node id and cluster loads; throws on bytes that are no valid message. */
export function decodeLoadStats(bytes: Uint8Array): DecodedLoadStats {
  const f = fieldIds();
  const r = protobuf.Reader.create(bytes);
  let nodeId: string | undefined;
  const clusters: ClusterLoad[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === f.requestNode && wire === LENGTH_DELIMITED) {
      const end = r.uint32() + r.pos;
      nodeId = readNodeId(r, end, f) ?? nodeId;
    } else if (field === f.requestClusterStats && wire === LENGTH_DELIMITED) {
      const end = r.uint32() + r.pos;
      const load = readClusterStats(r, end, f);
      if (load) clusters.push(load);
    } else {
      r.skipType(wire);
    }
  }
  return { nodeId, clusters };
}

/** Node.id (the last one, as protobuf merges a field given twice), skipping everything else in the Node. */
function readNodeId(r: protobuf.Reader, end: number, f: FieldIds): string | undefined {
  checkEnd(r, end);
  let id: string | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === f.nodeId && (tag & 7) === LENGTH_DELIMITED) id = r.string();
    else r.skipType(tag & 7);
  }
  return id;
}

/** A cluster's load, or undefined when it had no request issued or in progress (its name is then not even read). */
function readClusterStats(r: protobuf.Reader, end: number, f: FieldIds): ClusterLoad | undefined {
  checkEnd(r, end);
  let nameStart = 0;
  let nameEnd = 0;
  let issued = 0;
  let inProgress = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === f.clusterName && wire === LENGTH_DELIMITED) {
      const length = r.uint32();
      nameStart = r.pos;
      nameEnd = r.pos + length;
      checkEnd(r, nameEnd);
      r.pos = nameEnd;
    } else if (field === f.localityStats && wire === LENGTH_DELIMITED) {
      const localityEnd = r.uint32() + r.pos;
      checkEnd(r, localityEnd);
      while (r.pos < localityEnd) {
        const t = r.uint32();
        if (t >>> 3 === f.issued && (t & 7) === VARINT) issued += readCounter(r);
        else if (t >>> 3 === f.inProgress && (t & 7) === VARINT) inProgress += readCounter(r);
        else r.skipType(t & 7);
      }
    } else {
      r.skipType(wire);
    }
  }
  if (issued === 0 && inProgress === 0) return undefined;
  return { cluster: protobuf.util.utf8.read(r.buf, nameStart, nameEnd), issued, inProgress };
}

/** A uint64 counter as a number (exact below 2^53, far beyond any request count), without a Long object. */
function readCounter(r: protobuf.Reader): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (r.pos >= r.len) throw new RangeError('load report: a counter runs past the end of the message');
    const byte = r.buf[r.pos++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 128;
  }
  throw new RangeError('load report: a counter longer than 10 bytes');
}

function checkEnd(r: protobuf.Reader, end: number): void {
  if (end > r.len) throw new RangeError('load report: a field runs past the end of the message');
}
