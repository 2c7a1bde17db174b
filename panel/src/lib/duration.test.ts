import { describe, expect, it } from 'vitest';
import { humanDuration } from './duration';

describe('humanDuration', () => {
  it('says nothing without a value', () => {
    expect(humanDuration(null, 'en')).toBe('');
    expect(humanDuration(undefined, 'en')).toBe('');
    expect(humanDuration(-5, 'en')).toBe('');
    expect(humanDuration(Number.NaN, 'en')).toBe('');
  });
  it('keeps seconds under a minute only', () => {
    expect(humanDuration(0, 'en')).toBe('0 sec');
    expect(humanDuration(42.4, 'en')).toBe('42 sec');
    expect(humanDuration(89, 'en')).toBe('1 min');
    expect(humanDuration(91, 'en')).toBe('2 min');
  });
  it('uses two units at most, the larger first, without a zero', () => {
    expect(humanDuration(3 * 3600 + 20 * 60, 'en')).toBe('3 hr 20 min');
    expect(humanDuration(7200, 'en')).toBe('2 hr');
    expect(humanDuration(2 * 86_400 + 4 * 3600 + 59, 'en')).toBe('2 days 4 hr');
    expect(humanDuration(86_400 + 5 * 60, 'en')).toBe('1 day');
  });
  it('speaks Russian', () => {
    expect(humanDuration(3 * 3600 + 20 * 60, 'ru')).toBe('3 ч 20 мин');
    expect(humanDuration(30, 'ru')).toBe('30 с');
  });
});
