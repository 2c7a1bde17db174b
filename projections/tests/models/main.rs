//! The read models against a real Postgres: batch splits, replays and what each table says
//! after scripted histories built by the domain's deciders.

#![expect(clippy::unwrap_used, reason = "tests")]

mod history;
mod queries;

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use domain::DomainEvent;
use domain::ticket::TicketCommand;
use domain::{AgentId, CategoryId, CustomerId};
use history::{Cast, History, content, scripted, text};
use projections::dashboard::{self, DailyMedians};
use projections::{Envelope, Target, models};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// Every table of every read model.
fn all_tables() -> Vec<&'static str> {
    models::all()
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect()
}

/// Creates the shadow copies as the runtime's rebuild does.
async fn create_shadow(conn: &mut PgConnection) {
    sqlx::query("create schema if not exists ld_shadow")
        .execute(&mut *conn)
        .await
        .unwrap();
    for table in all_tables() {
        sqlx::query(&format!(
            "create table ld_shadow.{table} (like public.{table} including all)"
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// Applies `events` to `target`, cut into batches of the given sizes (the last size repeats).
async fn apply(conn: &mut PgConnection, target: Target, events: &[Envelope], sizes: &[usize]) {
    let projections = models::all();
    let mut rest = events;
    let mut sizes = sizes.iter().copied();
    let mut size = 1;
    while !rest.is_empty() {
        size = sizes.next().unwrap_or(size).max(1);
        let (batch, tail) = rest.split_at(size.min(rest.len()));
        for projection in &projections {
            projection.apply(conn, target, batch).await.unwrap();
        }
        rest = tail;
    }
}

async fn apply_whole(conn: &mut PgConnection, target: Target, events: &[Envelope]) {
    apply(conn, target, events, &[events.len()]).await;
}

/// Rows that differ between the live and the shadow copy of `table`.
async fn differences(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "select count(*) from ((table public.{table} except all table ld_shadow.{table}) \
         union all (table ld_shadow.{table} except all table public.{table})) d"
    ))
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// Asserts that live and shadow hold the same rows in every table, and that each is non-empty.
async fn assert_same_tables(conn: &mut PgConnection) {
    for table in all_tables() {
        assert_eq!(differences(conn, table).await, 0, "table {table} differs");
        assert!(
            count(conn, &format!("public.{table}")).await > 0,
            "table {table} is empty"
        );
    }
}

/// A small deterministic generator of batch sizes.
fn random_sizes(seed: u64, max: usize, n: usize) -> Vec<usize> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            1 + usize::try_from(state % u64::try_from(max).unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn the_scripted_history_holds_every_event_type() {
    let (h, _) = scripted();
    let types: BTreeSet<&str> = h.events.iter().map(|e| e.event.event_type()).collect();
    let known: BTreeSet<&str> = domain::AnyEvent::all_stored_forms()
        .iter()
        .map(|form| form.event_type)
        .collect();
    assert_eq!(known.len(), 79);
    assert_eq!(types, known);
    assert!(h.events.windows(2).all(|w| w[0].position < w[1].position));
}

#[test]
fn all_lists_six_projections_owning_distinct_tables() {
    let names: Vec<&str> = models::all().iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "tickets",
            "messages",
            "customers",
            "directory",
            "broadcasts",
            "dashboard"
        ]
    );
    let tables = all_tables();
    let distinct: BTreeSet<&str> = tables.iter().copied().collect();
    assert_eq!(distinct.len(), tables.len());
    // messages is at version 4 (search terms, then edit histories, media details and
    // albums, then text formatting); the others have their first.
    let versions: Vec<u32> = models::all().iter().map(|p| p.version()).collect();
    assert_eq!(versions, [1, 4, 1, 1, 1, 1]);
}

#[sqlx::test(migrations = "../migrations")]
async fn one_batch_and_one_event_per_batch_build_identical_tables(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    create_shadow(&mut conn).await;
    let (h, _) = scripted();
    apply_whole(&mut conn, Target::Live, &h.events).await;
    apply(&mut conn, Target::Shadow, &h.events, &[1]).await;
    assert_same_tables(&mut conn).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn random_batch_sizes_build_identical_tables(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    create_shadow(&mut conn).await;
    let h = history::generated(40, 7);
    apply_whole(&mut conn, Target::Live, &h.events).await;
    let sizes = random_sizes(11, 300, h.events.len());
    apply(&mut conn, Target::Shadow, &h.events, &sizes).await;
    assert_same_tables(&mut conn).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn applying_events_again_changes_nothing(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    create_shadow(&mut conn).await;
    let h = history::generated(10, 3);
    apply_whole(&mut conn, Target::Shadow, &h.events).await;
    apply_whole(&mut conn, Target::Live, &h.events).await;
    // The same batch twice, then overlapping replays of parts of it.
    apply_whole(&mut conn, Target::Live, &h.events).await;
    let half = h.events.len() / 2;
    apply_whole(&mut conn, Target::Live, &h.events[half..]).await;
    apply(&mut conn, Target::Live, &h.events[..half], &[37]).await;
    apply(
        &mut conn,
        Target::Live,
        &h.events[half / 2..half + 50],
        &[1],
    )
    .await;
    assert_same_tables(&mut conn).await;
}

async fn scripted_live(pool: &PgPool) -> (PgConnection, History, Cast) {
    let (h, cast) = scripted();
    let mut conn = pool.acquire().await.unwrap().detach();
    apply(&mut conn, Target::Live, &h.events, &[64]).await;
    (conn, h, cast)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_scripted_conversation_fills_the_ticket_row(pool: PgPool) {
    let (mut conn, h, cast) = scripted_live(&pool).await;
    let row = sqlx::query(
        "select customer_id, status, priority, category_id, assignee_id, tags, subject, \
         customer_messages, agent_messages, notes, unread_by_agents, created_at, \
         first_response_at, resolved_at, closed_at, last_message_preview, \
         last_message_direction, rating, last_activity_at, version \
         from tickets where id = $1",
    )
    .bind(cast.conversation.as_uuid())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(row.get::<i64, _>("customer_id"), cast.ann.0);
    assert_eq!(row.get::<String, _>("status"), "closed");
    assert_eq!(row.get::<String, _>("priority"), "high");
    assert_eq!(
        row.get::<Option<Uuid>, _>("category_id"),
        Some(cast.shipping.as_uuid())
    );
    assert_eq!(
        row.get::<Option<Uuid>, _>("assignee_id"),
        Some(cast.alice.as_uuid())
    );
    assert_eq!(row.get::<Vec<String>, _>("tags"), ["invoice", "vip"]);
    // The first message was edited: the subject follows it.
    assert_eq!(
        row.get::<String, _>("subject"),
        "My invoice is wrong (edited)"
    );
    assert_eq!(row.get::<i32, _>("customer_messages"), 14);
    assert_eq!(row.get::<i32, _>("agent_messages"), 4);
    assert_eq!(row.get::<i32, _>("notes"), 1);
    assert_eq!(row.get::<i32, _>("unread_by_agents"), 0);
    assert_eq!(row.get::<Option<i16>, _>("rating"), Some(5));
    assert_eq!(
        row.get::<Option<String>, _>("last_message_preview")
            .as_deref(),
        Some("Sure")
    );
    assert_eq!(
        row.get::<Option<String>, _>("last_message_direction")
            .as_deref(),
        Some("out")
    );
    let created: DateTime<Utc> = row.get("created_at");
    let first_response: Option<DateTime<Utc>> = row.get("first_response_at");
    let resolved: Option<DateTime<Utc>> = row.get("resolved_at");
    let closed: Option<DateTime<Utc>> = row.get("closed_at");
    assert!(first_response.unwrap() > created);
    assert!(resolved.unwrap() < closed.unwrap());
    let stream = h
        .events
        .iter()
        .filter(|e| e.stream == cast.conversation.stream())
        .collect::<Vec<_>>();
    assert_eq!(
        row.get::<i64, _>("version"),
        i64::try_from(stream.len()).unwrap() - 1
    );
    assert_eq!(
        row.get::<DateTime<Utc>, _>("last_activity_at"),
        closed.unwrap()
    );

    // Ben's ticket: a video without caption gets a placeholder subject; one reply, so the
    // later customer message is still counted as read.
    let row = sqlx::query(
        "select status, subject, unread_by_agents, last_message_preview from tickets where id = $1",
    )
    .bind(cast.open_ticket.as_uuid())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("status"), "open");
    assert_eq!(row.get::<String, _>("subject"), "Video");
    assert_eq!(row.get::<i32, _>("unread_by_agents"), 0);
    assert_eq!(
        row.get::<Option<String>, _>("last_message_preview")
            .as_deref(),
        Some("Please stop")
    );

    // Messages are in stream order with their kinds; notes apart.
    let kinds: Vec<(String, String)> =
        sqlx::query_as("select direction, kind from messages where ticket_id = $1 order by seq")
            .bind(cast.conversation.as_uuid())
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(kinds.len(), 18);
    assert_eq!(kinds[0], ("in".to_owned(), "text".to_owned()));
    assert_eq!(kinds[1], ("in".to_owned(), "photo".to_owned()));
    assert_eq!(kinds[11], ("in".to_owned(), "contact".to_owned()));
    assert_eq!(kinds[12], ("out".to_owned(), "photo".to_owned()));
    let note: (Uuid, String) =
        sqlx::query_as("select agent_id, text from ticket_notes where ticket_id = $1")
            .bind(cast.conversation.as_uuid())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(note, (cast.alice.as_uuid(), "Customer is a VIP".to_owned()));
}

#[sqlx::test(migrations = "../migrations")]
async fn unread_counts_customer_messages_since_the_last_reply(pool: PgPool) {
    let mut h = History::new();
    let agent = h.invite("Agent", domain::agent::Role::Agent, None);
    let customer = CustomerId(5);
    let (ticket, _) = h.customer_writes(customer, None, text("one"));
    h.customer_writes(customer, None, content(1));
    let mut conn = pool.acquire().await.unwrap();
    apply_whole(&mut conn, Target::Live, &h.events).await;
    let unread = || {
        sqlx::query_scalar::<_, i32>("select unread_by_agents from tickets where id = $1")
            .bind(ticket.as_uuid())
    };
    assert_eq!(unread().fetch_one(&mut *conn).await.unwrap(), 2);
    let seen = h.events.len();
    h.reply(ticket, agent, "hello");
    h.customer_writes(customer, None, text("three"));
    apply_whole(&mut conn, Target::Live, &h.events[seen..]).await;
    assert_eq!(unread().fetch_one(&mut *conn).await.unwrap(), 1);
    let preview: Option<String> =
        sqlx::query_scalar("select last_message_preview from tickets where id = $1")
            .bind(ticket.as_uuid())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(preview.as_deref(), Some("three"));
}

#[sqlx::test(migrations = "../migrations")]
async fn reply_delivery_state_follows_delivered_and_failed(pool: PgPool) {
    let (mut conn, _, cast) = scripted_live(&pool).await;
    let delivery = |id: Uuid| {
        sqlx::query_as::<
            _,
            (
                Option<String>,
                Option<i32>,
                Option<String>,
                Option<Uuid>,
                Option<Uuid>,
            ),
        >(
            "select delivery_state, delivered_telegram_message_id, failure_reason, \
             author_agent_id, template_id from messages where id = $1",
        )
        .bind(id)
    };
    let (state, telegram_id, reason, author, template) = delivery(cast.delivered_reply.as_uuid())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("delivered"));
    assert!(telegram_id.is_some());
    assert_eq!(reason, None);
    assert_eq!(author, Some(cast.alice.as_uuid()));
    assert_eq!(template, Some(cast.greeting_template.as_uuid()));
    let (state, telegram_id, reason, _, template) = delivery(cast.failed_reply.as_uuid())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("failed"));
    assert_eq!(telegram_id, None);
    assert_eq!(
        reason.as_deref(),
        Some("Forbidden: bot was blocked by the user")
    );
    assert_eq!(template, None);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reply_delivered_in_a_later_batch_updates_its_row(pool: PgPool) {
    let mut h = History::new();
    let agent = h.invite("Agent", domain::agent::Role::Agent, None);
    let (ticket, _) = h.customer_writes(CustomerId(9), None, text("hi"));
    let reply = h.reply(ticket, agent, "hello");
    let mut conn = pool.acquire().await.unwrap();
    apply_whole(&mut conn, Target::Live, &h.events).await;
    let state = || {
        sqlx::query_scalar::<_, Option<String>>("select delivery_state from messages where id = $1")
            .bind(reply.as_uuid())
    };
    assert_eq!(
        state().fetch_one(&mut *conn).await.unwrap().as_deref(),
        Some("pending")
    );
    let seen = h.events.len();
    h.failed(ticket, reply, "Too Many Requests: retry after 5");
    apply_whole(&mut conn, Target::Live, &h.events[seen..]).await;
    assert_eq!(
        state().fetch_one(&mut *conn).await.unwrap().as_deref(),
        Some("failed")
    );
    // An agent asks for it to be sent again: pending, without the old failure.
    let seen = h.events.len();
    h.at(ticket, |at| TicketCommand::RetryDelivery {
        message_id: reply,
        by: agent,
        at,
    });
    apply_whole(&mut conn, Target::Live, &h.events[seen..]).await;
    let (state_now, reason): (String, Option<String>) =
        sqlx::query_as("select delivery_state, failure_reason from messages where id = $1")
            .bind(reply.as_uuid())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!((state_now.as_str(), reason), ("pending", None));
    let seen = h.events.len();
    let telegram_id = h.delivered(ticket, reply);
    apply_whole(&mut conn, Target::Live, &h.events[seen..]).await;
    let (state, id, reason): (String, Option<i32>, Option<String>) = sqlx::query_as(
        "select delivery_state, delivered_telegram_message_id, failure_reason from messages where id = $1",
    )
    .bind(reply.as_uuid())
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        (state.as_str(), id, reason),
        ("delivered", Some(telegram_id.0), None)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn an_edit_replaces_the_message_content(pool: PgPool) {
    let (mut conn, _, cast) = scripted_live(&pool).await;
    let row = sqlx::query(
        "select kind, caption, file_id, forward_origin, edited_at from messages where id = $1",
    )
    .bind(cast.edited_message.as_uuid())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let kind: String = row.get("kind");
    let caption: Option<String> = row.get("caption");
    let file_id: Option<String> = row.get("file_id");
    let forward: Option<serde_json::Value> = row.get("forward_origin");
    let edited_at: Option<DateTime<Utc>> = row.get("edited_at");
    assert_eq!(kind, "photo");
    assert_eq!(caption.as_deref(), Some("edited caption"));
    assert_eq!(file_id.as_deref(), Some("file-1"));
    assert_eq!(forward.unwrap()["type"], "user");
    assert!(edited_at.is_some());
    // The version before the edit is kept, stamped with the time of the edit.
    let edits: serde_json::Value = sqlx::query_scalar("select edits from messages where id = $1")
        .bind(cast.edited_message.as_uuid())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let edits = edits.as_array().unwrap();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0]["kind"], "photo");
    assert_eq!(edits[0]["caption"], "photo caption 1");
    assert!(edits[0]["text"].is_null());
    let replaced_at: DateTime<Utc> = serde_json::from_value(edits[0]["edited_at"].clone()).unwrap();
    // Postgres keeps microseconds; the JSON keeps what the event said.
    let apart = (replaced_at - edited_at.unwrap())
        .num_microseconds()
        .unwrap();
    assert!(apart.abs() <= 1, "{replaced_at} vs {edited_at:?}");
    // The search terms follow the edit: the caption's words now, none of the old ones.
    let search = |words: &'static str| {
        sqlx::query_scalar::<_, Uuid>("select id from messages where search_terms @> $1")
            .bind(projections::search::terms([words]))
    };
    let hits = search("Edited CAPTION").fetch_all(&mut conn).await.unwrap();
    assert_eq!(hits, [cast.edited_message.as_uuid()]);
    let terms: Vec<String> = sqlx::query_scalar("select search_terms from messages where id = $1")
        .bind(cast.edited_message.as_uuid())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(terms, ["edited", "caption"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn customer_rows_hold_flags_profile_and_ticket_counts(pool: PgPool) {
    let (mut conn, h, cast) = scripted_live(&pool).await;
    let customer = |id: CustomerId| {
        sqlx::query(
            "select first_name, username, blocked_bot, banned, ban_reason, \
             opted_out_of_broadcasts, tickets_total, tickets_open, open_ticket_id, last_seen_at \
             from customers where id = $1",
        )
        .bind(id.0)
    };
    let ann = customer(cast.ann).fetch_one(&mut conn).await.unwrap();
    assert_eq!(ann.get::<String, _>("first_name"), "Ann");
    let payloads: (Option<String>, Option<String>) =
        sqlx::query_as("select first_start_payload, start_payload from customers where id = $1")
            .bind(cast.ann.0)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        payloads,
        (Some("ads-spring".to_owned()), Some("ref-42".to_owned()))
    );
    assert_eq!(ann.get::<i32, _>("tickets_total"), 1);
    assert_eq!(ann.get::<i32, _>("tickets_open"), 0);
    assert_eq!(ann.get::<Option<Uuid>, _>("open_ticket_id"), None);
    assert!(!ann.get::<bool, _>("banned"));
    let last_ann_message = h
        .events
        .iter()
        .filter(|e| {
            e.stream == cast.conversation.stream()
                && e.event.event_type() == "ticket.customer_message_posted"
        })
        .map(|e| e.recorded_at)
        .max();
    assert_eq!(
        ann.get::<Option<DateTime<Utc>>, _>("last_seen_at"),
        last_ann_message
    );

    let ben = customer(cast.ben).fetch_one(&mut conn).await.unwrap();
    assert_eq!(ben.get::<String, _>("first_name"), "Benjamin");
    assert_eq!(
        ben.get::<Option<String>, _>("username").as_deref(),
        Some("benjamin")
    );
    assert!(!ben.get::<bool, _>("blocked_bot"));
    assert!(ben.get::<bool, _>("banned"));
    assert_eq!(
        ben.get::<Option<String>, _>("ban_reason").as_deref(),
        Some("spam again")
    );
    assert_eq!(ben.get::<i32, _>("tickets_total"), 1);
    assert_eq!(ben.get::<i32, _>("tickets_open"), 1);
    assert_eq!(
        ben.get::<Option<Uuid>, _>("open_ticket_id"),
        Some(cast.open_ticket.as_uuid())
    );

    let cleo = customer(cast.cleo).fetch_one(&mut conn).await.unwrap();
    assert!(cleo.get::<bool, _>("opted_out_of_broadcasts"));
    assert!(!cleo.get::<bool, _>("blocked_bot"));

    let found: Vec<i64> = sqlx::query_scalar("select id from customers where lower(username) = $1")
        .bind("benjamin")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(found, [cast.ben.0]);
}

#[sqlx::test(migrations = "../migrations")]
async fn blocking_the_bot_shows_until_the_customer_writes_again(pool: PgPool) {
    let mut h = History::new();
    let customer = CustomerId(77);
    h.customer_writes(customer, None, text("hi"));
    h.customer(customer, |at| {
        domain::customer::CustomerCommand::RecordBotBlocked { at }
    });
    let mut conn = pool.acquire().await.unwrap();
    apply_whole(&mut conn, Target::Live, &h.events).await;
    let blocked = || {
        sqlx::query_scalar::<_, bool>("select blocked_bot from customers where id = $1")
            .bind(customer.0)
    };
    assert!(blocked().fetch_one(&mut *conn).await.unwrap());
    let seen = h.events.len();
    h.customer_writes(customer, None, text("back"));
    apply_whole(&mut conn, Target::Live, &h.events[seen..]).await;
    assert!(!blocked().fetch_one(&mut *conn).await.unwrap());
}

#[sqlx::test(migrations = "../migrations")]
async fn broadcast_rows_count_outcomes_per_recipient(pool: PgPool) {
    let (mut conn, _, cast) = scripted_live(&pool).await;
    let row = sqlx::query(
        "select state, audience_kind, audience, text, total_recipients, delivered, failed, \
         skipped, scheduled_at, started_at, completed_at, paused_at from broadcasts where id = $1",
    )
    .bind(cast.sent_broadcast.as_uuid())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("state"), "completed");
    assert_eq!(row.get::<String, _>("audience_kind"), "by_language");
    assert_eq!(
        row.get::<serde_json::Value, _>("audience")["language"],
        "en"
    );
    assert_eq!(
        row.get::<Option<String>, _>("text").as_deref(),
        Some("Big sale")
    );
    // Four recipients and one customer of the segment left out (opted out) at the start.
    assert_eq!(row.get::<Option<i32>, _>("total_recipients"), Some(5));
    assert_eq!(row.get::<i32, _>("delivered"), 2);
    assert_eq!(row.get::<i32, _>("failed"), 1);
    assert_eq!(row.get::<i32, _>("skipped"), 2);
    assert!(
        row.get::<Option<DateTime<Utc>>, _>("scheduled_at")
            .is_some()
    );
    assert!(row.get::<Option<DateTime<Utc>>, _>("started_at").is_some());
    assert!(
        row.get::<Option<DateTime<Utc>>, _>("completed_at")
            .is_some()
    );
    assert_eq!(row.get::<Option<DateTime<Utc>>, _>("paused_at"), None);

    let recipients: Vec<(i64, String, Option<i32>, Option<String>)> = sqlx::query_as(
        "select customer_id, state, telegram_message_id, reason from broadcast_recipients \
         where broadcast_id = $1 order by customer_id",
    )
    .bind(cast.sent_broadcast.as_uuid())
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        recipients,
        [
            (cast.ann.0, "delivered".to_owned(), Some(500), None),
            (
                cast.ben.0,
                "skipped".to_owned(),
                None,
                Some("banned".to_owned())
            ),
            (
                cast.cleo.0,
                "failed".to_owned(),
                None,
                Some("Forbidden".to_owned())
            ),
            (1004, "delivered".to_owned(), Some(501), None),
            (
                1005,
                "skipped".to_owned(),
                None,
                Some("opted_out".to_owned())
            ),
        ]
    );
    // Presses per customer and button (also after completion), sends per second.
    let presses: Vec<(i64, i16, i32)> = sqlx::query_as(
        "select customer_id, button_index, presses from broadcast_button_presses \
         where broadcast_id = $1 order by customer_id",
    )
    .bind(cast.sent_broadcast.as_uuid())
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(presses, [(cast.ann.0, 1, 2), (1004, 1, 1)]);
    let sent: i64 = sqlx::query_scalar(
        "select sum(sent)::bigint from broadcast_send_rate where broadcast_id = $1",
    )
    .bind(cast.sent_broadcast.as_uuid())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(sent, 3, "delivered and failed are sends, skips are not");
    let (state, cancelled): (String, Option<DateTime<Utc>>) =
        sqlx::query_as("select state, cancelled_at from broadcasts where id = $1")
            .bind(cast.cancelled_broadcast.as_uuid())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(state, "cancelled");
    assert!(cancelled.is_some());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_directory_follows_agents_categories_templates_and_settings(pool: PgPool) {
    let (mut conn, _, cast) = scripted_live(&pool).await;
    let agent = |id: AgentId| {
        sqlx::query_as::<_, (String, Vec<Uuid>, bool, Option<Uuid>, Option<DateTime<Utc>>)>(
            "select role, category_ids, active, invited_by, password_changed_at from agents where id = $1",
        )
        .bind(id.as_uuid())
    };
    let (role, categories, active, invited_by, password) =
        agent(cast.alice).fetch_one(&mut conn).await.unwrap();
    assert_eq!(role, "admin");
    let mut expected = vec![cast.billing.as_uuid(), cast.shipping.as_uuid()];
    expected.sort();
    assert_eq!(categories, expected);
    assert!(active);
    assert_eq!(invited_by, Some(cast.admin.as_uuid()));
    assert!(password.is_some());
    let (role, _, active, _, _) = agent(cast.bob).fetch_one(&mut conn).await.unwrap();
    assert_eq!(role, "agent");
    assert!(!active);
    let (_, _, _, invited_by, _) = agent(cast.admin).fetch_one(&mut conn).await.unwrap();
    assert_eq!(invited_by, None);

    let category = |id: CategoryId| {
        sqlx::query_as::<_, (String, Option<DateTime<Utc>>)>(
            "select name, removed_at from categories where id = $1",
        )
        .bind(id.as_uuid())
    };
    let (name, removed) = category(cast.shipping).fetch_one(&mut conn).await.unwrap();
    assert_eq!((name.as_str(), removed), ("Delivery", None));
    let (name, removed) = category(cast.legacy).fetch_one(&mut conn).await.unwrap();
    assert_eq!(name, "Legacy");
    assert!(removed.is_some());

    let templates: Vec<(Uuid, String, String, bool)> = sqlx::query_as(
        "select id, title, text, removed_at is not null from templates order by created_at",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        templates,
        [
            (
                cast.greeting_template.as_uuid(),
                "Greeting".to_owned(),
                "Hello, how can we help?".to_owned(),
                false
            ),
            (
                cast.removed_template.as_uuid(),
                "Old".to_owned(),
                "Old text".to_owned(),
                true
            ),
        ]
    );
    let (greeting, window): (Option<String>, i64) =
        sqlx::query_as("select greeting, reopen_window_seconds from support_settings")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(greeting.as_deref(), Some("Welcome!"));
    assert_eq!(window, 48 * 3600);
}

#[sqlx::test(migrations = "../migrations")]
async fn dashboard_medians_are_computed_per_day(pool: PgPool) {
    let mut h = History::new();
    let agent = h.invite("Agent", domain::agent::Role::Agent, None);
    let day1 = Utc.with_ymd_and_hms(2025, 4, 1, 9, 0, 0).unwrap();
    let day2 = Utc.with_ymd_and_hms(2025, 4, 2, 9, 0, 0).unwrap();
    // Day 1: first responses after 60, 120 and 600 seconds, resolutions after 1, 2 and 4 hours.
    // Day 2: one ticket answered after 30 seconds and resolved after 3 hours.
    let plan = [
        (day1, 60, 3600),
        (day1, 120, 7200),
        (day1, 600, 14_400),
        (day2, 30, 10_800),
    ];
    for (i, (day, response, resolution)) in plan.into_iter().enumerate() {
        h.clock = day + TimeDelta::minutes(i64::try_from(i).unwrap()) - TimeDelta::seconds(30);
        let opened = h.clock + TimeDelta::seconds(30);
        let (ticket, _) = h.customer_writes(
            CustomerId(100 + i64::try_from(i).unwrap()),
            None,
            text("help"),
        );
        h.clock = opened + TimeDelta::seconds(response) - TimeDelta::seconds(30);
        h.reply(ticket, agent, "on it");
        h.clock = opened + TimeDelta::seconds(resolution) - TimeDelta::seconds(30);
        h.at(ticket, |at| TicketCommand::Resolve {
            by: domain::ticket::Actor::System,
            at,
        });
    }
    let mut conn = pool.acquire().await.unwrap();
    apply(&mut conn, Target::Live, &h.events, &[3]).await;
    let days = dashboard::daily_medians(
        &mut conn,
        Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2025, 5, 1, 0, 0, 0).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        days,
        [
            DailyMedians {
                day: NaiveDate::from_ymd_opt(2025, 4, 1).unwrap(),
                responded: 3,
                median_first_response_seconds: Some(120.0),
                resolved: 3,
                median_resolution_seconds: Some(7200.0),
            },
            DailyMedians {
                day: NaiveDate::from_ymd_opt(2025, 4, 2).unwrap(),
                responded: 1,
                median_first_response_seconds: Some(30.0),
                resolved: 1,
                median_resolution_seconds: Some(10_800.0),
            },
        ]
    );
    let by_status = dashboard::tickets_by_status(&mut conn).await.unwrap();
    assert_eq!(by_status.len(), 1);
    assert_eq!(
        (by_status[0].status.as_str(), by_status[0].tickets),
        ("resolved", 4)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn dashboard_counts_tickets_by_status_and_category(pool: PgPool) {
    let (mut conn, _, cast) = scripted_live(&pool).await;
    let by_status = dashboard::tickets_by_status(&mut conn).await.unwrap();
    let by_status: Vec<(String, i64)> = by_status
        .into_iter()
        .map(|s| (s.status, s.tickets))
        .collect();
    assert_eq!(
        by_status,
        [
            ("closed".to_owned(), 1),
            ("new".to_owned(), 1),
            ("open".to_owned(), 1)
        ]
    );
    let by_category = dashboard::tickets_by_category(&mut conn).await.unwrap();
    let shipping: Vec<_> = by_category
        .iter()
        .filter(|c| c.category_id == Some(cast.shipping.as_uuid()))
        .map(|c| (c.status.as_str(), c.tickets))
        .collect();
    assert_eq!(shipping, [("closed", 1)]);
    let uncategorised: i64 = by_category
        .iter()
        .filter(|c| c.category_id.is_none())
        .map(|c| c.tickets)
        .sum();
    assert_eq!(uncategorised, 2);
}
