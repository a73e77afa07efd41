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
import { ADS_PATH, DELTA_ADS_PATH } from '../../xds-server/ads/service.ts';


/** One raw bidirectional xDS stream: writes what a test sends, queues what the server answers. */
class RawStreamClient<Request, Response> {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly queue: Response[] = [];
  private waiting: ((r: Response) => void) | undefined;
  error: grpc.ServiceError | undefined;
  ended = false;

  constructor(
    port: number,
    credentials: grpc.ChannelCredentials,
    path: string,
    private readonly encode: (request: Partial<Request>) => Buffer,
    decode: (bytes: Buffer) => Response,
    private readonly responseName: string,
  ) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, credentials);
    this.call = this.client.makeBidiStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b);
    this.call.on('data', (bytes: Buffer) => {
      const response = decode(bytes);
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

  send(request: Partial<Request>): void {
    this.call.write(this.encode(request));
  }

  /** The next response, or an error naming what was awaited. */
  next(timeoutMs = 5_000): Promise<Response> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no ${this.responseName} within ${timeoutMs} ms`));
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

/** State of the world. */
export class RawAdsClient extends RawStreamClient<DiscoveryRequest, DecodedResponse> {
  constructor(port: number, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    super(port, credentials, ADS_PATH, encodeDiscoveryRequest, decodeDiscoveryResponse, 'DiscoveryResponse');
  }
}

/** The delta (incremental) variant. */
export class RawDeltaClient extends RawStreamClient<DeltaDiscoveryRequest, DecodedDeltaResponse> {
  constructor(port: number, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    super(port, credentials, DELTA_ADS_PATH, encodeDeltaDiscoveryRequest, (b) => decodeDeltaDiscoveryResponse(b), 'DeltaDiscoveryResponse');
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
