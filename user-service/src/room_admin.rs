//! The room-administration calls of the user API: their validation and
//! their answers; the rules are in `moderation_store` and `permissions`.
//! Every change that alters who may post, or how, bumps the room's
//! membership version, so every worker enforces it from its next batch.

use chrono::{DateTime, TimeZone, Utc};
use proto::user::v1::{self as user_pb, ModerationAction};

use crate::{
    error::UserError,
    grpc::{
        UserApi, check_display_name, check_history_visibility, check_room, check_topic,
        check_username, check_visibility, room_pb, timestamp,
    },
    moderation_store::{MAX_PAGE, Moderation, RoomSettings},
    permissions::Role,
};

/// The longest reason kept in the moderation log.
pub const MAX_REASON: usize = 256;
/// The longest slow-mode interval (6 hours).
pub const MAX_SLOW_MODE_SECS: u32 = 21_600;

fn check_reason(reason: &str) -> Result<(), UserError> {
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(UserError::InvalidArgument(format!(
            "reason must be at most {MAX_REASON} characters, no control characters"
        )));
    }
    Ok(())
}

/// An end time in Unix ms, in the future and within year 9999.
fn until(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, UserError> {
    let Some(ms) = ms else { return Ok(None) };
    let at = Utc
        .timestamp_millis_opt(ms)
        .single()
        .filter(|t| *t > Utc::now() && t.timestamp() < 253_402_300_799)
        .ok_or_else(|| {
            UserError::InvalidArgument("until_ms must be a time in the future".into())
        })?;
    Ok(Some(at))
}

fn page(limit: u32) -> i64 {
    if limit == 0 {
        MAX_PAGE
    } else {
        i64::from(limit).min(MAX_PAGE)
    }
}

impl UserApi {
    pub(crate) async fn update_room_(
        &self,
        req: user_pb::UpdateRoomRequest,
    ) -> Result<user_pb::Room, UserError> {
        check_room(&req.room)?;
        check_username(&req.actor)?;
        let topic = req.topic.as_deref().map(str::trim);
        if let Some(t) = topic {
            check_topic(t)?;
        }
        if let Some(v) = req.visibility.as_deref() {
            check_visibility(v)?;
        }
        let slow = match req.slow_mode_secs {
            Some(s) if s > MAX_SLOW_MODE_SECS => {
                return Err(UserError::InvalidArgument(format!(
                    "slow_mode_secs must be 0 to {MAX_SLOW_MODE_SECS}"
                )));
            }
            other => other.map(|s| s as i32),
        };
        let display_name = req.display_name.as_deref().map(str::trim);
        if let Some(d) = display_name {
            check_display_name(d)?;
        }
        if let Some(h) = req.history_visibility.as_deref() {
            check_history_visibility(h)?;
        }
        let settings = RoomSettings {
            history_visibility: req.history_visibility.as_deref(),
            display_name,
            topic,
            visibility: req.visibility.as_deref(),
            slow_mode_secs: slow,
        };
        let room = self
            .store
            .update_room(&req.room, &req.actor, &settings)
            .await?;
        self.events.changed(&req.room).await;
        Ok(room_pb(room))
    }

    pub(crate) async fn moderate_(&self, req: user_pb::ModerateRequest) -> Result<(), UserError> {
        check_room(&req.room)?;
        check_username(&req.actor)?;
        check_reason(&req.reason)?;
        let action = match req.action() {
            ModerationAction::Kick => Moderation::Kick,
            ModerationAction::Ban => Moderation::Ban(until(req.until_ms)?),
            ModerationAction::Unban => Moderation::Unban,
            ModerationAction::Mute => Moderation::Mute(until(req.until_ms)?),
            ModerationAction::Unmute => Moderation::Unmute,
            ModerationAction::SetRole => {
                Moderation::SetRole(Role::parse(&req.role).ok_or_else(|| {
                    UserError::InvalidArgument("role must be admin or member".into())
                })?)
            }
            ModerationAction::Transfer => Moderation::Transfer,
            ModerationAction::DeleteRoom => Moderation::DeleteRoom,
            ModerationAction::Unspecified => {
                return Err(UserError::InvalidArgument("action is required".into()));
            }
        };
        if !matches!(action, Moderation::DeleteRoom) {
            check_username(&req.target)?;
        }
        // Who a deletion removes: its members just before it.
        let members = match action {
            Moderation::DeleteRoom => self
                .store
                .room_members(&req.room)
                .await?
                .map(|r| r.members.into_iter().map(|m| m.username).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        self.store
            .moderate(
                &req.room,
                &req.actor,
                &req.target,
                action,
                req.reason.trim(),
            )
            .await?;
        self.events.changed(&req.room).await;
        match action {
            Moderation::Kick => self.events.removed(&req.room, "kick", &[req.target]).await,
            Moderation::Ban(_) => self.events.removed(&req.room, "ban", &[req.target]).await,
            Moderation::DeleteRoom => {
                self.events
                    .removed(&req.room, "delete_room", &members)
                    .await
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) async fn invite_(
        &self,
        req: user_pb::InviteRequest,
    ) -> Result<user_pb::Invitation, UserError> {
        check_room(&req.room)?;
        check_username(&req.actor)?;
        check_username(&req.username)?;
        if req.actor == req.username {
            return Err(UserError::InvalidArgument(
                "you cannot invite yourself".into(),
            ));
        }
        let row = self
            .store
            .invite(&req.room, &req.actor, &req.username)
            .await?;
        Ok(invitation(row))
    }

    pub(crate) async fn answer_invite_(
        &self,
        req: user_pb::AnswerInviteRequest,
    ) -> Result<user_pb::AnswerInviteResponse, UserError> {
        check_room(&req.room)?;
        check_username(&req.username)?;
        if !req.accept {
            self.store.decline_invite(&req.room, &req.username).await?;
            return Ok(user_pb::AnswerInviteResponse { room: None });
        }
        if !self.store.has_invite(&req.room, &req.username).await? {
            return Err(UserError::NotFound(format!(
                "no invite to room {}",
                req.room
            )));
        }
        let from_seq = self.events.room_seq(&req.room).await?;
        let room = self
            .store
            .join_room(&req.room, &req.username, from_seq)
            .await?;
        self.events.changed(&req.room).await;
        Ok(user_pb::AnswerInviteResponse {
            room: Some(room_pb(room)),
        })
    }

    pub(crate) async fn list_invites_(
        &self,
        req: user_pb::ListInvitesRequest,
    ) -> Result<user_pb::ListInvitesResponse, UserError> {
        check_username(&req.username)?;
        let invites = self.store.invites(&req.username).await?;
        Ok(user_pb::ListInvitesResponse {
            invites: invites.into_iter().map(invitation).collect(),
        })
    }

    pub(crate) async fn list_public_rooms_(
        &self,
        req: user_pb::ListPublicRoomsRequest,
    ) -> Result<user_pb::ListPublicRoomsResponse, UserError> {
        for (what, s) in [("prefix", &req.prefix), ("after", &req.after)] {
            if s.len() > 32
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(UserError::InvalidArgument(format!(
                    "{what} must be up to 32 characters of a-z, 0-9, _ and -"
                )));
            }
        }
        let (rooms, has_more) = self
            .store
            .public_rooms(&req.prefix, &req.after, page(req.limit))
            .await?;
        Ok(user_pb::ListPublicRoomsResponse {
            rooms: rooms
                .into_iter()
                .map(|(r, n)| user_pb::Room {
                    member_count: u32::try_from(n).unwrap_or(u32::MAX),
                    ..room_pb(r)
                })
                .collect(),
            has_more,
        })
    }

    pub(crate) async fn list_bans_(
        &self,
        req: user_pb::RoomActorRequest,
    ) -> Result<user_pb::ListBansResponse, UserError> {
        check_room(&req.room)?;
        check_username(&req.actor)?;
        if !req.after.is_empty() {
            check_username(&req.after)?;
        }
        let (bans, has_more) = self.store.bans(&req.room, &req.actor, &req.after).await?;
        Ok(user_pb::ListBansResponse {
            bans: bans
                .into_iter()
                .map(|b| user_pb::Ban {
                    username: b.username,
                    banned_by: b.banned_by,
                    reason: b.reason,
                    until_ms: b.until.map_or(0, |t| t.timestamp_millis()),
                    created_at: Some(timestamp(b.created_at)),
                })
                .collect(),
            has_more,
        })
    }

    pub(crate) async fn list_moderation_log_(
        &self,
        req: user_pb::ListModerationLogRequest,
    ) -> Result<user_pb::ListModerationLogResponse, UserError> {
        check_room(&req.room)?;
        check_username(&req.actor)?;
        if req.before < 0 {
            return Err(UserError::InvalidArgument(
                "before must be 0 or more".into(),
            ));
        }
        let (entries, has_more) = self
            .store
            .moderation_log(&req.room, &req.actor, req.before, page(req.limit))
            .await?;
        Ok(user_pb::ListModerationLogResponse {
            entries: entries
                .into_iter()
                .map(|e| user_pb::ModerationEntry {
                    id: e.id,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    reason: e.reason,
                    at: Some(timestamp(e.at)),
                })
                .collect(),
            has_more,
        })
    }
}

fn invitation(row: crate::invite_store::InviteRow) -> user_pb::Invitation {
    user_pb::Invitation {
        room: row.room,
        invited_by: row.invited_by,
        created_at: Some(timestamp(row.created_at)),
        topic: row.topic,
    }
}
