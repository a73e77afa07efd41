// JSON text out of plain values, for replies and shared-data records. Pure.

const HEX = "0123456789abcdef";

/** The text of a JSON string literal for `s`, without the quotes (quotes, backslashes, control characters escaped). */
export function jsonEscape(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x22 || c == 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c < 0x20) out += "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else out += s.charAt(i);
  }
  return out;
}

export function jsonString(s: string): string {
  return '"' + jsonEscape(s) + '"';
}

export function jsonStringArray(items: string[]): string {
  let out = "[";
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ",";
    out += jsonString(unchecked(items[i]));
  }
  return out + "]";
}
