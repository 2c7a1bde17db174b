// The dashboard's data: one query (ticket counts now, the period's medians and their daily
// series, and the categories' names), and the tables the screen shows made from it. Pure
// apart from the query document; unit-tested.
import { graphql, type ResultOf } from './graphql';

export const DASHBOARD = graphql(`
  query Dashboard($days: Int!) {
    dashboard(days: $days) {
      totalTickets
      byStatus { status tickets }
      byCategory { categoryId status tickets }
      medianFirstResponseSeconds
      medianResolutionSeconds
      daily { day responded resolved medianFirstResponseSeconds medianResolutionSeconds }
    }
    categories(includeRemoved: true) { categoryId name removedAt }
  }
`);

export type DashboardData = ResultOf<typeof DASHBOARD>;

/** The periods the screen offers, in days. */
export const PERIODS = [7, 30, 90] as const;

/** Ticket statuses in the order a ticket goes through them. */
export const STATUSES = ['NEW', 'OPEN', 'PENDING', 'RESOLVED', 'CLOSED'] as const;
export type Status = (typeof STATUSES)[number];

/** Every status with its count (0 for those the API left out). */
export function statusCounts(byStatus: readonly { status: string; tickets: number }[]): Record<Status, number> {
  const counts = Object.fromEntries(STATUSES.map((status) => [status, 0])) as Record<Status, number>;
  for (const { status, tickets } of byStatus) {
    if (status in counts) counts[status as Status] += tickets;
  }
  return counts;
}

export interface CategoryRow {
  /** Null: tickets without a category. */
  categoryId: string | null;
  name: string | null;
  removed: boolean;
  counts: Record<Status, number>;
  total: number;
}

/**
 * One row per category that has tickets, by name (removed ones keep theirs), and the
 * uncategorised tickets last.
 */
export function categoryRows(
  byCategory: readonly { categoryId?: string | null; status: string; tickets: number }[],
  categories: readonly { categoryId: string; name: string; removedAt?: string | null }[],
): CategoryRow[] {
  const rows = new Map<string | null, CategoryRow>();
  for (const count of byCategory) {
    const id = count.categoryId ?? null;
    let row = rows.get(id);
    if (!row) {
      const category = id === null ? undefined : categories.find((c) => c.categoryId === id);
      row = {
        categoryId: id,
        name: category?.name ?? null,
        removed: Boolean(category?.removedAt),
        counts: statusCounts([]),
        total: 0,
      };
      rows.set(id, row);
    }
    if (count.status in row.counts) row.counts[count.status as Status] += count.tickets;
    row.total += count.tickets;
  }
  return [...rows.values()].sort((a, b) => {
    if (a.categoryId === null) return 1;
    if (b.categoryId === null) return -1;
    return (a.name ?? '').localeCompare(b.name ?? '');
  });
}
