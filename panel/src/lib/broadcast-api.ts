// The broadcast screens' operations, and the CSV report fetched with the agent's token.
import { graphql, type ResultOf } from './graphql';
import { ApiError } from './errors';
import { session } from './session.svelte';

export const BROADCASTS = graphql(`
  query Broadcasts($first: Int!, $after: String, $state: BroadcastStateValue) {
    broadcasts(first: $first, after: $after, state: $state) {
      nodes {
        broadcastId state audience audienceKind text mediaKind scheduledAt createdAt
        totalRecipients delivered failed skipped
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export type BroadcastRow = ResultOf<typeof BROADCASTS>['broadcasts']['nodes'][number];

const PROGRESS_FIELDS = graphql(`
  fragment ProgressFields on BroadcastProgress @_unmask {
    state delivered failed skipped total pending ratePerSecond etaSeconds estimatedCompletionAt
  }
`);

export const BROADCAST = graphql(
  `query Broadcast($id: ID!, $consistency: ConsistencyInput) {
    broadcast(id: $id, consistency: $consistency) {
      broadcastId state audience audienceKind text mediaKind buttons scheduledAt createdAt
      startedAt completedAt cancelledAt totalRecipients
      progress { ...ProgressFields }
      buttonPresses { index label data presses customers }
    }
  }`,
  [PROGRESS_FIELDS],
);

/**
 * A draft's whole content (format, media file id, unsubscribe flag: more than the read model
 * keeps), folded from its events up to the newest. Drafts have few events; a started
 * broadcast, with its outcomes, is never folded here.
 */
export const STORED = graphql(`
  query StoredBroadcast($id: ID!, $asOf: DateTime!) {
    broadcastAt(id: $id, asOf: $asOf) { audience content scheduledAt }
  }
`);

/** Where a broadcast stands in its log now (not in a read model that may lag behind). */
export const STATUS = graphql(`
  query BroadcastStatus($id: ID!, $asOf: DateTime!) {
    broadcastAt(id: $id, asOf: $asOf) { status scheduledAt }
  }
`);

/** A time after every event: `broadcastAt` then folds them all, whatever the clocks say. */
export const LATEST = '9999-12-31T23:59:59Z';

export type BroadcastData = ResultOf<typeof BROADCAST>['broadcast'];
export type Progress = BroadcastData['progress'];

export const RECIPIENTS = graphql(`
  query BroadcastRecipients($id: ID!, $first: Int!, $after: String, $state: RecipientStateValue) {
    broadcast(id: $id) {
      recipients(first: $first, after: $after, state: $state) {
        nodes { customerId state reason retryable updatedAt buttonPresses }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
`);

export type RecipientRow = ResultOf<typeof RECIPIENTS>['broadcast']['recipients']['nodes'][number];

export const PROGRESS = graphql(
  `subscription BroadcastProgress($id: ID!) { broadcastProgress(id: $id) { ...ProgressFields } }`,
  [PROGRESS_FIELDS],
);

export const CREATE = graphql(`
  mutation CreateBroadcast($input: CreateBroadcastInput!) {
    createBroadcast(input: $input) { broadcastId position }
  }
`);
export const UPDATE = graphql(`
  mutation UpdateBroadcast($input: UpdateBroadcastInput!) {
    updateBroadcast(input: $input) { broadcastId position }
  }
`);
export const SCHEDULE = graphql(`
  mutation ScheduleBroadcast($input: ScheduleBroadcastInput!) {
    scheduleBroadcast(input: $input) { broadcastId position }
  }
`);
export const START = graphql(`
  mutation StartBroadcast($input: BroadcastInput!) { startBroadcast(input: $input) { broadcastId position } }
`);
export const PAUSE = graphql(`
  mutation PauseBroadcast($input: BroadcastInput!) { pauseBroadcast(input: $input) { broadcastId position } }
`);
export const CANCEL = graphql(`
  mutation CancelBroadcast($input: BroadcastInput!) { cancelBroadcast(input: $input) { broadcastId position } }
`);
export const PREVIEW = graphql(`
  mutation SendBroadcastPreview($input: SendBroadcastPreviewInput!) {
    sendBroadcastPreview(input: $input) { previewId state failureReason }
  }
`);

/**
 * The recipients' CSV report, read with the agent's bearer token (a plain link cannot carry
 * it) and handed to the browser as a download.
 */
export async function downloadReport(broadcastId: string, fileName: string): Promise<void> {
  const path = `/broadcasts/${encodeURIComponent(broadcastId)}/recipients.csv`;
  const get = async (token: string | null) => {
    if (!token) throw new ApiError('not signed in', 'UNAUTHENTICATED');
    try {
      return await fetch(path, { headers: { authorization: `Bearer ${token}` }, credentials: 'same-origin' });
    } catch (error) {
      throw new ApiError(`the server cannot be reached (${String(error)})`, 'NETWORK');
    }
  };
  let response = await get(await session.accessToken());
  if (response.status === 401 && (await session.refresh())) {
    response = await get(session.tokens?.accessToken ?? null);
  }
  if (!response.ok) {
    const code = response.status === 429 ? 'RATE_LIMITED' : response.status === 403 ? 'FORBIDDEN' : 'INTERNAL';
    throw new ApiError(`the report could not be read (${response.status})`, code);
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  try {
    const link = document.createElement('a');
    link.href = url;
    link.download = fileName;
    document.body.append(link);
    link.click();
    link.remove();
  } finally {
    // The click has handed the file over; the address is not needed after this turn.
    setTimeout(() => URL.revokeObjectURL(url), 1_000);
  }
}

// The log position each broadcast was last written at by this tab: the next read of it waits
// until the read models include it (read-your-writes across the screens).
const written = new Map<string, string>();

export function remember(broadcastId: string, position: string | null): void {
  if (position) written.set(broadcastId, position);
}

export function writtenAt(broadcastId: string): string | undefined {
  return written.get(broadcastId);
}
