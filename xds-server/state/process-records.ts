// Pid files of the process hosts a control plane started, in <state dir>/processes/<host>.<pid>.json, so
// the next control plane on the same state dir can find a copy left running by one that was killed (-9, a
// crash, an OOM kill) and stop it before it starts its own on the same port.
//
// A pid alone does not name a process: it is reused. A record also holds the process's start time (field
// 22 of /proc/<pid>/stat, in clock ticks since boot) and the boot id; a live process is ours only when all
// three match. Linux only (/proc); elsewhere nothing can be verified, and nothing is signalled.
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface ProcessIdentity {
  pid: number;
  /** Clock ticks since boot at which the process started. */
  startTime: string;
  bootId: string;
}

export interface ProcessRecord {
  formatVersion: 1;
  host: string;
  /** The process; also its process group (it is started as a group leader). */
  process: ProcessIdentity;
  command: string[];
  startedAt: string;
  /** The control plane that started it: while that one lives, the process is not an orphan. */
  controlPlane: ProcessIdentity;
}

export const PROCESS_RECORDS_DIR = 'processes';

const recordFile = (stateDir: string, host: string, pid: number): string => path.join(stateDir, PROCESS_RECORDS_DIR, `${host}.${pid}.json`);

let bootId: string | undefined;
function currentBootId(): string | undefined {
  try {
    bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return bootId;
  } catch {
    return undefined;
  }
}

interface ProcStat {
  startTime: string;
  pgrp: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): field N is fields[N - 3].
  const startTime = fields[22 - 3];
  const pgrp = Number(fields[5 - 3]);
  // A zombie (Z) or dying (X) process has exited: it holds no port and needs no signal.
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  if (startTime === undefined || !Number.isInteger(pgrp)) return undefined;
  return { startTime, pgrp };
}

/** The process group of a live process. */
export function processGroupOf(pid: number): number | undefined {
  return readStat(pid)?.pgrp;
}

/** Who a live process is, or undefined when it is gone (or /proc cannot tell). */
export function identify(pid: number): ProcessIdentity | undefined {
  const boot = currentBootId();
  const stat = readStat(pid);
  if (boot === undefined || stat === undefined) return undefined;
  return { pid, startTime: stat.startTime, bootId: boot };
}

export function sameProcess(a: ProcessIdentity, b: ProcessIdentity | undefined): boolean {
  return b !== undefined && a.pid === b.pid && a.startTime === b.startTime && a.bootId === b.bootId;
}

/**
 * The live members of the process group a record names: the leader itself if it is still the recorded
 * process, or, when the leader has exited, the processes still in its group (a group id is not reused
 * while the group has members). [] when the pid now belongs to another process, or after a reboot.
 */
export function liveGroupMembers(record: ProcessRecord): number[] {
  const leader = record.process;
  if (currentBootId() !== leader.bootId) return [];
  const now = identify(leader.pid);
  if (now !== undefined) return sameProcess(leader, now) ? [leader.pid] : [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    // Started no earlier than the leader: a member of this group, not of one that had the id before.
    if (stat && stat.pgrp === leader.pid && BigInt(stat.startTime) >= BigInt(leader.startTime)) members.push(Number(entry));
  }
  return members;
}

/** Written (temp file, rename) right after the spawn; no fsync: it only matters while the machine stays up. */
export async function writeProcessRecord(stateDir: string, record: ProcessRecord): Promise<void> {
  const file = recordFile(stateDir, record.host, record.process.pid);
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp`;
  await writeFile(temp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  await rename(temp, file);
}

export async function removeProcessRecord(stateDir: string, host: string, pid: number): Promise<void> {
  await unlink(recordFile(stateDir, host, pid)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** Every record in the state dir; files that are not records are reported, not thrown. */
export async function readProcessRecords(stateDir: string): Promise<{ records: ProcessRecord[]; unreadable: { file: string; error: string }[] }> {
  const dir = path.join(stateDir, PROCESS_RECORDS_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], unreadable: [] };
    throw err;
  }
  const records: ProcessRecord[] = [];
  const unreadable: { file: string; error: string }[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const file = path.join(dir, name);
    try {
      const data = JSON.parse(await readFile(file, 'utf8')) as Partial<ProcessRecord>;
      const ok = (p: Partial<ProcessIdentity> | undefined): boolean => Number.isInteger(p?.pid) && (p?.pid ?? 0) > 1 && /^\d+$/.test(p?.startTime ?? '') && typeof p?.bootId === 'string';
      if (data.formatVersion !== 1 || typeof data.host !== 'string' || !ok(data.process) || !ok(data.controlPlane)) throw new Error('not a process record this version understands');
      records.push(data as ProcessRecord);
    } catch (err) {
      unreadable.push({ file, error: (err as Error).message });
    }
  }
  return { records, unreadable };
}

/** Removes a record file by path (for unreadable ones). */
export async function removeFile(file: string): Promise<void> {
  await unlink(file).catch(() => {});
}
