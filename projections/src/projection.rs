//! What a read model is to the runtime: a named, versioned set of tables and a batch `apply`.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;

use futures::future::BoxFuture;
use quick_cache::unsync::Cache;
use sqlx::PgConnection;
use uuid::Uuid;

// A read model finds here, beside the trait it implements, the types of the batches it applies.
pub(crate) use crate::batch::{ApplyError, Envelope, Target};

/// What a projection keeps in memory between the batches it applies to one copy of its tables,
/// such as the rows it last wrote, so that the next batch need not read them back.
///
/// The runtime hands [`Projection::apply_keeping`] what the last *committed* batch left, and
/// drops it whenever it can no longer vouch for it: the batch failed or rolled back, the
/// projection restarted or was taken over by another process, or a rebuild was swapped in. So
/// what is kept matches the tables, since a projection alone writes its tables.
#[derive(Default)]
pub struct Kept(Option<Box<dyn Any + Send + Sync>>);

impl Kept {
    /// What is kept, as a `T`: a fresh `T` when nothing is, or something of another type.
    pub fn get_or_default<T: Default + Send + Sync + 'static>(&mut self) -> &mut T {
        if !self.0.as_ref().is_some_and(|kept| kept.is::<T>()) {
            self.0 = Some(Box::new(T::default()));
        }
        match self.0.as_mut().and_then(|kept| kept.downcast_mut::<T>()) {
            Some(kept) => kept,
            None => unreachable!("a `T` was just stored"),
        }
    }
}

/// Rows a projection last wrote to its live tables, by key, kept between batches in its
/// [`Kept`]: the rows a batch touches come from here where they are, and only the others are
/// read from the table. Holds at most [`MOST_KEPT_ROWS`] rows.
///
/// The rows are in a `quick_cache` cache. A batch moves each row it uses out of its place
/// (leaving it empty) and puts it back once written, which marks the row used; when the cache
/// is full, rows that no batch came back to go before those that batches keep using.
#[derive(Debug)]
pub(crate) struct KeptRows<R>(Cache<Uuid, Option<R>>);

impl<R> Default for KeptRows<R> {
    fn default() -> Self {
        KeptRows(Cache::new(MOST_KEPT_ROWS))
    }
}

/// Most rows a [`KeptRows`] holds.
const MOST_KEPT_ROWS: usize = 8_192;

impl<R: Send + Sync + 'static> KeptRows<R> {
    /// The rows kept in `kept` when `target` is the live copy; `None` for a rebuild's shadow
    /// copy, whose large batches touch each row about once.
    pub(crate) fn of(kept: &mut Kept, target: Target) -> Option<&mut Self> {
        (target == Target::Live).then(|| kept.get_or_default::<Self>())
    }

    /// The kept row of `id`, if any.
    pub(crate) fn get(&self, id: &Uuid) -> Option<&R> {
        // A look only: what marks a row used is a batch keeping it.
        self.0.peek(id).and_then(Option::as_ref)
    }

    /// Puts the rows of `ids` into `rows`: moved out of `this` where they are kept, the others
    /// read from `table` (with [`crate::sql::select_sql`] over `columns` by `key`), each under
    /// the id `id_of` gives it.
    pub(crate) async fn load(
        this: Option<&mut Self>,
        conn: &mut PgConnection,
        ids: impl IntoIterator<Item = Uuid>,
        (table, columns, key): (&str, &[crate::sql::Column], &str),
        id_of: fn(&R) -> Uuid,
        rows: &mut HashMap<Uuid, R>,
    ) -> Result<(), sqlx::Error>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let missing: Vec<Uuid> = match this {
            Some(this) => ids
                .into_iter()
                .filter(
                    |id| match this.0.peek_mut(id).and_then(|mut place| place.take()) {
                        Some(row) => {
                            rows.insert(*id, row);
                            false
                        }
                        None => true,
                    },
                )
                .collect(),
            None => ids.into_iter().collect(),
        };
        if missing.is_empty() {
            return Ok(());
        }
        let sql = crate::sql::select_sql(table, columns, key);
        for row in sqlx::query_as::<_, R>(&sql)
            .bind(&missing)
            .fetch_all(&mut *conn)
            .await?
        {
            rows.insert(id_of(&row), row);
        }
        Ok(())
    }

    /// Keeps `rows` (the rows a batch holds once written).
    pub(crate) fn keep(this: Option<&mut Self>, rows: HashMap<Uuid, R>) {
        if let Some(this) = this {
            for (id, row) in rows {
                match this.0.get_mut(&id) {
                    Some(mut place) => *place = Some(row),
                    None => this.0.insert(id, Some(row)),
                }
            }
        }
    }
}

impl fmt::Debug for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kept")
            .field("holds", &self.0.is_some())
            .finish()
    }
}

/// A Postgres read model built from the log.
///
/// The runtime calls [`Projection::apply`] with batches of events in log order, inside a
/// transaction that also stores the checkpoint, so a batch is applied exactly once or not at all.
/// A batch is never empty. During catch-up batches are large (thousands of events); live they
/// are whatever arrived. An `apply` must therefore:
/// - write only to its own [`Projection::tables`], through [`Target::table`];
/// - give the same tables for any split of the same events into batches;
/// - ignore events it does not care about.
///
/// The tables are created by the migrations (in `public`); a rebuild copies their definition
/// (`CREATE TABLE … (LIKE … INCLUDING ALL)`) into the shadow schema, so read models must not use
/// foreign keys or sequences of their own, and must name indexes as Postgres would by default
/// (`<table>_<columns>_idx`) so a swapped-in copy keeps the names migrations refer to.
pub trait Projection: Send + Sync + fmt::Debug + 'static {
    /// Stable name: the checkpoint's key and the `--projection` argument of `ledgerdesk replay`.
    fn name(&self) -> &'static str;

    /// Bump it when the code would build different tables from the same log: the next start
    /// rebuilds the projection into shadow tables and swaps them in once caught up.
    fn version(&self) -> u32;

    /// The tables this projection owns, unqualified (`"tickets"`).
    fn tables(&self) -> &'static [&'static str];

    /// Applies `batch` (in log order, never empty) to the `target` copy of the tables.
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        target: Target,
        batch: &'a [Envelope],
    ) -> BoxFuture<'a, Result<(), ApplyError>>;

    /// [`Projection::apply`], given what this projection kept after its last committed batch
    /// to the same copy (see [`Kept`]); what it leaves there is kept if this batch commits.
    /// The runtime's appliers call this; a projection that keeps nothing need not implement it.
    fn apply_keeping<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        target: Target,
        batch: &'a [Envelope],
        kept: &'a mut Kept,
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        let _ = kept;
        self.apply(conn, target, batch)
    }

    /// Whether applying `batch` (which holds events it wants) may change a table, given what it
    /// kept after its last committed batch. When not, the batch is not applied and only the
    /// checkpoint moves, as for a batch of events it does not want. Yes unless the projection
    /// says otherwise; saying no to a batch that would change a table loses the change.
    fn changes(&self, target: Target, batch: &[Envelope], kept: &mut Kept) -> bool {
        let _ = (target, batch, kept);
        true
    }

    /// Whether `apply` may change a table for `event`. A batch holding no event the projection
    /// wants is not applied: only its checkpoint moves, in one statement. Every event unless
    /// the projection says otherwise; saying no to an event `apply` would use loses it.
    fn wants(&self, event: &Envelope) -> bool {
        let _ = event;
        true
    }
}

/// Implements [`Projection`] for a read model's unit struct: its name, version, tables, either
/// the `async fn(&mut PgConnection, Target, &[Envelope]) -> Result<(), ApplyError>` that
/// applies a batch (`apply:`) or the one that applies a batch with what was [`Kept`] (the same
/// arguments and `&mut Kept`; `keeping:`, which then also applies with nothing kept), and,
/// optionally, the `fn(Target, &[Envelope], &mut Kept) -> bool` saying whether a batch may
/// change a table and the `fn(&Envelope) -> bool` saying which events it wants.
macro_rules! read_model {
    (
        $model:ty,
        name: $name:literal,
        version: $version:literal,
        tables: $tables:expr
        $(, apply: $apply:path)?
        $(, keeping: $keeping:path)?
        $(, changes: $changes:path)?
        $(, wants: $wants:path)? $(,)?
    ) => {
        impl $crate::projection::Projection for $model {
            fn name(&self) -> &'static str {
                $name
            }

            fn version(&self) -> u32 {
                $version
            }

            fn tables(&self) -> &'static [&'static str] {
                $tables
            }

            $(
                fn apply<'a>(
                    &'a self,
                    conn: &'a mut ::sqlx::PgConnection,
                    target: $crate::batch::Target,
                    batch: &'a [$crate::batch::Envelope],
                ) -> ::futures::future::BoxFuture<'a, Result<(), $crate::batch::ApplyError>>
                {
                    Box::pin($apply(conn, target, batch))
                }
            )?

            $(
                // Applying without what was kept is applying with nothing kept.
                fn apply<'a>(
                    &'a self,
                    conn: &'a mut ::sqlx::PgConnection,
                    target: $crate::batch::Target,
                    batch: &'a [$crate::batch::Envelope],
                ) -> ::futures::future::BoxFuture<'a, Result<(), $crate::batch::ApplyError>>
                {
                    Box::pin(async move {
                        let mut nothing = $crate::projection::Kept::default();
                        $keeping(conn, target, batch, &mut nothing).await
                    })
                }

                fn apply_keeping<'a>(
                    &'a self,
                    conn: &'a mut ::sqlx::PgConnection,
                    target: $crate::batch::Target,
                    batch: &'a [$crate::batch::Envelope],
                    kept: &'a mut $crate::projection::Kept,
                ) -> ::futures::future::BoxFuture<'a, Result<(), $crate::batch::ApplyError>>
                {
                    Box::pin($keeping(conn, target, batch, kept))
                }
            )?

            $(
                fn changes(
                    &self,
                    target: $crate::batch::Target,
                    batch: &[$crate::batch::Envelope],
                    kept: &mut $crate::projection::Kept,
                ) -> bool {
                    $changes(target, batch, kept)
                }
            )?

            $(
                fn wants(&self, event: &$crate::batch::Envelope) -> bool {
                    $wants(event)
                }
            )?
        }
    };
}
pub(crate) use read_model;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_memory_drops_the_rows_no_batch_came_back_to() {
        let mut kept = KeptRows::<u32>::default();
        let ids: Vec<Uuid> = (0..MOST_KEPT_ROWS).map(|_| Uuid::now_v7()).collect();
        KeptRows::keep(Some(&mut kept), ids.iter().map(|id| (*id, 0)).collect());
        // A batch moves the first hundred rows out and puts them back.
        let used = ids[..100]
            .iter()
            .filter_map(|id| Some((*id, kept.0.peek_mut(id)?.take()?)))
            .collect::<HashMap<_, _>>();
        assert_eq!(used.len(), 100);
        KeptRows::keep(Some(&mut kept), used);
        // Then rows of other tickets fill the memory past its bound.
        let others = (0..1_000).map(|_| (Uuid::now_v7(), 1)).collect();
        KeptRows::keep(Some(&mut kept), others);

        assert!(kept.0.len() <= MOST_KEPT_ROWS);
        assert!(ids[..100].iter().all(|id| kept.get(id) == Some(&0)));
    }
}
