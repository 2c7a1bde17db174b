import { describe, expect, it } from 'vitest';
import { categoryRows, statusCounts } from './dashboard';

describe('statusCounts', () => {
  it('names every status, with 0 for the absent ones', () => {
    expect(statusCounts([{ status: 'NEW', tickets: 2 }, { status: 'RESOLVED', tickets: 1 }])).toEqual({
      NEW: 2,
      OPEN: 0,
      PENDING: 0,
      RESOLVED: 1,
      CLOSED: 0,
    });
  });
});

describe('categoryRows', () => {
  const categories = [
    { categoryId: 'b', name: 'Shipping' },
    { categoryId: 'a', name: 'Billing', removedAt: '2026-01-01T00:00:00Z' },
  ];
  it('makes one row per category, by name, the uncategorised last', () => {
    const rows = categoryRows(
      [
        { categoryId: null, status: 'NEW', tickets: 4 },
        { categoryId: 'b', status: 'NEW', tickets: 1 },
        { categoryId: 'b', status: 'CLOSED', tickets: 2 },
        { categoryId: 'a', status: 'OPEN', tickets: 3 },
      ],
      categories,
    );
    expect(rows.map((row) => [row.name, row.total, row.removed])).toEqual([
      ['Billing', 3, true],
      ['Shipping', 3, false],
      [null, 4, false],
    ]);
    expect(rows[1]?.counts).toEqual({ NEW: 1, OPEN: 0, PENDING: 0, RESOLVED: 0, CLOSED: 2 });
  });
  it('keeps a category it has no name for', () => {
    const rows = categoryRows([{ categoryId: 'gone', status: 'NEW', tickets: 1 }], categories);
    expect(rows[0]).toMatchObject({ categoryId: 'gone', name: null, total: 1 });
  });
});
