//! The auditors' queries: `events` pages the log with every event's whole envelope, and
//! `auditVerify` finds each kind of tampering in one stream (the database's superuser plays
//! the attacker, bypassing the append-only trigger).

use domain::agent::Role;
use eventlog::postgres::audit::{AnchorKey, write_anchor};
use serde_json::{Value, json};
use sqlx::{Executor, PgPool};

use crate::support::{Server, code};

const EVENTS: &str = "query($after: String, $first: Int, $prefix: String, $types: [String!],
        $from: DateTime, $to: DateTime) {
    events(after: $after, first: $first, streamPrefix: $prefix, types: $types, from: $from,
           to: $to) {
        edges { cursor node { stream version } }
        nodes { cursor position stream version type schemaVersion recordedAt eventId
                correlationId causationId hash previousHash
                actor { kind actorId displayName } }
        pageInfo { hasNextPage endCursor } } }";

const VERIFY: &str = "query($stream: String!, $from: Int) {
    auditVerify(streamId: $stream, fromVersion: $from) {
        stream fromVersion eventsChecked nextVersion holds anchoredVersion anchorKeyChecked
        broken { version position problem expectedHash storedHash } } }";

/// Every page of `events` with `variables`, followed to the end.
async fn all_events(server: &Server, token: &str, variables: Value) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut vars = variables.clone();
        vars["after"] = after.clone();
        let data = server.ok(token, EVENTS, vars).await;
        let page = &data["events"];
        nodes.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn events_pages_the_whole_log_with_each_events_envelope_and_filters() {
    let server = Server::start("audit_events").await;
    let admin = server.admin().await;
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    let mut ticket = None;
    for customer in [11, 12, 13] {
        server.customer_writes(customer, None, "hello").await;
        ticket = Some(server.customer_writes(customer, None, "again").await.0);
    }
    let replied = server
        .ok(
            &admin.token,
            "mutation($ticket: ID!) {
                replyToTicket(input: {ticketId: $ticket, text: \"On it\"}) { position } }",
            json!({ "ticket": ticket.unwrap() }),
        )
        .await;
    server
        .caught_up(
            replied["replyToTicket"]["position"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .await;
    let stored: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&server.pool)
        .await
        .unwrap();

    // Paged two at a time, every event comes once, in log order.
    let nodes = all_events(&server, &auditor.token, json!({ "first": 2 })).await;
    assert_eq!(nodes.len() as i64, stored);
    let positions: Vec<&str> = nodes
        .iter()
        .map(|n| n["position"].as_str().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "log order: {positions:?}"
    );

    // The envelope: ids, hashes chained within each stream, the actor with a name.
    let ticket: Vec<&Value> = nodes
        .iter()
        .filter(|n| n["stream"].as_str().unwrap().starts_with("ticket-"))
        .take(3)
        .collect();
    assert_eq!(ticket[0]["version"], 0);
    assert_eq!(ticket[0]["previousHash"], Value::Null);
    assert_eq!(ticket[1]["stream"], ticket[0]["stream"]);
    assert_eq!(ticket[1]["previousHash"], ticket[0]["hash"]);
    for node in &nodes {
        assert_eq!(node["hash"].as_str().unwrap().len(), 64, "{node}");
        assert!(
            node["eventId"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .is_ok()
        );
        assert!(node["schemaVersion"].as_i64().unwrap() >= 1);
    }
    let stored_hash: Vec<u8> =
        sqlx::query_scalar("select hash from events where stream_id = $1 and stream_version = 0")
            .bind(ticket[0]["stream"].as_str().unwrap())
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(ticket[0]["hash"], hex::encode(stored_hash));
    let reply = nodes
        .iter()
        .find(|n| n["type"] == "ticket.agent_replied")
        .expect("the admin's reply is in the log");
    assert_eq!(reply["actor"]["kind"], "AGENT");
    assert_eq!(reply["actor"]["actorId"], admin.id.as_str(), "{reply}");
    assert_eq!(reply["actor"]["displayName"], "admin", "{reply}");
    assert!(
        nodes.iter().any(|n| n["correlationId"].is_string()),
        "commands correlate their events"
    );
    let admin_invited = nodes.iter().find(|n| n["type"] == "agent.invited").unwrap();
    assert_eq!(
        admin_invited["actor"]["displayName"], "test",
        "{admin_invited}"
    );

    // Filters: by type, by stream prefix, by time.
    let opened = all_events(
        &server,
        &admin.token,
        json!({ "types": ["ticket.opened"], "first": 100 }),
    )
    .await;
    assert_eq!(opened.len(), 3);
    assert!(opened.iter().all(|n| n["type"] == "ticket.opened"));
    let customers = all_events(&server, &admin.token, json!({ "prefix": "customer-12" })).await;
    assert!(!customers.is_empty());
    assert!(customers.iter().all(|n| n["stream"] == "customer-12"));
    let later = all_events(
        &server,
        &admin.token,
        json!({ "from": "2999-01-01T00:00:00Z" }),
    )
    .await;
    assert!(later.is_empty());
    let earlier = all_events(
        &server,
        &admin.token,
        json!({ "to": "2999-01-01T00:00:00Z", "first": 100 }),
    )
    .await;
    assert_eq!(earlier.len() as i64, stored);

    // Bounds and access.
    for (variables, what) in [
        (json!({ "first": 1001 }), "a page above the limit"),
        (json!({ "first": -1 }), "a negative page"),
        (json!({ "types": vec!["t"; 51] }), "too many types"),
        (json!({ "prefix": "p".repeat(201) }), "a long prefix"),
        (json!({ "after": "not a cursor" }), "a bad cursor"),
        (json!({ "after": "7".repeat(32) }), "a cursor past the end"),
        (
            json!({ "from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z" }),
            "an empty time range",
        ),
    ] {
        let body = server.gql(Some(&admin.token), EVENTS, variables).await;
        // A page far above the limit is already too costly for the complexity check.
        assert!(
            matches!(
                code(&body),
                Some("VALIDATION" | "GRAPHQL_VALIDATION_FAILED")
            ),
            "{what}: {body}"
        );
    }
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let body = server.gql(Some(&agent.token), EVENTS, json!({})).await;
    assert_eq!(code(&body), Some("FORBIDDEN"));
    let body = server.gql(None, EVENTS, json!({})).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"));
    let reader = server.api_token(&admin, &["events:read"]).await;
    let data = server.ok(&reader, EVENTS, json!({ "first": 1 })).await;
    assert_eq!(data["events"]["nodes"].as_array().unwrap().len(), 1);
    let other = server.api_token(&admin, &["tickets:read"]).await;
    let body = server.gql(Some(&other), EVENTS, json!({})).await;
    assert_eq!(code(&body), Some("FORBIDDEN"));
    server.stop().await;
}

/// Runs `statements` as the superuser with the append-only trigger off.
async fn tamper(pool: &PgPool, statements: &[String]) {
    let mut tx = pool.begin().await.unwrap();
    tx.execute("alter table events disable trigger events_append_only")
        .await
        .unwrap();
    for statement in statements {
        tx.execute(statement.as_str()).await.unwrap();
    }
    tx.execute("alter table events enable trigger events_append_only")
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn verify(server: &Server, token: &str, stream: &str) -> Value {
    server.ok(token, VERIFY, json!({ "stream": stream })).await["auditVerify"].clone()
}

#[tokio::test]
async fn audit_verify_finds_an_altered_a_removed_and_a_reordered_event() {
    let server = Server::start("audit_verify").await;
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    let mut streams = Vec::new();
    for customer in [21, 22, 23] {
        let mut ticket = None;
        for text in ["one", "two", "three"] {
            ticket = Some(server.customer_writes(customer, None, text).await.0);
        }
        streams.push(format!("ticket-{}", ticket.unwrap()));
    }
    let key = AnchorKey::from_seed(&[7; 32]).unwrap();
    let anchor = write_anchor(&server.log, &key).await.unwrap().unwrap();
    assert!(anchor.heads >= 6, "{anchor:?}");
    let [altered, shortened, reordered] = &streams[..] else {
        unreachable!()
    };
    let whole = verify(&server, &auditor.token, altered).await;
    assert_eq!(whole["holds"], true, "{whole}");
    let last = whole["anchoredVersion"].as_i64().unwrap();
    assert!(last >= 3, "{whole}");
    // This server has no anchor key: the anchor was checked against its own key only.
    assert_eq!(whole["anchorKeyChecked"], false, "{whole}");
    assert_eq!(whole["eventsChecked"], last + 1);
    assert_eq!(whole["nextVersion"], Value::Null);

    // (a) One payload changed.
    let original: Vec<u8> =
        sqlx::query_scalar("select hash from events where stream_id = $1 and stream_version = 1")
            .bind(altered)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    tamper(
        &server.pool,
        &[format!(
            "update events set payload = jsonb_set(payload, '{{forged}}', 'true') \
              where stream_id = '{altered}' and stream_version = 1"
        )],
    )
    .await;
    let found = verify(&server, &auditor.token, altered).await;
    assert_eq!(found["holds"], false);
    assert_eq!(found["broken"]["version"], 1, "{found}");
    assert_eq!(found["broken"]["problem"], "ALTERED");
    assert_eq!(found["broken"]["storedHash"], hex::encode(&original));
    assert_ne!(
        found["broken"]["expectedHash"],
        found["broken"]["storedHash"]
    );

    // (b) The newest event removed: the chain left is whole; the anchor shows the loss.
    tamper(
        &server.pool,
        &[format!(
            "delete from events where stream_id = '{shortened}' and stream_version = {last}"
        )],
    )
    .await;
    let found = verify(&server, &auditor.token, shortened).await;
    assert_eq!(found["holds"], false, "{found}");
    assert_eq!(found["broken"]["version"], last);
    assert_eq!(found["broken"]["problem"], "REMOVED");
    assert_eq!(found["broken"]["position"], Value::Null);

    // (c) Two events swapped.
    tamper(
        &server.pool,
        &[
            format!(
                "update events set stream_version = 1000000 \
                  where stream_id = '{reordered}' and stream_version = 1"
            ),
            format!(
                "update events set stream_version = 1 \
                  where stream_id = '{reordered}' and stream_version = 2"
            ),
            format!(
                "update events set stream_version = 2 \
                  where stream_id = '{reordered}' and stream_version = 1000000"
            ),
        ],
    )
    .await;
    let found = verify(&server, &auditor.token, reordered).await;
    assert_eq!(found["holds"], false, "{found}");
    assert_eq!(found["broken"]["version"], 1);
    assert_eq!(found["broken"]["problem"], "PREVIOUS_HASH");

    // The customers' own streams were not touched.
    let untouched = verify(&server, &auditor.token, "customer-21").await;
    assert_eq!(untouched["holds"], true, "{untouched}");

    // From a version on: the chain is taken up from the stored hash before it.
    let data = server
        .ok(
            &auditor.token,
            VERIFY,
            json!({ "stream": altered, "from": 2 }),
        )
        .await;
    assert_eq!(data["auditVerify"]["holds"], true, "{data}");
    assert_eq!(data["auditVerify"]["fromVersion"], 2);

    let body = server
        .gql(
            Some(&auditor.token),
            VERIFY,
            json!({ "stream": "ticket-none" }),
        )
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"));
    let body = server
        .gql(
            Some(&auditor.token),
            VERIFY,
            json!({ "stream": altered, "from": -1 }),
        )
        .await;
    assert_eq!(code(&body), Some("VALIDATION"));
    let body = server
        .gql(
            Some(&auditor.token),
            VERIFY,
            json!({ "stream": "x".repeat(201) }),
        )
        .await;
    assert_eq!(code(&body), Some("VALIDATION"));
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let body = server
        .gql(Some(&agent.token), VERIFY, json!({ "stream": altered }))
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"));
    server.stop().await;
}

/// A server that checks anchors against the key in `key_file` (it does not anchor the log
/// itself: the test does, with that key or another).
async fn server_with_key(tag: &str, key_file: &std::path::Path) -> Server {
    let key_file = key_file.to_owned();
    Server::start_configured(tag, move |settings| {
        settings.anchor = Some(ledgerdesk::AnchorSettings {
            key_file,
            interval: None,
        });
    })
    .await
}

#[tokio::test]
async fn audit_verify_checks_the_anchors_signature_against_the_servers_key() {
    let seed = [7_u8; 32];
    let key_file = std::env::temp_dir().join(format!(
        "ledgerdesk-test-{}-anchor.key",
        uuid::Uuid::now_v7()
    ));
    std::fs::write(&key_file, hex::encode(seed)).unwrap();
    let server = server_with_key("audit_anchor_key", &key_file).await;
    std::fs::remove_file(&key_file).unwrap();
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    let mut streams = Vec::new();
    for customer in [31, 32] {
        let (ticket, _) = server.customer_writes(customer, None, "one").await;
        server.customer_writes(customer, None, "two").await;
        streams.push(format!("ticket-{ticket}"));
    }
    let [forged, changed] = &streams[..] else {
        unreachable!()
    };
    let key = AnchorKey::from_seed(&seed).unwrap();
    write_anchor(&server.log, &key).await.unwrap().unwrap();
    for stream in &streams {
        let whole = verify(&server, &auditor.token, stream).await;
        assert_eq!(whole["holds"], true, "{whole}");
        assert_eq!(whole["anchorKeyChecked"], true, "{whole}");
    }

    // (a) An anchor changed: the stream's newest event removed and the anchor's head for it
    // set back to the version before, with that version's hash.
    let (last, before): (i64, Vec<u8>) = sqlx::query_as(
        "select e.stream_version + 1, e.hash from events e \
          where e.stream_id = $1 order by e.stream_version desc offset 1 limit 1",
    )
    .bind(changed)
    .fetch_one(&server.pool)
    .await
    .unwrap();
    let mut tx = server.pool.begin().await.unwrap();
    for statement in [
        "alter table events disable trigger events_append_only".to_owned(),
        "alter table log_anchor_heads disable trigger log_anchor_heads_append_only".to_owned(),
        format!("delete from events where stream_id = '{changed}' and stream_version = {last}"),
        format!(
            "update log_anchor_heads set stream_version = {}, hash = '\\x{}' \
              where stream_id = '{changed}' and stream_version = {last}",
            last - 1,
            hex::encode(&before)
        ),
        "alter table log_anchor_heads enable trigger log_anchor_heads_append_only".to_owned(),
        "alter table events enable trigger events_append_only".to_owned(),
    ] {
        tx.execute(statement.as_str()).await.unwrap();
    }
    tx.commit().await.unwrap();
    let found = verify(&server, &auditor.token, changed).await;
    assert_eq!(found["holds"], false, "{found}");
    assert_eq!(found["broken"]["problem"], "ANCHOR_SIGNATURE", "{found}");
    assert_eq!(found["anchoredVersion"], last - 1);
    assert_eq!(found["broken"]["storedHash"], hex::encode(&before));
    // (b) An anchor forged with another key: the stream's newest event is removed, the
    // anchors are removed, and an anchor of the shortened log is signed with the attacker's
    // key and stored.
    let last: i64 =
        sqlx::query_scalar("select max(stream_version) from events where stream_id = $1")
            .bind(forged)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    let mut tx = server.pool.begin().await.unwrap();
    for statement in [
        "alter table events disable trigger events_append_only".to_owned(),
        "alter table log_anchor_heads disable trigger log_anchor_heads_append_only".to_owned(),
        "alter table log_anchors disable trigger log_anchors_append_only".to_owned(),
        format!("delete from events where stream_id = '{forged}' and stream_version = {last}"),
        "delete from log_anchor_heads".to_owned(),
        "delete from log_anchors".to_owned(),
        "alter table log_anchors enable trigger log_anchors_append_only".to_owned(),
        "alter table log_anchor_heads enable trigger log_anchor_heads_append_only".to_owned(),
        "alter table events enable trigger events_append_only".to_owned(),
    ] {
        tx.execute(statement.as_str()).await.unwrap();
    }
    tx.commit().await.unwrap();
    let attacker = AnchorKey::from_seed(&[9; 32]).unwrap();
    write_anchor(&server.log, &attacker).await.unwrap().unwrap();
    let found = verify(&server, &auditor.token, forged).await;
    assert_eq!(found["holds"], false, "{found}");
    assert_eq!(found["broken"]["problem"], "ANCHOR_KEY_UNKNOWN", "{found}");
    assert_eq!(found["anchoredVersion"], last - 1, "{found}");
    assert_eq!(found["broken"]["version"], last - 1);
    server.stop().await;
}
