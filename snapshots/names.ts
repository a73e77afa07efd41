// Every resource name the snapshot builders themselves choose is here, so the builders, the consistency
// check and the tests cannot disagree about a name. Listener, route and cluster names come from the model.
export const BUFFER_FILTER_NAME = 'scale_to_zero_buffer';
export const CONTROL_PLANE_CLUSTER = 'scale_to_zero_control_plane';
/** The :authority the filter uses for wake calls to the control plane. */
export const CONTROL_PLANE_AUTHORITY = 'scale-to-zero-control-plane';
export const WAKE_PATH_PREFIX = '/v1/wake/';
