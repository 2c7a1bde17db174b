-- Telegram updates the bot has finished handling (see bot/src/inbound.rs): a repeated delivery
-- (a webhook retry, a poll after a restart) found here is answered at once, so the bot does not
-- greet or answer a customer twice. The commands themselves are idempotent on the log anyway.
create table telegram_updates_handled (
    update_key            text        not null,
    handled_at            timestamptz not null default now(),
    constraint telegram_updates_handled_pkey primary key (update_key)
);

create index telegram_updates_handled_at on telegram_updates_handled (handled_at);
