// Spec section "Integration": the ABI version marker. Envoy looks for exactly one
// proxy_abi_version_* export and checks it is () -> void.
export function proxy_abi_version_0_2_1(): void {}
