import { describe, expect, it } from 'vitest';
import { DEFAULT_FILTERS, appendPage, applyChange, fitsLocally, liveFilter, ticketFilter } from './inbox';

const row = (ticketId: string, version: number, lastActivityAt: string, extra: Partial<{ priority: string; tags: string[] }> = {}) => ({
  ticketId, version, lastActivityAt, priority: extra.priority ?? 'NORMAL', tags: extra.tags ?? [],
});

describe('the inbox filter', () => {
  it('asks for the active statuses by default and narrows by every field set', () => {
    expect(ticketFilter(DEFAULT_FILTERS, 'me')).toEqual({ status: ['NEW', 'OPEN', 'PENDING'] });
    const filters = { ...DEFAULT_FILTERS, status: 'all' as const, scope: 'mine' as const, category: 'c', priority: 'HIGH' as const, tag: ' vip ', search: ' refund ' };
    expect(ticketFilter(filters, 'me')).toEqual({ assignee: 'me', category: 'c', priority: 'HIGH', tag: 'vip', search: 'refund' });
  });

  it('gives the live list only what the server filters on', () => {
    const filters = { ...DEFAULT_FILTERS, scope: 'unassigned' as const, priority: 'HIGH' as const, tag: 'vip' };
    expect(liveFilter(filters, 'me')).toEqual({ status: ['NEW', 'OPEN', 'PENDING'], unassigned: true });
  });

  it('checks priority, tag and search on the client', () => {
    const filters = { ...DEFAULT_FILTERS, priority: 'HIGH' as const, tag: 'vip' };
    expect(fitsLocally(row('a', 1, 't', { priority: 'HIGH', tags: ['vip'] }), filters, false)).toBe(true);
    expect(fitsLocally(row('a', 1, 't', { priority: 'LOW', tags: ['vip'] }), filters, false)).toBe(false);
    expect(fitsLocally(row('a', 1, 't', { priority: 'HIGH' }), filters, false)).toBe(false);
    const searching = { ...DEFAULT_FILTERS, search: 'refund' };
    expect(fitsLocally(row('a', 1, 't'), searching, false)).toBe(false);
    expect(fitsLocally(row('a', 1, 't'), searching, true)).toBe(true);
  });
});

describe('the live list', () => {
  const list = [row('a', 3, '2026-01-03'), row('b', 1, '2026-01-02')];

  it('puts a new ticket at the top', () => {
    expect(applyChange(list, row('c', 1, '2026-01-04'), true).map((r) => r.ticketId)).toEqual(['c', 'a', 'b']);
  });

  it('moves a changed ticket to its place and keeps it once', () => {
    expect(applyChange(list, row('b', 2, '2026-01-05'), true).map((r) => r.ticketId)).toEqual(['b', 'a']);
  });

  it('drops a ticket that left the filter', () => {
    expect(applyChange(list, row('a', 4, '2026-01-05'), false).map((r) => r.ticketId)).toEqual(['b']);
  });

  it('ignores a change older than the row shown', () => {
    expect(applyChange(list, row('a', 2, '2026-01-09'), false)).toEqual(list);
  });

  it('appends a page without repeating a ticket that moved meanwhile', () => {
    const page = [row('b', 1, '2026-01-02'), row('d', 1, '2026-01-01')];
    expect(appendPage(list, page).map((r) => r.ticketId)).toEqual(['a', 'b', 'd']);
  });
});
