// Every resource name the snapshot uses is derived here and nowhere else, so the builders, the
// consistency check and the tests cannot disagree about a name.
export const LISTENER_NAME = 'gateway_http';
export const ROUTE_CONFIG_NAME = 'gateway_routes';
export const BUFFER_FILTER_NAME = 'scale_to_zero_buffer';
export const CONTROL_PLANE_CLUSTER = 'scale_to_zero_control_plane';
/** The :authority the filter uses for wake calls to the control plane. */
export const CONTROL_PLANE_AUTHORITY = 'scale-to-zero-control-plane';
export const WAKE_PATH_PREFIX = '/v1/wake/';

export function clusterName(host: string): string {
  return `host_${host}`;
}

export function virtualHostName(host: string): string {
  return `vh_${host}`;
}
