// HTML and SVG text built with one tagged template that escapes every interpolated value unless it is itself
// the output of `html`. Labels, annotations, versions, names and ids arrive from Alertmanager and deploy
// pipelines: attacker-controllable text, so escaping is the default and nothing opts out by accident.

const SAFE = Symbol('safe html');

export interface Html {
  readonly [SAFE]: true;
  readonly text: string;
}

export type Interpolation = Html | string | number | boolean | null | undefined | readonly Interpolation[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for an element's content or a quoted attribute value (HTML and SVG alike). */
export function escapeText(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] as string);
}

function isHtml(value: unknown): value is Html {
  return typeof value === 'object' && value !== null && SAFE in value;
}

function render(value: Interpolation): string {
  if (value === null || value === undefined || value === false) return '';
  if (isHtml(value)) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeText(String(value));
}

/** html`<p title="${t}">${body}</p>`: every value is escaped, arrays are joined, null/undefined/false vanish. */
export function html(strings: TemplateStringsArray, ...values: Interpolation[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return { [SAFE]: true, text: out };
}

/** Markup this module's own code produced (never data): a constant, or the output of other renderers. */
export function trusted(text: string): Html {
  return { [SAFE]: true, text };
}

/**
 * An absolute http(s) URL, normalised by the URL parser, or undefined. A `javascript:` or `data:` generatorURL
 * or runbook annotation is shown as text, never made a link.
 */
export function safeHref(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

/** Text cut to `max` characters with an ellipsis, for labels drawn in a fixed space (the full text is in a title). */
export function clip(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, Math.max(1, max - 1)).join('')}…`;
}
