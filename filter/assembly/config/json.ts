// A small strict JSON (RFC 8259) reader for the plugin configuration: one value, no trailing text,
// no duplicate object keys, bounded nesting. Integers without fraction or exponent are kept exactly
// (up to 2^53-1, what the TypeScript control plane can produce). Never throws: errors are values.

export const enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

export const MAX_SAFE_INTEGER: i64 = 9007199254740991;
const MAX_DEPTH: i32 = 16;

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  boolValue: bool = false;
  str: string = "";
  /** Number written as an integer (no fraction, no exponent). */
  isInteger: bool = false;
  /** Exact value when isInteger and |value| <= MAX_SAFE_INTEGER; otherwise isSafe is false. */
  intValue: i64 = 0;
  isSafe: bool = false;
  items: JsonValue[] = [];
  keys: string[] = [];
  values: JsonValue[] = [];

  constructor(kind: JsonKind) {
    this.kind = kind;
  }

  /** Member of an object, or null. */
  get(key: string): JsonValue | null {
    for (let i = 0; i < this.keys.length; i++) {
      if (unchecked(this.keys[i]) == key) return unchecked(this.values[i]);
    }
    return null;
  }
}

export class JsonResult {
  constructor(public value: JsonValue | null, public error: string) {}
}

class Reader {
  pos: i32 = 0;
  error: string = "";

  constructor(public text: string) {}

  fail(message: string): JsonValue | null {
    if (this.error.length == 0) this.error = message + " at offset " + this.pos.toString();
    return null;
  }

  skipWhitespace(): void {
    const s = this.text;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  value(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail("nesting too deep");
    this.skipWhitespace();
    if (this.pos >= this.text.length) return this.fail("unexpected end of input");
    const c = this.text.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      if (s === null) return null;
      const v = new JsonValue(JsonKind.String);
      v.str = s;
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.literal("true")) {
      const v = new JsonValue(JsonKind.Bool);
      v.boolValue = true;
      return v;
    }
    if (this.literal("false")) return new JsonValue(JsonKind.Bool);
    if (this.literal("null")) return new JsonValue(JsonKind.Null);
    return this.fail("unexpected character");
  }

  literal(word: string): bool {
    if (this.text.substring(this.pos, this.pos + word.length) != word) return false;
    this.pos += word.length;
    return true;
  }

  object(depth: i32): JsonValue | null {
    const v = new JsonValue(JsonKind.Object);
    this.pos++; // {
    this.skipWhitespace();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return v;
    }
    while (true) {
      this.skipWhitespace();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x22) {
        return this.fail("expected a string key");
      }
      const key = this.string();
      if (key === null) return null;
      if (v.get(key) !== null) return this.fail('duplicate key "' + key + '"');
      this.skipWhitespace();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x3a) return this.fail("expected ':'");
      this.pos++;
      const member = this.value(depth + 1);
      if (member === null) return null;
      v.keys.push(key);
      v.values.push(member);
      this.skipWhitespace();
      if (this.pos >= this.text.length) return this.fail("unexpected end of input");
      const c = this.text.charCodeAt(this.pos);
      this.pos++;
      if (c == 0x7d) return v;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("expected ',' or '}'");
      }
    }
    return null;
  }

  array(depth: i32): JsonValue | null {
    const v = new JsonValue(JsonKind.Array);
    this.pos++; // [
    this.skipWhitespace();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return v;
    }
    while (true) {
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.items.push(item);
      this.skipWhitespace();
      if (this.pos >= this.text.length) return this.fail("unexpected end of input");
      const c = this.text.charCodeAt(this.pos);
      this.pos++;
      if (c == 0x5d) return v;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("expected ',' or ']'");
      }
    }
    return null;
  }

  string(): string | null {
    const s = this.text;
    this.pos++; // opening quote
    let out = "";
    let runStart = this.pos;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x22) {
        out += s.substring(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      out += s.substring(runStart, this.pos);
      this.pos++;
      if (this.pos >= s.length) break;
      const e = s.charCodeAt(this.pos);
      this.pos++;
      if (e == 0x22) out += '"';
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        let code = 0;
        for (let i = 0; i < 4; i++) {
          if (this.pos >= s.length) {
            this.fail("bad \\u escape");
            return null;
          }
          const h = s.charCodeAt(this.pos);
          this.pos++;
          let d = -1;
          if (h >= 0x30 && h <= 0x39) d = h - 0x30;
          else if (h >= 0x61 && h <= 0x66) d = h - 0x61 + 10;
          else if (h >= 0x41 && h <= 0x46) d = h - 0x41 + 10;
          if (d < 0) {
            this.fail("bad \\u escape");
            return null;
          }
          code = code * 16 + d;
        }
        out += String.fromCharCode(code);
      } else {
        this.pos--;
        this.fail("bad escape");
        return null;
      }
      runStart = this.pos;
    }
    this.fail("unterminated string");
    return null;
  }

  number(): JsonValue | null {
    const s = this.text;
    const start = this.pos;
    let negative = false;
    if (s.charCodeAt(this.pos) == 0x2d) {
      negative = true;
      this.pos++;
    }
    const intStart = this.pos;
    if (this.pos >= s.length) return this.fail("bad number");
    const first = s.charCodeAt(this.pos);
    if (first == 0x30) {
      this.pos++;
    } else if (first >= 0x31 && first <= 0x39) {
      while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++;
    } else {
      return this.fail("bad number");
    }
    const intEnd = this.pos;
    let integer = true;
    if (this.pos < s.length && s.charCodeAt(this.pos) == 0x2e) {
      integer = false;
      this.pos++;
      if (this.pos >= s.length || !isDigit(s.charCodeAt(this.pos))) return this.fail("bad number");
      while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++;
    }
    if (this.pos < s.length && (s.charCodeAt(this.pos) == 0x65 || s.charCodeAt(this.pos) == 0x45)) {
      integer = false;
      this.pos++;
      if (this.pos < s.length && (s.charCodeAt(this.pos) == 0x2b || s.charCodeAt(this.pos) == 0x2d)) this.pos++;
      if (this.pos >= s.length || !isDigit(s.charCodeAt(this.pos))) return this.fail("bad number");
      while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++;
    }
    const v = new JsonValue(JsonKind.Number);
    v.str = s.substring(start, this.pos);
    v.isInteger = integer;
    if (integer && intEnd - intStart <= 16) {
      let n: i64 = 0;
      for (let i = intStart; i < intEnd; i++) n = n * 10 + <i64>(s.charCodeAt(i) - 0x30);
      if (n <= MAX_SAFE_INTEGER) {
        v.isSafe = true;
        v.intValue = negative ? -n : n;
      }
    }
    return v;
  }
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

export function parseJson(text: string): JsonResult {
  const r = new Reader(text);
  const v = r.value(0);
  if (v === null) return new JsonResult(null, r.error);
  r.skipWhitespace();
  if (r.pos != text.length) {
    r.fail("unexpected text after the value");
    return new JsonResult(null, r.error);
  }
  return new JsonResult(v, "");
}
