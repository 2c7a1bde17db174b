-- Telegram updates the bot can never record (see bot/src/inbound.rs): the log refuses what
-- they would write, or a stored event they depend on cannot be read by this code. Each is kept
-- here with its raw JSON (NUL characters replaced by U+FFFD) and the error, so the queue moves
-- on and an admin can still see what the customer sent (GraphQL `undeliverableUpdates`).
-- A redelivery of the same update refreshes its row.
create table telegram_updates_unrecorded (
    update_key   text        not null,
    update_id    bigint      not null,
    raw_update   jsonb       not null,
    error        text        not null,
    recorded_at  timestamptz not null default now(),
    constraint telegram_updates_unrecorded_pkey primary key (update_key)
);

-- Newest first, with the key as the tie-breaker of the cursor.
create index telegram_updates_unrecorded_recent
    on telegram_updates_unrecorded (recorded_at desc, update_key desc);
