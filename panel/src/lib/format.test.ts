import { describe, expect, it } from 'vitest';
import { customerName, formatBytes, formatDuration, forwardOriginName, mapLink } from './format';
import { matchTemplates, readDraft, slashQuery, writeDraft } from './drafts';
import { parseTokens, refreshDelay } from './tokens';
import { parseRoute, routePath } from './router.svelte';

describe('formatting', () => {
  it('writes sizes and durations as people read them', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GB');
    expect(formatBytes(null)).toBe('');
    expect(formatDuration(75)).toBe('1:15');
  });

  it('links a location to a map and names customers and forward origins', () => {
    expect(mapLink(52.5, 13.4)).toBe('https://www.openstreetmap.org/?mlat=52.500000&mlon=13.400000#map=16/52.500000/13.400000');
    expect(customerName({ firstName: 'Ann', lastName: 'Lee' })).toBe('Ann Lee');
    expect(customerName({ firstName: '', username: 'ann' })).toBe('@ann');
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
