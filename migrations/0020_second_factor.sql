-- Two-factor sign-in (TOTP, RFC 6238). Like the rest of the credentials these are mutable
-- tables, never part of the event log: the log records that a second factor was enrolled,
-- disabled or reset and that a recovery code was spent, never a secret or a code.

-- One row per agent with an authenticator app, pending until a first valid code confirms it.
create table agent_second_factors (
    agent_id      uuid        not null,
    -- The shared TOTP secret (20 random bytes). Only the sign-in code reads it.
    secret        bytea       not null,
    created_at    timestamptz not null default now(),
    -- Null while pending: a pending secret is never asked for at sign-in.
    confirmed_at  timestamptz,
    -- The time step of the last code accepted: a code of this step or an earlier one is
    -- refused, so a code seen over someone's shoulder cannot be replayed within its window.
    last_step     bigint,
    constraint agent_second_factors_pkey primary key (agent_id),
    constraint agent_second_factors_agent_fkey foreign key (agent_id)
        references agent_credentials (agent_id) on delete cascade,
    constraint agent_second_factors_secret_check check (octet_length(secret) >= 16)
);

-- One-time recovery codes, ten per enrolment, kept as argon2id hashes (PHC strings).
create table agent_recovery_codes (
    id          uuid        not null,
    agent_id    uuid        not null,
    code_hash   text        not null,
    used_at     timestamptz,
    constraint agent_recovery_codes_pkey primary key (id),
    constraint agent_recovery_codes_agent_fkey foreign key (agent_id)
        references agent_credentials (agent_id) on delete cascade
);

create index agent_recovery_codes_agent_idx on agent_recovery_codes (agent_id);

-- The step between a right password and a second factor: a challenge handed to the client by
-- `login`, single use, valid for minutes, and refused after a few wrong codes. Only a sha256 of
-- the challenge token is kept.
create table second_factor_challenges (
    id           uuid        not null,
    agent_id     uuid        not null,
    token_hash   bytea       not null,
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    attempts     integer     not null default 0,
    used_at      timestamptz,
    constraint second_factor_challenges_pkey primary key (id),
    constraint second_factor_challenges_token_hash_key unique (token_hash),
    constraint second_factor_challenges_agent_fkey foreign key (agent_id)
        references agent_credentials (agent_id) on delete cascade
);

create index second_factor_challenges_agent_idx on second_factor_challenges (agent_id);
