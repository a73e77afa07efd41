// Which kind of xDS client a stream speaks for, from node.user_agent_name (Envoy sends "envoy"; gRPC's
// xDS clients send "gRPC <language>"), so logs and the admin API do not call every client an Envoy.
export type ClientKind = 'envoy' | 'grpc' | 'xds-client';

export function clientKindOf(node: { user_agent_name?: string } | undefined): ClientKind {
  const agent = (node?.user_agent_name ?? '').trim().toLowerCase();
  if (agent === 'envoy') return 'envoy';
  if (agent.startsWith('grpc')) return 'grpc';
  return 'xds-client';
}

/** For log lines: "Envoy connected", "gRPC client connected", "xDS client connected". */
export function clientLabel(kind: ClientKind): string {
  return kind === 'envoy' ? 'Envoy' : kind === 'grpc' ? 'gRPC client' : 'xDS client';
}
