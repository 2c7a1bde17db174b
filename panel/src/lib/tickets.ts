// Data access of the tickets area: the operations the inbox and the conversation run.
import { graphql, type ResultOf } from './graphql';

export const TICKET_ROW = graphql(`
  fragment TicketRow on Ticket @_unmask {
    ticketId subject status priority tags categoryId assigneeId unreadByAgents
    lastMessageAt lastMessagePreview lastMessageDirection lastActivityAt createdAt version
    customer { firstName lastName username }
    assignee { name }
  }
`);

export type TicketRowData = ResultOf<typeof TICKET_ROW>;

export const TICKETS = graphql(
  `query Tickets($filter: TicketFilter, $first: Int, $after: String) {
    tickets(filter: $filter, first: $first, after: $after, orderBy: LAST_ACTIVITY_DESC) {
      nodes { ...TicketRow }
      pageInfo { hasNextPage endCursor }
    }
  }`,
  [TICKET_ROW],
);

export const TICKETS_CHANGED = graphql(
  `subscription TicketsChanged($filter: TicketsChangedFilter, $showing: [ID!]!) {
    ticketsChanged(filter: $filter, showing: $showing) { inFilter cursor ticket { ...TicketRow } }
  }`,
  [TICKET_ROW],
);

export const DIRECTORY = graphql(`
  query Directory {
    categories { categoryId name }
    agents { agentId name role active }
  }
`);

export const TEMPLATES = graphql(`query Templates { templates { templateId title text } }`);

export const MEDIA_FIELDS = graphql(`
  fragment MediaFields on Media @_unmask {
    kind fileId fileName mimeType fileSize width height duration title performer emoji setName
    isAnimated isVideo mediaId url thumbnailUrl
  }
`);

export const MESSAGE_FIELDS = graphql(
  `fragment MessageFields on Message @_unmask {
    messageId seq direction kind text caption createdAt
    entities { type offset length url language customEmojiId userId } editedAt authorAgentId templateId
    deliveryState failureReason deliveryRetry { attempts nextAttemptAt lastError }
    forwardOrigin forwardedAt details mediaGroupId serviceAction unsupportedKind
    media { ...MediaFields }
    album { ...MediaFields }
    edits { kind text caption editedAt }
    dice { emoji value }
    poll { question options quiz }
    checklist { title tasks { text done } }
    story { chatId storyId }
    paidMedia { starCount media }
    replyTo { messageId direction kind text caption }
  }`,
  [MEDIA_FIELDS],
);

export type MessageData = ResultOf<typeof MESSAGE_FIELDS>;

export const TICKET = graphql(
  `query Ticket($id: ID!, $consistency: ConsistencyInput) {
    ticket(id: $id, consistency: $consistency) {
      ...TicketRow
      customerId rating resolvedAt closedAt firstResponseAt
      customer {
        customerId firstName lastName username languageCode banned banReason blockedBot
        registeredAt lastSeenAt ticketsTotal ticketsOpen optedOutOfBroadcasts
      }
      messages(last: 40) { nodes { ...MessageFields } pageInfo { hasPreviousPage startCursor } }
      notes(last: 30) { nodes { noteId seq agentId text createdAt } }
      history(last: 50) {
        nodes { cursor version type recordedAt payload actor { kind actorId } }
      }
    }
  }`,
  [TICKET_ROW, MESSAGE_FIELDS],
);

export type TicketData = ResultOf<typeof TICKET>['ticket'];

export const EARLIER_MESSAGES = graphql(
  `query EarlierMessages($id: ID!, $before: String!) {
    ticket(id: $id) {
      messages(last: 40, before: $before) {
        nodes { ...MessageFields }
        pageInfo { hasPreviousPage startCursor }
      }
    }
  }`,
  [MESSAGE_FIELDS],
);
export type HistoryEvent = TicketData['history']['nodes'][number];

export const CUSTOMER_TICKETS = graphql(
  `query CustomerTickets($customer: ID!) {
    tickets(filter: { customer: $customer }, first: 10, orderBy: CREATED_AT_DESC) {
      nodes { ...TicketRow }
    }
  }`,
  [TICKET_ROW],
);

export const TICKET_EVENTS = graphql(`
  subscription TicketEvents($ticketId: ID!, $after: String) {
    ticketEvents(ticketId: $ticketId, after: $after) { cursor version type }
  }
`);

export const REPLY = graphql(`
  mutation Reply($input: ReplyToTicketInput!) { replyToTicket(input: $input) { messageId position } }
`);
export const NOTE = graphql(`
  mutation Note($input: AddInternalNoteInput!) { addInternalNote(input: $input) { messageId position } }
`);
export const ASSIGN = graphql(`
  mutation Assign($input: AssignTicketInput!) { assignTicket(input: $input) { position } }
`);
export const STATUS = graphql(`
  mutation Status($input: ChangeTicketStatusInput!) { changeTicketStatus(input: $input) { position } }
`);
export const PRIORITY = graphql(`
  mutation Priority($input: SetTicketPriorityInput!) { setTicketPriority(input: $input) { position } }
`);
export const CATEGORY = graphql(`
  mutation Category($input: SetTicketCategoryInput!) { setTicketCategory(input: $input) { position } }
`);
export const TAG = graphql(`
  mutation Tag($input: TagTicketInput!) { tagTicket(input: $input) { position } }
`);
export const UNTAG = graphql(`
  mutation Untag($input: TagTicketInput!) { untagTicket(input: $input) { position } }
`);
export const BAN = graphql(`
  mutation Ban($input: BanCustomerInput!) { banCustomer(input: $input) { position } }
`);
export const UNBAN = graphql(`
  mutation Unban($input: UnbanCustomerInput!) { unbanCustomer(input: $input) { position } }
`);
export const RETRY = graphql(`
  mutation Retry($input: RetryDeliveryInput!) { retryDelivery(input: $input) { position } }
`);
