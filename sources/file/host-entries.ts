// Splits a config file's text into the text of each entry of `hosts` and the rest (the "frame"), without
// parsing it, so a reload can re-read only the entries whose text changed (incremental-parse.ts). Pure.
//
// The split is offered only where it is provably the same as a YAML reader's: when in doubt it answers
// undefined and the caller reads the whole file. Two layouts are recognised:
//   - a JSON-like flow document: `{ ..., "hosts": [ {...}, {...} ], ... }`, strings only double-quoted, no
//     comments; entries are the array's elements;
//   - a block document: a top-level `hosts:` line, then entries `- ...` all at one indentation, then other
//     top-level keys or the end; entries are line ranges.
// Refused everywhere: anchors, aliases and tags (an entry could then depend on text outside itself), block
// scalars, directives, several documents, tabs, CR, a byte-order mark, and (block layout) any line that
// leaves a quote or bracket open (a scalar spanning lines could hide an entry boundary).

export interface HostEntries {
  /** flow: each entry is a `{...}` mapping; block: each entry is a `- ...` list item. */
  layout: 'flow' | 'block';
  /** The text without the entries (the frame): equal frames mean equal listener, defaults and key order. */
  frame: string;
  /** Each entry's exact text, in file order. */
  entries: string[];
}

// Outside quoted strings these start constructs that reach beyond one entry or one line, or are reserved.

/**
 * `previous`: the entries of the last split of a JSON-like file, in order. An entry of the new text that starts
 * with the next one of them (a string comparison) is taken without reading its characters: it was read
 * before, from the same state (the start of an entry), so it reads the same again.
 */
export function splitHostEntries(text: string, previous?: HostEntries): HostEntries | undefined {
  // indexOf, not a regular expression: ~5 µs instead of ~0.1-0.4 ms over a 1,000-host file (more when V8 has
  // dropped the expression's compiled code, as it does with code it has not run for a while).
  if (text.includes('\t') || text.includes('\r') || text.includes('\uFEFF')) return undefined;
  const start = firstNonSpace(text, 0);
  if (start < text.length && text[start] === '{') return splitFlow(text, start, previous?.layout === 'flow' ? previous.entries : []);
  return splitBlock(text);
}

function firstNonSpace(text: string, from: number): number {
  let i = from;
  while (i < text.length && (text[i] === ' ' || text[i] === '\n')) i += 1;
  return i;
}

// Tokens of the JSON-like layout: a double-quoted string, a bracket, comma or colon, a run of anything else
// but spaces, or a quote that opens a string never closed. Every character but a space or newline is in one.
// (Regular expressions, not a loop over characters: the split must be fast before the JIT has warmed up.)
const FLOW_TOKEN = /"(?:[^"\\]|\\[\s\S])*"|[{}[\],:]|[^ \n"{}[\],:]+|"/g;
const UNSAFE_IN_FLOW_RUN = /['#&*!|>%@`?]/;

/** The JSON-like layout: one pass over its tokens, tracking brackets. */
function splitFlow(text: string, rootOpen: number, known: readonly string[]): HostEntries | undefined {
  let next = 0; // the known entry expected next
  const stack: string[] = [];
  let previous = ''; // the last character outside strings that is not a space
  let hostsDepth = -1; // the depth inside the hosts array once it is open
  let arrayOpen = -1;
  let arrayClose = -1;
  let entryStart = -1;
  let entryDone = false; // the current entry's mapping has closed: a comma or the array's end must follow
  let pendingHostsKey = false; // "hosts" was just read as a key of the root
  let afterColon = false;
  const entries: string[] = [];
  let rootClose = -1;
  const tokens = new RegExp(FLOW_TOKEN.source, 'g');
  tokens.lastIndex = rootOpen;
  for (let m = tokens.exec(text); m !== null; m = tokens.exec(text)) {
    const token = m[0];
    const i = m.index;
    const c = token[0]!;
    if (stack.length === hostsDepth && arrayClose < 0) {
      // Directly inside the hosts array: only `{ ... }` entries, separated by commas.
      if (c === '{' && entryStart < 0) {
        // An entry read before (the next known one, or the one after it when one was removed).
        const same = text.startsWith(known[next] ?? '\u0000', i) ? next : text.startsWith(known[next + 1] ?? '\u0000', i) ? next + 1 : -1;
        if (same >= 0) {
          const entry = known[same]!;
          entries.push(entry);
          next = same + 1;
          entryStart = i;
          entryDone = true;
          previous = '}';
          tokens.lastIndex = i + entry.length;
          continue;
        }
        entryStart = i;
        stack.push(c);
        previous = c;
      } else if (c === ',' && entryDone) {
        entryStart = -1;
        entryDone = false;
        previous = c;
      } else if (c === ']' && (entryDone || (entries.length === 0 && entryStart < 0))) {
        stack.pop();
        arrayClose = i;
        previous = c;
      } else return undefined;
      continue;
    }
    if (c === '"') {
      if (token.length === 1) return undefined; // never closed
      // A quote that is not where a scalar starts would be a plain scalar's character to a YAML reader.
      if (!(previous === '{' || previous === '[' || previous === ',' || previous === ':')) return undefined;
      pendingHostsKey = stack.length === 1 && (previous === '{' || previous === ',') && token === '"hosts"';
      previous = '"';
      continue;
    }
    if (c === ':') {
      afterColon = pendingHostsKey;
      pendingHostsKey = false;
      previous = c;
      continue;
    }
    pendingHostsKey = false;
    if (c === '{' || c === '[') {
      const opensHosts = afterColon && c === '[' && arrayOpen < 0 && stack.length === 1;
      afterColon = false;
      stack.push(c);
      previous = c;
      if (opensHosts) {
        arrayOpen = i;
        hostsDepth = stack.length;
      }
      continue;
    }
    afterColon = false;
    if (c === '}' || c === ']') {
      const open = stack.pop();
      if (open !== (c === '}' ? '{' : '[')) return undefined;
      previous = c;
      if (stack.length === hostsDepth && arrayClose < 0) {
        entries.push(text.slice(entryStart, i + 1));
        entryDone = true;
      }
      if (stack.length === 0) {
        rootClose = i;
        break;
      }
      continue;
    }
    if (c !== ',' && UNSAFE_IN_FLOW_RUN.test(token)) return undefined;
    previous = token[token.length - 1]!;
  }
  if (rootClose < 0 || arrayOpen < 0 || arrayClose < 0) return undefined;
  if (firstNonSpace(text, rootClose + 1) !== text.length) return undefined;
  return { layout: 'flow', frame: `${text.slice(0, arrayOpen + 1)}\u0000${text.slice(arrayClose)}`, entries };
}

/** The block layout: line by line. */
function splitBlock(text: string): HostEntries | undefined {
  const lines = text.split('\n');
  const hostsLine = lines.findIndex((l) => /^hosts: *$/.test(l));
  if (hostsLine < 0) return undefined;
  let first = hostsLine + 1;
  while (first < lines.length && isBlankOrComment(lines[first]!)) first += 1;
  if (first >= lines.length) return undefined;
  const indent = indentOf(lines[first]!);
  if (!isEntryStart(lines[first]!, indent)) return undefined;
  const starts: number[] = [];
  let end = first;
  for (; end < lines.length; end += 1) {
    const line = lines[end]!;
    if (isBlankOrComment(line)) continue;
    const n = indentOf(line);
    if (n > indent) continue;
    if (n === indent && isEntryStart(line, indent)) {
      starts.push(end);
      continue;
    }
    if (n === indent && line[n] === '-') return undefined; // `-x`: neither an entry nor the end
    break;
  }
  // What follows the entries is another top-level key (`name:`), or nothing.
  if (end < lines.length && !/^[A-Za-z_][A-Za-z0-9_-]*:( |$)/.test(lines[end]!)) return undefined;
  // Most lines hold only letters, digits and `-.:/_`, which open nothing: only the others are read closely.
  for (const line of lines) if (!PLAIN_LINE.test(line) && !lineIsSelfContained(line)) return undefined;
  for (let i = 0; i < lines.length; i += 1) if (/^(---|\.\.\.)( |$)/.test(lines[i]!)) return undefined;
  const entries: string[] = [];
  for (let k = 0; k < starts.length; k += 1) entries.push(lines.slice(starts[k], k + 1 < starts.length ? starts[k + 1] : end).join('\n'));
  return { layout: 'block', frame: [...lines.slice(0, first), '\u0000', ...lines.slice(end)].join('\n'), entries };
}

function indentOf(line: string): number {
  let n = 0;
  while (line[n] === ' ') n += 1;
  return n;
}

function isBlankOrComment(line: string): boolean {
  const n = indentOf(line);
  return n === line.length || line[n] === '#';
}

function isEntryStart(line: string, indent: number): boolean {
  return line[indent] === '-' && (line.length === indent + 1 || line[indent + 1] === ' ');
}

/**
 * The line opens no quote or bracket it does not close, and holds nothing that could reach beyond it (an
 * anchor, alias, tag, block scalar). It is read as a YAML reader reads it where that is simple: a scalar starts
 * after `- `, `: `, at the line's start and (in brackets) after `[`, `{`, `,`; a plain scalar runs to `: `,
 * ` #` or (in brackets) a bracket or comma, and its quotes and `&` are plain characters. Anything else is
 * refused: refusing costs a whole-file read, never a wrong result.
 */
function lineIsSelfContained(line: string): boolean {
  const stack: string[] = [];
  let state: 'start' | 'plain' | 'after' = 'start';
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]!;
    const next = line[i + 1];
    const endsToken = next === undefined || next === ' ' || (stack.length > 0 && (next === ',' || next === ']' || next === '}'));
    if (c === ' ') continue;
    if (c === '#' && (i === 0 || line[i - 1] === ' ')) break; // a comment: the rest of the line is text
    if (state === 'plain') {
      if (c === ':' && endsToken) state = 'start';
      else if (stack.length > 0 && c === ',') state = 'start';
      else if (stack.length > 0 && (c === ']' || c === '}')) {
        if (stack.pop() !== (c === ']' ? '[' : '{')) return false;
        state = 'after';
      } else if (stack.length > 0 && (c === '[' || c === '{')) return false;
      continue;
    }
    if (state === 'after') {
      if (c === ':' && endsToken) state = 'start';
      else if (stack.length > 0 && c === ',') state = 'start';
      else if (c === ']' || c === '}') {
        if (stack.pop() !== (c === ']' ? '[' : '{')) return false;
      } else return false;
      continue;
    }
    // At the start of a scalar.
    if (c === '"' || c === '\'') {
      i += 1;
      for (;;) {
        if (i >= line.length) return false;
        if (c === '"' && line[i] === '\\') i += 2;
        else if (c === '\'' && line[i] === '\'' && line[i + 1] === '\'') i += 2;
        else if (line[i] === c) break;
        else i += 1;
      }
      state = 'after';
    } else if (c === '[' || c === '{') stack.push(c);
    else if (c === ']' || c === '}') {
      if (stack.pop() !== (c === ']' ? '[' : '{')) return false;
      state = 'after';
    } else if (c === ',' && stack.length > 0) state = 'start';
    else if (c === '-' && (next === undefined || next === ' ')) state = 'start';
    else if ((c === '?' || c === ':' || c === ',') && (next === undefined || next === ' ')) return false;
    else if (UNSAFE_AT_SCALAR_START.has(c)) return false;
    else state = 'plain';
  }
  return stack.length === 0;
}

const PLAIN_LINE = /^[A-Za-z0-9 ._/:-]*$/;

// At the start of a scalar these are indicators: anchors, aliases, tags, block scalars, reserved.
const UNSAFE_AT_SCALAR_START = new Set(['&', '*', '!', '|', '>', '%', '@', '`']);
