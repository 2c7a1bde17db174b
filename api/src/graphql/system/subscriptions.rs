//! `events`: every event of the log, resumable from a cursor.

use std::collections::HashSet;

use async_graphql::{Context, Result, Subscription};
use futures::{Stream, StreamExt};

use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::error::{Code, error};
use crate::graphql::events::{EventsFrom, LogEvent, event_feed, parse_cursor};
use crate::graphql::guard::{LiveScope, Need};

/// Most event types one `events` subscription may filter on.
pub const MAX_TYPES: usize = 50;
/// Longest event type or stream prefix in a filter, in characters.
pub const MAX_FILTER_CHARS: usize = 200;

/// The log's feed.
#[derive(Debug, Default)]
pub struct EventSubscription;

#[Subscription]
impl EventSubscription {
    /// Every event of the log from `from` (or after `after`): first those already stored,
    /// then each new one as it commits, each exactly once and in log order. To replay the
    /// whole log, pass `from: BEGINNING`; to resume after a disconnect, pass the last `cursor`
    /// received as `after`. A cursor beyond the end of the log (one from another database) is
    /// refused with `VALIDATION`.
    #[graphql(guard = "Need(Permission::ReadEvents)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(EventsFrom::Now)",
            desc = "Where the feed starts when `after` is not given: `NOW` (the default) \
                    follows new events\nonly, `BEGINNING` replays the whole log first."
        )]
        from: Option<EventsFrom>,
        #[graphql(
            desc = "Resume after this `cursor` (it overrides `from`): the next event is the \
                    one after it."
        )]
        after: Option<String>,
        #[graphql(desc = "Only events of these exact types.")] types: Option<Vec<String>>,
        #[graphql(desc = "Only events of streams starting with this.")] stream_prefix: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<LogEvent>> + use<>> {
        // An explicit `from: null` is the default too.
        let after = parse_cursor(after)?.or(from.unwrap_or_default().cursor());
        let from_now = after.is_none();
        if let Some(types) = &types
            && (types.len() > MAX_TYPES || types.iter().any(|t| t.len() > MAX_FILTER_CHARS))
        {
            return Err(error(
                Code::Validation,
                format!(
                    "filter on at most {MAX_TYPES} types of at most {MAX_FILTER_CHARS} characters"
                ),
            ));
        }
        if stream_prefix
            .as_ref()
            .is_some_and(|prefix| prefix.len() > MAX_FILTER_CHARS)
        {
            return Err(error(
                Code::Validation,
                format!("a stream prefix has at most {MAX_FILTER_CHARS} characters"),
            ));
        }
        let types: Option<HashSet<String>> = types.map(|types| types.into_iter().collect());
        let api = ctx.data_unchecked::<Api>();
        let access = LiveScope::of(ctx, Permission::ReadEvents)?;
        let (start, feed) = event_feed(api.live.clone(), after, move |event| {
            types
                .as_ref()
                .is_none_or(|types| types.contains(&event.event_type))
                && stream_prefix
                    .as_ref()
                    .is_none_or(|prefix| event.stream_id.starts_with(prefix.as_str()))
        })
        .await?;
        // Following from now: the role as of where the feed starts (the guard read it a
        // moment earlier; a change in between would otherwise go unseen).
        if from_now {
            access.at(start).await?;
        }
        // Each event is checked against the caller's role as of its position: a demoted or
        // deactivated agent's feed ends there with the refusal.
        let checked = feed.then(move |item| {
            let access = access.clone();
            async move {
                let event = item?;
                access.at(event.position).await?;
                Ok(LogEvent::from(event.as_ref()))
            }
        });
        let mut ended = false;
        Ok(checked.take_while(move |item| {
            let go = !ended;
            ended |= item.is_err();
            std::future::ready(go)
        }))
    }
}
