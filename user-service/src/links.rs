//! The invite-link calls of the user API: their validation and answers;
//! the rules are in `link_store` and `permissions`.

use chrono::{Duration, Utc};
use proto::user::v1 as user_pb;

use crate::{
    error::UserError,
    grpc::{UserApi, check_room, check_username, room_pb, timestamp},
    link_store::{LinkRow, NewLink, check_code},
};

/// A link expires after 1 minute to 30 days, or never.
pub const MIN_EXPIRY_SECS: u32 = 60;
pub const MAX_EXPIRY_SECS: u32 = 2_592_000;
/// A link is good for 1 to 1000 uses, or any number.
pub const MAX_USES: u32 = 1000;

fn link_pb(l: LinkRow) -> user_pb::InviteLink {
    user_pb::InviteLink {
        id: l.id,
        room: l.room,
        code: l.code,
        created_by: l.created_by,
        created_at: Some(timestamp(l.created_at)),
        expires_at: l.expires_at.map(timestamp),
        max_uses: l.max_uses.and_then(|n| u32::try_from(n).ok()),
        uses: u32::try_from(l.uses).unwrap_or(0),
    }
}

impl UserApi {
    pub(crate) async fn create_invite_link_(
        &self,
        req: user_pb::CreateInviteLinkRequest,
    ) -> Result<user_pb::InviteLink, UserError> {
        check_room(&req.room)?;
        check_username(&req.actor)?;
        let expires_at = match req.expires_in_secs {
            None => None,
            Some(s) if (MIN_EXPIRY_SECS..=MAX_EXPIRY_SECS).contains(&s) => {
                Some(Utc::now() + Duration::seconds(i64::from(s)))
            }
            Some(_) => {
                return Err(UserError::InvalidArgument(format!(
                    "expires_in_secs must be {MIN_EXPIRY_SECS} to {MAX_EXPIRY_SECS}"
                )));
            }
        };
        let max_uses = match req.max_uses {
            None => None,
            Some(n) if (1..=MAX_USES).contains(&n) => Some(n as i32),
            Some(_) => {
                return Err(UserError::InvalidArgument(format!(
                    "max_uses must be 1 to {MAX_USES}"
                )));
            }
        };
        let link = self
            .store
            .create_link(
                &req.room,
                &req.actor,
                NewLink {
                    expires_at,
                    max_uses,
                },
            )
            .await?;
        Ok(link_pb(link))
    }

    pub(crate) async fn list_invite_links_(
        &self,
        req: user_pb::RoomActorRequest,
    ) -> Result<user_pb::ListInviteLinksResponse, UserError> {
        check_room(&req.room)?;
        check_username(&req.actor)?;
        let links = self.store.links(&req.room, &req.actor).await?;
        Ok(user_pb::ListInviteLinksResponse {
            links: links.into_iter().map(link_pb).collect(),
        })
    }

    pub(crate) async fn revoke_invite_link_(
        &self,
        req: user_pb::RevokeInviteLinkRequest,
    ) -> Result<user_pb::RevokeInviteLinkResponse, UserError> {
        check_room(&req.room)?;
        check_username(&req.actor)?;
        self.store
            .revoke_link(&req.room, &req.actor, req.id)
            .await?;
        Ok(user_pb::RevokeInviteLinkResponse {})
    }

    pub(crate) async fn use_invite_link_(
        &self,
        req: user_pb::UseInviteLinkRequest,
    ) -> Result<user_pb::Room, UserError> {
        check_code(&req.code)?;
        check_username(&req.username)?;
        // The seq is read before the link's row is locked, not under it.
        let room = self.store.link_room(&req.code).await?;
        let from_seq = self.events.room_seq(&room).await?;
        let room = self
            .store
            .use_link(&req.code, &req.username, from_seq)
            .await?;
        self.events.changed(&room).await;
        let joined = self
            .store
            .room_for(&room, &req.username)
            .await?
            .ok_or_else(|| UserError::NotFound(format!("room {room} not found")))?;
        Ok(room_pb(joined))
    }
}
