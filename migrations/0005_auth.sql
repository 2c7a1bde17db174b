-- Authentication state: mutable tables, never part of the event log. The log records only that
-- a password changed or a token was issued (as agent events), never a hash or a token.

-- One row: the key that signs access tokens, generated on first start unless
-- LEDGERDESK_JWT_SECRET overrides it.
create table auth_signing_key (
    id          boolean     not null default true,
    secret      bytea       not null,
    created_at  timestamptz not null default now(),
    constraint auth_signing_key_pkey primary key (id),
    constraint auth_signing_key_id_check check (id),
    constraint auth_signing_key_secret_check check (octet_length(secret) >= 32)
);

-- One row per agent who can sign in. `email` is trimmed and lower-cased and unique, so two
-- agents never share a login.
create table agent_credentials (
    agent_id              uuid        not null,
    email                 text        not null,
    -- argon2id, PHC string format.
    password_hash         text        not null,
    must_change_password  boolean     not null default false,
    password_changed_at   timestamptz not null default now(),
    -- Access tokens carry the epoch they were issued in; raising it (password change, role
    -- change, deactivation, logout everywhere) invalidates every access token at once.
    session_epoch         integer     not null default 0,
    constraint agent_credentials_pkey primary key (agent_id),
    constraint agent_credentials_email_key unique (email),
    constraint agent_credentials_email_check check (email = lower(btrim(email)) and email <> '')
);

-- Rotating refresh tokens. Only a sha256 of each token is kept. Every token belongs to a family
-- started by one login; presenting a token that was already rotated (used) revokes the family.
create table refresh_tokens (
    id            uuid        not null,
    family_id     uuid        not null,
    agent_id      uuid        not null,
    token_hash    bytea       not null,
    issued_at     timestamptz not null default now(),
    expires_at    timestamptz not null,
    used_at       timestamptz,
    revoked_at    timestamptz,
    constraint refresh_tokens_pkey primary key (id),
    constraint refresh_tokens_token_hash_key unique (token_hash)
);

create index refresh_tokens_family_idx on refresh_tokens (family_id);
create index refresh_tokens_agent_idx on refresh_tokens (agent_id);

-- Integrator API tokens: scoped, created and revoked by admins, shown once.
create table api_tokens (
    id            uuid        not null,
    name          text        not null,
    scopes        text[]      not null,
    token_hash    bytea       not null,
    created_by    uuid        not null,
    created_at    timestamptz not null default now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    constraint api_tokens_pkey primary key (id),
    constraint api_tokens_token_hash_key unique (token_hash),
    constraint api_tokens_name_check check (char_length(name) between 1 and 100)
);
