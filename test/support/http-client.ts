// Requests through Envoy with an explicit Host/:authority (fetch forbids setting Host), over HTTP/1.1 or
// HTTP/2 with prior knowledge, and answers read whole.
import http from 'node:http';
import http2 from 'node:http2';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RequestSpec {
  port: number;
  /** The loopback address to connect to (default 127.0.0.1). */
  address?: string;
  host: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  timeoutMs?: number;
  /** Aborts the request from the client side. */
  signal?: AbortSignal;
}

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

export function http1Request(spec: RequestSpec): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: spec.address ?? '127.0.0.1',
        port: spec.port,
        path: spec.path ?? '/',
        method: spec.method ?? 'GET',
        headers: { host: spec.host, ...spec.headers },
        agent,
        timeout: spec.timeoutMs ?? 30_000,
        ...(spec.signal ? { signal: spec.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${spec.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(spec.body);
  });
}

/** One HTTP/2 connection carrying many streams, as a real h2 client would. */
export class Http2Connection {
  private readonly session: http2.ClientHttp2Session;

  constructor(port: number) {
    this.session = http2.connect(`http://127.0.0.1:${port}`);
    this.session.on('error', () => {});
  }

  request(spec: Omit<RequestSpec, 'port'>): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const stream = this.session.request({
        ':method': spec.method ?? 'GET',
        ':path': spec.path ?? '/',
        ':authority': spec.host,
        ...spec.headers,
      }, spec.signal ? { signal: spec.signal } : {});
      let headers: Record<string, string | string[] | undefined> = {};
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        status = Number(h[':status']);
        headers = h as Record<string, string | string[] | undefined>;
      });
      stream.on('trailers', (t) => Object.assign(headers, t));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ status, headers, body: Buffer.concat(chunks).toString('utf8') }));
      stream.on('error', reject);
      stream.setTimeout(spec.timeoutMs ?? 30_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.end(spec.body);
    });
  }

  close(): void {
    this.session.close();
  }
}
