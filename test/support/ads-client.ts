// A raw ADS client: sends exactly the DiscoveryRequests a test writes (any node, version, nonce or
// error_detail) and reads responses one by one, so protocol rules are tested without Envoy in the way.
import * as grpc from '@grpc/grpc-js';
import {
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  decodeResource,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
  type DecodedDeltaResponse,
  type DecodedResponse,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
} from '../../xds-server/protos/codec.ts';
import { kindOfTypeUrl } from '../../snapshots/type-urls.ts';

const PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

export class RawAdsClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly queue: DecodedResponse[] = [];
  private waiting: ((r: DecodedResponse) => void) | undefined;
  error: grpc.ServiceError | undefined;
  ended = false;

  constructor(port: number, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, credentials);
    this.call = this.client.makeBidiStreamRequest(PATH, (b: Buffer) => b, (b: Buffer) => b);
    this.call.on('data', (bytes: Buffer) => {
      const response = decodeDiscoveryResponse(bytes);
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(response);
      } else this.queue.push(response);
    });
    this.call.on('error', (err: grpc.ServiceError) => {
      this.error = err;
    });
    this.call.on('end', () => {
      this.ended = true;
    });
  }

  send(request: Partial<DiscoveryRequest>): void {
    this.call.write(encodeDiscoveryRequest(request));
  }

  /** The next response, or an error naming what was awaited. */
  next(timeoutMs = 5_000): Promise<DecodedResponse> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no DiscoveryResponse within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }

  /** Responses received and not yet read. */
  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

export function resourceNames(response: DecodedResponse): string[] {
  const kind = kindOfTypeUrl(response.type_url);
  if (!kind) throw new Error(`unknown type ${response.type_url}`);
  // ClusterLoadAssignment is the one resource named by cluster_name.
  return response.resources.map((r) => {
    const resource = decodeResource(kind, r.value);
    return String(resource.name ?? resource.cluster_name);
  });
}

export function decodedResources(response: DecodedResponse): Record<string, unknown>[] {
  const kind = kindOfTypeUrl(response.type_url)!;
  return response.resources.map((r) => decodeResource(kind, r.value));
}

const DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

/** The delta (incremental) variant of RawAdsClient. */
export class RawDeltaClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly queue: DecodedDeltaResponse[] = [];
  private waiting: ((r: DecodedDeltaResponse) => void) | undefined;
  error: grpc.ServiceError | undefined;

  constructor(port: number) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    this.call = this.client.makeBidiStreamRequest(DELTA_PATH, (b: Buffer) => b, (b: Buffer) => b);
    this.call.on('data', (bytes: Buffer) => {
      const response = decodeDeltaDiscoveryResponse(bytes);
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(response);
      } else this.queue.push(response);
    });
    this.call.on('error', (err: grpc.ServiceError) => {
      this.error = err;
    });
  }

  send(request: Partial<DeltaDiscoveryRequest>): void {
    this.call.write(encodeDeltaDiscoveryRequest(request));
  }

  next(timeoutMs = 5_000): Promise<DecodedDeltaResponse> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no DeltaDiscoveryResponse within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }

  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
