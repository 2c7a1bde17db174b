-- Keys of crypto-shredding (eventlog/src/seal.rs): one random 256-bit key per data subject (a
-- customer: `customer-<telegram id>`), under which the personal fields of their events are
-- sealed. Kept outside the log so that it can be deleted: deleting a subject's row forgets
-- every personal field sealed for them, while the log and its hash chains stay as they are.
--
-- Back this table up with the database: losing it forgets everyone. The serving role gets
-- select, insert, update and delete on it like any table that is not the log.
create table subject_keys (
    subject     text        not null,
    key         bytea       not null,
    created_at  timestamptz not null default now(),
    constraint subject_keys_pkey primary key (subject),
    constraint subject_keys_key_check check (octet_length(key) = 32)
);
