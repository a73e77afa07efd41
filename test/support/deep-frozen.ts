// Route tables are built frozen object by object (snapshots/routes.ts) instead of walked by deepFrozen, and
// shared between builds by identity: whatever is in one must be frozen, all the way down. The golden tests
// hold every route table they build to it.
import { expect } from 'chai';

export function expectDeepFrozen(value: unknown, where: string): void {
  if (value === null || typeof value !== 'object') return;
  if (!Object.isFrozen(value)) expect.fail(`${where} is not frozen`);
  if (Array.isArray(value)) value.forEach((v, i) => expectDeepFrozen(v, `${where}[${i}]`));
  else for (const [k, v] of Object.entries(value)) expectDeepFrozen(v, `${where}.${k}`);
}
