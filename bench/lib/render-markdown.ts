// Renders the results model as bench/results/latest.md. Reads only the model: every number shown is in
// latest.json; the prose here only explains what the numbers mean.
import type { BenchResults, ColdStartResult, KubeColdStartResult, ReleaseCase, TargetCheck } from './model.ts';
import { median, type Distribution } from './stats.ts';

type Cell = string | number | boolean | null | undefined;

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

function table(header: string[], rows: Cell[][]): string {
  const fmt = (c: Cell): string => (c === null || c === undefined ? '–' : typeof c === 'boolean' ? (c ? 'yes' : 'no') : String(c)).replace(/\|/g, '\\|');
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(fmt).join(' | ')} |`)].join('\n');
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const us = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${n} µs`);
const verdict = (t: TargetCheck): string => (t.pass === null ? 'n/a' : t.pass ? '**pass**' : '**FAIL**');
const statuses = (s: Record<string, number>): string => Object.entries(s).map(([k, v]) => `${k}×${v}`).join(', ') || 'none';
const upstreamName = (c: { upstream: string }): string => (c.upstream === 'node' ? 'demo upstream (Node)' : 'Envoy direct_response');

export function renderMarkdown(r: BenchResults): string {
  const out: string[] = [];
  const m = r.machine;
  out.push('# Benchmark results', '');
  out.push(`Run ${r.startedAt} → ${r.finishedAt} (${Math.round(r.durationS)} s) with \`${r.command}\`; scenarios: ${r.scenariosRun.join(', ')}.`, '');
  out.push('Produced by `npm run bench` (bench/run.ts); the same data, with every sample summary, is in the `.json` file of the same name. How to rerun: bench/README.md.', '');

  out.push('## Machine', '');
  out.push(
    table(
      ['fact', 'value'],
      [
        ['date', m.date],
        ['nproc', m.nproc],
        ['CPU', m.cpuModel],
        ['memory', `${m.memTotalMiB} MiB`],
        ['kernel', m.kernel],
        ['Envoy', m.envoyVersion],
        ['Node.js', m.nodeVersion],
        ['wrk', m.wrkVersion],
        ['taskset', m.tasksetAvailable],
        ['open-file limit', m.openFileLimit],
        ['git commit', `${m.gitCommit}${m.gitDirty ? ' (working tree has uncommitted changes)' : ''}`],
        ['filter.wasm', `${m.filterWasmBytes} bytes, sha256 ${m.filterWasmSha256.slice(0, 16)}…`],
      ],
    ),
    '',
  );

  out.push('## Targets', '');
  if (r.targets.length === 0) out.push('No scenario with targets ran.', '');
  else {
    out.push(
      table(
        ['scenario', 'what', 'kind', 'target', 'measured', 'result'],
        r.targets.map((t) => [t.scenario, t.description, t.level, t.target, t.unit === 'bool' ? (t.measured === 1 ? 'yes' : 'no') : `${t.measured ?? '–'} ${t.unit}`, verdict(t)]),
      ),
      '',
    );
    out.push('*issue* = what the issue asks for; *goal* = the project\'s stricter aim; *check* = must hold.', '');
  }

  if (r.passthrough) {
    const p = r.passthrough;
    const s = p.settings;
    out.push('## 1. Pass-through throughput and latency (READY host)', '');
    out.push(
      `Same Envoy binary, \`--concurrency ${s.gatewayConcurrency}\` for both gateways; upstream: a third Envoy answering with direct_response. ` +
        `wrk \`-t${s.wrkThreads} -c${s.connections}\`, ${s.rounds} rounds × ${s.durationS} s per variant, interleaved ${s.order}. ` +
        (s.pinning.gateways === null
          ? 'Not pinned to CPUs.'
          : `Pinned: gateways on CPU ${s.pinning.gateways}, wrk on CPU ${s.pinning.wrk}, upstream ${s.pinning.upstream === null ? 'not pinned' : `on CPU ${s.pinning.upstream}`}.`),
      '',
    );
    out.push('- **A** — our gateway: Envoy configured by our control plane; the buffer filter is in the HCM but disabled on the route (the product\'s fast path).');
    out.push('- **B** — the same listener/route/cluster rendered from `buildSnapshot` as a static config, with no Wasm filter at all.', '');
    out.push(
      table(
        ['variant', 'median req/s', 'p50', 'p90', 'p99', 'gateway CPU', 'req/s per gateway core'],
        [p.a, p.b].map((v) => [`**${v.id}** ${v.label}`, int(v.medianRequestsPerSecond), us(v.medianLatencyUs.p50), us(v.medianLatencyUs.p90), us(v.medianLatencyUs.p99), `${v.medianGatewayCpuPercent} %`, int(v.medianRequestsPerCoreSecond)]),
      ),
      '',
    );
    const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
    out.push(
      `**A/B throughput: ${pct(p.throughputRatio)}** (median req/s of A ÷ median req/s of B; this is what the target is judged on). ` +
        `A/B of each interleaved pair: ${p.pairRatios.map(pct).join(', ')}; their median: ${pct(p.medianPairRatio)}. ` +
        `A/B of req/s per gateway core: ${pct(p.efficiencyRatio)}. The spread of the pairs is this machine's round-to-round noise.`,
      '',
    );
    out.push('Latencies are the median over rounds of each round\'s wrk percentile. Every round:', '');
    const rounds = p.a.rounds.flatMap((a, i) => {
      const b = p.b.rounds[i];
      const row = (v: 'A' | 'B', x: typeof a): Cell[] => [x.round, v, int(x.requestsPerSecond), us(x.latencyUs.p50), us(x.latencyUs.p90), us(x.latencyUs.p99), us(x.latencyUs.max), `${x.gatewayCpuPercent} %`, `${x.upstreamCpuPercent} %`, `${x.otherCpuPercent} %`, Object.values(x.errors).reduce((s2, n) => s2 + n, 0)];
      return b ? [row('A', a), row('B', b)] : [row('A', a)];
    });
    out.push(table(['round', 'variant', 'req/s', 'p50', 'p90', 'p99', 'max', 'gateway CPU', 'upstream CPU', 'other processes CPU', 'wrk errors'], rounds), '');
    if (p.discarded.length > 0) {
      out.push(`${p.discarded.length / 2} pair(s) were measured again because other processes were busy during them (kept in the JSON under \`passthrough.discarded\`).`, '');
    }
    out.push(`Checks: A accepted the buffer filter's ECDS config ${p.checks.aFilterConfigReloads} time(s); B's listeners contain no Wasm: ${p.checks.bHasNoWasm ? 'yes' : 'NO'}.`, '');
  }

  if (r.release) {
    const rel = r.release;
    out.push('## 2. Release latency', '');
    out.push(
      'From the control plane\'s decision to release (the `snapshot-set` event of the wake\'s snapshot) to each held request reaching the upstream. ' +
        `Envoy \`--concurrency ${rel.settings.envoyConcurrency}\`; the requests are held by a separate client process (bench/hold-client.ts), one HTTP/1.1 connection each. ` +
        'Two upstreams: the demo upstream (Node, in the measuring process, arrival = its `receivedAt`, same clock as the decision) and an Envoy answering with direct_response ' +
        '(arrival = its `START_TIME`, system clock).',
      '',
    );
    out.push(
      `Clock check of the Envoy upstream against the harness (${rel.clockCheck.samples} direct requests): smallest send→start ${rel.clockCheck.minLeadMs} ms, start→answer ${rel.clockCheck.minLagMs} ms ` +
        `(${rel.clockCheck.consistent ? 'consistent' : 'INCONSISTENT: the Envoy-upstream numbers are off by about that much'}).`,
      '',
    );
    out.push(
      table(
        ['held', 'upstream', 'rounds', 'requests', 'p50', 'p90', 'p99', 'max', 'decision → ECDS sent (median)', 'decision → ACK (median)', 'all 200'],
        rel.cases.map((c) => [int(c.held), upstreamName(c), c.rounds.length, int(c.atUpstreamMs.count), ms(c.atUpstreamMs.p50), ms(c.atUpstreamMs.p90), ms(c.atUpstreamMs.p99), ms(c.atUpstreamMs.max), ms(medianOf(c, 'pushSentMs')), ms(medianOf(c, 'ackMs')), c.allAnswered200]),
      ),
      '',
    );
    out.push('All times in ms. Percentiles are nearest-rank over every request of every round (with 30 samples, p99 is the maximum).', '');
    const multi = rel.cases.filter((c) => c.held > 1);
    if (multi.length > 0) {
      out.push('Rounds with many held requests:', '');
      out.push(
        table(
          ['held', 'upstream', 'round', 'ECDS sent', 'ACK', 'first at upstream', 'last at upstream', 'longest pause between arrivals', 'last answer at client', 'answers'],
          multi.flatMap((c) => c.rounds.map((x) => [int(c.held), upstreamName(c), x.round, ms(x.pushSentMs), ms(x.ackMs), ms(x.firstAtUpstreamMs), ms(x.lastAtUpstreamMs), ms(x.largestGapMs), ms(x.lastAnsweredMs), statuses(x.statuses)])),
        ),
        '',
      );
    }
    const answered = rel.cases.filter((c) => c.answeredMs);
    if (answered.length > 0) {
      out.push('Decision → answer seen by the hold client (another process; same epoch clock, read there):', '');
      out.push(table(['held', 'upstream', 'p50', 'p99', 'max'], answered.map((c) => [int(c.held), upstreamName(c), ms(c.answeredMs!.p50), ms(c.answeredMs!.p99), ms(c.answeredMs!.max)])), '');
    }
  }

  if (r.memory) {
    const mem = r.memory;
    out.push('## 3. Envoy memory with held requests', '');
    out.push(`Envoy \`--concurrency ${mem.settings.envoyConcurrency}\`, maxHeld ${int(mem.settings.maxHeldPerWorker)} per worker, holdTimeoutMs ${int(mem.settings.holdTimeoutMs)}; RSS = VmRSS of the Envoy process.`, '');
    out.push(table(['moment', 'held gauge', 'Envoy RSS (MiB)'], mem.points.map((p) => [p.label, int(p.heldGauge), p.rssMiB.toFixed(1)])), '');
    out.push(`About **${mem.kibPerHeldRequest} KiB per held request** ((RSS at the first ${int(mem.settings.held)}-request hold − fresh RSS) ÷ ${int(mem.settings.held)}). Envoy keeps memory after a release, so later rows start higher.`, '');
    out.push(
      table(
        ['released', 'into', 'answered 200', 'other answers / errors', 'decision → last at upstream', 'decision → last answer at client', 'p50 at upstream', 'p99 at upstream', 'Envoy running', 'Envoy LIVE'],
        mem.bigReleases.map((b) => [int(b.held), upstreamName(b), int(b.answered200), `${statuses(Object.fromEntries(Object.entries(b.statuses).filter(([k]) => k !== '200')))}; ${statuses(b.clientErrors)}`, `${ms(b.lastAtUpstreamMs)} ms`, `${ms(b.lastAnsweredMs)} ms`, `${ms(b.atUpstreamMs?.p50)} ms`, `${ms(b.atUpstreamMs?.p99)} ms`, b.envoyRunningAfter, b.envoyLiveAfter]),
      ),
      '',
    );
    for (const b of mem.bigReleases) {
      const failures = Object.entries(b.failures);
      out.push(
        `Releasing ${int(b.held)} into the ${upstreamName(b)}: gateway cluster stats over the release: ` +
          `${Object.entries(b.clusterStats).map(([k, v]) => `\`${k}\` ${v}`).join(', ') || 'no change'}. ` +
          `Sockets: ${int(b.openFiles.downstream)} held downstream connections + ${int(b.openFiles.newUpstreamConnections)} upstream connections opened during the release (at most that many open at once), ` +
          `against the gateway Envoy's open-file limit of ${b.openFiles.envoyLimit === null ? 'unknown' : int(b.openFiles.envoyLimit)}.` +
          (failures.length > 0 ? ` Failed answers: ${failures.map(([k, v]) => `${v} × "${k}"`).join('; ')}.` : '') +
          (b.envoyLog.length > 0 ? ` Envoy logged: ${b.envoyLog.map((l) => `\`${l.slice(0, 200)}\``).join(' ')}` : ''),
        '',
      );
    }
    out.push(`Filter counters at the end: ${Object.entries(mem.filterCounters).map(([k, v]) => `\`${k}\` ${v}`).join(', ')}.`, '');
  }

  if (r.coldStart) {
    const c = r.coldStart;
    out.push('## 4. Cold start through the process scaler', '');
    out.push(
      'The demo upstream (Node) is stopped; one request arrives; the control plane starts the process, health-checks it every 2 ms, pushes the release, and the held request goes through. Envoy `--concurrency 2`. *ready → first byte* runs from the upstream\'s own `readyAt` (printed when both its ports accept) to the first response byte at the client: what the gateway adds after the backend is up. *request → first byte* includes the backend\'s own start-up.',
      '',
    );
    if (c.readyToAtUpstreamMs) out.push('*ready → at upstream* ends when the upstream parses the held request\'s head (its `receivedAt`, returned in the reply body; both ends are stamped in the upstream process).', '');
    const dist = (label: string, d: Distribution): (string | number)[] => [label, d.count, round(d.p50), round(d.p90), round(d.p99), round(d.max)];
    out.push(
      table(
        ['measure', 'rounds', 'p50', 'p90', 'p99', 'max'],
        [
          ...(c.readyToAtUpstreamMs ? [dist('ready → at upstream (ms)', c.readyToAtUpstreamMs)] : []),
          dist('ready → first byte (ms)', c.readyToFirstByteMs),
          dist('request → first byte (ms)', c.requestToFirstByteMs),
        ],
      ),
      '',
    );
    out.push(
      table(
        ['round', 'ready → release published (ms)', 'ready → at upstream (ms)', 'ready → first byte (ms)', 'request → first byte (ms)', 'status'],
        c.rounds.map((x, i) => [i + 1, x.readyToReleaseMs === null ? null : round(x.readyToReleaseMs), x.readyToAtUpstreamMs === null || x.readyToAtUpstreamMs === undefined ? null : round(x.readyToAtUpstreamMs), round(x.readyToFirstByteMs), round(x.requestToFirstByteMs), x.status]),
      ),
      '',
    );
  }

  if (r.kubeColdStart) renderKubeColdStart(out, r.kubeColdStart, r.coldStart);

  out.push('## Notes', '');
  if (r.notes.length === 0) out.push('Nothing unusual was recorded during the run.', '');
  else out.push(...r.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

const MILESTONE_LABELS: Record<string, string> = {
  requestSent: 'request sent',
  wakeCall: 'wake call at the control plane',
  scaledUp: 'API server answered the /scale write',
  podCreated: 'pod created (watch)',
  podScheduled: 'pod scheduled (watch)',
  podReady: 'pod Running + Ready (watch)',
  listening: 'pod server listening',
  sliceReady: 'EndpointSlice lists it ready (benchmark watch)',
  cpSliceReady: "EndpointSlice in the control plane's informer",
  probeAccepted: "verifier's TCP check accepted by the pod",
  verified: 'verifier: endpoint answers',
  stateReleased: "state's urgent 'changed' (publish scheduled)",
  endpointsPublished: 'endpoints snapshot set (phase 1)',
  endpointsAcked: 'Envoy ACKed the endpoints (EDS)',
  releasePublished: 'release snapshot set (phase 2)',
  releaseSent: 'release ECDS response sent',
  releaseAcked: 'Envoy ACKed the release (ECDS)',
  envoyConnected: "Envoy's upstream connection accepted by the pod",
  atUpstream: 'held request at the pod',
  firstByte: 'first byte at the client',
};

function renderKubeColdStart(out: string[], k: KubeColdStartResult, file: ColdStartResult | undefined): void {
  const st = k.settings;
  out.push('## 5. Cold start in Kubernetes mode', '');
  out.push(
    `A Deployment at 0 replicas behind an HTTPRoute with a ScaleToZeroPolicy, on a local Kubernetes ${st.kubernetesVersion} (etcd, kube-apiserver, kube-controller-manager, kube-scheduler; kwok fakes the node and gives pods loopback IPs from ${st.podCidr}). ` +
      'Each Ready pod is served by an in-process server (test/support/kube/pod-servers.ts). Our control plane runs in Kubernetes mode in the benchmark process; Envoy `--concurrency ' +
      `${st.envoyConcurrency}\`. Per round: one request is held, Envoy's wake call scales the Deployment to 1, the pod turns Ready, the request goes through; then the host is scaled back to 0 through the admin API and the next round waits until no pod, endpoint or pod server is left. ` +
      `${st.warmupRounds} warm-up round(s) not counted. Each request is sent at least ${st.wakeSpacingMs} ms after the previous wake call, because the filter sends a backend's wake call at most once per 1 s lease and otherwise waits for its next 100 ms check. ` +
      `${st.productDefaults ? 'Product settings as shipped' : '**Experiment: control-plane settings changed from the product\'s defaults**'}: the verifier checks every ${st.verifierFirstIntervalMs} ms at first, the state batches watch events for ${st.stateBatchMs} ms (EndpointSlice changes: none, translated at the next event-loop turn), an urgent publish waits ${st.publisherUrgentQuietMs} ms, and endpoints are pushed and ACKed before the release (two-phase publish).`,
    '',
  );
  out.push(
    'Every stamp is epoch ms in the benchmark process. *EndpointSlice ready*: the benchmark\'s own watch on endpointslices delivers a slice that lists the pod\'s endpoint with `ready: true`. ' +
      '*At the pod*: Node\'s `http.server.request.start` diagnostics channel for the pod server (request head parsed, as the demo upstream\'s `receivedAt`). *Listening*: pod-servers\' `listening` event. ' +
      'The control plane\'s steps come from listeners on its own informer, verifier and ADS events; TCP accepts at the pod from the `net.server.socket` diagnostics channel.',
    '',
  );
  const w = k.watchDelay;
  out.push(
    `A watch delivers a change some time after the API server commits it. Against ${w.samples} of the benchmark's own writes (PATCH of a ConfigMap), its watch delivered the change ` +
      `${ms(w.sentToEventMs.p50)} ms (p50; max ${ms(w.sentToEventMs.max)}) after the PATCH was sent and ${ms(w.answeredToEventMs.p50)} ms (p50; range ${ms(w.answeredToEventMs.min)} to ${ms(w.answeredToEventMs.max)}) after its answer arrived. ` +
      'The commit happens inside the PATCH, so a watch event comes at most the first figure after it; since it comes with the writer\'s own answer, it is most likely much closer. ' +
      '*EndpointSlice ready* is therefore stamped up to that much after the EndpointSlice controller\'s write committed. The control plane\'s informer (a separate watch in the same process) pays the same delay, which is in what a user waits but not in the measured interval.',
    '',
  );
  if (k.recomputeMs) {
    out.push(
      `One full translation of the cluster in the control plane (\`KubernetesState.resync()\`, what each batch of watch events, each verified endpoint and each \`setHeld\` runs) took ${ms(k.recomputeMs.p50)} ms (p50; max ${ms(k.recomputeMs.max)}) while idle; ` +
        `building the xDS snapshot from the desired state (each publish) took ${ms(k.snapshotBuildMs.p50)} ms (p50; max ${ms(k.snapshotBuildMs.max)}).`,
      '',
    );
  }
  out.push('### File mode and Kubernetes mode side by side', '');
  const row = (label: string, d: Distribution | null | undefined): (string | number | null)[] => (d ? [label, d.count, round(d.p50), round(d.p90), round(d.p99), round(d.max)] : [label, null, null, null, null, null]);
  const rows: (string | number | null)[][] = [
    row('**Kubernetes: EndpointSlice ready → request at the pod**', k.sliceReadyToAtUpstreamMs),
    row("Kubernetes: EndpointSlice in the control plane's informer → request at the pod", k.cpSliceReadyToAtUpstreamMs),
    row('Kubernetes: pod server listening → request at the pod', k.listeningToAtUpstreamMs),
    row('File mode: upstream ready (`readyAt`) → request at the upstream', file?.readyToAtUpstreamMs),
    row('Kubernetes: EndpointSlice ready → first byte at the client', k.sliceReadyToFirstByteMs),
    row('File mode: upstream ready → first byte at the client', file?.readyToFirstByteMs),
    row('Kubernetes: request sent → first byte (whole cold start)', k.requestToFirstByteMs),
    row('File mode: request sent → first byte (whole cold start, process start-up included)', file?.requestToFirstByteMs),
  ];
  out.push(table(['measure (ms)', 'rounds', 'p50', 'p90', 'p99', 'max'], rows), '');
  out.push(
    'Nearest-rank percentiles: with fewer than 100 rounds, p99 is the maximum. File mode\'s *ready* is the process accepting on its ports (the control plane then finds it with its own 2 ms health checks); ' +
      'Kubernetes mode\'s *EndpointSlice ready* comes after the pod is Ready and listening, and the control plane still checks the endpoint itself before releasing, so *listening → request* is the like-for-like comparison with file mode.',
    '',
  );
  out.push('### Where the time goes (median over rounds of each step)', '');
  out.push(
    table(
      ['from', 'to', 'median (ms)', 'max (ms)', 'rounds'],
      k.steps.map((x) => [MILESTONE_LABELS[x.from] ?? x.from, MILESTONE_LABELS[x.to] ?? x.to, ms(x.medianMs), ms(x.maxMs), x.rounds]),
    ),
    '',
  );
  out.push('The first rows follow the path in order; the last rows run beside it. A negative step means the two happen in the other order (for example, Envoy applies the release and sends the request on before its ACK reaches the control plane).', '');
  out.push('### Every round (ms after the request was sent)', '');
  const keys = ['wakeCall', 'podReady', 'listening', 'sliceReady', 'cpSliceReady', 'verified', 'endpointsAcked', 'releaseSent', 'atUpstream', 'firstByte'] as const;
  out.push(
    table(
      ['round', 'pod', ...keys.map((x) => MILESTONE_LABELS[x]!), 'slice ready → at pod', 'largest event-loop delay in between', 'other processes CPU', 'status'],
      k.rounds.map((x) => [x.round, x.pod, ...keys.map((key) => ms(x.milestones[key])), ms(x.sliceReadyToAtUpstreamMs), ms(x.loopDelayMaxMs), x.otherCpuPercent === undefined ? null : `${x.otherCpuPercent} %`, x.status]),
    ),
    '',
  );
  if (k.discarded?.length) {
    out.push(
      `${k.discarded.length} round(s) were measured again because processes outside the benchmark used more than half a core during them (kept in the JSON under \`kubeColdStart.discarded\`): ` +
        k.discarded.map((d) => `slice ready → at pod ${ms(d.result.sliceReadyToAtUpstreamMs)} ms while ${d.reason}`).join('; ') +
        '.',
      '',
    );
  }
  out.push(
    '*Largest event-loop delay in between*: `perf_hooks.monitorEventLoopDelay` (1 ms resolution) of the benchmark process, which also runs the control plane and the pod servers, reset when the slice turned ready and read when the request reached the pod. ' +
      'The local Kubernetes processes, Envoy and this process share the machine\'s CPUs, so a slow round usually shows a larger delay here.',
    '',
  );
  if (k.rounds.some((x) => x.wakeApiCalls?.length)) {
    out.push('The control plane\'s API calls on the Deployment from the wake call to the answer of its /scale write (ms after the wake call reached the control plane):', '');
    out.push(table(['round', 'calls'], k.rounds.map((x) => [x.round, (x.wakeApiCalls ?? []).map((c) => `${c.call} ${ms(c.answeredMs)}`).join('; ')])), '');
  }
  if (k.controlPlaneWarnings.length > 0) out.push(`Control-plane warnings during the measurement: ${k.controlPlaneWarnings.map((l) => `\`${l.slice(0, 200)}\``).join(' ')}`, '');
  else out.push(`No control-plane warning during the measurement${k.controlPlaneSetupWarnings ? ` (${k.controlPlaneSetupWarnings} while the stack started, e.g. CRD storage still initializing)` : ''}.`, '');
}

function medianOf(c: ReleaseCase, key: 'pushSentMs' | 'ackMs'): number | null {
  const v = c.rounds.map((x) => x[key]).filter((x): x is number => x !== null);
  return v.length === 0 ? null : median(v);
}
