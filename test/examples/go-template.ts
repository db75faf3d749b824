// A small renderer for the part of Go's text/template (with the Sprig functions Argo CD Notifications adds)
// that examples/argocd uses: actions with {{- -}} trimming, $variables, field chains, pipelines, parentheses
// and string literals, and the functions call, printf, toJson, regexFind, regexReplaceAll, trimSuffix,
// splitList, first and default. Anything else throws, so a template that grows past it fails its test instead
// of being rendered wrongly.

type Value = unknown;
type Fn = (...args: Value[]) => Value;

const FUNCTIONS: Record<string, Fn> = {
  call: (f, ...args) => {
    if (typeof f !== 'function') throw new Error('call of a non-function');
    return (f as Fn)(...args);
  },
  printf: (format, ...args) => {
    let i = 0;
    return String(format).replace(/%[sdv%]/g, (m) => (m === '%%' ? '%' : String(args[i++])));
  },
  // Sprig's toJson is Go's json.Marshal, which also escapes <, > and & (equivalent JSON).
  toJson: (v) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026'),
  regexFind: (re, s) => new RegExp(String(re)).exec(String(s))?.[0] ?? '',
  regexReplaceAll: (re, s, repl) => String(s).replace(new RegExp(String(re), 'g'), String(repl)),
  trimSuffix: (suffix, s) => (String(s).endsWith(String(suffix)) ? String(s).slice(0, -String(suffix).length) : s),
  splitList: (sep, s) => String(s).split(String(sep)),
  first: (list) => (list as Value[])[0],
  default: (d, v) => (v === undefined || v === null || v === '' ? d : v),
};

type Token =
  | { t: 'str'; v: string }
  | { t: 'field'; v: string[] }
  | { t: 'var'; v: string; fields: string[] }
  | { t: 'ident'; v: string }
  | { t: '(' | ')' | '|' | ':=' };

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) i++;
    else if (c === '(' || c === ')' || c === '|') {
      tokens.push({ t: c });
      i++;
    } else if (src.startsWith(':=', i)) {
      tokens.push({ t: ':=' });
      i += 2;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      while (src[j] !== '"') {
        if (j >= src.length) throw new Error('unterminated string');
        if (src[j] === '\\') {
          const e = src[j + 1];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '');
          j += 2;
        } else s += src[j++];
      }
      tokens.push({ t: 'str', v: s });
      i = j + 1;
    } else if (c === '.' || c === '$') {
      const m = /^(\$\w*)?((?:\.\w+)*)/.exec(src.slice(i)) as RegExpExecArray;
      const fields = (m[2] ?? '').split('.').filter(Boolean);
      tokens.push(m[1] ? { t: 'var', v: m[1], fields } : { t: 'field', v: fields });
      i += m[0].length || 1;
    } else {
      const m = /^\w+/.exec(src.slice(i));
      if (!m) throw new Error(`unexpected "${c}" in {{${src}}}`);
      tokens.push({ t: 'ident', v: m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

function field(value: Value, path: readonly string[]): Value {
  let v = value;
  for (const key of path) {
    if (v === null || typeof v !== 'object') throw new Error(`no field ${key} on ${JSON.stringify(v)}`);
    v = (v as Record<string, Value>)[key];
  }
  return v;
}

export function renderGoTemplate(template: string, dot: Record<string, Value>): string {
  const vars = new Map<string, Value>([['$', dot]]);
  let out = '';
  let rest = template;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open < 0) return out + rest;
    let text = rest.slice(0, open);
    let action = rest.slice(open + 2);
    if (action.startsWith('-')) {
      text = text.replace(/\s+$/, '');
      action = action.slice(1);
    }
    const close = action.indexOf('}}');
    if (close < 0) throw new Error('unterminated action');
    let body = action.slice(0, close);
    rest = action.slice(close + 2);
    if (body.endsWith('-')) {
      body = body.slice(0, -1);
      rest = rest.replace(/^\s+/, '');
    }
    out += text;
    const tokens = tokenize(body);
    if (tokens[0]?.t === 'var' && tokens[1]?.t === ':=') {
      vars.set(tokens[0].v, evalPipeline(tokens.slice(2), dot, vars));
    } else {
      const v = evalPipeline(tokens, dot, vars);
      out += v === undefined || v === null ? '<no value>' : String(v);
    }
  }
}

function evalPipeline(tokens: Token[], dot: Value, vars: Map<string, Value>): Value {
  // Split on top-level pipes.
  const commands: Token[][] = [[]];
  let depth = 0;
  for (const tok of tokens) {
    if (tok.t === '(') depth++;
    if (tok.t === ')') depth--;
    if (tok.t === '|' && depth === 0) commands.push([]);
    else commands[commands.length - 1]?.push(tok);
  }
  let piped: { value: Value } | undefined;
  for (const command of commands) piped = { value: evalCommand(command, dot, vars, piped) };
  return piped?.value;
}

function evalCommand(tokens: Token[], dot: Value, vars: Map<string, Value>, piped?: { value: Value }): Value {
  const args: Value[] = [];
  let fn: Fn | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as Token;
    if (tok.t === 'ident') {
      if (i !== 0) throw new Error(`function ${tok.v} used as an argument`);
      fn = FUNCTIONS[tok.v];
      if (!fn) throw new Error(`function ${tok.v} is not supported by this renderer`);
    } else if (tok.t === 'str') args.push(tok.v);
    else if (tok.t === 'field') args.push(field(dot, tok.v));
    else if (tok.t === 'var') {
      if (!vars.has(tok.v)) throw new Error(`undefined variable ${tok.v}`);
      args.push(field(vars.get(tok.v), tok.fields));
    } else if (tok.t === '(') {
      let depth = 1;
      let j = i + 1;
      while (depth > 0) {
        const t = tokens[j];
        if (!t) throw new Error('unbalanced parentheses');
        if (t.t === '(') depth++;
        if (t.t === ')') depth--;
        j++;
      }
      let value = evalPipeline(tokens.slice(i + 1, j - 1), dot, vars);
      // (call …).Field
      const next = tokens[j];
      if (next?.t === 'field') {
        value = field(value, next.v);
        j++;
      }
      args.push(value);
      i = j - 1;
    } else throw new Error(`unexpected ${tok.t}`);
  }
  if (piped) args.push(piped.value);
  if (fn) return fn(...args);
  if (args.length !== 1) throw new Error('a command without a function takes one value');
  return args[0];
}
