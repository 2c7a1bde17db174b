-- Media files kept by Ledgerdesk (media/src/store.rs): copies of Telegram files fetched on
-- demand, and files agents uploaded to send. Not read models: nothing here is rebuilt from the
-- log, and a stored copy may be deleted at any time (retention, erasure): the message keeps
-- Telegram's file id, so a later request fetches it again.

-- One row per object in the storage backend (local directory or S3 bucket), by its key:
-- `tg/<file_unique_id>` or `tgid/<sha256 of the file id>` for Telegram files, `up/<uuid>` for
-- uploads. A row exists only once the object is completely written.
create table media_objects (
    key         text        not null,
    size        bigint      not null,
    -- The MIME type Telegram or the uploader gave, else one sniffed from the first bytes.
    mime_type   text        not null,
    -- Hex sha256 of the content: the ETag.
    sha256      text        not null,
    stored_at   timestamptz not null default now(),
    constraint media_objects_pkey primary key (key),
    constraint media_objects_size_check check (size >= 0),
    constraint media_objects_key_check check (char_length(key) <= 300)
);

create index media_objects_stored_at_idx on media_objects (stored_at);

-- Files agents uploaded (POST /media) to send in a reply. `telegram_file_id` is set once
-- Telegram accepted the upload, so later sends go by that id instead of uploading again.
create table media_uploads (
    id                uuid        not null,
    uploaded_by       uuid        not null,
    file_name         text        not null,
    mime_type         text        not null,
    size              bigint      not null,
    -- photo, video, audio, voice or document: chosen from the MIME type unless overridden.
    kind              text        not null,
    telegram_file_id  text,
    created_at        timestamptz not null default now(),
    constraint media_uploads_pkey primary key (id),
    constraint media_uploads_kind_check
        check (kind in ('photo', 'video', 'audio', 'voice', 'document', 'animation')),
    constraint media_uploads_name_check check (char_length(file_name) <= 255)
);

-- The secret that signs media URLs, made on first start and shared by every instance.
create table media_signing_key (
    id      boolean not null default true,
    secret  bytea   not null,
    constraint media_signing_key_pkey primary key (id),
    constraint media_signing_key_one_row check (id)
);
