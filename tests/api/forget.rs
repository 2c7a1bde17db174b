//! `forgetCustomer`: only a signed-in admin may forget a customer; the customer's rows read as
//! forgotten once the read models follow; events stored before sealing are counted.

use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::agent::Role;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{CustomerId, MessageId, TicketId};
use eventlog::{Actor, Position};
use serde_json::json;

use crate::support::{Server, code};

const FORGET: &str = "mutation($customer: ID!) { forgetCustomer(input: {customerId: $customer}) \
                      { customerId keyDeleted tickets eventsStoredBeforeSealing filesDeleted } }";

/// Customer `customer` writes `text` as the bot records it, through a log that seals.
async fn sealed_customer_writes(server: &Server, customer: i64, text: &str) -> Position {
    let routed = CommandService::new(app::personal::log(server.pool.clone()))
        .route_customer_message(
            &RouteCustomerMessage {
                customer: CustomerId(customer),
                profile: CustomerProfile {
                    first_name: "Wilhelmina".into(),
                    last_name: Some("Forgetmenot".into()),
                    username: Some("wilhelmina_fmn".into()),
                    language_code: Some("en".into()),
                },
                category: None,
                new_ticket_id: TicketId(uuid::Uuid::now_v7()),
                channel: Channel::Telegram,
                message: CustomerMessage {
                    message_id: MessageId(uuid::Uuid::now_v7()),
                    telegram_message_id: TelegramMessageId(Server::next_telegram_message()),
                    reply_to: None,
                    content: MessageContent::text(text),
                },
                reopen_window: TimeDelta::days(7),
                at: Utc::now(),
            },
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap();
    routed.executed.position.unwrap()
}

#[tokio::test]
async fn only_admins_forget_and_the_customer_then_reads_as_forgotten() {
    let server = Server::start("forget").await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    let position = sealed_customer_writes(&server, 4242, "my secret order 981").await;
    server.caught_up(position).await;
    let customer = json!({ "customer": "4242" });

    // Agents and auditors are refused; an API token has no admin behind it.
    for caller in [&agent, &auditor] {
        let body = server
            .gql(Some(&caller.token), FORGET, customer.clone())
            .await;
        assert_eq!(code(&body), Some("FORBIDDEN"), "{body}");
    }
    let token = server.api_token(&admin, &["customers:read"]).await;
    let body = server.gql(Some(&token), FORGET, customer.clone()).await;
    assert_eq!(code(&body), Some("FORBIDDEN"), "{body}");
    let body = server.gql(None, FORGET, customer.clone()).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body}");
    let body = server
        .gql(Some(&admin.token), FORGET, json!({ "customer": "999" }))
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"), "{body}");

    let forgotten = server.ok(&admin.token, FORGET, customer.clone()).await;
    assert_eq!(
        forgotten["forgetCustomer"],
        json!({
            "customerId": "4242",
            "keyDeleted": true,
            "tickets": 1,
            "eventsStoredBeforeSealing": 0,
            "filesDeleted": 0,
        })
    );
    // The record names the admin.
    let actor: serde_json::Value = sqlx::query_scalar(
        "select metadata -> 'actor' from events \
          where stream_id = 'customer-4242' and event_type = 'customer.forgotten'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(actor, json!({ "kind": "agent", "id": admin.id }));

    // The read models follow.
    let head = eventlog::EventLog::head(&server.log).await.unwrap();
    server.caught_up(head).await;
    let read = server
        .ok(
            &admin.token,
            "query($customer: ID!) { customer(id: $customer) { firstName lastName username } }",
            customer.clone(),
        )
        .await;
    assert_eq!(
        read["customer"],
        json!({ "firstName": "", "lastName": null, "username": null })
    );
    let texts: Vec<Option<String>> = sqlx::query_scalar(
        "select m.text from messages m join tickets t on t.id = m.ticket_id \
          where t.customer_id = 4242",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert_eq!(texts, [None]);

    // Again: harmless, the key is already gone.
    let again = server.ok(&admin.token, FORGET, customer).await;
    assert_eq!(again["forgetCustomer"]["keyDeleted"], json!(false));

    // A customer recorded before sealing: the events are counted, the read models cleared.
    let (_, position) = server.customer_writes(4343, None, "plain words").await;
    server.caught_up(position).await;
    let legacy = server
        .ok(&admin.token, FORGET, json!({ "customer": "4343" }))
        .await;
    assert_eq!(legacy["forgetCustomer"]["keyDeleted"], json!(false));
    assert_eq!(
        legacy["forgetCustomer"]["eventsStoredBeforeSealing"],
        json!(2),
        "{legacy}"
    );
    server.stop().await;
}
