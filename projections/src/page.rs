//! Keyset pages of a list, in both directions: the rows strictly between two sort keys, from
//! the start of that range or from its end.
//!
//! A list is ordered by a sort key that ends with a unique column, so every row has one place
//! and a key names a position between rows. The first rows of a range are read in the list's
//! order; the last rows are read in the reversed order (the same index, scanned the other way)
//! and turned back, so a query never reads more rows than it returns, whichever end it starts
//! from. Every query returns its rows in the list's order.

use sqlx::{Encode, Postgres, QueryBuilder, Type};

/// Which rows of a list a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page<K> {
    /// Only rows after the row with this sort key (in list order).
    pub after: Option<K>,
    /// Only rows before the row with this sort key (in list order).
    pub before: Option<K>,
    /// `false`: the first `limit` rows of the range; `true`: the last `limit` rows.
    pub from_end: bool,
    /// At most this many rows.
    pub limit: i64,
}

impl<K> Page<K> {
    /// The first `limit` rows of the whole list.
    #[must_use]
    pub const fn first(limit: i64) -> Self {
        Page {
            after: None,
            before: None,
            from_end: false,
            limit,
        }
    }

    /// The rows a query read, scanning in [`Page::scan_descending`] order, in the list's order.
    #[must_use]
    pub fn in_list_order<R>(&self, mut rows: Vec<R>) -> Vec<R> {
        if self.from_end {
            rows.reverse();
        }
        rows
    }

    /// Whether to scan descending, for a list that is `descending`: the last rows of a range
    /// are read in the reversed order.
    #[must_use]
    pub const fn scan_descending(&self, descending: bool) -> bool {
        descending != self.from_end
    }
}

impl Page<i64> {
    /// The open bounds of a list ordered by an integer key that is never `i64::MIN` or
    /// `i64::MAX`: `(after, before)`, with the list's ends for a missing bound. A fixed
    /// statement with both bounds lets the planner use them as index conditions.
    #[must_use]
    pub fn bounds(&self) -> (i64, i64) {
        (
            self.after.unwrap_or(i64::MIN),
            self.before.unwrap_or(i64::MAX),
        )
    }
}

/// A two-column sort key (a value, then a unique tie-breaker), bound into a row comparison.
pub trait SortKey {
    /// Pushes the key as `$n, $m`.
    fn push_into(&self, sql: &mut QueryBuilder<'_, Postgres>);
}

impl<A, B> SortKey for (A, B)
where
    A: Clone + 'static + for<'q> Encode<'q, Postgres> + Type<Postgres>,
    B: Clone + 'static + for<'q> Encode<'q, Postgres> + Type<Postgres>,
{
    fn push_into(&self, sql: &mut QueryBuilder<'_, Postgres>) {
        sql.push_bind(self.0.clone())
            .push(", ")
            .push_bind(self.1.clone());
    }
}

/// Appends to a `where` clause the bounds of `page` on `columns` (the sort key's two columns),
/// then the `order by` and `limit` that read the page, for a list ordered by `columns` in the
/// direction `descending`. Return the rows through [`Page::in_list_order`].
pub(crate) fn push_keyset<K: SortKey>(
    sql: &mut QueryBuilder<'_, Postgres>,
    columns: (&str, &str),
    descending: bool,
    page: &Page<K>,
) {
    let (first, second) = columns;
    let (past, short) = if descending { ("<", ">") } else { (">", "<") };
    if let Some(after) = &page.after {
        sql.push(format!(" and ({first}, {second}) {past} ("));
        after.push_into(sql);
        sql.push(")");
    }
    if let Some(before) = &page.before {
        sql.push(format!(" and ({first}, {second}) {short} ("));
        before.push_into(sql);
        sql.push(")");
    }
    let direction = if page.scan_descending(descending) {
        "desc"
    } else {
        "asc"
    };
    sql.push(format!(
        " order by {first} {direction}, {second} {direction} limit "
    ))
    .push_bind(page.limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_of(descending: bool, page: &Page<(i64, i64)>) -> String {
        let mut sql = QueryBuilder::<Postgres>::new("select * from t where true");
        push_keyset(&mut sql, ("k", "id"), descending, page);
        sql.sql().to_owned()
    }

    #[test]
    fn the_first_rows_of_a_descending_list_are_read_descending() {
        let page = Page {
            after: Some((5, 1)),
            ..Page::first(10)
        };
        assert_eq!(
            sql_of(true, &page),
            "select * from t where true and (k, id) < ($1, $2) order by k desc, id desc limit $3"
        );
    }

    #[test]
    fn the_last_rows_of_a_descending_list_are_read_ascending_between_both_bounds() {
        let page = Page {
            after: Some((9, 1)),
            before: Some((5, 1)),
            from_end: true,
            limit: 10,
        };
        assert_eq!(
            sql_of(true, &page),
            "select * from t where true and (k, id) < ($1, $2) and (k, id) > ($3, $4) \
             order by k asc, id asc limit $5"
        );
    }

    #[test]
    fn the_last_rows_of_an_ascending_list_are_read_descending_and_returned_in_list_order() {
        let page: Page<(i64, i64)> = Page {
            from_end: true,
            ..Page::first(3)
        };
        assert_eq!(
            sql_of(false, &page),
            "select * from t where true order by k desc, id desc limit $1"
        );
        assert_eq!(page.in_list_order(vec![9, 8, 7]), vec![7, 8, 9]);
    }
}
