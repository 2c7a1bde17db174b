import { describe, expect, it } from 'vitest';
import { fill, preferredLocale } from './translate';

describe('preferredLocale', () => {
  it('takes the first language the panel has', () => {
    expect(preferredLocale(['de-DE', 'ru-RU', 'en'])).toBe('ru');
    expect(preferredLocale(['en-GB', 'ru'])).toBe('en');
  });
  it('falls back to English', () => {
    expect(preferredLocale(['fr', 'de'])).toBe('en');
    expect(preferredLocale([])).toBe('en');
  });
});

describe('fill', () => {
  it('fills placeholders and keeps unknown ones visible', () => {
    expect(fill('Hello, {name} ({missing})', 'en', 'k', { name: 'Ann' })).toBe('Hello, Ann ({missing})');
  });
  it('chooses Russian plural forms by count', () => {
    const tickets = { one: '{count} обращение', few: '{count} обращения', many: '{count} обращений', other: '{count} обращения' };
    expect(fill(tickets, 'ru', 'k', { count: 1 })).toBe('1 обращение');
    expect(fill(tickets, 'ru', 'k', { count: 3 })).toBe('3 обращения');
    expect(fill(tickets, 'ru', 'k', { count: 11 })).toBe('11 обращений');
    expect(fill(tickets, 'ru', 'k', { count: 21 })).toBe('21 обращение');
  });
  it('shows the key of a missing text', () => {
    expect(fill(undefined, 'en', 'nav.unknown')).toBe('nav.unknown');
  });
});
