//! The auditors' commands end to end: `audit verify` finds each kind of tampering at the right
//! link (the database's superuser plays the attacker, bypassing the append-only trigger), and
//! `export` then `import` into a new database gives the same verification and read models.

use std::path::PathBuf;

use sqlx::{Executor, PgPool};
use testkit::{DatabaseName, TestDatabase};

use crate::{ledgerdesk, succeed};

/// A file in the system's temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "ledgerdesk-test-{}-{}-{name}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `audit verify` on `url` with `key`: its exit code and standard output.
fn verify(url: &str, key: &TempFile) -> (bool, String) {
    let out = ledgerdesk(&[
        "audit",
        "verify",
        "--database-url",
        url,
        "--anchor-key-file",
        key.path(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), stdout)
}

/// Runs `statements` as the database's superuser with the append-only trigger off, as an
/// attacker with full access to the database would.
async fn tamper(pool: &PgPool, statements: &[&str]) {
    let mut tx = pool.begin().await.unwrap();
    tx.execute("alter table events disable trigger events_append_only")
        .await
        .unwrap();
    for statement in statements {
        tx.execute(*statement).await.unwrap();
    }
    tx.execute("alter table events enable trigger events_append_only")
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// A ticket stream with at least `len` events that is not `others`, with its last version.
async fn ticket_stream(pool: &PgPool, len: i64, others: &[&str]) -> (String, i64) {
    sqlx::query_as(
        "select stream_id, max(stream_version) from events \
          where stream_id like 'ticket-%' and stream_id <> all($2) \
          group by stream_id having count(*) >= $1 order by stream_id limit 1",
    )
    .bind(len)
    .bind(others)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn broken_lines(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter(|l| l.starts_with("broken:"))
        .collect()
}

#[tokio::test]
async fn audit_verify_finds_an_altered_a_removed_and_a_reordered_event_at_their_links() {
    let database = TestDatabase::fresh("audit_verify").await;
    let url = database.url().to_owned();
    succeed(&["generate", "--events", "600", "--database-url", &url]);
    let key = TempFile::new("anchor.key");
    let pool = database.pool();

    let (ok, report) = verify(&url, &key);
    assert!(ok, "a generated log verifies: {report}");
    assert!(report.contains("no anchors"), "{report}");
    succeed(&[
        "audit",
        "anchor",
        "--database-url",
        &url,
        "--anchor-key-file",
        key.path(),
    ]);
    let (ok, report) = verify(&url, &key);
    assert!(ok, "{report}");
    assert!(
        report.contains("1 anchors checked against the trusted keys"),
        "{report}"
    );

    // (a) One payload changed: that event, and no other, is reported.
    let (altered, _) = ticket_stream(pool, 4, &[]).await;
    let original: Vec<u8> =
        sqlx::query_scalar("select hash from events where stream_id = $1 and stream_version = 2")
            .bind(&altered)
            .fetch_one(pool)
            .await
            .unwrap();
    tamper(
        pool,
        &[&format!(
            "update events set payload = jsonb_set(payload, '{{forged}}', 'true') \
              where stream_id = '{altered}' and stream_version = 2"
        )],
    )
    .await;
    let (ok, report) = verify(&url, &key);
    assert!(!ok, "an altered payload fails verification: {report}");
    let lines = broken_lines(&report);
    assert_eq!(lines.len(), 1, "{report}");
    assert!(
        lines[0].contains(&format!("stream={altered} version=2 "))
            && lines[0].contains("problem=altered")
            && lines[0].contains(&format!("stored={}", hex::encode(&original))),
        "{report}"
    );

    // (b) A stream's newest event removed: its chain is still whole, the anchor shows it.
    let (shortened, last) = ticket_stream(pool, 3, &[&altered]).await;
    tamper(
        pool,
        &[&format!(
            "delete from events where stream_id = '{shortened}' and stream_version = {last}"
        )],
    )
    .await;
    let (ok, report) = verify(&url, &key);
    assert!(!ok, "{report}");
    let lines = broken_lines(&report);
    assert_eq!(lines.len(), 2, "{report}");
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "stream={shortened} version={last} position=- problem=removed"
        ))),
        "{report}"
    );

    // (c) Two events of a stream swapped: the chain breaks where the first of them stands.
    let (reordered, _) = ticket_stream(pool, 4, &[&altered, &shortened]).await;
    tamper(
        pool,
        &[
            &format!(
                "update events set stream_version = 1000000 \
                  where stream_id = '{reordered}' and stream_version = 1"
            ),
            &format!(
                "update events set stream_version = 1 \
                  where stream_id = '{reordered}' and stream_version = 2"
            ),
            &format!(
                "update events set stream_version = 2 \
                  where stream_id = '{reordered}' and stream_version = 1000000"
            ),
        ],
    )
    .await;
    let (ok, report) = verify(&url, &key);
    assert!(!ok, "{report}");
    let lines = broken_lines(&report);
    assert_eq!(lines.len(), 3, "{report}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("stream={reordered} version=1 "))
                && l.contains("problem=previous_hash")),
        "{report}"
    );
    assert!(report.contains("3 broken streams"), "{report}");

    // One stream alone, and from a position on: only what is asked is read.
    let out = ledgerdesk(&[
        "audit",
        "verify",
        "--database-url",
        &url,
        "--anchor-key-file",
        key.path(),
        "--stream",
        &altered,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert_eq!(broken_lines(&stdout).len(), 1, "{stdout}");
}

#[tokio::test]
async fn an_anchor_changed_or_signed_by_another_key_fails_verification() {
    let database = TestDatabase::fresh("audit_anchor").await;
    let url = database.url().to_owned();
    succeed(&["generate", "--events", "200", "--database-url", &url]);
    let key = TempFile::new("anchor.key");
    let other = TempFile::new("other.key");
    succeed(&[
        "audit",
        "anchor",
        "--database-url",
        &url,
        "--anchor-key-file",
        other.path(),
    ]);
    // The anchor's key is not the one this verification trusts.
    std::fs::write(key.path(), format!("{}\n", "11".repeat(32))).unwrap();
    let (ok, report) = verify(&url, &key);
    assert!(!ok, "{report}");
    assert!(report.contains("which is not trusted"), "{report}");
    // Trusted once its public key is given.
    let public = std::fs::read_to_string(other.path()).unwrap();
    let seed: [u8; 32] = hex::decode(public.trim()).unwrap().try_into().unwrap();
    let public = hex::encode(
        eventlog::postgres::audit::AnchorKey::from_seed(&seed)
            .unwrap()
            .public_key(),
    );
    let out = ledgerdesk(&[
        "audit",
        "verify",
        "--database-url",
        &url,
        "--anchor-key-file",
        key.path(),
        "--public-key",
        &public,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // An anchor's recorded head changed: its signature no longer holds.
    let pool = database.pool();
    let mut tx = pool.begin().await.unwrap();
    tx.execute("alter table log_anchor_heads disable trigger log_anchor_heads_append_only")
        .await
        .unwrap();
    tx.execute(
        "update log_anchor_heads set stream_version = stream_version + 1 \
                where stream_id = (select min(stream_id) from log_anchor_heads)",
    )
    .await
    .unwrap();
    tx.execute("alter table log_anchor_heads enable trigger log_anchor_heads_append_only")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (ok, report) = verify(&url, &other);
    assert!(!ok, "{report}");
    assert!(
        report.contains("anchor broken: anchor 1: its signature does not match"),
        "{report}"
    );
}

/// Every read model table of `pool`, each as one JSON text of its rows in a fixed order.
async fn read_models(pool: &PgPool) -> Vec<(String, String)> {
    let mut tables = Vec::new();
    for projection in projections::models::all() {
        for table in projection.tables() {
            let sql = format!(
                "select coalesce(json_agg(r order by r::text), '[]')::text \
                   from (select * from {table}) r"
            );
            let rows: String = sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
            tables.push(((*table).to_owned(), rows));
        }
    }
    tables
}

#[tokio::test]
async fn an_export_imported_into_a_new_database_verifies_and_projects_the_same() {
    // Created by the commands, as in production (the replay test does the same).
    let source = DatabaseName::fresh("export_src");
    let target = DatabaseName::fresh("export_dst");
    let key = TempFile::new("anchor.key");
    let file = TempFile::new("export.jsonl");
    succeed(&[
        "generate",
        "--events",
        "1500",
        "--database-url",
        source.url(),
    ]);
    let source_pool = PgPool::connect(source.url()).await.unwrap();
    // A replay rebuilds up to the head readers see: wait until it is the whole history.
    crate::all_events_visible(&source_pool).await;
    // Two anchors: one of the generated history, one of the replay's record after it.
    anchor(source.url(), &key);
    succeed(&["replay", "--database-url", source.url()]);
    anchor(source.url(), &key);
    // Every event stored before the export (which then records itself in the audit trail).
    let stored: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&source_pool)
        .await
        .unwrap();
    let keys = TempFile::new("keys.jsonl");
    succeed(&[
        "export",
        "--database-url",
        source.url(),
        "-o",
        file.path(),
        "--keys",
        keys.path(),
    ]);
    // The customers' personal data travels sealed; their keys go in a file of their own.
    let sealed: i64 =
        sqlx::query_scalar("select count(*) from events where payload::text like '%\"$sealed\"%'")
            .fetch_one(&source_pool)
            .await
            .unwrap();
    assert!(sealed > 100, "{sealed} events hold sealed fields");
    let key_lines = std::fs::read_to_string(keys.path()).unwrap();
    assert!(key_lines.lines().count() > 10, "{key_lines}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let text = std::fs::read_to_string(file.path()).unwrap();
    let anchor_lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.starts_with("{\"anchor\":"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(anchor_lines.len(), 2, "one line per anchor");
    assert_eq!(
        text.lines().count() as i64,
        stored + 2,
        "one line per event and per anchor"
    );
    // Each anchor follows the last event it covers: the second is the file's last line.
    assert_eq!(anchor_lines[1], text.lines().count() - 1);
    assert!(anchor_lines[0] < anchor_lines[1] - 1);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for field in [
        "position",
        "stream",
        "version",
        "id",
        "type",
        "schema_version",
        "recorded_at",
        "payload",
        "metadata",
        "hash",
        "previous_hash",
    ] {
        assert!(first.get(field).is_some(), "{field} missing from {first}");
    }

    // The export itself is recorded in the source's audit trail, after the file was written.
    let now_stored: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&source_pool)
        .await
        .unwrap();
    let last_type: String =
        sqlx::query_scalar("select event_type from events order by position desc limit 1")
            .fetch_one(&source_pool)
            .await
            .unwrap();
    assert_eq!(
        (now_stored, last_type.as_str()),
        (stored + 1, "audit.export_made")
    );

    succeed(&[
        "import",
        "--database-url",
        target.url(),
        file.path(),
        "--keys",
        keys.path(),
    ]);
    let target_pool = PgPool::connect(target.url()).await.unwrap();
    crate::all_events_visible(&target_pool).await;
    // The target records this replay in its audit trail, as the source recorded the export:
    // one event more than the file on each side.
    succeed(&["replay", "--database-url", target.url()]);
    let (ok_source, report_source) = verify(source.url(), &key);
    let (ok_target, report_target) = verify(target.url(), &key);
    assert!(ok_source && ok_target, "{report_source}\n{report_target}");
    assert!(
        report_target.contains("2 anchors checked against the trusted keys"),
        "{report_target}"
    );
    assert_eq!(report_source, report_target);
    let (models_source, models_target) = (
        read_models(&source_pool).await,
        read_models(&target_pool).await,
    );
    for ((table, rows), (_, imported)) in models_source.iter().zip(&models_target) {
        assert!(
            rows.len() > 2 || table != "tickets",
            "the history has tickets"
        );
        assert_eq!(
            rows, imported,
            "read model {table} differs after the import"
        );
    }

    // A second import into the same log is refused: it is not empty any more.
    let out = ledgerdesk(&["import", "--database-url", target.url(), file.path()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the log is not empty"));

    // The export of the import is the same file but for the positions, followed by the
    // target's own record of its replay.
    let again = TempFile::new("again.jsonl");
    succeed(&["export", "--database-url", target.url(), "-o", again.path()]);
    let strip = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
                value.as_object_mut().unwrap().remove("position");
                value.to_string()
            })
            .collect()
    };
    let again = strip(&std::fs::read_to_string(again.path()).unwrap());
    assert_eq!(again.len(), text.lines().count() + 1);
    assert!(again[again.len() - 1].contains("audit.replay_run"));
    assert_eq!(strip(&text), again[..again.len() - 1]);

    // The next anchor of the imported log covers what came after the import: the replay's
    // and the export's records, in the one operations stream.
    let written = anchor(target.url(), &key);
    assert!(written.contains(": 1 stream heads"), "{written}");
    let (ok_target, report_target) = verify(target.url(), &key);
    assert!(
        ok_target && report_target.contains("3 anchors checked against the trusted keys"),
        "{report_target}"
    );

    // An anchor line changed or missing is refused at its line.
    let lines: Vec<&str> = text.lines().collect();
    let second = anchor_lines[1];
    let at = lines[second].find("\"signature\":\"").unwrap() + 13;
    let flipped = if &lines[second][at..at + 2] == "00" {
        "11"
    } else {
        "00"
    };
    let forged = format!(
        "{}{flipped}{}",
        &lines[second][..at],
        &lines[second][at + 2..]
    );
    let mut changed = lines.clone();
    changed[second] = &forged;
    import_refused(&changed, &[second + 1], "a changed anchor signature").await;
    let mut shifted = lines.clone();
    let head_hash = shifted[second].rfind("\"hash\":\"").unwrap() + 8;
    let altered_head = format!(
        "{}{}{}",
        &shifted[second][..head_hash],
        "0".repeat(64),
        &shifted[second][head_hash + 64..]
    );
    shifted[second] = &altered_head;
    import_refused(
        &shifted,
        &[second + 1],
        "an anchor head that is not the stream's",
    )
    .await;
    let mut without_first = lines.clone();
    without_first.remove(anchor_lines[0]);
    import_refused(&without_first, &[second], "a missing anchor").await;
}

/// `audit anchor` on `url` with `key`: its report.
fn anchor(url: &str, key: &TempFile) -> String {
    let out = ledgerdesk(&[
        "audit",
        "anchor",
        "--database-url",
        url,
        "--anchor-key-file",
        key.path(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    stdout
}

/// `import` of `lines` into a new database: fails, naming one of `at` in its error.
async fn import_refused(lines: &[&str], at: &[usize], why: &str) {
    let file = TempFile::new("broken.jsonl");
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    let target = TestDatabase::fresh("import_bad").await;
    let out = ledgerdesk(&["import", "--database-url", target.url(), file.path()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{why}: imported");
    assert!(
        at.iter()
            .any(|line| stderr.contains(&format!("line {line}:"))),
        "{why}: {stderr}"
    );
    let count: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(target.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "{why}: nothing is imported");
}

#[tokio::test]
async fn import_refuses_a_reordered_or_altered_file_naming_the_line() {
    let source = TestDatabase::fresh("import_src").await;
    let file = TempFile::new("export.jsonl");
    succeed(&[
        "generate",
        "--events",
        "300",
        "--database-url",
        source.url(),
    ]);
    succeed(&["export", "--database-url", source.url(), "-o", file.path()]);
    let text = std::fs::read_to_string(file.path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // Two lines swapped: refused at the first of them (a version of its stream skipped) or
    // at the second (a position that goes back), whichever shows first.
    let mut swapped = lines.clone();
    swapped.swap(10, 11);
    import_refused(&swapped, &[11, 12], "swapped lines").await;

    // A payload changed: its hash no longer holds (checked by the database, at its line).
    let altered_line = lines
        .iter()
        .position(|l| l.contains("\"payload\":{\"at\""))
        .unwrap();
    let altered =
        lines[altered_line].replacen("\"payload\":{\"at\"", "\"payload\":{\"x\": 1, \"at\"", 1);
    let mut changed = lines.clone();
    changed[altered_line] = &altered;
    import_refused(&changed, &[altered_line + 1], "an altered payload").await;

    // A line removed from the middle of a stream.
    let gap = lines
        .iter()
        .position(|l| l.contains("\"version\":1,"))
        .unwrap();
    let mut holed = lines.clone();
    holed.remove(gap);
    let next_of_stream = {
        let stream = lines[gap]
            .split("\"stream\":")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        lines
            .iter()
            .enumerate()
            .skip(gap + 1)
            .find(|(_, l)| l.contains(&format!("\"stream\":{stream},")))
            .map(|(i, _)| i)
            .unwrap()
    };
    // Counted in the file without the removed line.
    import_refused(&holed, &[next_of_stream], "a missing version").await;

    // Not an event at all.
    let mut garbage = lines.clone();
    garbage[3] = "{\"position\": 1}";
    import_refused(&garbage, &[4], "a malformed line").await;
}
