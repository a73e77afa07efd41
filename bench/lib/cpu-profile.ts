// Reading a V8 `--cpu-prof` profile of ours' bundle (dist/bench/ours.mjs) for the trace tools
// (bench/xds-trace.ts, bench/xds-change-trace.ts): which source file of the bundle, or which package, a sample
// was taken in.
import { readFile } from 'node:fs/promises';

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Line → source file of the bundle (esbuild marks each module with a "// path" comment). */
export async function bundleSources(bundle: string): Promise<(line: number) => string> {
  const lines = (await readFile(bundle, 'utf8')).split('\n');
  const starts: { line: number; file: string }[] = [];
  lines.forEach((l, i) => {
    const m = /^\/\/ ((?:bench|xds-server|snapshots|sources|model|filter|envoy-bootstrap)\/\S+\.ts)$/.exec(l);
    if (m) starts.push({ line: i, file: m[1]! });
  });
  return (line) => {
    let file = '?';
    for (const s of starts) if (s.line <= line) file = s.file;
    return file;
  };
}

/** A frame's source: a file of ours' bundle, an npm package, a node: module, or (native) code. */
export function where(frame: ProfileNode['callFrame'], sourceOf: (line: number) => string): string {
  if (frame.url.endsWith('/dist/bench/ours.mjs')) return sourceOf(frame.lineNumber);
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url);
  if (m) return `npm:${m[1]}`;
  if (frame.url === '') return `(${frame.functionName || 'native'})`;
  return frame.url;
}

/** Self time (µs) of the samples in one bucket: in all, in GC, by source and by function. */
export interface SampleBucket {
  busyUs: number;
  gcUs: number;
  sources: Map<string, number>;
  functions: Map<string, number>;
}

/**
 * Sums the profile's samples into buckets: each window (µs on the profile's clock, in time order, not
 * overlapping) names the bucket its samples go to. Idle and V8's own bookkeeping samples are left out.
 */
export function attributeSamples(
  profile: Profile,
  sourceOf: (line: number) => string,
  windows: readonly { bucket: number; from: number; to: number }[],
  bucketCount: number,
): SampleBucket[] {
  const buckets: SampleBucket[] = Array.from({ length: bucketCount }, () => ({ busyUs: 0, gcUs: 0, sources: new Map(), functions: new Map() }));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let t = profile.startTime;
  let w = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]!)!;
    const name = node.callFrame.functionName;
    if (name === '(idle)' || name === '(program)' || name === '(root)') continue;
    while (w < windows.length && t >= windows[w]!.to) w++;
    if (w >= windows.length) break;
    if (t < windows[w]!.from) continue;
    const b = buckets[windows[w]!.bucket]!;
    b.busyUs += dt;
    if (name === '(garbage collector)') b.gcUs += dt;
    const src = where(node.callFrame, sourceOf);
    b.sources.set(src, (b.sources.get(src) ?? 0) + dt);
    const fn = `${name || '(anonymous)'} ${src}:${node.callFrame.lineNumber + 1}`;
    b.functions.set(fn, (b.functions.get(fn) ?? 0) + dt);
  }
  return buckets;
}
