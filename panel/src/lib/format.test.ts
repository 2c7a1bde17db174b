import { describe, expect, it } from 'vitest';
import {
  customerName, formatBytes, formatDateTime, formatDuration, formatNumber, formatTime, forwardOriginName, mapLink,
} from './format';
import { translator } from './i18n/testing';
import { matchTemplates, readDraft, slashQuery, writeDraft } from './drafts';
import { parseTokens, refreshDelay } from './tokens';
import { parseRoute, routePath } from './router.svelte';

describe('formatting', () => {
  it('writes sizes and durations as people read them', () => {
    expect(formatBytes(512, 'en')).toBe('512 B');
    expect(formatBytes(1536, 'en')).toBe('1.5 KB');
    expect(formatBytes(3 * 1024 ** 3, 'en')).toBe('3.0 GB');
    expect(formatBytes(200 * 1024 ** 2, 'en')).toBe('200 MB');
    expect(formatBytes(null, 'en')).toBe('');
    expect(formatDuration(75)).toBe('1:15');
  });

  it('writes sizes, numbers, dates and times in Russian for a Russian agent', () => {
    expect(formatBytes(512, 'ru')).toBe('512 Б');
    expect(formatBytes(1536, 'ru')).toBe('1,5 КБ');
    expect(formatBytes(3 * 1024 ** 3, 'ru')).toBe('3,0 ГБ');
    expect(formatNumber(12345, 'ru')).toBe('12\u00a0345');
    expect(formatNumber(12345, 'en')).toBe('12,345');
    const now = new Date(2026, 11, 7, 18, 0);
    const earlier = new Date(2026, 2, 3, 9, 5).toISOString();
    expect(formatTime(earlier, 'ru', now)).toBe('3 мар.');
    expect(formatTime(earlier, 'en', now)).toBe('Mar 3');
    const today = new Date(2026, 11, 7, 9, 5).toISOString();
    expect(formatTime(today, 'ru', now)).toBe('09:05');
    expect(formatTime(today, 'en', now)).toBe('09:05 AM');
    expect(formatDateTime(earlier, 'ru')).toBe('3 мар. 2026 г., 09:05');
    expect(formatDateTime(earlier, 'en')).toBe('Mar 3, 2026, 9:05 AM');
    expect(formatDateTime('not a date', 'ru')).toBe('');
  });

  it('links a location to a map and names customers and forward origins', () => {
    expect(mapLink(52.5, 13.4)).toBe('https://www.openstreetmap.org/?mlat=52.500000&mlon=13.400000#map=16/52.500000/13.400000');
    expect(customerName({ firstName: 'Ann', lastName: 'Lee' }, translator('en'))).toBe('Ann Lee');
    expect(customerName({ firstName: '', username: 'ann' }, translator('en'))).toBe('@ann');
    expect(customerName(null, translator('en'))).toBe('Unknown customer');
    expect(customerName({ firstName: '' }, translator('ru'))).toBe('Клиент без имени');
    expect(forwardOriginName({ type: 'user', sender_user: { first_name: 'Bob' } })).toBe('Bob');
    expect(forwardOriginName({ type: 'channel', chat: { title: 'News' } })).toBe('News');
  });
});

describe('drafts and quick replies', () => {
  it('keeps a draft per ticket and forgets an empty one', () => {
    const store = new Map<string, string>();
    const storage = {
      getItem: (key: string) => store.get(key) ?? null,
      setItem: (key: string, value: string) => void store.set(key, value),
      removeItem: (key: string) => void store.delete(key),
    };
    writeDraft(storage, 't1', { text: 'half a reply', note: true });
    expect(readDraft(storage, 't1')).toEqual({ text: 'half a reply', note: true });
    expect(readDraft(storage, 't2')).toEqual({ text: '', note: false });
    writeDraft(storage, 't1', { text: '  ', note: false });
    expect(store.size).toBe(0);
  });

  it('finds templates by the words typed after a slash', () => {
    const templates = [{ title: 'Refund', text: 'Your refund is on its way' }, { title: 'Hello', text: 'Hi there' }];
    expect(slashQuery('/ref')).toBe('ref');
    expect(slashQuery('no slash')).toBeNull();
    expect(matchTemplates(templates, 'ref way').map((t) => t.title)).toEqual(['Refund']);
    expect(matchTemplates(templates, '')).toHaveLength(2);
  });
});

describe('sessions and routes', () => {
  it('refreshes a fifth of the lifetime before the end, at least five seconds before', () => {
    expect(refreshDelay(0, 900_000, 0)).toBe(720_000);
    expect(refreshDelay(0, 10_000, 0)).toBe(5_000);
    expect(refreshDelay(0, 10_000, 9_000)).toBe(0);
  });

  it('reads only well-formed stored sessions', () => {
    expect(parseTokens('not json')).toBeNull();
    expect(parseTokens('{"accessToken":"a"}')).toBeNull();
    const tokens = { accessToken: 'a', refreshToken: 'r', accessTokenExpiresAt: 'x', refreshTokenExpiresAt: 'y', agentId: 'g' };
    expect(parseTokens(JSON.stringify(tokens))).toMatchObject(tokens);
  });

  it('knows the inbox and ticket routes and nothing else', () => {
    const id = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    expect(parseRoute(`/tickets/${id}`)).toEqual({ name: 'ticket', ticketId: id });
    expect(parseRoute('/tickets/not-a-uuid')).toEqual({ name: 'inbox' });
    expect(routePath({ name: 'ticket', ticketId: id })).toBe(`/tickets/${id}`);
  });

  it('knows the broadcast, dashboard and admin routes', () => {
    const id = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    expect(parseRoute('/broadcasts')).toEqual({ name: 'broadcasts' });
    expect(parseRoute(`/broadcasts/${id}`)).toEqual({ name: 'broadcast', broadcastId: id });
    expect(parseRoute('/broadcasts/nope')).toEqual({ name: 'inbox' });
    expect(parseRoute('/dashboard')).toEqual({ name: 'dashboard' });
    expect(parseRoute('/admin')).toEqual({ name: 'admin', section: 'agents' });
    expect(parseRoute('/admin/tokens')).toEqual({ name: 'admin', section: 'tokens' });
    expect(parseRoute('/admin/unknown')).toEqual({ name: 'admin', section: 'agents' });
    for (const route of [
      { name: 'broadcasts' },
      { name: 'broadcast', broadcastId: id },
      { name: 'dashboard' },
      { name: 'admin', section: 'templates' },
      { name: 'activity' },
      { name: 'inbox' },
    ] as const) {
      expect(parseRoute(routePath(route))).toEqual(route);
    }
  });
});
