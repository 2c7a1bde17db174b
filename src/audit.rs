//! The auditors' commands: `audit verify`, `audit anchor`, `export` and `import`, and the
//! anchor key the server signs the log's anchors with.
//!
//! The key is an ed25519 seed kept in a file outside the database (`LEDGERDESK_ANCHOR_KEY_FILE`),
//! created on first start (mode 0600): someone who can change the database cannot sign a
//! forged anchor. Its content is never logged; its public key is, and `audit verify` checks
//! anchors against it (or against keys given with `--public-key`).

use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventlog::Position;
use eventlog::postgres::audit::{self, AnchorKey, BrokenLink, VerifyScope};
use eventlog::postgres::transfer::{self, ExportScope};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{AnchorArgs, DatabaseArgs, ExportArgs, ForgetArgs, ImportArgs, VerifyArgs};

/// Reads the anchor key from `path`, creating it (a fresh random seed, readable by its owner
/// only) when the file does not exist.
///
/// # Errors
/// When the file cannot be read or created, or does not hold a key.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<AnchorKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(&text)
            .with_context(|| format!("{} does not hold an anchor key", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0_u8; 32];
            getrandom::fill(&mut seed).context("no randomness for the anchor key")?;
            let mut file = create_private(path)
                .with_context(|| format!("cannot create the anchor key {}", path.display()))?;
            writeln!(file, "{}", hex::encode(seed))
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write the anchor key {}", path.display()))?;
            let key = AnchorKey::from_seed(&seed)?;
            tracing::info!(
                path = %path.display(),
                public_key = %hex::encode(key.public_key()),
                "created the key that signs the log's anchors"
            );
            Ok(key)
        }
        Err(err) => {
            Err(err).with_context(|| format!("cannot read the anchor key {}", path.display()))
        }
    }
}

/// Reads the anchor key from `path` if the file exists.
///
/// # Errors
/// When the file exists and cannot be read or does not hold a key.
pub fn existing_key(path: &Path) -> anyhow::Result<Option<AnchorKey>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(&text)
            .map(Some)
            .with_context(|| format!("{} does not hold an anchor key", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => {
            Err(err).with_context(|| format!("cannot read the anchor key {}", path.display()))
        }
    }
}

fn parse_key(text: &str) -> anyhow::Result<AnchorKey> {
    let mut seed = [0_u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed)
        .map_err(|_| anyhow::anyhow!("expected 64 hexadecimal digits"))?;
    Ok(AnchorKey::from_seed(&seed)?)
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// A progress display on standard error: a bar on a terminal, a plain line every few seconds
/// otherwise (a log file, CI).
struct Meter {
    bar: Option<ProgressBar>,
    what: &'static str,
    total: u64,
    last_line: Instant,
}

impl Meter {
    fn new(what: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} events  {per_sec}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(what);
            bar
        });
        Meter {
            bar,
            what,
            total,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => {
                if done > bar.length().unwrap_or(0) {
                    bar.set_length(done);
                }
                bar.set_position(done);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                eprintln!("{}: {done} of about {} events", self.what, self.total);
            }
            None => {}
        }
    }

    fn finish(&self, done: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(done);
                bar.finish_with_message(self.what);
            }
            None => eprintln!("{}: {done} events", self.what),
        }
    }
}

/// The owner's pool, the database migrated (the commands read the anchors' tables too).
async fn owner_pool(database: &DatabaseArgs) -> anyhow::Result<sqlx::PgPool> {
    crate::startup::prepare_database(&database.database_url(), &database.serving_role(), 3).await
}

/// About how many events the log holds (the planner's estimate: counting would read it all).
async fn estimate(pool: &sqlx::PgPool) -> u64 {
    let estimate: Result<f32, _> = sqlx::query_scalar(
        "select greatest(reltuples, 0) from pg_class where oid = 'events'::regclass",
    )
    .fetch_one(pool)
    .await;
    estimate.map_or(0, |n| n as u64)
}

/// `ledgerdesk audit verify`: prints each stream's first broken link and a summary on
/// standard output; fails (exit code 1) when anything is broken.
pub async fn verify(database: &DatabaseArgs, args: &VerifyArgs) -> anyhow::Result<()> {
    let pool = owner_pool(database).await?;
    let mut trusted = Vec::new();
    for key in &args.public_keys {
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(key.trim(), &mut bytes)
            .map_err(|_| anyhow::anyhow!("--public-key takes 64 hexadecimal digits"))?;
        trusted.push(bytes);
    }
    if let Some(key) = existing_key(&args.key.anchor_key_file)? {
        trusted.push(key.public_key());
    }
    let scope = VerifyScope {
        stream: args.stream.clone(),
        from: args.from,
    };
    let total = if scope.stream.is_some() {
        0
    } else {
        estimate(&pool).await
    };
    let mut meter = Meter::new("verifying", total);
    let mut out = std::io::stdout().lock();
    let mut written = Ok(());
    let outcome = audit::verify(
        &pool,
        &scope,
        &trusted,
        |progress| meter.update(progress.events),
        |link| {
            if written.is_ok() {
                written = writeln!(out, "{}", describe(link));
            }
        },
    )
    .await
    .context("cannot read the log")?;
    written.context("cannot write the report")?;
    meter.finish(outcome.events);
    for problem in &outcome.anchors.problems {
        writeln!(out, "anchor broken: {problem}")?;
    }
    let anchors = match (outcome.anchors.anchors, outcome.anchors.keys_trusted) {
        (0, _) => "no anchors".to_owned(),
        (n, true) => format!("{n} anchors checked against the trusted keys"),
        (n, false) => format!(
            "{n} anchors checked against their own keys only (no trusted key: pass \
             --public-key or LEDGERDESK_ANCHOR_KEY_FILE)"
        ),
    };
    writeln!(
        out,
        "{} events in {} streams verified, {anchors}: {}",
        outcome.events,
        outcome.streams,
        if outcome.holds() {
            "the log holds".to_owned()
        } else {
            format!(
                "{} broken streams, {} broken anchors",
                outcome.broken.len(),
                outcome.anchors.problems.len()
            )
        }
    )?;
    out.flush()?;
    pool.close().await;
    if !outcome.holds() {
        bail!("the log does not verify");
    }
    Ok(())
}

/// One broken link as one line: stream, version, position, problem, expected and stored hash.
pub fn describe(link: &BrokenLink) -> String {
    let hash = |h: &Option<Vec<u8>>| h.as_ref().map_or_else(|| "-".to_owned(), hex::encode);
    format!(
        "broken: stream={} version={} position={} problem={} expected={} stored={} ({})",
        link.stream,
        link.version,
        link.position
            .map_or_else(|| "-".to_owned(), |p| p.to_string()),
        link.problem.name(),
        hash(&link.expected),
        hash(&link.stored),
        link.problem.describe(),
    )
}

/// `ledgerdesk audit anchor`: writes an anchor of the log now.
pub async fn anchor(database: &DatabaseArgs, args: &AnchorArgs) -> anyhow::Result<()> {
    let key = load_or_create_key(&args.key.anchor_key_file)?;
    let pool = owner_pool(database).await?;
    let log = app::personal::log(pool.clone());
    let written = audit::write_anchor(&log, &key)
        .await
        .context("cannot anchor the log")?;
    let mut out = std::io::stdout().lock();
    match written {
        Some(anchor) => writeln!(
            out,
            "anchor {} at position {}: {} stream heads, public key {}",
            anchor.seq,
            anchor.position,
            anchor.heads,
            hex::encode(key.public_key())
        )?,
        None => writeln!(out, "nothing to anchor: no event since the last anchor")?,
    }
    log.stop_background();
    pool.close().await;
    Ok(())
}

/// `ledgerdesk export`.
pub async fn export(database: &DatabaseArgs, args: &ExportArgs) -> anyhow::Result<()> {
    let pool = owner_pool(database).await?;
    let log = app::personal::log(pool.clone());
    let scope = ExportScope {
        from: args.from,
        to: args.to,
        stream_prefix: args.stream_prefix.clone(),
    };
    let mut meter = Meter::new("exporting", estimate(&pool).await);
    let exported = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            transfer::export(&log, &scope, &mut out, |n| meter.update(n)).await
        }
        None => {
            let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            transfer::export(&log, &scope, &mut out, |n| meter.update(n)).await
        }
    }
    .context("the export failed")?;
    meter.finish(exported.events);
    if exported.anchors > 0 {
        eprintln!("with {} anchors", exported.anchors);
    }
    if let Some(path) = &args.keys {
        let written = write_keys(&pool, path).await?;
        eprintln!("wrote {written} customers' keys to {}", path.display());
    }
    // Who took the log out, and which part of it, is itself in the audit trail.
    let made = domain::audit::AuditEvent::ExportMade(domain::audit::ExportMade {
        from: args.from.map(|position| position.to_string()),
        to: args.to.map(|position| position.to_string()),
        stream_prefix: args.stream_prefix.clone(),
        events: exported.events,
        at: chrono::Utc::now(),
    });
    app::audit_trail::record(
        &log,
        domain::AuditStream::Operations,
        &made,
        eventlog::Actor::system("cli"),
    )
    .await
    .context("the export was written but cannot be recorded in the audit trail")?;
    log.stop_background();
    pool.close().await;
    Ok(())
}

/// `ledgerdesk import`.
pub async fn import(database: &DatabaseArgs, args: &ImportArgs) -> anyhow::Result<()> {
    let pool = owner_pool(database).await?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    // About 1 KiB per event, for the progress display only.
    let mut meter = Meter::new("importing", size / 1024);
    let imported = transfer::import(&pool, BufReader::with_capacity(1 << 20, file), |n| {
        meter.update(n);
    })
    .await
    .with_context(|| format!("{} was not imported", args.file.display()))?;
    meter.finish(imported.events);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "imported {} events in {} streams and {} anchors; rebuild the read models with \
         `ledgerdesk replay` or start `ledgerdesk serve`",
        imported.events, imported.streams, imported.anchors
    )?;
    if let Some(path) = &args.keys {
        let keys = read_keys(path)?;
        let stored = eventlog::postgres::keys::restore(&pool, &keys)
            .await
            .context("the events are imported, but the keys could not be stored")?;
        writeln!(out, "stored {stored} customers' keys")?;
    }
    pool.close().await;
    Ok(())
}

/// Writes every subject's key to the new file `path` (mode 0600), one a line: the subject, a
/// space and the key in 64 hex digits (`customer-42 0f3a…`).
async fn write_keys(pool: &sqlx::PgPool, path: &Path) -> anyhow::Result<usize> {
    let keys = eventlog::postgres::keys::all(pool)
        .await
        .context("cannot read the customers' keys")?;
    let file = create_private(path).with_context(|| {
        format!(
            "cannot create the keys file {} (it must not exist)",
            path.display()
        )
    })?;
    let mut out = BufWriter::new(file);
    for (subject, key) in &keys {
        writeln!(out, "{subject} {}", hex::encode(key.as_bytes()))?;
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok(keys.len())
}

/// Reads a keys file written by [`write_keys`].
fn read_keys(path: &Path) -> anyhow::Result<Vec<(String, eventlog::seal::SubjectKey)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the keys file {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            let bad = || anyhow::anyhow!("line {} of {} is not a key", n + 1, path.display());
            let (subject, key) = line.trim().split_once(' ').ok_or_else(bad)?;
            if subject.is_empty() || subject.chars().count() > eventlog::seal::SUBJECT_CHARS {
                return Err(bad());
            }
            let bytes = hex::decode(key).map_err(|_| bad())?;
            let key = eventlog::seal::SubjectKey::from_bytes(&bytes).map_err(|_| bad())?;
            Ok((subject.to_owned(), key))
        })
        .collect()
}

/// A position given on the command line.
pub fn position(value: &str) -> Result<Position, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "a position is 32 hexadecimal digits, as exports and the API show them".into())
}

/// `ledgerdesk customer forget`: forgets a customer's personal data and says what it did.
pub async fn forget(database: &DatabaseArgs, args: &ForgetArgs) -> anyhow::Result<()> {
    let pool = owner_pool(database).await?;
    let log = app::personal::log(pool.clone());
    let outcome = app::forget::forget_customer(
        &log,
        domain::ids::CustomerId(args.telegram_id),
        eventlog::Actor::system("cli"),
    )
    .await;
    log.stop_background();
    let forgotten = match outcome {
        Ok(forgotten) => forgotten,
        Err(app::forget::ForgetError::UnknownCustomer(id)) => {
            pool.close().await;
            anyhow::bail!("no customer with Telegram id {id}")
        }
        Err(error) => {
            pool.close().await;
            return Err(anyhow::Error::new(error).context("cannot forget the customer"));
        }
    };
    let files = if forgotten.files.is_empty() {
        0
    } else {
        let media = media::MediaService::new(pool.clone(), args.media.config()?)
            .await
            .context("cannot open the media storage")?;
        media
            .delete_telegram_copies(&forgotten.files)
            .await
            .context("the customer is forgotten, but their stored files could not be deleted")?
    };
    pool.close().await;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "customer {} forgotten: key {}, {} tickets cleared in the read models, customer.forgotten recorded",
        forgotten.customer,
        if forgotten.key_deleted {
            "deleted"
        } else {
            "already gone"
        },
        forgotten.tickets.len(),
    )?;
    if forgotten.plain_events > 0 {
        writeln!(
            out,
            "warning: {} events of this customer were stored before sealing; their personal \
             fields stay in the append-only log (the read models are cleared)",
            forgotten.plain_events
        )?;
    }
    writeln!(out, "{files} stored files of the customer deleted")?;
    Ok(())
}
