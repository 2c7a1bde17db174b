//! Helpers the read models share: batch upserts through `unnest`, array literals, the text of
//! domain enums as stored in the read-model tables, and short texts for lists.
//!
//! Nothing here knows a table: each read model names its own columns.

use chrono::{DateTime, Utc};
use domain::agent::Role;
use domain::content::{MediaKind, MessageKind};
use domain::ticket::{Priority, TicketStatus};
use uuid::Uuid;

use crate::batch::{ApplyError, Envelope, Target};

/// A statement's text for each copy of the tables, built the first time it is asked for. A
/// read model writes the same few statements hundreds of times a second; building their text
/// (a few hundred bytes from dozens of pieces) each time was a measurable share of a batch.
/// Kept in a `static` at the statement's use.
#[derive(Debug)]
pub(crate) struct PerTarget {
    live: std::sync::OnceLock<String>,
    shadow: std::sync::OnceLock<String>,
    scratch: std::sync::OnceLock<String>,
}

impl PerTarget {
    pub(crate) const fn new() -> Self {
        PerTarget {
            live: std::sync::OnceLock::new(),
            shadow: std::sync::OnceLock::new(),
            scratch: std::sync::OnceLock::new(),
        }
    }

    /// The text for `target`, built by `build` with the target's table names on first use.
    /// `build` must depend on nothing but `target`.
    pub(crate) fn get(&self, target: Target, build: impl FnOnce(Target) -> String) -> &str {
        let cell = match target {
            Target::Live => &self.live,
            Target::Shadow => &self.shadow,
            Target::Scratch => &self.scratch,
        };
        cell.get_or_init(|| build(target))
    }
}

/// A column of a batch upsert: its name and its SQL type. A type ending in `[]` is passed as
/// the text of an array literal (`unnest` cannot take arrays of arrays) and cast back in SQL.
pub(crate) type Column = (&'static str, &'static str);

/// `insert into {table} (…) select … from unnest($1::t1[], …)`: one statement writing every
/// row of a batch, for rows known not to be in the table yet (a row that is fails the insert).
pub(crate) fn insert_sql(table: &str, columns: &[Column]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let select: Vec<String> = columns
        .iter()
        .map(|(name, ty)| {
            if ty.ends_with("[]") {
                format!("u.{name}::{ty}")
            } else {
                format!("u.{name}")
            }
        })
        .collect();
    let params: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| {
            if ty.ends_with("[]") {
                format!("${}::text[]", i + 1)
            } else {
                format!("${}::{ty}[]", i + 1)
            }
        })
        .collect();
    format!(
        "insert into {table} as t ({cols}) select {select} from unnest({params}) as u({cols})",
        cols = names.join(", "),
        select = select.join(", "),
        params = params.join(", "),
    )
}

/// What a batch upsert does with a row whose key is already in the table.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OnConflict {
    /// Leave the row as it is.
    Keep,
    /// Overwrite every column but the key.
    Update,
    /// Overwrite every column but the key where the condition on the existing row holds, the
    /// table being aliased `t` (e.g. `t.version < excluded.version`).
    UpdateWhere(&'static str),
}

impl OnConflict {
    /// Overwrite a row only with a later version of it: what replaying a batch twice needs.
    pub(crate) const NEWER: OnConflict = OnConflict::UpdateWhere("t.version < excluded.version");
}

/// `insert into {table} (…) select … from unnest($1::t1[], …) on conflict ({key}) do …`: one
/// statement writing every row of a batch.
pub(crate) fn upsert_sql(
    table: &str,
    columns: &[Column],
    key: &[&str],
    on_conflict: OnConflict,
) -> String {
    let mut sql = format!(
        "{} on conflict ({}) do ",
        insert_sql(table, columns),
        key.join(", ")
    );
    let guard = match on_conflict {
        OnConflict::Keep => {
            sql.push_str("nothing");
            return sql;
        }
        OnConflict::Update => None,
        OnConflict::UpdateWhere(guard) => Some(guard),
    };
    let set: Vec<String> = columns
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !key.contains(name))
        .map(|name| format!("{name} = excluded.{name}"))
        .collect();
    sql.push_str("update set ");
    sql.push_str(&set.join(", "));
    if let Some(guard) = guard {
        sql.push_str(" where ");
        sql.push_str(guard);
    }
    sql
}

/// A batch upsert into one read-model table (see [`upsert_sql`]), declared where it is used as
/// a `static`; its text for each target is built on first use.
#[derive(Debug)]
pub(crate) struct Upsert {
    table: &'static str,
    columns: &'static [Column],
    key: &'static [&'static str],
    on_conflict: OnConflict,
    text: PerTarget,
}

impl Upsert {
    pub(crate) const fn new(
        table: &'static str,
        columns: &'static [Column],
        key: &'static [&'static str],
        on_conflict: OnConflict,
    ) -> Self {
        Upsert {
            table,
            columns,
            key,
            on_conflict,
            text: PerTarget::new(),
        }
    }

    /// The statement's text for `target`'s copy of the table.
    pub(crate) fn text(&self, target: Target) -> &str {
        self.text.get(target, |target| {
            upsert_sql(
                &target.table(self.table),
                self.columns,
                self.key,
                self.on_conflict,
            )
        })
    }
}

/// `select {columns} from {table} where {key} = any($1)`.
pub(crate) fn select_sql(table: &str, columns: &[Column], key: &str) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    format!(
        "select {} from {table} where {key} = any($1)",
        names.join(", ")
    )
}

/// The text of a Postgres array literal holding `items` (each quoted and escaped), to be cast
/// to `text[]` in SQL.
pub(crate) fn text_array_literal<S: AsRef<str>>(items: &[S]) -> String {
    let mut out =
        String::with_capacity(2 + items.iter().map(|s| s.as_ref().len() + 3).sum::<usize>());
    out.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.as_ref().chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// The text of a Postgres array literal of uuids, to be cast to `uuid[]` in SQL.
pub(crate) fn uuid_array_literal(items: &[Uuid]) -> String {
    let parts: Vec<String> = items.iter().map(Uuid::to_string).collect();
    format!("{{{}}}", parts.join(","))
}

/// The event's stream version as stored in `version` columns.
pub(crate) fn version(envelope: &Envelope) -> Result<i64, ApplyError> {
    i64::try_from(envelope.stream_version).map_err(|_| ApplyError::Event {
        position: envelope.position,
        reason: format!("stream version {} out of range", envelope.stream_version),
    })
}

/// The later of two optional times.
pub(crate) fn latest(
    current: Option<DateTime<Utc>>,
    candidate: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    Some(current.map_or(candidate, |current| current.max(candidate)))
}

/// `text` cut to `max` characters (the last one an ellipsis when cut).
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The first non-blank line of `text`, trimmed, cut to `max` characters.
pub(crate) fn first_line(text: &str, max: usize) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| truncate(line, max))
}

/// `text` with runs of whitespace folded into one space, cut to `max` characters.
pub(crate) fn one_line(text: &str, max: usize) -> Option<String> {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!folded.is_empty()).then(|| truncate(&folded, max))
}

pub(crate) const fn ticket_status(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::New => "new",
        TicketStatus::Open => "open",
        TicketStatus::Pending => "pending",
        TicketStatus::Resolved => "resolved",
        TicketStatus::Closed => "closed",
    }
}

pub(crate) const fn priority(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

pub(crate) const fn role(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Agent => "agent",
        Role::Auditor => "auditor",
    }
}

pub(crate) const fn message_kind(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Photo => "photo",
        MessageKind::Video => "video",
        MessageKind::Document => "document",
        MessageKind::Audio => "audio",
        MessageKind::Voice => "voice",
        MessageKind::VideoNote => "video_note",
        MessageKind::Sticker => "sticker",
        MessageKind::Animation => "animation",
        MessageKind::Location => "location",
        MessageKind::Venue => "venue",
        MessageKind::Contact => "contact",
        MessageKind::Dice => "dice",
        MessageKind::Poll => "poll",
        MessageKind::Story => "story",
        MessageKind::Checklist => "checklist",
        MessageKind::PaidMedia => "paid_media",
        MessageKind::Service => "service",
        MessageKind::Unsupported => "unsupported",
    }
}

/// What lists show for a message without text.
pub(crate) const fn message_kind_label(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "Message",
        MessageKind::Photo => "Photo",
        MessageKind::Video => "Video",
        MessageKind::Document => "Document",
        MessageKind::Audio => "Audio",
        MessageKind::Voice => "Voice message",
        MessageKind::VideoNote => "Video message",
        MessageKind::Sticker => "Sticker",
        MessageKind::Animation => "GIF",
        MessageKind::Location => "Location",
        MessageKind::Venue => "Venue",
        MessageKind::Contact => "Contact",
        MessageKind::Dice => "Dice",
        MessageKind::Poll => "Poll",
        MessageKind::Story => "Story",
        MessageKind::Checklist => "Checklist",
        MessageKind::PaidMedia => "Paid media",
        MessageKind::Service => "Chat event",
        MessageKind::Unsupported => "Unsupported message",
    }
}

pub(crate) const fn media_kind(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Photo => "photo",
        MediaKind::Video => "video",
        MediaKind::Document => "document",
        MediaKind::Audio => "audio",
        MediaKind::Voice => "voice",
        MediaKind::Animation => "animation",
    }
}

pub(crate) const fn media_kind_label(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Photo => "Photo",
        MediaKind::Video => "Video",
        MediaKind::Document => "Document",
        MediaKind::Audio => "Audio",
        MediaKind::Voice => "Voice message",
        MediaKind::Animation => "GIF",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_quote_and_escape() {
        assert_eq!(text_array_literal::<&str>(&[]), "{}");
        assert_eq!(
            text_array_literal(&["a", "b \"c\"", "d\\e", "{x,y}"]),
            r#"{"a","b \"c\"","d\\e","{x,y}"}"#
        );
    }

    #[test]
    fn long_lines_are_cut_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(
            first_line("\n  hello there \nsecond", 120).as_deref(),
            Some("hello there")
        );
        assert_eq!(one_line(" a \n b ", 10).as_deref(), Some("a b"));
        assert_eq!(one_line("  ", 10), None);
    }
}
