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
