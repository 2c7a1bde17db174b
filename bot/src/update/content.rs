//! What a private message carries, in the domain's terms: its body, caption, forward origin
//! and date, album, and everything Telegram told about its file (sizes, durations, MIME types,
//! dimensions, thumbnails, music titles, sticker sets).
//!
//! Every kind of message becomes content: the kinds the domain models in full, and the others
//! as what can be shown of them (a dice's value, a poll's question and answers, a story's
//! chat and id, a checklist's tasks, paid media's price and kinds), service messages as the
//! action Telegram names, and anything else as an unsupported message of its kind. Nothing a
//! customer sent in their private chat is dropped for its kind.

use domain::content::{
    ChecklistTask, ForwardOrigin, MediaDetails, MessageBody, MessageContent, TelegramFile,
    TelegramMessageId, TextEntity, Thumbnail,
};
use teloxide::types::{
    Chat, FileMeta, MediaKind, Message, MessageCommon, MessageEntity, MessageEntityKind,
    MessageKind, MessageOrigin, PaidMedia, PhotoSize, PollType, Seconds,
};

/// The content of `message`, whatever its kind, with the formatting of its text or caption.
pub(super) fn of(message: &Message) -> MessageContent {
    let mut content = body_of(message);
    content.entities = message
        .entities()
        .or_else(|| message.caption_entities())
        .map(|entities| entities.iter().filter_map(entity).collect())
        .unwrap_or_default();
    content
}

/// A Telegram entity in the domain's terms; `None` for one whose offsets pass `u32` (no
/// text is that long).
fn entity(entity: &MessageEntity) -> Option<TextEntity> {
    let mut kept = TextEntity::new(
        "",
        u32::try_from(entity.offset).ok()?,
        u32::try_from(entity.length).ok()?,
    );
    kept.kind = match &entity.kind {
        MessageEntityKind::Mention => "mention",
        MessageEntityKind::Hashtag => "hashtag",
        MessageEntityKind::Cashtag => "cashtag",
        MessageEntityKind::BotCommand => "bot_command",
        MessageEntityKind::Url => "url",
        MessageEntityKind::Email => "email",
        MessageEntityKind::PhoneNumber => "phone_number",
        MessageEntityKind::Bold => "bold",
        MessageEntityKind::Blockquote => "blockquote",
        MessageEntityKind::ExpandableBlockquote => "expandable_blockquote",
        MessageEntityKind::Italic => "italic",
        MessageEntityKind::Underline => "underline",
        MessageEntityKind::Strikethrough => "strikethrough",
        MessageEntityKind::Spoiler => "spoiler",
        MessageEntityKind::Code => "code",
        MessageEntityKind::Pre { language } => {
            kept.language.clone_from(language);
            "pre"
        }
        MessageEntityKind::TextLink { url } => {
            kept.url = Some(url.to_string());
            "text_link"
        }
        MessageEntityKind::TextMention { user } => {
            kept.user_id = Some(user.id.0);
            "text_mention"
        }
        MessageEntityKind::CustomEmoji { custom_emoji_id } => {
            kept.custom_emoji_id = Some(custom_emoji_id.0.clone());
            "custom_emoji"
        }
    }
    .to_owned();
    Some(kept)
}

fn body_of(message: &Message) -> MessageContent {
    match &message.kind {
        MessageKind::Common(common) => common_content(common),
        MessageKind::Dice(dice) => MessageContent::of(MessageBody::Dice {
            emoji: serde_json::to_value(dice.dice.emoji)
                .ok()
                .and_then(|emoji| emoji.as_str().map(str::to_owned))
                .unwrap_or_default(),
            value: dice.dice.value,
        }),
        MessageKind::Pinned(pinned) => MessageContent::of(MessageBody::Service {
            action: "pinned_message".to_owned(),
            message: Some(TelegramMessageId(pinned.pinned.id().0)),
        }),
        MessageKind::Invoice(_) => unsupported("invoice"),
        MessageKind::PassportData(_) => unsupported("passport_data"),
        MessageKind::Giveaway(_) => unsupported("giveaway"),
        MessageKind::GiveawayWinners(_) => unsupported("giveaway_winners"),
        MessageKind::Empty {} => unsupported("unknown"),
        other => MessageContent::of(MessageBody::Service {
            action: service_action(other).to_owned(),
            message: None,
        }),
    }
}

fn unsupported(kind: &str) -> MessageContent {
    MessageContent::of(MessageBody::Unsupported {
        kind: kind.to_owned(),
    })
}

/// The field Telegram names a service message by.
fn service_action(kind: &MessageKind) -> &'static str {
    match kind {
        MessageKind::NewChatMembers(_) => "new_chat_members",
        MessageKind::LeftChatMember(_) => "left_chat_member",
        MessageKind::NewChatTitle(_) => "new_chat_title",
        MessageKind::NewChatPhoto(_) => "new_chat_photo",
        MessageKind::DeleteChatPhoto(_) => "delete_chat_photo",
        MessageKind::GroupChatCreated(_) => "group_chat_created",
        MessageKind::SupergroupChatCreated(_) => "supergroup_chat_created",
        MessageKind::ChannelChatCreated(_) => "channel_chat_created",
        MessageKind::MessageAutoDeleteTimerChanged(_) => "message_auto_delete_timer_changed",
        MessageKind::ChatShared(_) => "chat_shared",
        MessageKind::UsersShared(_) => "users_shared",
        MessageKind::SuccessfulPayment(_) => "successful_payment",
        MessageKind::RefundedPayment(_) => "refunded_payment",
        MessageKind::ConnectedWebsite(_) => "connected_website",
        MessageKind::WriteAccessAllowed(_) => "write_access_allowed",
        MessageKind::ProximityAlertTriggered(_) => "proximity_alert_triggered",
        MessageKind::ChatBoostAdded(_) => "boost_added",
        MessageKind::ChatBackground(_) => "chat_background_set",
        MessageKind::ChecklistTasksDone(_) => "checklist_tasks_done",
        MessageKind::ChecklistTasksAdded(_) => "checklist_tasks_added",
        MessageKind::DirectMessagePriceChanged(_) => "direct_message_price_changed",
        MessageKind::ForumTopicCreated(_) => "forum_topic_created",
        MessageKind::ForumTopicEdited(_) => "forum_topic_edited",
        MessageKind::ForumTopicClosed(_) => "forum_topic_closed",
        MessageKind::ForumTopicReopened(_) => "forum_topic_reopened",
        MessageKind::GeneralForumTopicHidden(_) => "general_forum_topic_hidden",
        MessageKind::GeneralForumTopicUnhidden(_) => "general_forum_topic_unhidden",
        MessageKind::GiveawayCompleted(_) => "giveaway_completed",
        MessageKind::GiveawayCreated(_) => "giveaway_created",
        MessageKind::PaidMessagePriceChanged(_) => "paid_message_price_changed",
        MessageKind::GiftInfo(_) => "gift",
        MessageKind::UniqueGiftInfo(_) => "unique_gift",
        MessageKind::VideoChatScheduled(_) => "video_chat_scheduled",
        MessageKind::VideoChatStarted(_) => "video_chat_started",
        MessageKind::VideoChatEnded(_) => "video_chat_ended",
        MessageKind::VideoChatParticipantsInvited(_) => "video_chat_participants_invited",
        MessageKind::WebAppData(_) => "web_app_data",
        MessageKind::Pinned(_) => "pinned_message",
        MessageKind::Dice(_) => "dice",
        MessageKind::Invoice(_) => "invoice",
        MessageKind::PassportData(_) => "passport_data",
        MessageKind::Giveaway(_) => "giveaway",
        MessageKind::GiveawayWinners(_) => "giveaway_winners",
        MessageKind::Common(_) | MessageKind::Empty {} => "unknown",
    }
}

fn common_content(common: &MessageCommon) -> MessageContent {
    let mut media = MediaDetails::default();
    let mut media_group_id = None;
    let (body, caption) = match &common.media_kind {
        MediaKind::Text(text) => (
            MessageBody::Text {
                text: text.text.clone(),
            },
            None,
        ),
        MediaKind::Photo(photo) => {
            media_group_id.clone_from(&photo.media_group_id);
            let body = match largest(&photo.photo) {
                Some(size) => {
                    media = photo_details(size, &photo.photo);
                    MessageBody::Photo {
                        file: file(&size.file),
                    }
                }
                None => MessageBody::Unsupported {
                    kind: "photo".to_owned(),
                },
            };
            (body, photo.caption.clone())
        }
        MediaKind::Video(video) => {
            media_group_id.clone_from(&video.media_group_id);
            let v = &video.video;
            media = MediaDetails {
                file_name: v.file_name.clone(),
                mime_type: v.mime_type.as_ref().map(ToString::to_string),
                file_size: size(&v.file),
                width: Some(v.width),
                height: Some(v.height),
                duration: Some(seconds(v.duration)),
                thumbnail: v.thumbnail.as_ref().map(thumbnail),
                ..MediaDetails::default()
            };
            (
                MessageBody::Video {
                    file: file(&v.file),
                },
                video.caption.clone(),
            )
        }
        MediaKind::Document(document) => {
            media_group_id.clone_from(&document.media_group_id);
            let d = &document.document;
            media = MediaDetails {
                mime_type: d.mime_type.as_ref().map(ToString::to_string),
                file_size: size(&d.file),
                thumbnail: d.thumbnail.as_ref().map(thumbnail),
                ..MediaDetails::default()
            };
            (
                MessageBody::Document {
                    file: file(&d.file),
                    file_name: d.file_name.clone(),
                },
                document.caption.clone(),
            )
        }
        MediaKind::Audio(audio) => {
            media_group_id.clone_from(&audio.media_group_id);
            let a = &audio.audio;
            media = MediaDetails {
                file_name: a.file_name.clone(),
                mime_type: a.mime_type.as_ref().map(ToString::to_string),
                file_size: size(&a.file),
                duration: Some(seconds(a.duration)),
                thumbnail: a.thumbnail.as_ref().map(thumbnail),
                title: a.title.clone(),
                performer: a.performer.clone(),
                ..MediaDetails::default()
            };
            (
                MessageBody::Audio {
                    file: file(&a.file),
                },
                audio.caption.clone(),
            )
        }
        MediaKind::Voice(voice) => {
            let v = &voice.voice;
            media = MediaDetails {
                mime_type: v.mime_type.as_ref().map(ToString::to_string),
                file_size: size(&v.file),
                duration: Some(seconds(v.duration)),
                ..MediaDetails::default()
            };
            (
                MessageBody::Voice {
                    file: file(&v.file),
                },
                voice.caption.clone(),
            )
        }
        MediaKind::VideoNote(note) => {
            let v = &note.video_note;
            media = MediaDetails {
                file_size: size(&v.file),
                // A video note is round: its length is both its width and its height.
                width: Some(v.length),
                height: Some(v.length),
                duration: Some(seconds(v.duration)),
                thumbnail: v.thumbnail.as_ref().map(thumbnail),
                ..MediaDetails::default()
            };
            (
                MessageBody::VideoNote {
                    file: file(&v.file),
                },
                None,
            )
        }
        MediaKind::Sticker(sticker) => {
            let s = &sticker.sticker;
            media = MediaDetails {
                file_size: size(&s.file),
                width: Some(u32::from(s.width)),
                height: Some(u32::from(s.height)),
                thumbnail: s.thumbnail.as_ref().map(thumbnail),
                set_name: s.set_name.clone(),
                animated: Some(s.flags.is_animated),
                video: Some(s.flags.is_video),
                ..MediaDetails::default()
            };
            (
                MessageBody::Sticker {
                    file: file(&s.file),
                    emoji: s.emoji.clone(),
                },
                None,
            )
        }
        // teloxide reads an animation before a document, so the `document` copy Telegram sends
        // along for old clients never wins.
        MediaKind::Animation(animation) => {
            let a = &animation.animation;
            media = MediaDetails {
                file_name: a.file_name.clone(),
                mime_type: a.mime_type.as_ref().map(ToString::to_string),
                file_size: size(&a.file),
                width: Some(a.width),
                height: Some(a.height),
                duration: Some(seconds(a.duration)),
                thumbnail: a.thumbnail.as_ref().map(thumbnail),
                ..MediaDetails::default()
            };
            (
                MessageBody::Animation {
                    file: file(&a.file),
                },
                animation.caption.clone(),
            )
        }
        MediaKind::Location(location) => (
            MessageBody::Location {
                latitude: location.location.latitude,
                longitude: location.location.longitude,
            },
            None,
        ),
        // Likewise a venue is read before the `location` copy that comes with it.
        MediaKind::Venue(venue) => (
            MessageBody::Venue {
                latitude: venue.venue.location.latitude,
                longitude: venue.venue.location.longitude,
                title: venue.venue.title.clone(),
                address: venue.venue.address.clone(),
            },
            None,
        ),
        MediaKind::Contact(contact) => (
            MessageBody::Contact {
                phone_number: contact.contact.phone_number.clone(),
                first_name: contact.contact.first_name.clone(),
                last_name: contact.contact.last_name.clone(),
                user_id: contact
                    .contact
                    .user_id
                    .and_then(|id| i64::try_from(id.0).ok()),
            },
            None,
        ),
        MediaKind::Poll(poll) => (
            MessageBody::Poll {
                question: poll.poll.question.clone(),
                options: poll.poll.options.iter().map(|o| o.text.clone()).collect(),
                quiz: poll.poll.poll_type == PollType::Quiz,
                multiple_answers: poll.poll.allows_multiple_answers,
            },
            None,
        ),
        MediaKind::Story(story) => (
            MessageBody::Story {
                chat_id: story.story.chat.id.0,
                story_id: story.story.id.0,
            },
            None,
        ),
        MediaKind::Checklist(checklist) => (
            MessageBody::Checklist {
                title: checklist.checklist.title.clone(),
                tasks: checklist
                    .checklist
                    .tasks
                    .iter()
                    .map(|task| ChecklistTask {
                        text: task.text.clone(),
                        done: task.completed_by_user.is_some() || task.completion_date.is_some(),
                    })
                    .collect(),
            },
            None,
        ),
        MediaKind::PaidMedia(paid) => (
            MessageBody::PaidMedia {
                star_count: paid.paid_media.star_count,
                media: paid
                    .paid_media
                    .paid_media
                    .iter()
                    .map(|medium| {
                        match medium {
                            PaidMedia::Preview(_) => "preview",
                            PaidMedia::Photo(_) => "photo",
                            PaidMedia::Video(_) => "video",
                        }
                        .to_owned()
                    })
                    .collect(),
            },
            None,
        ),
        MediaKind::Game(_) => (
            MessageBody::Unsupported {
                kind: "game".to_owned(),
            },
            None,
        ),
        MediaKind::Migration(_) => (
            MessageBody::Service {
                action: "migrate_to_chat_id".to_owned(),
                message: None,
            },
            None,
        ),
    };
    MessageContent {
        body,
        caption,
        forwarded_from: common.forward_origin.as_ref().map(forward_origin),
        forwarded_at: common.forward_origin.as_ref().map(MessageOrigin::date),
        media: (!media.is_empty()).then(|| Box::new(media)),
        media_group_id: media_group_id.map(|id| id.0),
        entities: Vec::new(),
    }
}

/// The size with the most pixels; Telegram lists them smallest first, but we do not rely on it.
fn largest(sizes: &[PhotoSize]) -> Option<&PhotoSize> {
    sizes.iter().max_by_key(|size| {
        (
            u64::from(size.width) * u64::from(size.height),
            size.file.size,
        )
    })
}

/// A photo's details: the dimensions and size of the largest size, and the smallest size as
/// its thumbnail (when there are several).
fn photo_details(largest: &PhotoSize, sizes: &[PhotoSize]) -> MediaDetails {
    let smallest = sizes
        .iter()
        .min_by_key(|size| u64::from(size.width) * u64::from(size.height))
        .filter(|smallest| smallest.file.unique_id != largest.file.unique_id);
    MediaDetails {
        file_size: size(&largest.file),
        width: Some(largest.width),
        height: Some(largest.height),
        thumbnail: smallest.map(thumbnail),
        ..MediaDetails::default()
    }
}

fn thumbnail(size: &PhotoSize) -> Thumbnail {
    Thumbnail {
        file: file(&size.file),
        width: size.width,
        height: size.height,
        file_size: self::size(&size.file),
    }
}

/// The file's size; teloxide stands in `u32::MAX` when Telegram did not say.
fn size(meta: &FileMeta) -> Option<u64> {
    (meta.size != u32::MAX).then_some(u64::from(meta.size))
}

const fn seconds(duration: Seconds) -> u32 {
    duration.seconds()
}

fn file(meta: &FileMeta) -> TelegramFile {
    TelegramFile::new(meta.id.0.clone(), meta.unique_id.0.clone())
}

fn forward_origin(origin: &MessageOrigin) -> ForwardOrigin {
    match origin {
        MessageOrigin::User { sender_user, .. } => match i64::try_from(sender_user.id.0) {
            Ok(user_id) => ForwardOrigin::User {
                user_id,
                name: sender_user.full_name(),
            },
            // Telegram ids fit in 52 bits; should one not fit, keep the name rather than lose
            // the message.
            Err(_) => ForwardOrigin::HiddenUser {
                name: sender_user.full_name(),
            },
        },
        MessageOrigin::HiddenUser {
            sender_user_name, ..
        } => ForwardOrigin::HiddenUser {
            name: sender_user_name.clone(),
        },
        MessageOrigin::Chat { sender_chat, .. } => ForwardOrigin::Chat {
            chat_id: sender_chat.id.0,
            title: chat_title(sender_chat),
        },
        MessageOrigin::Channel {
            chat, message_id, ..
        } => ForwardOrigin::Channel {
            chat_id: chat.id.0,
            title: chat_title(chat),
            message_id: TelegramMessageId(message_id.0),
        },
    }
}

fn chat_title(chat: &Chat) -> String {
    chat.title().unwrap_or_default().to_owned()
}
