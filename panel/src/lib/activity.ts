// Data access of the live feed of events (admins and auditors).
import { graphql, type ResultOf } from './graphql';

export const EVENTS = graphql(`
  subscription Events($after: String) {
    events(after: $after, from: NOW) {
      cursor stream version type recordedAt payload actor { kind actorId }
    }
  }
`);

export type FeedEvent = ResultOf<typeof EVENTS>['events'];

/** Most events the feed keeps on screen. */
export const FEED_LIMIT = 200;
