// A Telegram text with its entities (bold, links, code…) as a tree of segments the panel
// renders as DOM nodes: never as HTML, so nothing a customer typed can become markup. Pure,
// unit-tested.
//
// Offsets and lengths count UTF-16 code units, as Telegram's do and as JavaScript string
// indices do, so `slice` cuts where Telegram meant. Entities nest (a bold word in a link);
// one that crosses the end of an enclosing one is split in two at that end.

export interface Entity {
  type: string;
  offset: number;
  length: number;
  url?: string | null;
  language?: string | null;
  customEmojiId?: string | null;
  userId?: string | null;
}

export type Tag =
  | 'strong' | 'em' | 'u' | 's' | 'code' | 'pre' | 'blockquote' | 'a' | 'span';

export interface Element {
  tag: Tag;
  /** `entity-<type>`: the look of a spoiler, hashtag, mention… */
  className: string;
  /** For links: a target with an allowed scheme (never anything else). */
  href?: string;
  /** For `pre`: the language the customer named. */
  language?: string;
  /** For spoilers: hidden until the agent reveals it. */
  spoiler?: boolean;
  children: Segment[];
}

export type Segment = string | Element;

const SCHEMES = new Set(['http:', 'https:', 'tg:', 'mailto:', 'tel:']);

/** `url` when it parses and its scheme is one a customer's link may have, else null. */
export function safeHref(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return SCHEMES.has(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

/** The element an entity becomes, given the text it covers. */
function element(entity: Entity, covered: string, children: Segment[]): Element {
  const className = `entity-${entity.type.replace(/[^a-z_]/g, '')}`;
  const link = (href: string | null): Element =>
    href ? { tag: 'a', className, href, children } : { tag: 'span', className, children };
  switch (entity.type) {
    case 'bold':
      return { tag: 'strong', className, children };
    case 'italic':
      return { tag: 'em', className, children };
    case 'underline':
      return { tag: 'u', className, children };
    case 'strikethrough':
      return { tag: 's', className, children };
    case 'spoiler':
      return { tag: 'span', className, spoiler: true, children };
    case 'code':
      return { tag: 'code', className, children };
    case 'pre':
      return entity.language
        ? { tag: 'pre', className, language: entity.language, children }
        : { tag: 'pre', className, children };
    case 'blockquote':
    case 'expandable_blockquote':
      return { tag: 'blockquote', className, children };
    case 'text_link':
      return link(safeHref(entity.url));
    case 'url':
      return link(safeHref(/^[a-z][a-z0-9+.-]*:/i.test(covered) ? covered : `https://${covered}`));
    case 'mention': {
      const name = covered.replace(/^@/, '');
      return link(/^\w{3,32}$/.test(name) ? `https://t.me/${name}` : null);
    }
    case 'text_mention':
      return link(entity.userId && /^\d+$/.test(entity.userId) ? `tg://user?id=${entity.userId}` : null);
    case 'email':
      return link(safeHref(`mailto:${covered}`));
    case 'phone_number':
      return link(safeHref(`tel:${covered.replace(/[^\d+]/g, '')}`));
    default:
      // hashtag, cashtag, bot_command, custom_emoji (its text is the plain emoji), and types
      // Telegram adds later: the text, marked.
      return { tag: 'span', className, children };
  }
}

interface Span {
  entity: Entity;
  start: number;
  end: number;
}

function byPosition(a: Span, b: Span): number {
  // Earlier first; of two starting together, the longer encloses the shorter.
  return a.start - b.start || b.end - a.end;
}

function nest(text: string, start: number, end: number, spans: Span[]): Segment[] {
  const segments: Segment[] = [];
  let position = start;
  let pending = [...spans].sort(byPosition);
  while (pending.length > 0) {
    const [span, ...others] = pending as [Span, ...Span[]];
    if (span.start > position) segments.push(text.slice(position, span.start));
    const inside: Span[] = [];
    const after: Span[] = [];
    for (const other of others) {
      if (other.start >= span.end) {
        after.push(other);
      } else if (other.end <= span.end) {
        inside.push(other);
      } else {
        // Crosses the end of `span`: the part inside nests, the rest follows.
        inside.push({ ...other, end: span.end });
        after.push({ ...other, start: span.end });
      }
    }
    const covered = text.slice(span.start, span.end);
    segments.push(element(span.entity, covered, nest(text, span.start, span.end, inside)));
    position = span.end;
    pending = after.sort(byPosition);
  }
  if (position < end) segments.push(text.slice(position, end));
  return segments;
}

/**
 * The segments of `text` marked by `entities`. Entities outside the text are cut to it,
 * empty ones dropped; the text itself always comes out whole, in order.
 */
export function segments(text: string, entities: readonly Entity[] | null | undefined): Segment[] {
  const spans: Span[] = [];
  for (const entity of entities ?? []) {
    const start = Math.max(0, Math.min(text.length, Math.trunc(entity.offset)));
    const end = Math.max(start, Math.min(text.length, Math.trunc(entity.offset + entity.length)));
    if (end > start && Number.isFinite(start) && Number.isFinite(end)) spans.push({ entity, start, end });
  }
  if (spans.length === 0) return text ? [text] : [];
  return nest(text, 0, text.length, spans);
}

/** The text of segments, as a check that nothing was lost or doubled. */
export function plain(parts: readonly Segment[]): string {
  return parts.map((part) => (typeof part === 'string' ? part : plain(part.children))).join('');
}
