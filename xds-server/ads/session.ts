// What the rest of the control plane (admin API, scaling, metrics) sees of an ADS stream, whichever
// variant it speaks: state of the world (stream-session.ts) or delta (delta-session.ts).
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import type { SnapshotWatcher } from '../cache/snapshot-cache.ts';
import type { ClientIdentity, RefusalReason } from '../security/client-identity.ts';
import type { ClientKind } from './client-kind.ts';
import type { StreamStatus } from './stream-session.ts';

export interface AdsSession extends SnapshotWatcher {
  readonly streamId: number;
  readonly variant: 'sotw' | 'delta';
  /** Epoch ms of the stream's first request. */
  readonly connectedAtMs: number;
  readonly nodeId: string;
  readonly clientKind: ClientKind;
  /** The client certificate's identity on an mTLS port (null on plaintext); set before the first request. */
  identity: ClientIdentity | null;
  onIdentityRefused: ((reason: RefusalReason, message: string, node: string) => void) | undefined;
  /** Subscribes to the resource of this type and name (by wildcard or by name). */
  subscribesTo(kind: ResourceKind, name: string): boolean;
  status(): StreamStatus;
  /** Every type sent so far is answered (ACKed or NACKed at the version sent). */
  answeredEverySent(): boolean;
  close(reason: string): void;
  /** The client has read its backlog: send the newest snapshot if a push waited for that. */
  resume(): void;
}
