import { describe, expect, it } from 'vitest';
import { plain, safeHref, segments, type Element, type Entity, type Segment } from './entities';

const at = (text: string, part: string, from = 0) => text.indexOf(part, from);
const entity = (type: string, offset: number, length: number, more: Partial<Entity> = {}): Entity => ({
  type, offset, length, ...more,
});
const el = (segment: Segment | undefined): Element => {
  if (segment === undefined || typeof segment === 'string') throw new Error(`not an element: ${String(segment)}`);
  return segment;
};

describe('Telegram entities', () => {
  it('leave a plain text as it is', () => {
    expect(segments('hello', [])).toEqual(['hello']);
    expect(segments('hello', null)).toEqual(['hello']);
    expect(segments('', [])).toEqual([]);
  });

  it('mark the spans they name, counting UTF-16 code units past emoji and Cyrillic', () => {
    const text = '👋 Привет, мир! 🎉 done';
    // "👋" is two code units, as Telegram counts it.
    const result = segments(text, [
      entity('bold', at(text, 'Привет'), 'Привет'.length),
      entity('italic', at(text, '🎉'), 2),
    ]);
    expect(result).toEqual([
      '👋 ',
      { tag: 'strong', className: 'entity-bold', children: ['Привет'] },
      ', мир! ',
      { tag: 'em', className: 'entity-italic', children: ['🎉'] },
      ' done',
    ]);
    expect(at(text, 'Привет')).toBe(3);
  });

  it('nest one inside another and split one that crosses the end of another', () => {
    const text = 'bold and italic';
    const nested = segments(text, [entity('italic', 5, 3), entity('bold', 0, 15)]);
    expect(nested).toEqual([
      { tag: 'strong', className: 'entity-bold', children: ['bold ', { tag: 'em', className: 'entity-italic', children: ['and'] }, ' italic'] },
    ]);
    // bold 0..8 and italic 5..15 overlap: the italic part inside the bold nests, the rest follows.
    const crossing = segments(text, [entity('bold', 0, 8), entity('italic', 5, 10)]);
    expect(crossing).toEqual([
      { tag: 'strong', className: 'entity-bold', children: ['bold ', { tag: 'em', className: 'entity-italic', children: ['and'] }] },
      { tag: 'em', className: 'entity-italic', children: [' italic'] },
    ]);
    expect(plain(crossing)).toBe(text);
  });

  it('keep the whole text in order whatever the entities', () => {
    const text = 'Ёлки 🎄🎄 and more — текст';
    const cases: Entity[][] = [
      [entity('bold', 0, 100)],
      [entity('bold', -5, 8), entity('code', 3, 0)],
      [entity('bold', 2, 5), entity('italic', 2, 5), entity('underline', 3, 10), entity('spoiler', 1, 20)],
      [entity('strikethrough', 20, 3), entity('bold', 0, 2)],
    ];
    for (const entities of cases) expect(plain(segments(text, entities))).toBe(text);
  });

  it('make links only with safe schemes, to open in a new tab', () => {
    const text = 'see docs or evil';
    const [, docs, , evil] = segments(text, [
      entity('text_link', 4, 4, { url: 'https://example.com/a?b=1' }),
      entity('text_link', 12, 4, { url: 'javascript:alert(1)' }),
    ]);
    expect(el(docs)).toMatchObject({ tag: 'a', href: 'https://example.com/a?b=1', children: ['docs'] });
    expect(el(evil)).toMatchObject({ tag: 'span', children: ['evil'] });
    expect(el(evil).href).toBeUndefined();
    expect(safeHref('data:text/html,<b>x</b>')).toBeNull();
    expect(safeHref('vbscript:x')).toBeNull();
    expect(safeHref('tg://resolve?domain=shop')).toBe('tg://resolve?domain=shop');
    expect(safeHref('not a url')).toBeNull();
  });

  it('link URLs, mentions, emails and phone numbers by their text', () => {
    const text = 'go track.example.com/1 or @shop_help, mail a@b.co, call +44 20 7946 0958';
    const parts = segments(text, [
      entity('url', at(text, 'track'), 'track.example.com/1'.length),
      entity('mention', at(text, '@shop'), '@shop_help'.length),
      entity('email', at(text, 'a@b'), 'a@b.co'.length),
      entity('phone_number', at(text, '+44'), '+44 20 7946 0958'.length),
    ]);
    const links = parts.filter((part) => typeof part !== 'string').map((part) => el(part).href);
    expect(links).toEqual(['https://track.example.com/1', 'https://t.me/shop_help', 'mailto:a@b.co', 'tel:+442079460958']);
    const mention = segments('hi @x', [entity('mention', 3, 2)]);
    expect(el(mention[1])).toMatchObject({ tag: 'span' });
    const user = segments('Anna', [entity('text_mention', 0, 4, { userId: '123' })]);
    expect(el(user[0]).href).toBe('tg://user?id=123');
  });

  it('show code with its language, quotes, spoilers, hashtags and custom emoji as their text', () => {
    const text = 'run\nls -la\n#help 🙂 secret';
    const parts = segments(text, [
      entity('pre', 4, 6, { language: 'sh' }),
      entity('hashtag', at(text, '#help'), 5),
      entity('custom_emoji', at(text, '🙂'), 2, { customEmojiId: '538' }),
      entity('spoiler', at(text, 'secret'), 6),
      entity('blockquote', 0, 3),
      entity('something_new', at(text, 'secret'), 3),
    ]);
    expect(el(parts[0])).toMatchObject({ tag: 'blockquote', children: ['run'] });
    expect(el(parts[2])).toMatchObject({ tag: 'pre', language: 'sh', children: ['ls -la'] });
    expect(el(parts[4])).toMatchObject({ tag: 'span', className: 'entity-hashtag', children: ['#help'] });
    expect(el(parts[6])).toMatchObject({ tag: 'span', className: 'entity-custom_emoji', children: ['🙂'] });
    const spoiler = el(parts[8]);
    expect(spoiler).toMatchObject({ tag: 'span', spoiler: true });
    expect(el(spoiler.children[0])).toMatchObject({ className: 'entity-something_new', children: ['sec'] });
    expect(plain(parts)).toBe(text);
  });
});
