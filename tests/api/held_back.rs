//! Long transactions elsewhere on the database server do not hold the product back; an append
//! held open does, and `systemStatus` and `/metrics` name it.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};
use testkit::eventually;

use crate::support::Server;

/// A transaction that took an id and stays open while the value lives.
struct OpenWrite {
    conn: PgConnection,
    xid: i64,
}

impl OpenWrite {
    async fn open(mut conn: PgConnection, first: &str) -> OpenWrite {
        conn.execute("begin").await.unwrap();
        conn.execute(first).await.unwrap();
        let xid = sqlx::query_scalar("select pg_current_xact_id()::text::bigint")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        OpenWrite { conn, xid }
    }

    async fn still_open(&mut self) -> bool {
        let xid: Option<i64> =
            sqlx::query_scalar("select pg_current_xact_id_if_assigned()::text::bigint")
                .fetch_one(&mut self.conn)
                .await
                .unwrap();
        xid == Some(self.xid)
    }
}

/// For six seconds a write stays open on another table of the product's database and another
/// in another database of the server. Meanwhile customers keep writing: each message reaches
/// every read model (the read-your-writes wait of the API) within two seconds, and the agent
/// sees the tickets through the API.
#[tokio::test]
async fn writes_held_open_elsewhere_on_the_server_do_not_delay_the_read_models() {
    let server = Server::start("held_elsewhere").await;
    let admin = server.admin().await;
    let mut here = server.pool.acquire().await.unwrap().detach();
    here.execute("create table bystander (n integer)")
        .await
        .unwrap();
    let mut writes = [
        OpenWrite::open(here, "insert into bystander values (1)").await,
        OpenWrite::open(
            PgConnection::connect(&testkit::database::server_url())
                .await
                .unwrap(),
            "select 1",
        )
        .await,
    ];
    let opened = Instant::now();
    let mut customer = 7_000;
    let mut tickets = Vec::new();
    // Paced: the point is that the writes stay open all along.
    let mut pace = tokio::time::interval(Duration::from_millis(300));
    while opened.elapsed() < Duration::from_secs(6) {
        pace.tick().await;
        customer += 1;
        let (ticket, _) = tokio::time::timeout(
            Duration::from_secs(2),
            server.customer_writes(customer, None, "hello"),
        )
        .await
        .unwrap_or_else(|_| panic!("customer {customer}'s message took over 2 s to show"));
        tickets.push(ticket.to_string());
    }
    assert!(tickets.len() >= 3);
    let body = server
        .ok(
            &admin.token,
            "{ tickets(first: 100) { nodes { ticketId } } systemStatus { logHeldBackBy { pid } } }",
            json!({}),
        )
        .await;
    let listed: Vec<&str> = body["tickets"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|node| node["ticketId"].as_str())
        .collect();
    for ticket in &tickets {
        assert!(listed.contains(&ticket.as_str()), "{ticket} not listed");
    }
    // Only appends hold the log back; these are not named.
    assert!(body["systemStatus"]["logHeldBackBy"].is_null(), "{body}");
    for write in &mut writes {
        assert!(write.still_open().await);
    }
    server.stop().await;
}

/// The gauge `ledgerdesk_log_held_back_seconds`, 0 when absent.
async fn held_back_gauge(server: &Server) -> f64 {
    let text = server
        .http
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("ledgerdesk_log_held_back_seconds "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_append_held_open_is_named_in_system_status_and_metrics() {
    let server = Server::start("held_append").await;
    let admin = server.admin().await;
    let database: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    let mut conn = server.pool.acquire().await.unwrap().detach();
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let held = OpenWrite::open(
        conn,
        "select * from append_events(null, array['ticket-held'], array[-2]::bigint[], \
         array[1], array[gen_random_uuid()], array['test.held'], array[1], array['{}'], \
         array['{\"actor\": {\"kind\": \"system\", \"id\": \"test\"}}'])",
    )
    .await;
    let status = "{ systemStatus { logHeldBackBy { database pid ageSeconds } } }";
    eventually(
        async || {
            let body = server.ok(&admin.token, status, json!({})).await;
            let by = &body["systemStatus"]["logHeldBackBy"];
            match by["ageSeconds"].as_f64() {
                Some(age) if age >= 1.0 => {
                    assert_eq!(by["database"].as_str(), Some(database.as_str()));
                    assert_eq!(by["pid"].as_i64(), Some(i64::from(pid)));
                    Ok(())
                }
                _ => Err(format!("{body}")),
            }
        },
        Duration::from_secs(10),
    )
    .await;
    assert!(held_back_gauge(&server).await >= 1.0);

    drop(held);
    eventually(
        async || {
            let body = server.ok(&admin.token, status, json!({})).await;
            if body["systemStatus"]["logHeldBackBy"].is_null() {
                Ok(())
            } else {
                Err(format!("{body}"))
            }
        },
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(held_back_gauge(&server).await, 0.0);
    server.stop().await;
}
