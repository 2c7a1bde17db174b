// A text of the panel: plain, with `{name}` placeholders, or by plural category (chosen with
// `Intl.PluralRules` from the `count` parameter; Russian needs one, few and many).
export type Plural = { zero?: string; one?: string; two?: string; few?: string; many?: string; other: string };
export type Message = string | Plural;
export type Messages = Record<string, Message>;
