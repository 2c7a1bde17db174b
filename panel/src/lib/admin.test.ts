import { describe, expect, it } from 'vitest';
import { greetings, required, sameSet, sortAgents, sortCategories } from './admin';

describe('greetings', () => {
  it('keeps the greeting of each language, English first', () => {
    const text = (key: string, language: string) =>
      ({ key, language, text: 'x', customText: null, builtInText: 'x', maxLength: 4096 }) as never;
    const found = greetings([text('HELP', 'en'), text('GREETING', 'ru'), text('GREETING', 'de'), text('GREETING', 'en')]);
    expect(found.map((entry: { language: string }) => entry.language)).toEqual(['en', 'de', 'ru']);
  });
});

describe('sorting', () => {
  it('puts active agents first, by name', () => {
    const agents = [
      { name: 'Zoe', active: true },
      { name: 'Ann', active: false },
      { name: 'Bob', active: true },
    ];
    expect(sortAgents(agents).map((agent) => agent.name)).toEqual(['Bob', 'Zoe', 'Ann']);
  });
  it('puts removed categories last', () => {
    const categories = [{ name: 'Billing', removedAt: '2026-01-01' }, { name: 'Shipping' }, { name: 'Returns' }];
    expect(sortCategories(categories).map((category) => category.name)).toEqual(['Returns', 'Shipping', 'Billing']);
  });
});

describe('sameSet', () => {
  it('ignores order, not members', () => {
    expect(sameSet(['a', 'b'], ['b', 'a'])).toBe(true);
    expect(sameSet(['a'], ['a', 'b'])).toBe(false);
    expect(sameSet([], [])).toBe(true);
  });
});

describe('required', () => {
  it('trims, and refuses blank or too long texts', () => {
    expect(required('  Returns ', 128)).toEqual({ ok: true, value: 'Returns' });
    expect(required('   ', 128)).toEqual({ ok: false, reason: 'blank' });
    expect(required('x'.repeat(129), 128)).toEqual({ ok: false, reason: 'long' });
    expect(required('ё'.repeat(128), 128)).toEqual({ ok: true, value: 'ё'.repeat(128) });
  });
});
