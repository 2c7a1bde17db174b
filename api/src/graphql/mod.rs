//! The GraphQL API: schema and context. The HTTP routes that serve it (in `crate::routes`):
//!
//! - `POST /graphql`: queries and mutations (JSON body, batches of at most
//!   [`Limits::max_batch`]); `GET /graphql` opens GraphiQL.
//! - `GET /graphql/ws`: subscriptions over `graphql-transport-ws` or the legacy `graphql-ws`,
//!   with the credential in the `connection_init` payload (`{"authorization": "Bearer …"}`).
//!
//! Each request carries its [`crate::auth::Authentication`] and the client's address as request
//! data; resolvers reach shared services through [`Api`]. Every resolver that touches data is
//! guarded by a [`guard::Need`] naming its [`crate::auth::Permission`].
//!
//! The schema is laid out by area (`tickets`, `customers`, `broadcasts`, `directory`, `auth`,
//! `system`, `as_of`), each with its types, queries, mutations and subscriptions; this module only
//! assembles them. The shared parts sit beside it: [`context`], [`error`], [`ids`], [`guard`],
//! [`consistency`], [`pagination`], [`commands`], [`events`], [`documents`], [`expansion`]
//! and [`request_errors`].

pub mod commands;
pub mod consistency;
pub mod context;
pub mod documents;
pub mod error;
pub mod events;
pub mod expansion;
pub mod guard;
pub mod ids;
pub mod introspection;
pub mod pagination;
pub mod request_errors;
pub mod unstorable;

pub mod as_of;
pub mod auth;
pub mod broadcasts;
pub mod customers;
pub mod directory;
pub mod system;
pub mod tickets;

use async_graphql::dataloader::DataLoader;
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{MergedObject, MergedSubscription, OutputType, Schema, SchemaBuilder};

pub use consistency::{CONSISTENCY_HEADER, ConsistencyInput, consistent};
pub use context::{Api, Limits};

/// Every query.
#[derive(Debug, MergedObject, Default)]
pub struct Query(
    auth::MeQuery,
    system::SystemQuery,
    auth::ApiTokenQuery,
    tickets::TicketQuery,
    customers::CustomerQuery,
    directory::DirectoryQuery,
    directory::BotTextQuery,
    broadcasts::BroadcastQuery,
    system::DashboardQuery,
    system::NodeQuery,
    system::UnrecordedQuery,
    auth::SecondFactorQuery,
    system::LogQuery,
    as_of::AsOfQuery,
);

/// Every mutation.
#[derive(Debug, MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    directory::AgentMutation,
    auth::ApiTokenMutation,
    tickets::TicketMutation,
    customers::CustomerMutation,
    directory::SettingsMutation,
    directory::BotTextMutation,
    broadcasts::BroadcastMutation,
    broadcasts::BroadcastPreviewMutation,
    auth::SecondFactorMutation,
);

// Every subscription. (A line comment: a doc comment would become the type's description
// in the schema, which has none.)
#[derive(Debug, MergedSubscription, Default)]
#[graphql(name = "SubscriptionRoot")]
pub struct Subscription(
    system::EventSubscription,
    tickets::TicketSubscription,
    broadcasts::BroadcastSubscription,
);

/// The executable schema.
pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// The schema's builder, without runtime data (enough to print the SDL).
pub fn builder(limits: &Limits) -> SchemaBuilder<Query, Mutation, Subscription> {
    let builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .override_output_type_description::<chrono::DateTime<chrono::Utc>>(DATE_TIME_DESCRIPTION)
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    .limit_recursive_depth(32)
    .limit_directives(20);
    if limits.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}

/// The schema wired to `api`, with the loaders that batch nested lookups (a ticket's customer
/// and assignee) across the fields resolved together.
pub fn schema(api: Api) -> ApiSchema {
    let customers = DataLoader::new(
        customers::CustomerLoader::new(api.pool.clone()),
        tokio::spawn,
    );
    let agents = DataLoader::new(directory::AgentLoader::new(api.pool.clone()), tokio::spawn);
    builder(&api.limits)
        .data(customers)
        .data(agents)
        .data(api)
        .finish()
}

/// The names of the schema's root query and mutation fields.
pub fn root_fields() -> Vec<String> {
    let mut registry = Registry::default();
    <Query as OutputType>::create_type_info(&mut registry);
    <Mutation as OutputType>::create_type_info(&mut registry);
    [
        <Query as OutputType>::type_name(),
        <Mutation as OutputType>::type_name(),
    ]
    .iter()
    .filter_map(|name| match registry.types.get(name.as_ref()) {
        Some(MetaType::Object { fields, .. }) => Some(fields.keys().cloned()),
        _ => None,
    })
    .flatten()
    .collect()
}

/// The description of the `DateTime` scalar (async-graphql's names the Rust type).
const DATE_TIME_DESCRIPTION: &str = "A point in time as RFC 3339 text with its offset, as \
`2026-12-07T12:00:00.123456Z`.\nThe API answers in UTC and accepts any offset.";

/// The schema in SDL, as committed in `schema.graphql`: with `@specifiedBy` on the scalars that
/// have a specification, and the schema's own description (async-graphql prints none; see
/// [`introspection`] for the same text in introspection).
pub fn sdl() -> String {
    let sdl = builder(&Limits::default()).finish().sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items()
            .include_specified_by(),
    );
    let described = format!(
        "\"\"\"\n{}\n\"\"\"\nschema {{",
        introspection::SCHEMA_DESCRIPTION
    );
    sdl.replacen("\nschema {", &format!("\n{described}"), 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_fields_are_the_queries_and_mutations() {
        let fields = super::root_fields();
        for field in [
            "me",
            "events",
            "auditVerify",
            "tickets",
            "node",
            "replyToTicket",
            "login",
            "createApiToken",
        ] {
            assert!(
                fields.iter().any(|f| f == field),
                "{field} not in {fields:?}"
            );
        }
        assert!(
            !fields.iter().any(|f| f == "ticketsChanged"),
            "subscriptions are not requests"
        );
    }
}
