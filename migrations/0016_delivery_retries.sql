-- What the delivery worker (bot/src/delivery.rs) must remember across a restart besides its
-- checkpoint: the replies it keeps trying after transient failures, the bot-wide pause Telegram
-- asked for with a 429, and which satisfaction prompts still show their rating buttons.

-- One row per agent reply that failed transiently (network error, 5xx, 429 without a wait) and
-- is being tried again. Deleted once the reply's outcome is recorded on the ticket. The API
-- reads it to show the reply as "retrying".
create table delivery_retries (
    message_id                uuid        not null,
    ticket_id                 uuid        not null,
    -- The event whose job is trying: a retry requested later starts a schedule of its own.
    cause_event_id            uuid        not null,
    -- Failed attempts so far.
    attempts                  integer     not null,
    -- Messages of the reply Telegram accepted already (media first, then the text).
    parts_sent                integer     not null default 0,
    first_telegram_message_id integer,
    first_failed_at           timestamptz not null,
    next_attempt_at           timestamptz not null,
    last_error                text        not null,
    updated_at                timestamptz not null default now(),
    constraint delivery_retries_pkey primary key (message_id),
    constraint delivery_retries_attempts_check check (attempts >= 1),
    constraint delivery_retries_parts_check check (parts_sent >= 0),
    constraint delivery_retries_error_check check (char_length(last_error) <= 1024)
);

-- Telegram's `retry_after`: no message leaves before `not_before`, also after a restart.
create table delivery_pauses (
    worker     text        not null,
    not_before timestamptz not null,
    updated_at timestamptz not null default now(),
    constraint delivery_pauses_pkey primary key (worker),
    constraint delivery_pauses_worker_check check (char_length(worker) between 1 and 100)
);

-- Once the ticket is rated, the prompt's buttons are removed (editMessageReplyMarkup).
alter table delivery_csat_prompts add column keyboard_removed_at timestamptz;
create index delivery_csat_prompts_ticket_idx on delivery_csat_prompts (ticket_id)
    where keyboard_removed_at is null;
