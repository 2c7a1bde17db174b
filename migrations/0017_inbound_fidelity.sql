-- Inbound fidelity.
--
-- 1. Claims on the updates the bot answers itself (see bot/src/inbound.rs): a row whose
--    `claimed_until` is set is being handled by the delivery holding `claim_id`, until then;
--    once handled both are null again. A claim whose time has passed belongs to a handler that
--    died: the next delivery of the update takes it over. Rows from before are handled ones.
alter table telegram_updates_handled
    add column claim_id uuid,
    add column claimed_until timestamptz;

-- 2. The versions a customer message had before its edits, oldest first:
--    [{"kind", "text", "caption", "edited_at"}], `edited_at` being when the edit replaced it.
alter table messages
    add column edits jsonb not null default '[]';

-- 3. The `/start` deep-link payloads of a customer: the first one ever and the latest.
alter table customers
    add column first_start_payload text,
    add column start_payload text,
    add column start_payload_at timestamptz;

-- 4. Edits Telegram delivered before the message they edit (see bot/src/inbound/edits.rs):
--    kept until the message is recorded, then applied to it in the order they were made and
--    removed. `content` is the edited message content as the domain stores it.
create table telegram_early_edits (
    customer_id          bigint      not null,
    telegram_message_id  integer     not null,
    update_key           text        not null,
    content              jsonb       not null,
    edited_at            timestamptz not null,
    received_at          timestamptz not null default now(),
    constraint telegram_early_edits_pkey
        primary key (customer_id, telegram_message_id, update_key)
);

create index telegram_early_edits_received on telegram_early_edits (received_at);
